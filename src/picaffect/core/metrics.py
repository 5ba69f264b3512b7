"""The figures SPEC.md ("Definitions we fix") asks every evaluation to report.

Plain numpy, no framework: a prediction file and its labels are enough to
recompute any number in a report.

The single-metric functions pool every element they are given, so passing the
(N, 2) valence/arousal arrays gives the "overall" figure the way Keras computed
the thesis's table 8.1; pass one column for a per-dimension figure.
Undefined values (an empty set, Pearson r of a constant) come back as NaN rather
than an exception, so that one degenerate split never sinks a whole report.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike

from .scale import SAM, Scale

__all__ = [
    "rmse",
    "mae",
    "pcc",
    "ccc",
    "calibration_slope",
    "sagr",
    "majority_sign",
    "sagr_majority",
    "rmse_mean_baseline",
    "bootstrap_ci",
    "summarize",
]

Metric = Callable[[np.ndarray, np.ndarray], float]

# Elements (items x values per item) drawn per bootstrap chunk: bounds memory for
# large N while keeping the draw sequence a function of (N, n_boot, seed) only.
_CHUNK_ELEMENTS = 2_000_000


# --------------------------------------------------------------------------- checks

def _as_float(a: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name} contains {bad} NaN/infinite value(s) out of {arr.size}")
    return arr


def _pair(y: ArrayLike, yhat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both sides as float arrays of one shape, finite; else a ValueError naming the problem."""
    y_arr, yhat_arr = np.asarray(y, dtype=float), np.asarray(yhat, dtype=float)
    if y_arr.shape != yhat_arr.shape:
        raise ValueError(f"y and yhat differ in shape: y {y_arr.shape}, yhat {yhat_arr.shape}")
    return _as_float(y_arr, "y"), _as_float(yhat_arr, "yhat")


# --------------------------------------------------------- row-wise (batched) kernels
# Each takes (B, K) arrays and returns B values, one per row; the public metrics are
# these kernels on a single row, and bootstrap_ci calls them on many rows at once.

