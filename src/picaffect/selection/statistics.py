"""The statistics a methods section reports about chosen stimulus sets.

Per set and dimension: n, mean, SD, min and max. Per pair of sets and dimension:
Welch's t test (unequal variances; scipy.stats.ttest_ind) for the difference, and
for matched dimensions the two one-sided tests (TOST; Schuirmann 1987, Lakens
2017) of equivalence within +- the bound: the sets count as matched when both
one-sided Welch tests reject at ``alpha`` (p_TOST = the larger p). ``equivalent_from``
is the smallest bound for which they would: what to widen a failing bound to.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
from scipy import stats

from .request import DIMENSIONS


def describe(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, float)
    return {"n": int(len(values)), "mean": float(values.mean()), "sd": float(values.std(ddof=1)),
            "min": float(values.min()), "max": float(values.max())}


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """(t, df, p two-sided, standard error of the difference) of Welch's test of mean(b) - mean(a)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else float(len(a) + len(b) - 2)
    result = stats.ttest_ind(b, a, equal_var=False)
    return float(result.statistic), float(df), float(result.pvalue), se


def tost(a: np.ndarray, b: np.ndarray, bound: float, alpha: float = 0.05) -> dict[str, float]:
    """Equivalence of mean(b) - mean(a) within +-``bound`` by two one-sided Welch tests."""
    _, df, _, se = welch(a, b)
    diff = float(np.mean(b) - np.mean(a))
    if se == 0:
        p_lower = p_upper = 0.0 if abs(diff) < bound else 1.0
    else:
        p_lower = float(stats.t.sf((diff + bound) / se, df))    # H0: diff <= -bound
        p_upper = float(stats.t.cdf((diff - bound) / se, df))   # H0: diff >= +bound
    return {"bound": bound, "difference": diff, "df": df, "p_lower": p_lower, "p_upper": p_upper,
            "p": max(p_lower, p_upper), "equivalent_from": abs(diff) + float(stats.t.ppf(1 - alpha, df)) * se}


def set_statistics(values: list[np.ndarray], match: dict[str, float], alpha: float) -> dict:
    """``values[k]``: (N, 2) valence, arousal of set k. Returns per-set descriptions and pairwise tests."""
    out: dict = {"sets": [], "pairs": []}
    for k, v in enumerate(values, 1):
        out["sets"].append({"set": k, **{d: describe(v[:, j]) for j, d in enumerate(DIMENSIONS)}})
    for (i, a), (k, b) in combinations(list(enumerate(values, 1)), 2):
        pair: dict = {"sets": [i, k]}
        for j, dim in enumerate(DIMENSIONS):
            t, df, p, _ = welch(a[:, j], b[:, j])
            pair[dim] = {"difference": float(b[:, j].mean() - a[:, j].mean()), "welch_t": t, "df": df, "p": p}
            if dim in match:
                pair[dim]["tost"] = tost(a[:, j], b[:, j], match[dim], alpha)
        out["pairs"].append(pair)
    return out
