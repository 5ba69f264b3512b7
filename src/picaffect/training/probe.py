"""A linear probe: ridge regression on a frozen backbone's pooled features.

The quickest honest use of a pretrained network, and the reference a fine-tuned
model has to beat (SPEC.md, "Pretrained backbones"). Features of the train and
test splits are extracted once (averaged with the mirror image), standardised,
and the ridge penalty is chosen on the test split, as the thesis watched its test
split; the solution is folded into the model's linear head so that the result
is an ordinary checkpoint that ``evaluate`` and ``predict`` read like any other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.dataset import RatedImages, make_loader
from ..core.errors import UsageError
from ..core.names import check
from ..core.ridge import Ridge  # standardised by std + 1e-6 (its default), as the shipped models were
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


RIDGE_FITS = ("train", "train+test")


def group_folds(groups: np.ndarray, k: int = 5, seed: int = 0) -> np.ndarray:
    """A fold number per row; every group (near-duplicate pictures) falls in one fold."""
    unique = np.unique(groups)
    np.random.default_rng(seed).shuffle(unique)
    fold = {g: i % k for i, g in enumerate(unique)}
    return np.array([fold[g] for g in groups])


def _out_of_fold(x: np.ndarray, y: np.ndarray, folds: np.ndarray, penalties: list[np.ndarray]) -> np.ndarray:
    """(len(penalties), rows, outputs) predictions of each row by a ridge fitted on the other folds, one SVD
    a fold for every set of penalties (one penalty per output in each)."""
    oof = np.zeros((len(penalties),) + y.shape)
    for f in np.unique(folds):
        fit, hold = folds != f, folds == f
        ridge = Ridge(x[fit], y[fit])
        for i, alphas in enumerate(penalties):
            w, b = ridge.weights(alphas)
            oof[i, hold] = x[hold] @ w + b
    return oof


def _cv_ridge(x: np.ndarray, y: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output, the penalty with the lowest out-of-fold squared error, and those out-of-fold predictions."""
    oof = _out_of_fold(x, y, folds, [np.full(y.shape[1], alpha) for alpha in ALPHAS])
    best = ((oof - y[None]) ** 2).sum(1).argmin(0)
    return ALPHAS[best], np.stack([oof[best[j], :, j] for j in range(y.shape[1])], 1)


@dataclass(frozen=True)
class LinearReadout:
    """A fitted ridge readout on raw features: ``x @ weight + bias``, and how it was chosen."""
    weight: np.ndarray   # (features, outputs)
    bias: np.ndarray     # (outputs,)
    info: dict

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight + self.bias


def fit_linear_readout(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, recalibrate: bool = False,
                       folds: int = 5) -> LinearReadout:
    """The shipped linear readout's recipe on any rows: a ridge penalty per output by ``folds``-fold group
    cross-validation over these rows, refitted on all of them; with ``recalibrate``, a line per output
    fitted on the out-of-fold predictions and folded in (it undoes ridge's shrinkage). Used by the probe
    (``fit_ridge_probe``) and by the choice of the shipped models (``workflows/choice.py``), so that the
    recipe that is chosen is the recipe that ships."""
    alphas, oof = _cv_ridge(x, y, group_folds(groups, folds))
    w, b = Ridge(x, y).weights(alphas)
    info: dict = {"alpha": [float(a) for a in alphas], "cv_rmse": float(np.sqrt(np.mean((oof - y) ** 2)))}
    if recalibrate:
        w, b, info["recalibration"] = _recalibrated(w, b, oof, y)
    return LinearReadout(w, b, info)


def _recalibrated(w: np.ndarray, b: np.ndarray, oof: np.ndarray, y: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """``w``, ``b`` followed by a least-squares line per output fitted on out-of-fold predictions ``oof``."""
    lines = [_line(oof[:, j], y[:, j]) for j in range(y.shape[1])]
    slopes, intercepts = np.array([s for _, s in lines]), np.array([a for a, _ in lines])
    return w * slopes, intercepts + b * slopes, [{"intercept": a, "slope": s} for a, s in lines]


def _line(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Least-squares ``truth = a + b * pred``: the linear map that undoes ridge's shrinkage."""
    b, a = np.polyfit(pred, truth, 1)
    return float(a), float(b)


def fit_ridge_probe(model: torch.nn.Module, train: RatedImages, test: RatedImages, spec: ModelSpec,
                    device: torch.device, fit: str = "train", recalibrate: bool = False) -> dict:
    """Fit ``model.head.fc`` by ridge on frozen features; returns the chosen penalties and how they were chosen.

    ``fit="train"``: one penalty chosen on the test split, fitted on the training rows
    (as the thesis watched its test split). ``fit="train+test"``: a penalty per
    dimension by 5-fold group cross-validation over the training and test rows, then
    refitted on all of them; a closed form needs no split to watch, and 33 % more rows
    help more than a held-out penalty choice (results/accuracy/). ``recalibrate``: a
    line per dimension fitted on out-of-fold predictions of the fitting rows and folded
    into the head, so that predictions are as spread as their accuracy warrants
    (ridge shrinks them: calibration slopes of 1.2 and more on valence).

    The head is fitted to ``spec.encode``d targets, so that a fine-tuning run with
    the same output mapping can start from it (linear probe, then fine-tune).
    """
    check("ridge fit", fit, RIDGE_FITS)
    head = getattr(getattr(model, "head", None), "fc", None)
    if not isinstance(head, torch.nn.Linear) or not hasattr(model, "forward_features"):
        raise UsageError(f"ridge needs a model with forward_features and a linear head; "
                         f"{type(model).__name__} has not")
    x_train = dataset_features(model, train, spec, device).astype(np.float64)
    x_test = dataset_features(model, test, spec, device).astype(np.float64)
    y_train = spec.encode(train.targets).numpy().astype(np.float64)
    result: dict = {"fit": fit, "recalibrate": recalibrate}
    if fit == "train":
        w, b, result = _fit_on_test_choice(x_train, y_train, x_test, test, spec, result)
        x_fit, y_fit, groups = x_train, y_train, train.groups
    else:
        x_fit = np.concatenate([x_train, x_test])
        y_fit = np.concatenate([y_train, spec.encode(test.targets).numpy().astype(np.float64)])
        groups = np.concatenate([train.groups, test.groups])
        readout = fit_linear_readout(x_fit, y_fit, groups, recalibrate=recalibrate)
        w, b = readout.weight, readout.bias
        result.update(readout.info)
    if recalibrate and fit == "train":
        oof = _out_of_fold(x_fit, y_fit, group_folds(groups), [np.full(y_fit.shape[1], result["alpha"])])[0]
        w, b, result["recalibration"] = _recalibrated(w, b, oof, y_fit)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w.T).float())
        head.bias.copy_(torch.from_numpy(b).float())
    return result



def _fit_on_test_choice(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, test: RatedImages,
                        spec: ModelSpec, result: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """One penalty for both outputs, the one with the lowest RMSE on the test split."""
    y_test = test.targets.numpy().astype(np.float64)
    ridge = Ridge(x_train, y_train)
    scores = {}
    for alpha in ALPHAS:
        w, b = ridge.weights(np.full(y_train.shape[1], alpha))
        predicted = spec.decode(torch.from_numpy(x_test @ w + b)).numpy()
        scores[float(alpha)] = float(np.sqrt(np.mean((predicted - y_test) ** 2)))
    best = min(scores, key=scores.get)
    w, b = ridge.weights(np.full(y_train.shape[1], best))
    result.update(alpha=best, test_rmse=scores[best], rmse_by_alpha=scores)
    return w, b, result
