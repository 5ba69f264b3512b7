"""Fitting a calibration from held-out residuals, and measuring intervals: coverage and width.

The residuals must come from predictions of pictures the model was not fitted on,
grouped by source (``workflows/calibrate.py`` makes them, or reads them from any
protocol). Three steps, each honest about the source shift a new picture set brings:

1. **Error head.** A ridge regression from the pictures' pooled features to
   ``log(|residual| + 0.05)`` per dimension; ``exp`` of it is the picture's
   difficulty. The penalty is chosen leave one source out, by the criterion the
   intervals are judged on (mean width at 90 % coverage relative to a constant
   width of the same coverage); when no penalty beats the constant, the
   calibration is not adaptive (difficulty 1).
2. **Scores.** ``|residual| / difficulty``, with each row's difficulty from an
   error head fitted *without its source*: the final head never saw the new
   pictures it will be applied to, and cross-fitting keeps the calibration rows in
   the same position (in-sample difficulties would fit the residuals they are
   divided into and give too narrow intervals).
3. **Check.** The whole procedure repeated with one source held out at a time:
   calibrated on the others, measured on it (coverage, mean width, and the width
   of a constant interval with the coverage reached, chosen on the held-out rows
   themselves: an oracle the adaptive widths are compared with).

Pure numpy (scipy-free), so ``evaluate`` and the experiment reports can use it.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..core.names import DEFAULT_INTERVAL_SCHEME
from ..core.ridge import Ridge, StandardisedSVD, drop_constant
from ..inference.intervals import DIMENSIONS, Calibration, clip_to_scale

ALPHAS = np.logspace(0, 6, 13)
LOG_OFFSET = 0.05   # points on 1..9: keeps log|r| finite for (almost) exact predictions
LEVEL_FOR_FIT = 0.9
MIN_GAIN = 0.01     # the adaptive width must be at least 1 % below the constant one to be used


@dataclass
class ErrorHead:
    """difficulty = exp(features @ weight.T + bias), (N, 2); ``alpha`` per dimension (None: constant)."""
    weight: np.ndarray   # (2, width)
    bias: np.ndarray     # (2,)
    alphas: tuple

    @property
    def adaptive(self) -> bool:
        return any(a is not None for a in self.alphas)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(features, np.float64) @ self.weight.T + self.bias)


def ridge_path(x: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge on standardised ``x`` for every penalty at once (one SVD): weights (alphas, width) in the
    original units, intercepts (alphas,), and the standardisation (mean, std) used.

    Features that vary by less than 1e-4 of their size get weight 0 (``core.ridge.drop_constant``):
    standardising them would blow float32 rounding up into large, meaningless weights that the ONNX graph
    and torch then disagree on."""
    svd = _standardised_svd(x)
    w, b = Ridge.on(svd, y).path(alphas)
    return w, b, np.stack([svd.mean, svd.std])


_SVDS: dict[bytes, StandardisedSVD] = {}


def _standardised_svd(x: np.ndarray) -> StandardisedSVD:
    """The standardised SVD of the features, cached by content: the leave-one-source-out fits solve several
    targets (two dimensions, residuals and ratings) on the same rows, and the SVD is the cost."""
    key = hashlib.blake2b(np.ascontiguousarray(x).view(np.uint8), digest_size=16).digest() + repr(x.shape).encode()
    if key not in _SVDS:
        if len(_SVDS) >= 8:
            _SVDS.pop(next(iter(_SVDS)))
        _SVDS[key] = StandardisedSVD.of(x, drop_constant)
    return _SVDS[key]


def _width_ratio(abs_r: np.ndarray, sigma: np.ndarray, level: float = LEVEL_FOR_FIT) -> float:
    """Mean width of ``sigma``-scaled intervals over that of a constant one, both at ``level`` coverage
    on these rows (each chosen on them: a comparison of shapes, not a calibration)."""
    q = np.quantile(abs_r / sigma, level)
    return float(q * sigma.mean() / max(np.quantile(abs_r, level), 1e-12))


