"""The statistics a methods section reports about chosen stimulus sets.

Per set and numeric column: n, mean, SD, min and max. Per pair of sets and column:
Welch's t test (unequal variances) for the difference, and for matched columns the
two one-sided tests (TOST; Schuirmann 1987, Lakens 2017) of equivalence within +- the
bound: the sets count as matched when both one-sided Welch tests reject at ``alpha``
(p_TOST = the larger p). ``equivalent_from`` is the smallest bound for which they
would: what to widen a failing bound to. For columns whose SDs are matched too, the
SDs' difference and ratio and the Brown-Forsythe test of equal variances (Levene's test
about the medians; Brown & Forsythe 1974). Per categorical column (balanced ones, and
the source): the count of each level in each set, with a chi-squared test of
independence where it is defined.

Sets with no spread are valid answers, not errors: two sets of identical values have
Welch t 0 and p 1; two constant sets of different values have no t (null) and p 0.

With more than ``MAX_PAIRS_SETS`` sets the pairs listed are the consecutive ones (what
``--differ`` constrains); the TOST over every pair is still computed, at once for all of
them (``all_pairs_worst_tost``), and its worst pair reported.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import numpy as np
from scipy import stats

from .request import DIMENSIONS

MAX_PAIRS_SETS = 12  # more sets than this: consecutive pairs listed, every pair's TOST computed in one pass


def describe(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, float)
    return {"n": int(len(values)), "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max())}


def welch(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float, float, float]:
    """(t, df, p two-sided, standard error of the difference) of Welch's test of mean(b) - mean(a); t is None
    when neither set varies and their means differ (the difference is then certain: p 0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    diff = float(b.mean() - a.mean())
    if se == 0:
        df = float(len(a) + len(b) - 2)
        return (0.0, df, 1.0, 0.0) if diff == 0 else (None, df, 0.0, 0.0)
    df = (va + vb) ** 2 / ((va ** 2 / (len(a) - 1) if va else 0.0) + (vb ** 2 / (len(b) - 1) if vb else 0.0))
    t = diff / se
    return float(t), float(df), float(2 * stats.t.sf(abs(t), df)), se


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


def spread_comparison(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    """SD(b) - SD(a), SD(b) / SD(a) (None when SD(a) is 0) and the Brown-Forsythe test's p."""
    sa, sb = float(np.std(a, ddof=1)), float(np.std(b, ddof=1))
    if sa == 0 and sb == 0:
        p = 1.0
    else:
        p = float(stats.levene(a, b, center="median").pvalue)
        p = 0.0 if math.isnan(p) else p  # one set constant, the other's values all off its median
    return {"sd_difference": sb - sa, "sd_ratio": sb / sa if sa else None, "brown_forsythe_p": p}


def counts(levels: Sequence[np.ndarray]) -> dict:
    """Per set, the count of each level (levels in order of first appearance), and the chi-squared test of
    independence of level and set (None with one level or one set)."""
    order = list(dict.fromkeys(str(v) for values in levels for v in values))
    table = np.array([[int(np.sum(np.asarray(values, str) == level)) for level in order] for values in levels])
    out: dict = {"levels": order, "per_set": table.tolist()}
    if table.shape[0] > 1 and table.shape[1] > 1:
        chi2, p, dof, _ = stats.chi2_contingency(table)
        out["chi2"] = {"statistic": float(chi2), "df": int(dof), "p": float(p)}
    else:
        out["chi2"] = None
    return out


def all_pairs_worst_tost(values: list[np.ndarray], match: dict[str, float], alpha: float,
                         columns: Sequence[str]) -> dict[str, dict]:
    """Per matched column, the largest TOST p over every pair of sets and the pair (1-based), computed at once
    from the sets' means and variances (the same tests as ``tost``)."""
    out = {}
    i, k = np.triu_indices(len(values), 1)
    n = np.array([len(v) for v in values], float)
    for dim, bound in match.items():
        j = list(columns).index(dim)
        mean = np.array([v[:, j].mean() for v in values])
        var = np.array([v[:, j].var(ddof=1) for v in values]) / n
        diff, va, vb = mean[k] - mean[i], var[i], var[k]
        se = np.sqrt(va + vb)
        with np.errstate(divide="ignore", invalid="ignore"):
            parts = np.where(va > 0, va ** 2 / (n[i] - 1), 0) + np.where(vb > 0, vb ** 2 / (n[k] - 1), 0)
            df = (va + vb) ** 2 / parts
            p = np.maximum(stats.t.sf((diff + bound) / se, df), stats.t.cdf((diff - bound) / se, df))
        p = np.where(se > 0, p, np.where(np.abs(diff) < bound, 0.0, 1.0))
        worst = int(np.argmax(p))
        out[dim] = {"p": float(p[worst]), "sets": [int(i[worst]) + 1, int(k[worst]) + 1], "bound": bound,
                    "difference": float(diff[worst])}
    return out


def set_statistics(values: list[np.ndarray], match: dict[str, float], alpha: float,
                   columns: Sequence[str] = DIMENSIONS, sd: Sequence[str] = ()) -> dict:
    """``values[k]``: (N, C) the ``columns`` of set k. Returns per-set descriptions and pairwise tests: Welch
    for every column, TOST for the ``match`` columns (column -> bound), the SDs' comparison for ``sd`` ones."""
    out: dict = {"sets": [], "pairs": []}
    for k, v in enumerate(values, 1):
        out["sets"].append({"set": k, **{d: describe(v[:, j]) for j, d in enumerate(columns)}})
    numbered = list(enumerate(values, 1))
    if len(values) > MAX_PAIRS_SETS:
        pairs = list(zip(numbered, numbered[1:]))
        if match:
            out["worst_tost"] = all_pairs_worst_tost(values, match, alpha, columns)
    else:
        pairs = list(combinations(numbered, 2))
    for (i, a), (k, b) in pairs:
        pair: dict = {"sets": [i, k]}
        for j, dim in enumerate(columns):
            t, df, p, _ = welch(a[:, j], b[:, j])
            pair[dim] = {"difference": float(b[:, j].mean() - a[:, j].mean()), "welch_t": t, "df": df, "p": p}
            if dim in match:
                pair[dim]["tost"] = tost(a[:, j], b[:, j], match[dim], alpha)
            if dim in sd:
                pair[dim]["spread"] = spread_comparison(a[:, j], b[:, j])
        out["pairs"].append(pair)
    return out


def worst_tost_p(statistics: dict) -> float:
    """The largest TOST p over every pair of sets and matched column (0 when nothing is matched)."""
    ps = [d["tost"]["p"] for pair in statistics["pairs"] for d in pair.values()
          if isinstance(d, dict) and "tost" in d]
    ps += [w["p"] for w in statistics.get("worst_tost", {}).values()]
    return max(ps) if ps else 0.0
