"""Noise ceilings: how well any model could correlate with a set's mean ratings.

A published mean rating is itself an estimate: ``N`` raters with spread ``SD``
leave it an error variance ``SD**2 / N``. Classical test theory then gives the
reliability of the means over a set of pictures as

    reliability = 1 - mean(SD**2 / N) / var(means)

(true-score variance over observed variance), and no model, however good, can
expect a Pearson r above ``sqrt(reliability)`` against those means. Reporting
that ceiling beside each r shows how far a model is from the best possible.

It is computed over exactly the pictures an r was computed on (a split, or one
source's rows of it), from the source's own SD and N on its native scale (the
ratio does not change under the linear rescaling to 1..9). Sources that publish
no SD or N (Emotion6) get no ceiling.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

DIMENSIONS = ("valence", "arousal")


def reliability(means: np.ndarray, sds: np.ndarray, ns: np.ndarray) -> float:
    """``1 - mean(SD^2 / N) / var(means)`` over the items with all three known; NaN with fewer than 3."""
    means, sds, ns = (np.asarray(a, dtype=np.float64) for a in (means, sds, ns))
    ok = np.isfinite(means) & np.isfinite(sds) & np.isfinite(ns) & (ns > 0)
    if ok.sum() < 3:
        return math.nan
    observed = means[ok].var(ddof=1)
    if observed <= 0:
        return math.nan
    return float(1.0 - np.mean(sds[ok] ** 2 / ns[ok]) / observed)


def ceiling(rel: float) -> float:
    """The largest Pearson r a model can expect against means of this reliability."""
    return math.sqrt(rel) if math.isfinite(rel) and rel > 0 else math.nan


def noise_ceilings(rows: pd.DataFrame) -> dict:
    """Per dimension ``{"reliability": .., "r_ceiling": .., "n": ..}`` for manifest rows of one source.

    Uses the native-scale ``<dim>_raw`` means with ``<dim>_sd`` and ``<dim>_n``; a
    dimension without SD or N gets NaN (written as null in JSON).
    """
    out = {}
    for dim in DIMENSIONS:
        cols = [f"{dim}_raw", f"{dim}_sd", f"{dim}_n"]
        if not set(cols) <= set(rows.columns):
            rel, n = math.nan, 0
        else:
            values = rows[cols].apply(pd.to_numeric, errors="coerce").to_numpy()
            n = int(np.isfinite(values).all(axis=1).sum())
            rel = reliability(values[:, 0], values[:, 1], values[:, 2])
        out[dim] = {"reliability": rel, "r_ceiling": ceiling(rel), "n": n}
    return out


def r_with_ceiling(r: float | None, block: dict | None) -> str:
    """``0.52 (≤ 0.995)``: a correlation with its ceiling beside it, for the reports."""
    text = "–" if r is None or (isinstance(r, float) and math.isnan(r)) else f"{r:.2f}"
    c = (block or {}).get("r_ceiling")
    if c is not None and not (isinstance(c, float) and math.isnan(c)):
        text += f" (≤ {c:.3f})"
    return text
