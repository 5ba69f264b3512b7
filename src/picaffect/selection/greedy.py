"""A quick start before the solver: sets picked from sorted windows of the pool, in milliseconds at any size.

When nothing is to be optimised (no matched column, no ``--prefer-sure``), any sets that
meet the constraints are as good as any other, and these are returned without building a
programme: on a large pool the solver could spend its whole time limit, or more memory
than the machine has, on a request that a sort answers (two sets of 40 that differ by 3
points on 20,000 pictures). Otherwise they are the answer to fall back on when the
solver finds nothing better within the time limit.

How: the set composition first. With ``--balance``, every set gets the same count of each
level (of the levels of all balanced columns together), in proportion to how many
pictures of the level the sets can share out, within what each set's ranges allow. Then
set 1 takes, level by level, the pictures lowest on the ``differ`` column, set K the
highest, and the sets between those nearest to evenly spaced targets between them; within
a window of the sorted pictures (``widths``: 1, 2, 3, 5 and 8 times the count wanted),
the ones nearest the matched centre are preferred. Each candidate is checked against
every constraint (``violations``); the first that meets them all is kept.
"""
from __future__ import annotations

import numpy as np

from .optimise import Problem, picture_costs
from .request import Selection
from .statistics import set_statistics, worst_tost_p

WINDOWS = (1, 2, 3, 5, 8)


def combined_levels(problem: Problem) -> np.ndarray:
    """(M,) one code per combination of the balanced columns' levels (all 0 without --balance)."""
    codes = np.zeros(len(problem.values), np.int64)
    for level in problem.levels.values():
        codes = codes * (int(level.max()) + 1 if len(level) else 1) + level
    return np.unique(codes, return_inverse=True)[1]


def composition(problem: Problem, codes: np.ndarray) -> np.ndarray | None:
    """Per level, how many pictures of it every set holds; None when the sets cannot share N pictures so."""
    r = problem.request
    levels = int(codes.max()) + 1 if len(codes) else 1
    union = np.unique(np.concatenate(problem.eligible))
    cap = np.bincount(codes[union], minlength=levels) // r.sets
    for members in problem.eligible:
        cap = np.minimum(cap, np.bincount(codes[members], minlength=levels))
    if cap.sum() < r.size:
        return None
    share = cap / cap.sum() * r.size
    quota = np.minimum(np.floor(share).astype(int), cap)
    for level in np.argsort(-(share - np.floor(share)), kind="stable"):  # largest remainders first
        if quota.sum() == r.size:
            break
        if quota[level] < cap[level]:
            quota[level] += 1
    while quota.sum() < r.size:  # capped levels left room: fill from those with some to spare
        spare = np.flatnonzero(quota < cap)
        quota[spare[0]] += 1
    return quota


def violations(problem: Problem, members: list[np.ndarray]) -> list[str]:
    """What a selection breaks: set sizes, a picture used twice, the differ steps, the balance (within one), the
    matched columns' equivalence (TOST at alpha)."""
    r = problem.request
    out = []
    if any(len(m) != r.size for m in members) or len(np.unique(np.concatenate(members))) != r.size * r.sets:
        out.append("sizes")
    if r.differ is not None:
        v = problem.column(r.differ[0])
        means = [v[m].mean() for m in members]
        if any(b - a < r.differ[1] - 1e-9 for a, b in zip(means, means[1:])):
            out.append("differ")
    for codes in problem.levels.values():
        counts = np.array([np.bincount(codes[m], minlength=int(codes.max()) + 1) for m in members])
        if (counts.max(axis=0) - counts.min(axis=0) > 1).any():
            out.append("balance")
    if r.match:
        matched = [d for d, _ in r.match]
        values = [problem.values[m][:, [problem.columns.index(d) for d in matched]] for m in members]
        if worst_tost_p(set_statistics(values, dict(r.match), r.alpha, matched)) >= r.alpha:
            out.append("match")
    return out


def _pick(candidates: np.ndarray, wanted: int, order: np.ndarray, window: int, cost: np.ndarray) -> np.ndarray:
    """``wanted`` of ``candidates``: from the first ``window`` x wanted of them in ``order``, the cheapest."""
    ranked = candidates[order]
    pool = ranked[: max(wanted, window * wanted)]
    return pool[np.argsort(cost[pool], kind="stable")[:wanted]]


def sorted_windows(problem: Problem, centre: dict[str, float]) -> Selection | None:
    """The first sorted-window sets that meet every constraint, or None."""
    r = problem.request
    codes = combined_levels(problem)
    quota = composition(problem, codes)
    if quota is None:
        return None
    cost = picture_costs(problem, centre) if centre else np.zeros(len(problem.values))
    v = problem.column(r.differ[0]) if r.differ else None
    order_of_sets = [0, r.sets - 1, *range(1, r.sets - 1)] if r.differ and r.sets > 1 else list(range(r.sets))
    for window in WINDOWS if (r.differ and r.match) or r.prefer_sure else WINDOWS[:1]:
        taken = np.zeros(len(problem.values), bool)
        members: list[np.ndarray | None] = [None] * r.sets
        failed = False
        for k in order_of_sets:
            chosen = []
            for level, wanted in enumerate(quota):
                if wanted == 0:
                    continue
                here = problem.eligible[k]
                candidates = here[(codes[here] == level) & ~taken[here]]
                if len(candidates) < wanted:
                    failed = True
                    break
                if v is None:
                    order = np.argsort(cost[candidates], kind="stable")
                elif k == 0:
                    order = np.argsort(v[candidates], kind="stable")
                elif k == r.sets - 1:
                    order = np.argsort(-v[candidates], kind="stable")
                else:
                    low, high = v[members[0]].mean(), v[members[-1]].mean()
                    target = low + (high - low) * k / (r.sets - 1)
                    order = np.argsort(np.abs(v[candidates] - target), kind="stable")
                picked = _pick(candidates, int(wanted), order, window, cost)
                taken[picked] = True
                chosen.append(picked)
            if failed:
                break
            members[k] = np.sort(np.concatenate(chosen))
        if failed:
            continue
        if not violations(problem, members):
            objective = float(sum(cost[m].sum() for m in members)) / r.size
            return Selection([m.tolist() for m in members], objective, dict(centre), 0.0, "greedy sorted windows")
    return None
