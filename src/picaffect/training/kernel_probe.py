"""An RBF kernel ridge readout on a frozen backbone's features (``ridge_readout: rbf``).

The linear ridge probe (``probe.py``) cannot bend: arousal is U-shaped in valence in
every rated set, and the features of pleasant and unpleasant pictures are not laid out
along one direction. Issue 17's readout search measured an RBF kernel ridge on the
first 256 principal components of the standardised features against the linear ridge
on the same mirror-averaged features of the ``accurate`` ensemble: validation valence r
0.777 against 0.748, arousal r 0.472 against 0.416, and better on every held-out source
(``results/accuracy/README.md``). That search's readout is this module's, so the
shipped model is the one measured.

Fitting: the features of the fitting rows (train, or train and test), averaged with
the mirror image, are standardised and projected on their leading components; the
bandwidth (one for both dimensions) and a penalty per dimension are chosen by 5-fold
group cross-validation, from one eigendecomposition of the kernel per bandwidth and
fold, and the ridge is refitted on every fitting row. The result is a
``KernelRidgeHead``: the model stays one checkpoint and one ONNX graph.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.errors import UsageError
from ..core.names import check
from ..core.ridge import offset_scale
from ..data.dataset import RatedImages
from ..inference.checkpoint import ModelSpec
from ..models.kernel_head import KernelRidgeHead
from .probe import RIDGE_FITS, dataset_features, group_folds

COMPONENTS = 256
GAMMAS = (0.25, 0.5, 1.0)           # RBF bandwidths, times 1 / (components x their mean variance)
ALPHAS = np.logspace(-3, 2, 11)     # penalties on the kernel's diagonal


class KernelRidge:
    """RBF kernel ridge on the leading principal components of standardised features: the projection once per
    fit, one eigendecomposition of the kernel per bandwidth, every penalty from it."""

    def __init__(self, x: np.ndarray, y: np.ndarray, components: int = COMPONENTS) -> None:
        self.mean, self.std, z = offset_scale(x)   # the linear probe's standardisation
        self.basis = np.linalg.svd(z, full_matrices=False)[2][:components].T
        self.z = z @ self.basis
        self.scale = 1.0 / (self.basis.shape[1] * self.z.var(0).mean())
        self.ym = y.mean(0)
        self.y = y - self.ym

    def set_bandwidth(self, gamma: float) -> "KernelRidge":
        self.gamma = gamma * self.scale
        self.evals, self.evecs = np.linalg.eigh(self.kernel(self.z))
        self.ety = self.evecs.T @ self.y
        return self

    def kernel(self, z: np.ndarray) -> np.ndarray:
        d = (z ** 2).sum(1)[:, None] + (self.z ** 2).sum(1)[None, :] - 2 * z @ self.z.T
        return np.exp(-self.gamma * np.maximum(d, 0))

    def dual(self, alphas) -> np.ndarray:
        """(support rows, outputs) coefficients of the kernel columns, one penalty per output."""
        return np.stack([self.evecs @ (self.ety[:, j] / (self.evals + a)) for j, a in enumerate(alphas)], 1)

    def predict(self, x: np.ndarray, alphas) -> np.ndarray:
        return self.kernel(((x - self.mean) / self.std) @ self.basis) @ self.dual(alphas) + self.ym


def fit_kernel_ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray, components: int = COMPONENTS,
                     folds: int = 5) -> tuple[KernelRidge, list[float], dict]:
    """Bandwidth and per-output penalty by ``folds``-fold group CV, then refitted on every row.

    Returns the fitted ridge (its bandwidth set), the penalties, and what was chosen with
    the cross-validated RMSE.
    """
    fold = group_folds(groups, folds)
    err = np.zeros((len(GAMMAS), len(ALPHAS), y.shape[1]))
    for f in np.unique(fold):
        model = KernelRidge(x[fold != f], y[fold != f], components)
        for g, gamma in enumerate(GAMMAS):
            model.set_bandwidth(gamma)
            for a, alpha in enumerate(ALPHAS):
                err[g, a] += ((model.predict(x[fold == f], [alpha] * y.shape[1]) - y[fold == f]) ** 2).sum(0)
    g = int(np.argmin(err.min(1).sum(1)))  # one bandwidth for both outputs
    best = [int(np.argmin(err[g, :, j])) for j in range(y.shape[1])]
    alphas = [float(ALPHAS[b]) for b in best]
    info = {"gamma": GAMMAS[g], "alpha": alphas,
            "cv_rmse": float(np.sqrt(sum(err[g, b, j] for j, b in enumerate(best)) / y.size))}
    return KernelRidge(x, y, components).set_bandwidth(GAMMAS[g]), alphas, info


def kernel_head(fitted: KernelRidge, alphas: list[float]) -> KernelRidgeHead:
    """The fitted ridge as a head: standardisation folded into the projection, the support in component space."""
    width, components = fitted.basis.shape
    head = KernelRidgeHead(width, len(fitted.z), components, len(alphas))
    return head.set_solution(mean=fitted.mean, projection=fitted.basis / fitted.std[:, None], support=fitted.z,
                             dual=fitted.dual(alphas), intercept=fitted.ym, gamma=fitted.gamma)


def fit_kernel_probe(model: torch.nn.Module, train: RatedImages, test: RatedImages, spec: ModelSpec,
                     device: torch.device, fit: str = "train+test", components: int = COMPONENTS) -> dict:
    """Fit an RBF kernel readout on ``model``'s frozen, mirror-averaged features and put it in as its head.

    ``fit`` says which rows it is fitted on (``"train"`` or ``"train+test"``); its
    bandwidth and penalties come from group cross-validation on those rows either way.
    Targets are ``spec.encode``d, as for the linear probe. Returns what was chosen.
    """
    check("ridge fit", fit, RIDGE_FITS)
    if not callable(getattr(model, "use_kernel_readout", None)):
        raise UsageError(f"an rbf readout is built for lite_ensemble; {type(model).__name__} takes a linear "
                         f"ridge only (ridge_readout: linear)")
    sets = [train] if fit == "train" else [train, test]
    x = np.concatenate([dataset_features(model, s, spec, device) for s in sets]).astype(np.float64)
    y = np.concatenate([spec.encode(s.targets).numpy() for s in sets]).astype(np.float64)
    groups = np.concatenate([s.groups for s in sets])
    if len(x) < 10:
        raise UsageError(f"an rbf readout needs at least 10 fitting rows for its cross-validation; {fit} has {len(x)}")
    fitted, alphas, info = fit_kernel_ridge(x, y, groups, components)
    model.use_kernel_readout(kernel_head(fitted, alphas))
    return {"fit": fit, "readout": "rbf", "components": int(fitted.basis.shape[1]), "support": int(len(x)), **info}
