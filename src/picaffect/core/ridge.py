"""Ridge regression on standardised features: the one solver the probe, the error head and the research share.

Every ridge in the project is the same closed form, ``w = V diag(s / (s² + a)) Uᵀ (y - ȳ)`` on the SVD
``U diag(s) Vᵀ`` of the standardised features, mapped back to raw units. One SVD serves every penalty and
every target column, which is what makes choosing penalties by cross-validation cheap. It lives in ``core``
because both ``training`` (the linear probe) and ``evaluation`` (the interval's error head) need it and
evaluation may not import training.

Two standardisations are in use and each caller keeps its own, because the shipped models' numbers were made
with them and are checked against their make targets:

- ``offset_scale``: divide by the standard deviation + 1e-6 (the linear probe, ``training/probe.py``);
- ``drop_constant``: columns that hardly vary get weight 0 (the error head, ``evaluation/conformal.py``), so
  that float32 rounding in a near-constant feature is not blown up into large weights that the ONNX graph
  and torch disagree on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Standardisation = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""``x`` -> (mean, std, z): the column means and scales, and the standardised features the SVD is taken of."""


def offset_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise by mean and standard deviation + 1e-6 (a constant column becomes 0 and stays finite)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    return mean, std, (x - mean) / std


def drop_constant(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise the columns that vary by more than 1e-4 of their size; the others become 0 (scale 1).

    The bound sits well above float32 rounding (1e-7 relative): a feature that only varies by rounding
    carries no signal, and standardising it would turn the rounding into large, meaningless weights."""
    mean, spread = x.mean(0), x.std(0)
    keep = spread > 1e-4 * np.abs(mean) + 1e-9
    std = np.where(keep, spread, 1.0)
    return mean, std, np.where(keep, (x - mean) / std, 0.0)


@dataclass(frozen=True)
class StandardisedSVD:
    """The standardisation and thin SVD of one feature matrix: the costly part of a ridge fit, shared by
    every target and penalty solved on the same rows (``conformal`` caches it across targets)."""
    mean: np.ndarray   # (width,)
    std: np.ndarray    # (width,)
    u: np.ndarray      # (rows, rank)
    s: np.ndarray      # (rank,)
    vt: np.ndarray     # (rank, width)

    @classmethod
    def of(cls, x: np.ndarray, standardise: Standardisation = offset_scale) -> "StandardisedSVD":
        mean, std, z = standardise(x)
        return cls(mean, std, *np.linalg.svd(z, full_matrices=False))


class Ridge:
    """Ridge of ``y`` (rows,) or (rows, outputs) on standardised ``x``; weights and intercepts in raw units.

    ``weights`` solves one penalty per output column (the probe's per-dimension choice); ``path`` solves
    every penalty of a list for a one-column ``y`` (the error head's penalty search). The intercept is the
    mean of ``y`` less the weighted feature means, so ``x @ w + b`` predicts on raw features."""

    def __init__(self, x: np.ndarray, y: np.ndarray, standardise: Standardisation = offset_scale) -> None:
        self._solve(StandardisedSVD.of(x, standardise), y)

    @classmethod
    def on(cls, svd: StandardisedSVD, y: np.ndarray) -> "Ridge":
        """A ridge of ``y`` on rows whose standardised SVD is already known."""
        ridge = cls.__new__(cls)
        ridge._solve(svd, y)
        return ridge

    def _solve(self, svd: StandardisedSVD, y: np.ndarray) -> None:
        self.mean, self.std, self.s, self.vt = svd.mean, svd.std, svd.s, svd.vt
        self.y_mean = y.mean(0)
        self.uty = svd.u.T @ (y - self.y_mean)

    def weights(self, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(features, outputs) weights on raw features and the (outputs,) intercepts, ``alphas[j]`` the
        penalty of output j."""
        w = np.stack([self.vt.T @ (self.s / (self.s ** 2 + a) * self.uty[:, j]) for j, a in enumerate(alphas)], 1)
        w = w / self.std[:, None]
        return w, self.y_mean - self.mean @ w

    def path(self, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(penalties, features) weights on raw features and (penalties,) intercepts of a one-column ``y``,
        one row per penalty of ``alphas``."""
        if self.uty.ndim != 1:
            raise ValueError("a ridge path solves one target column; use weights for several")
        shrink = self.s[None, :] / (self.s[None, :] ** 2 + alphas[:, None])   # (penalties, rank)
        w = (shrink * self.uty[None, :]) @ self.vt / self.std[None, :]        # (penalties, width)
        return w, self.y_mean - w @ self.mean