def _rmse_rows(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    if y.shape[1] == 0:
        return np.full(y.shape[0], np.nan)
    return np.sqrt(np.mean((y - yhat) ** 2, axis=1))


def _mae_rows(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    if y.shape[1] == 0:
        return np.full(y.shape[0], np.nan)
    return np.mean(np.abs(y - yhat), axis=1)


def _moments(y: np.ndarray, yhat: np.ndarray):
    """Means, population variances and covariance per row; a constant row gets variance exactly 0.

    (Float rounding would otherwise leave a constant row with a variance of 1e-34
    and a meaningless correlation.)
    """
    my, mh = y.mean(axis=1), yhat.mean(axis=1)
    dy, dh = y - my[:, None], yhat - mh[:, None]
    vy, vh = np.mean(dy * dy, axis=1), np.mean(dh * dh, axis=1)
    cov = np.mean(dy * dh, axis=1)
    const_y = np.ptp(y, axis=1) == 0
    const_h = np.ptp(yhat, axis=1) == 0
    vy[const_y] = 0.0
    vh[const_h] = 0.0
    cov[const_y | const_h] = 0.0
    return my, mh, vy, vh, cov, const_y | const_h


def _pcc_rows(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    if y.shape[1] < 2:
        return np.full(y.shape[0], np.nan)
    _, _, vy, vh, cov, constant = _moments(y, yhat)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vy * vh)
    r = np.clip(r, -1.0, 1.0)
    r[constant] = np.nan
    return r


def _ccc_rows(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    if y.shape[1] == 0:
        return np.full(y.shape[0], np.nan)
    my, mh, vy, vh, cov, _ = _moments(y, yhat)
    denom = vy + vh + (my - mh) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(denom > 0, 2.0 * cov / np.where(denom > 0, denom, 1.0), np.nan)
    return np.clip(c, -1.0, 1.0)


def _slope_rows(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """Least-squares slope of y on yhat: cov(y, yhat) / var(yhat)."""
    if y.shape[1] < 2:
        return np.full(y.shape[0], np.nan)
    _, _, _, vh, cov, _ = _moments(y, yhat)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(vh > 0, cov / np.where(vh > 0, vh, 1.0), np.nan)


def _sagr_rows(y: np.ndarray, yhat: np.ndarray, midpoint: float = 5.0) -> np.ndarray:
    if y.shape[1] == 0:
        return np.full(y.shape[0], np.nan)
    return np.mean(np.sign(y - midpoint) == np.sign(yhat - midpoint), axis=1)


def _one(kernel, y: ArrayLike, yhat: ArrayLike, **kw) -> float:
    y_arr, yhat_arr = _pair(y, yhat)
    return float(kernel(y_arr.reshape(1, -1), yhat_arr.reshape(1, -1), **kw)[0])


# ------------------------------------------------------------------- public metrics

def rmse(y: ArrayLike, yhat: ArrayLike) -> float:
    """Root mean squared error, in scale units (1..9): the thesis's headline figure."""
    return _one(_rmse_rows, y, yhat)


def mae(y: ArrayLike, yhat: ArrayLike) -> float:
    """Mean absolute error: like RMSE but not dominated by a few large misses."""
    return _one(_mae_rows, y, yhat)


def pcc(y: ArrayLike, yhat: ArrayLike) -> float:
    """Pearson r: does the prediction rank and track the labels, whatever its offset and scale.

    NaN when either side is constant or there are fewer than two values (r is undefined).
    """
    return _one(_pcc_rows, y, yhat)


def ccc(y: ArrayLike, yhat: ArrayLike) -> float:
    """Lin's concordance, ``2 cov / (var_y + var_yhat + (mean_y - mean_yhat)^2)``, population moments.

    Unlike Pearson r it penalises offset and scale, so a prediction that is always
    the mean scores 0. NaN when the denominator is 0 (both sides one identical constant).
    """
    return _one(_ccc_rows, y, yhat)


def calibration_slope(y: ArrayLike, yhat: ArrayLike) -> float:
    """The slope of the ratings regressed on the predictions, ``cov(y, yhat) / var(yhat)``.

    1 is calibrated: a prediction one point above another means, on average, a rating
    one point higher. Below 1 the predictions spread more than their accuracy warrants
    (over-confident); above 1 they are shrunk towards the mean, as a least-squares fit
    with a penalty is. NaN when the predictions are constant or fewer than two.
    """
    return _one(_slope_rows, y, yhat)


def sagr(y: ArrayLike, yhat: ArrayLike, midpoint: float = 5.0) -> float:
    """Sign agreement (Nicolaou et al. 2011): share of items on the same side of the midpoint.

    ``mean(sign(y - m) == sign(yhat - m))`` with ``sign(0) = 0``, so a label exactly at
    the midpoint agrees only with a prediction exactly at the midpoint. It says whether
    the model gets pleasant vs unpleasant (calm vs excited) right, which RMSE hides.
    """
    return _one(_sagr_rows, y, yhat, midpoint=float(midpoint))


def majority_sign(train_y: ArrayLike, midpoint: float = 5.0) -> float:
    """The commonest of sign(train_y - m) in {-1, 0, +1}; NaN when train_y is empty.

    Ties are broken towards +1, then -1, then 0: +1 because the brief fixes it, and
    0 last because a midpoint prediction is the least informative guess.
    """
    t = _as_float(train_y, "train_y").ravel()
    if t.size == 0:
        return float("nan")
    s = np.sign(t - midpoint)
    counts = {+1.0: int(np.sum(s > 0)), -1.0: int(np.sum(s < 0)), 0.0: int(np.sum(s == 0))}
    return max(counts, key=lambda k: counts[k])  # dict order = tie preference: +1, -1, 0


def sagr_majority(y: ArrayLike, train_y: ArrayLike, midpoint: float = 5.0) -> float:
    """SAGR of predicting, for every item, the commonest sign of the training labels.

    The floor SAGR must beat: on a set that is mostly pleasant, "always pleasant"
    already scores high. See :func:`majority_sign` for ties (they go to +1).
    With (N, k) ``y`` and (M, k) ``train_y`` each column gets its own training
    majority and the agreements are pooled. NaN when y or train_y is empty.
    """
    y_arr, t = _as_float(y, "y"), _as_float(train_y, "train_y")
    if y_arr.ndim == 2 and t.ndim == 2:  # one sign per column (dimension), agreements pooled
        signs = np.array([majority_sign(t[:, j], midpoint) for j in range(t.shape[1])])
    else:
        y_arr, signs = y_arr.ravel(), np.array(majority_sign(t, midpoint))
    if y_arr.size == 0 or np.isnan(signs).any():
        return float("nan")
    return float(np.mean(np.sign(y_arr - midpoint) == signs))


def rmse_mean_baseline(y: ArrayLike, train_mean: float) -> float:
    """RMSE of predicting the training mean for every item: what the model has to beat.

    ``train_mean`` may also be an array broadcastable to ``y`` (e.g. per-dimension means).
    """
    y_arr = _as_float(y, "y")
    pred = np.broadcast_to(_as_float(train_mean, "train_mean"), y_arr.shape)
    return rmse(y_arr, pred)


# ------------------------------------------------------------------------ bootstrap

_BATCHED: dict[Callable, Callable] = {
    rmse: _rmse_rows,
    mae: _mae_rows,
    pcc: _pcc_rows,
    ccc: _ccc_rows,
    calibration_slope: _slope_rows,
    sagr: _sagr_rows,
}


def _batched(fn: Callable) -> Callable | None:
    """The row-wise kernel for one of this module's metrics, also behind ``functools.partial``
    with keyword arguments (``partial(sagr, midpoint=4)``); None for any other function."""
    if isinstance(fn, partial) and not fn.args and fn.func in _BATCHED:
        return partial(_BATCHED[fn.func], **(fn.keywords or {}))
    return _BATCHED.get(fn)


def _resample_indices(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap index rows in chunks; the draws depend only on (n, n_boot, seed).

    Because of that, intervals for different metrics on the same items come from the
    same resamples.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def bootstrap_ci(
    fn: Metric,
    y: ArrayLike,
    yhat: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval for ``fn(y, yhat)``, resampling items (rows of y) with replacement.

    A test set of a few hundred pictures gives noisy figures; the interval shows how
    much. Seeded (numpy ``default_rng(seed)``) so reports are reproducible. The
    metrics of this module, also as ``functools.partial(sagr, midpoint=m)``, run
    batched (1000 resamples of 1000 items in about 0.1 s); any other ``fn`` taking
    (y, yhat) is called once per resample. Resamples on which the
    metric is undefined (NaN) are left out; (NaN, NaN) when all are, or N = 0.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    y_arr, yhat_arr = _pair(y, yhat)
    n = y_arr.shape[0] if y_arr.ndim else 0
    if n == 0:
        return float("nan"), float("nan")
    kernel = _batched(fn)
    stats = []
    for idx in _resample_indices(n, n_boot, seed):
        if kernel is not None:
            b = idx.shape[0]
            stats.append(kernel(y_arr[idx].reshape(b, -1), yhat_arr[idx].reshape(b, -1)))
        else:
            stats.append(np.array([fn(y_arr[i], yhat_arr[i]) for i in idx], dtype=float))
    values = np.concatenate(stats)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


# ------------------------------------------------------------------------ summarize

_CI_METRICS = ("rmse", "pcc", "ccc", "slope", "sagr")


def _as_pairs(a: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=float)
    if arr.size == 0 and arr.ndim == 1:
        arr = arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) = (valence, arousal), got {arr.shape}")
    return arr


def summarize(
    y: ArrayLike,
    yhat: ArrayLike,
    *,
    train_y: ArrayLike | None = None,
    scale: Scale = SAM,
    ci: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Every figure SPEC.md asks for, per dimension and pooled, as a JSON-ready dict.

    ``y``, ``yhat``: (N, 2) = (valence, arousal) on ``scale`` (its midpoint is SAGR's).
    Returns ``{"n": N, "valence": {...}, "arousal": {...}, "overall": {...}}``; each block
    holds rmse, mae, pcc, ccc, slope (``calibration_slope``: ratings regressed on predictions),
    sagr; with ``train_y`` (M, 2) also sagr_majority and rmse_mean_baseline; with ``ci`` a
    "ci95" dict of [low, high] for rmse, pcc, ccc, slope, sagr.

    "overall" pools both dimensions (flattened arrays), as Keras computed the
    thesis's table 8.1. Its baselines pool the per-dimension baseline predictions:
    each column is predicted by that dimension's training mean (majority sign), and
    the errors (agreements) of both columns are pooled. Overall intervals resample
    items, i.e. (valence, arousal) pairs together.
    """
    y_arr, yhat_arr = _as_pairs(y, "y"), _as_pairs(yhat, "yhat")
    if y_arr.shape != yhat_arr.shape:
        raise ValueError(f"y and yhat differ in shape: y {y_arr.shape}, yhat {yhat_arr.shape}")
    y_arr, yhat_arr = _as_float(y_arr, "y"), _as_float(yhat_arr, "yhat")
    train = None if train_y is None else _as_float(_as_pairs(train_y, "train_y"), "train_y")
    m = float(scale.midpoint)

    def block(a: np.ndarray, b: np.ndarray, cols: list[int]) -> dict:
        out = {
            "rmse": rmse(a, b),
            "mae": mae(a, b),
            "pcc": pcc(a, b),
            "ccc": ccc(a, b),
            "slope": calibration_slope(a, b),
            "sagr": sagr(a, b, midpoint=m),
        }
        if train is not None:
            t, a2 = train[:, cols], a.reshape(-1, len(cols))
            out["sagr_majority"] = sagr_majority(a2, t, m)
            out["rmse_mean_baseline"] = rmse_mean_baseline(a2, t.mean(axis=0)) if t.shape[0] else float("nan")
        if ci:
            fns = {"rmse": rmse, "pcc": pcc, "ccc": ccc, "slope": calibration_slope, "sagr": partial(sagr, midpoint=m)}
            ci95 = {}
            for name in _CI_METRICS:
                low, high = bootstrap_ci(fns[name], a, b, n_boot=n_boot, seed=seed)
                ci95[name] = [low, high]
            out["ci95"] = ci95
        return {k: (v if isinstance(v, dict) else float(v)) for k, v in out.items()}

    return {
        "n": int(y_arr.shape[0]),
        "valence": block(y_arr[:, 0], yhat_arr[:, 0], [0]),
        "arousal": block(y_arr[:, 1], yhat_arr[:, 1], [1]),
        "overall": block(y_arr, yhat_arr, [0, 1]),
    }
