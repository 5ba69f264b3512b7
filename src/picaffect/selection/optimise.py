"""Choosing the sets: a mixed-integer linear programme, solved by HiGHS (scipy.optimize.milp).

One binary x[i, k] per picture i allowed in set k (its ranges, exclusions and width
ceiling). Constraints: every set holds N pictures; a picture is in at most one set;
consecutive sets' means on the ``differ`` dimension are at least the asked number
of points apart (set 1 lowest), which is linear because N is fixed; on each matched
dimension every set's mean lies within a quarter of the bound of a common centre c.
Objective: ten times the distance of each set's mean from c on each matched
dimension (an auxiliary variable per set; equal means come first), plus the sum
over chosen pictures of (value - c)^2 on each matched dimension, divided by N (the sets' spread about c, which, with equal means, is what
makes an equivalence test pass with small sets), plus ``prefer_sure`` times the
mean interval width. The centre is fixed per solve, so all of this stays linear;
a few centres are tried (those where every set's N nearest pictures lie closest)
and the sets whose worst TOST p is lowest are kept.

Per centre, each set first offers the solver only its few hundred cheapest pictures
(``narrowed``: the lowest per-picture cost in the objective), then more, then all:
on the 3,463 shared pictures the full programme (about 7,000 binaries) found no
sets at all within 20 s on a loaded two-core machine, while 200 candidates per set
gave sets with TOST p below 1e-50 in 0.1-0.5 s on an idle one
(``benchmarks/bench_select.py``). Without a matched dimension or ``prefer_sure``
every picture costs the same and the whole pool is offered at once.

When the solver finds no solution, the same programme with a slack on each
``differ`` and ``match`` constraint, minimised, says which constraint fails and by
how many points.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from .request import DIMENSIONS, Request, Selection

SLACK_COST = 1e4
GAP_COST = 10.0   # per point of a set mean's distance from the centre: equal means first, then small spread


@dataclass
class Problem:
    values: np.ndarray              # (M, 2) valence, arousal
    widths: np.ndarray              # (M,) mean interval width (zeros without intervals)
    eligible: list[np.ndarray]      # per set, the row indices it may take
    request: Request


def candidate_centres(problem: Problem, dim: str, count: int = 3, step: float = 0.05) -> list[float]:
    """Centres on ``dim`` where every set's N pictures nearest to it lie closest (the worst set's N-th distance),
    at least 0.2 points apart, best first."""
    j = DIMENSIONS.index(dim)
    n = problem.request.size
    grid = np.arange(1.0, 9.0 + 1e-9, step)
    radius = np.zeros(len(grid))
    for members in problem.eligible:
        distances = np.abs(problem.values[members, j][None, :] - grid[:, None])
        radius = np.maximum(radius, np.partition(distances, n - 1, axis=1)[:, n - 1])
    chosen: list[float] = []
    for g in np.argsort(radius, kind="stable"):
        if all(abs(grid[g] - c) >= 0.2 for c in chosen):
            chosen.append(float(grid[g]))
        if len(chosen) == count:
            break
    return chosen


def picture_costs(problem: Problem, centre: dict[str, float]) -> np.ndarray:
    """Each picture's own share of the objective (its squared distance from the centre on every matched dimension
    plus the width penalty), times N: the pictures a good selection is made of have low costs."""
    r = problem.request
    cost = np.zeros(len(problem.values))
    for dim, _ in r.match:
        cost += (problem.values[:, DIMENSIONS.index(dim)] - centre[dim]) ** 2
    return cost + r.prefer_sure * problem.widths


def narrowed(problem: Problem, centre: dict[str, float], keep: int) -> Problem:
    """The same programme with each set offered only its ``keep`` cheapest eligible pictures (ties in pool order).
    Any solution of it is a solution of the full programme; it may be infeasible where the full one is not, so
    callers widen ``keep`` until it is not."""
    cost = picture_costs(problem, centre)
    eligible = [members[np.argsort(cost[members], kind="stable")[:keep]] for members in problem.eligible]
    return Problem(problem.values, problem.widths, eligible, problem.request)


def solve(problem: Problem, centre: dict[str, float], relax: bool = False, time_limit_s: float = 10.0
          ) -> tuple[Selection | None, dict[str, float], bool]:
    """One solve for fixed centres; returns the selection (None when none was found), with ``relax`` the slack
    per constraint in points (``differ k-k+1`` and ``match DIM``), and whether the solver proved that no
    selection exists (False when it merely ran out of time)."""
    r, values, n = problem.request, problem.values, problem.request.size
    pairs = [(int(i), k) for k, members in enumerate(problem.eligible) for i in members]
    item = np.array([i for i, _ in pairs])
    group = np.array([k for _, k in pairs])
    nx = len(pairs)
    slack_names: list[str] = []
    if relax:
        if r.differ is not None:
            slack_names += [f"differ {k + 1}-{k + 2}" for k in range(r.sets - 1)]
        slack_names += [f"match {d}" for d, _ in r.match]
    n_gap = r.sets * len(r.match)  # |set mean - centre| per set and matched dimension, minimised first
    gap0 = nx + len(slack_names)
    nv = gap0 + n_gap
    cost = np.zeros(nv)
    cost[gap0:] = GAP_COST
    cost[:nx] = picture_costs(problem, centre)[item] / n
    if relax:
        cost[nx:gap0] = SLACK_COST
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []   # (row, column, value) triples
    lower: list[float] = []
    upper: list[float] = []

    def add_rows(row_of: np.ndarray, columns: np.ndarray, coefficients: np.ndarray, lo, hi) -> None:
        """Rows numbered 0.. within ``row_of``, appended after the existing ones."""
        base = len(lower)
        count = int(row_of.max()) + 1 if len(row_of) else 0
        blocks.append((row_of + base, columns, coefficients))
        lower.extend(np.broadcast_to(lo, count).tolist())
        upper.extend(np.broadcast_to(hi, count).tolist())

    columns = np.arange(nx)
    add_rows(group, columns, np.ones(nx), float(n), float(n))  # N pictures per set
    shared = np.bincount(item, minlength=len(values))
    many = shared[item] > 1  # each picture in one set at most (rows only where it could be in two)
    if many.any():
        _, row_of = np.unique(item[many], return_inverse=True)
        add_rows(row_of, columns[many], np.ones(int(many.sum())), -np.inf, 1.0)
    if r.differ is not None:
        dim, delta = r.differ
        v = values[item, DIMENSIONS.index(dim)]
        for k in range(r.sets - 1):
            upper_set, lower_set = np.flatnonzero(group == k + 1), np.flatnonzero(group == k)
            cols = np.r_[upper_set, lower_set]
            coefficients = np.r_[v[upper_set], -v[lower_set]]
            if relax:
                cols = np.r_[cols, nx + slack_names.index(f"differ {k + 1}-{k + 2}")]
                coefficients = np.r_[coefficients, n]
            add_rows(np.zeros(len(cols), int), cols, coefficients, n * delta, np.inf)
    for m, (dim, bound) in enumerate(r.match):
        v = values[item, DIMENSIONS.index(dim)]
        eps = bound / 4
        gaps = gap0 + m * r.sets + np.arange(r.sets)
        for sign in (-1.0, 1.0):  # N * gap_k >= +-(sum_k - N c)
            add_rows(np.r_[group, np.arange(r.sets)], np.r_[columns, gaps], np.r_[sign * v, np.full(r.sets, float(n))],
                     sign * n * centre[dim], np.inf)
        if relax:  # |sum - N c| <= N (eps + slack), as two rows per set
            s = nx + slack_names.index(f"match {dim}")
            for sign, lo, hi in ((-1, -np.inf, n * (centre[dim] + eps)), (1, n * (centre[dim] - eps), np.inf)):
                row_of = np.r_[group, np.arange(r.sets)]
                add_rows(row_of, np.r_[columns, np.full(r.sets, s)], np.r_[v, np.full(r.sets, sign * n)], lo, hi)
        else:
            add_rows(group, columns, v, n * (centre[dim] - eps), n * (centre[dim] + eps))
    rows = np.concatenate([b[0] for b in blocks])
    cols = np.concatenate([b[1] for b in blocks])
    data = np.concatenate([b[2] for b in blocks]).astype(float)
    matrix = coo_matrix((data, (rows, cols)), shape=(len(lower), nv)).tocsr()
    integrality = np.r_[np.ones(nx), np.zeros(nv - nx)]
    bounds = Bounds(np.zeros(nv), np.r_[np.ones(nx), np.full(nv - nx, np.inf)])
    start = time.perf_counter()
    result = milp(cost, constraints=LinearConstraint(matrix, lower, upper), integrality=integrality, bounds=bounds,
                  options={"time_limit": time_limit_s, "mip_rel_gap": 1e-4})
    seconds = time.perf_counter() - start
    if result.x is None:
        return None, {}, result.status == 2  # scipy's status 2: the problem is infeasible
    chosen = result.x[:nx] > 0.5
    members = [sorted(item[chosen & (group == k)].tolist()) for k in range(r.sets)]
    if any(len(m) != n for m in members):
        return None, {}, False
    slack = {name: float(result.x[nx + s]) for s, name in enumerate(slack_names)}
    return Selection(members, float(result.fun), dict(centre), seconds, f"HiGHS via scipy.optimize.milp: "
                     f"{result.message}"), slack, False
