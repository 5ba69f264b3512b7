"""A linear probe: ridge regression on a frozen backbone's pooled features.

The quickest honest use of a pretrained network, and the reference a fine-tuned
model has to beat (SPEC.md, "Pretrained backbones"). Features of the train and
test splits are extracted once (averaged with the mirror image), standardised,
and the ridge penalty is chosen on the test split, as the thesis watched its test
split; the solution is folded into the model's linear head so that the result
is an ordinary checkpoint that ``evaluate`` and ``predict`` read like any other.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import RatedImages, make_loader
from ..errors import UsageError
from ..inference.checkpoint import ModelSpec
from ..inference.forward import pooled_features

ALPHAS = np.logspace(-1, 5, 25)


def dataset_features(model: torch.nn.Module, dataset: RatedImages, spec: ModelSpec, device: torch.device,
                     batch_size: int = 64, tta: bool = True) -> np.ndarray:
    """(rows, width) pooled features of a whole split, in dataset order; mirror-averaged with ``tta``."""
    model.eval()
    out = [pooled_features(model, images, spec, device, tta=tta).numpy()
           for images, _ in make_loader(dataset, batch_size, shuffle=False)]
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def ridge_solve(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Weights (features, outputs) of ridge regression on centred ``x`` and ``y``."""
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += alpha
    return np.linalg.solve(gram, x.T @ y)


def fit_ridge_probe(model: torch.nn.Module, train: RatedImages, test: RatedImages, spec: ModelSpec,
                    device: torch.device) -> dict:
    """Fit ``model.head.fc`` by ridge on frozen features; returns the chosen penalty and test RMSE per penalty.

    The head is fitted to ``spec.encode``d targets, so that a fine-tuning run with
    the same output mapping can start from it (linear probe, then fine-tune).
    """
    head = getattr(getattr(model, "head", None), "fc", None)
    if not isinstance(head, torch.nn.Linear) or not hasattr(model, "forward_features"):
        raise UsageError(f"ridge needs a model with forward_features and a linear head; "
                         f"{type(model).__name__} has not")
    x_train = dataset_features(model, train, spec, device).astype(np.float64)
    x_test = dataset_features(model, test, spec, device).astype(np.float64)
    y_train = spec.encode(train.targets).numpy().astype(np.float64)
    y_test = test.targets.numpy().astype(np.float64)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    z_train, z_test = (x_train - mean) / std, (x_test - mean) / std
    y_mean = y_train.mean(0)
    scores = {}
    for alpha in ALPHAS:
        w = ridge_solve(z_train, y_train - y_mean, alpha)
        predicted = spec.decode(torch.from_numpy(z_test @ w + y_mean)).numpy()
        scores[float(alpha)] = float(np.sqrt(np.mean((predicted - y_test) ** 2)))
    best = min(scores, key=scores.get)
    w = ridge_solve(z_train, y_train - y_mean, best) / std[:, None]
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w.T).float())
        head.bias.copy_(torch.from_numpy(y_mean - mean @ w).float())
    return {"alpha": best, "test_rmse": scores[best], "rmse_by_alpha": scores}
