"""A linear probe: ridge regression on a frozen backbone's pooled features.

The quickest honest use of a pretrained network, and the reference a fine-tuned
model has to beat (SPEC.md, "Pretrained backbones"). Features of the train and
test splits are extracted once (averaged with the mirror image), standardised,
and the ridge penalty is chosen on the test split, as the thesis watched its test
split; the solution is folded into the model's linear ``head`` so that the result
is an ordinary checkpoint that ``evaluate`` and ``predict`` read like any other.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import RatedImages, make_loader

ALPHAS = np.logspace(-1, 5, 25)


@torch.no_grad()
def pooled_features(model: torch.nn.Module, dataset: RatedImages, size: int, device: torch.device,
                    batch_size: int = 64) -> np.ndarray:
    from .engine import to_input

    model.eval()
    out = []
    for images, _ in make_loader(dataset, batch_size, shuffle=False):
        x = to_input(images, size, device)
        out.append(((model.features(x) + model.features(x.flip(-1))) / 2).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def ridge_solve(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Weights (features, outputs) of ridge regression on centred ``x`` and ``y``."""
    gram = x.T @ x
    gram[np.diag_indices_from(gram)] += alpha
    return np.linalg.solve(gram, x.T @ y)


def fit_probe(model: torch.nn.Module, train: RatedImages, test: RatedImages, size: int, device: torch.device,
              recipe) -> dict:
    """Fit ``model.head`` by ridge on frozen features; returns the chosen penalty and test RMSE per penalty.

    The head is fitted to ``recipe.encode``d targets, so that a fine-tuning run with
    the same target mapping can start from it (linear probe, then fine-tune).
    """
    if not (hasattr(model, "features") and isinstance(getattr(model, "head", None), torch.nn.Linear)):
        raise ValueError(f"the ridge recipe needs a model with features() and a linear head, such as "
                         f"efficientnet_lite0; {type(model).__name__} has not")
    x_train = pooled_features(model, train, size, device).astype(np.float64)
    x_test = pooled_features(model, test, size, device).astype(np.float64)
    y_train = recipe.encode(train.targets).numpy().astype(np.float64)
    y_test = test.targets.numpy().astype(np.float64)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    z_train, z_test = (x_train - mean) / std, (x_test - mean) / std
    y_mean = y_train.mean(0)
    scores = {}
    for alpha in ALPHAS:
        w = ridge_solve(z_train, y_train - y_mean, alpha)
        predicted = recipe.decode(torch.from_numpy(z_test @ w + y_mean)).numpy()
        scores[float(alpha)] = float(np.sqrt(np.mean((predicted - y_test) ** 2)))
    best = min(scores, key=scores.get)
    w = ridge_solve(z_train, y_train - y_mean, best) / std[:, None]
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(w.T).float())
        model.head.bias.copy_(torch.from_numpy(y_mean - mean @ w).float())
    return {"alpha": best, "test_rmse": scores[best], "rmse_by_alpha": scores}