def fit_error_head(features: np.ndarray, residuals: np.ndarray, groups: np.ndarray,
                   alphas: np.ndarray = ALPHAS) -> tuple[ErrorHead, dict]:
    """The error head for (N, 2) ``residuals``, its penalty chosen leave one group (source) out.

    Returns the head fitted on every row and the selection record (mean width ratio per
    penalty and dimension). A dimension whose best ratio is not ``MIN_GAIN`` below 1 gets
    a constant difficulty (weights 0).
    """
    x = np.asarray(features, np.float64)
    abs_r = np.abs(np.asarray(residuals, np.float64))
    target = np.log(abs_r + LOG_OFFSET)
    groups = np.asarray(groups)
    names = list(dict.fromkeys(groups.tolist()))
    weight, bias, chosen, record = np.zeros((2, x.shape[1])), np.zeros(2), [], {}
    if len(names) < 2:
        raise ValueError("choosing the error head's penalty needs rows of at least two sources")
    for j, dim in enumerate(DIMENSIONS):
        ratios = np.zeros((len(names), len(alphas)))
        for g, name in enumerate(names):
            held = groups == name
            w, b, _ = ridge_path(x[~held], target[~held, j], alphas)
            log_sigma = x[held] @ w.T + b                                      # (rows, alphas)
            ratios[g] = [_width_ratio(abs_r[held, j], np.exp(log_sigma[:, a])) for a in range(len(alphas))]
        mean_ratio = ratios.mean(0)
        best = int(np.argmin(mean_ratio))
        record[dim] = {"alphas": [float(a) for a in alphas], "mean_width_ratio": [round(float(r), 4) for r in mean_ratio],
                       "chosen_alpha": None, "ratio_by_source": {}}
        if mean_ratio[best] <= 1 - MIN_GAIN:
            w, b, _ = ridge_path(x, target[:, j], alphas[best:best + 1])
            weight[j], bias[j] = w[0], b[0]
            chosen.append(float(alphas[best]))
            record[dim]["chosen_alpha"] = float(alphas[best])
            record[dim]["ratio_by_source"] = {n: round(float(ratios[g, best]), 4) for g, n in enumerate(names)}
        else:
            chosen.append(None)
    return ErrorHead(weight, bias, tuple(chosen)), record


def cross_fitted_difficulty(features: np.ndarray, residuals: np.ndarray, groups: np.ndarray,
                            head: ErrorHead) -> np.ndarray:
    """(N, 2) each row's difficulty from an error head with the chosen penalties fitted without its group."""
    x = np.asarray(features, np.float64)
    target = np.log(np.abs(np.asarray(residuals, np.float64)) + LOG_OFFSET)
    out = np.ones((len(x), 2))
    for j, alpha in enumerate(head.alphas):
        if alpha is None:
            continue
        for name in dict.fromkeys(np.asarray(groups).tolist()):
            held = np.asarray(groups) == name
            w, b, _ = ridge_path(x[~held], target[~held, j], np.array([alpha]))
            out[held, j] = np.exp(x[held] @ w[0] + b[0])
    return out


def fit_calibration(features: np.ndarray | None, residuals: np.ndarray, groups: np.ndarray,
                    info: dict | None = None, scheme: str = DEFAULT_INTERVAL_SCHEME
                    ) -> tuple[Calibration, ErrorHead | None, dict]:
    """A calibration (and the error head the model must carry, or None) from held-out residuals.

    ``features`` None: no error head can be fitted; the calibration is a constant width.
    ``scheme``: how the sources' errors become one width (``inference/intervals.py``).
    """
    residuals = np.asarray(residuals, np.float64)
    head, selection = None, {}
    if features is not None and len(set(np.asarray(groups).tolist())) >= 2:
        head, selection = fit_error_head(features, residuals, groups)
        if not head.adaptive:
            head = None
    if head is not None:
        # a dimension the head leaves constant has weights and bias 0: difficulty 1 here and at predict time
        errors = residuals / cross_fitted_difficulty(features, residuals, groups, head)
    else:
        errors = residuals
    groups = np.asarray(groups).astype(str)
    by_source = {name: {d: tuple(errors[groups == name, j].tolist()) for j, d in enumerate(DIMENSIONS)}
                 for name in dict.fromkeys(groups.tolist())}
    calibration = Calibration(errors=by_source, adaptive=head is not None, scheme=scheme,
                              info={**(info or {}), "error_head": selection})
    return calibration, head, selection


# -- measuring ----------------------------------------------------------------------------------------------------
def coverage_block(y: np.ndarray, yhat: np.ndarray, bounds: np.ndarray) -> dict:
    """Per dimension: the share of ratings inside their interval, the mean width, and the mean width of a
    constant interval (prediction +- c, clipped to 1..9) whose c gives the same coverage on these rows."""
    y, yhat, bounds = (np.asarray(a, np.float64) for a in (y, yhat, bounds))
    out = {"n": int(len(y))}
    for j, dim in enumerate(DIMENSIONS):
        low, high = bounds[:, 2 * j], bounds[:, 2 * j + 1]
        inside = (y[:, j] >= low - 1e-9) & (y[:, j] <= high + 1e-9)
        coverage = float(inside.mean()) if len(y) else float("nan")
        width = float((high - low).mean()) if len(y) else float("nan")
        out[dim] = {"coverage": coverage, "mean_width": width,
                    "constant_width_same_coverage": constant_width(y[:, j], yhat[:, j], coverage)}
        const = out[dim]["constant_width_same_coverage"]
        out[dim]["width_vs_constant"] = width / const if const and np.isfinite(const) and const > 0 else None
    return out


def constant_width(y: np.ndarray, yhat: np.ndarray, coverage: float) -> float:
    """Mean width (clipped to 1..9) of prediction +- c, with c the smallest giving ``coverage`` on these rows."""
    if not len(y) or not np.isfinite(coverage):
        return float("nan")
    abs_r = np.sort(np.abs(y - yhat))
    k = int(np.ceil(coverage * len(abs_r)))
    c = abs_r[k - 1] if k >= 1 else 0.0
    low, high = clip_to_scale(yhat - c, yhat + c)
    return float((high - low).mean())


def held_out_calibrations(y: np.ndarray, yhat: np.ndarray, sources: np.ndarray, features: np.ndarray | None,
                          scheme: str = DEFAULT_INTERVAL_SCHEME
                          ) -> Iterator[tuple[str, np.ndarray, Calibration, np.ndarray | None]]:
    """For each source in turn: its name, its rows (a mask), the calibration fitted on the other sources'
    residuals, and the error head's difficulty on its rows (None for a constant width). An error head needs
    at least two calibration sources (its penalty is chosen leaving one of them out)."""
    for name in dict.fromkeys(sources.tolist()):
        held = sources == name
        feats = features[~held] if features is not None and len(set(sources[~held].tolist())) >= 2 else None
        calibration, head, _ = fit_calibration(feats, y[~held] - yhat[~held], sources[~held], scheme=scheme)
        yield name, held, calibration, (head(features[held]) if head is not None else None)


def leave_one_source_out_check(y: np.ndarray, yhat: np.ndarray, sources: np.ndarray,
                               features: np.ndarray | None, levels: tuple[float, ...] = (0.8, 0.9, 0.95),
                               scheme: str = DEFAULT_INTERVAL_SCHEME) -> dict:
    """Calibrate on all sources but one, measure on that one, for each source in turn (needs >= 3 sources
    for an adaptive head, since its penalty is itself chosen leaving one of the remaining sources out).

    Returns {source: {level: coverage_block}}, plus the plain (constant-width, pooled)
    conformal interval's block under ``"constant"`` for the same calibration rows.
    """
    y, yhat, sources = np.asarray(y, np.float64), np.asarray(yhat, np.float64), np.asarray(sources)
    out: dict = {}
    for name, held, calibration, difficulty in held_out_calibrations(y, yhat, sources, features, scheme):
        plain, _, _ = fit_calibration(None, y[~held] - yhat[~held], sources[~held], scheme="pooled")
        block: dict = {"n": int(held.sum()), "adaptive": calibration.adaptive, "scheme": scheme, "levels": {}}
        for level in levels:
            block["levels"][str(level)] = {
                "intervals": coverage_block(y[held], yhat[held], calibration.bounds(yhat[held], difficulty, level)),
                "constant": coverage_block(y[held], yhat[held], plain.bounds(yhat[held], None, level))}
        out[name] = block
    return out


def summary_rows(check: dict, level: float = 0.9) -> list[dict]:
    """One row per held-out source and dimension: coverage and widths at ``level``, for tables."""
    rows = []
    for source, block in check.items():
        at = block["levels"][str(level)]
        for dim in DIMENSIONS:
            a, c = at["intervals"][dim], at["constant"][dim]
            rows.append({"source": source, "n": block["n"], "dimension": dim, "coverage": a["coverage"],
                         "mean_width": a["mean_width"], "constant_same_coverage": a["constant_width_same_coverage"],
                         "width_vs_constant": a["width_vs_constant"], "plain_conformal_coverage": c["coverage"],
                         "plain_conformal_width": c["mean_width"]})
    return rows

