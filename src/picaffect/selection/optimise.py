"""Choosing the sets: a mixed-integer linear programme, solved by HiGHS (scipy.optimize.milp).

One binary x[i, k] per picture i allowed in set k (its ranges, exclusions and width
ceiling). Constraints: every set holds N pictures; a picture is in at most one set;
consecutive sets' means on the ``differ`` column are at least the asked amount apart
(set 1 lowest), which is linear because N is fixed; on each matched column every set's
mean lies within a quarter of the bound of a common centre c (so any two sets' means
lie within half the bound). For a column whose SDs are matched too (``match_sd``),
every set's mean squared distance from c, in the pool's SDs, lies within a tolerance of
a common value q (the tolerance is what a quarter of the bound in SD amounts to near the
target), and q is drawn towards the target SD (``Problem.targets``: the pool's own SD,
or the widest SD at which the sets' TOST can still pass, whichever is smaller). For each balanced
column and level, an integer b with b <= (the set's count of the level) <= b + 1 in
every set: equal counts within one.

Objective: ten times the distance of each set's mean from c on each matched column, in
the pool's SDs (``GAP_COST``; equal means come first), plus, for matched columns without
``sd``, the sum over chosen pictures of their squared distance from c in the pool's SDs,
divided by N (the sets' spread about c: what makes an equivalence test pass with small
sets, and what collapses a matched column to one band, which the report then points
out), plus ``SPREAD_COST`` times q's distance from 1 on ``sd`` columns, plus
``prefer_sure`` times the mean interval width. The centre is fixed per solve, so all of
this stays linear; a few centres are tried (those where every set's N nearest pictures
lie closest) and the sets whose worst TOST p is lowest are kept.

Per centre, each set first offers the solver only its few hundred cheapest pictures
(``narrowed``: the lowest per-picture cost in the objective), then more, then all:
on the 3,463 shared pictures the full programme (about 7,000 binaries) found no sets at
all within 20 s on a loaded two-core machine, while 200 candidates per set found them
in well under a second (``benchmarks/bench_select.py``). The size of each programme is
estimated before it is built (``programme_bytes``): one that would not fit in memory is
not built.

When the solver finds no solution, the same programme with a slack on each ``differ``
and ``match`` constraint, minimised, says which constraint fails and by how much.
"""
from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from .request import DIMENSIONS, Request, Selection

SLACK_COST = 1e4
GAP_COST = 10.0     # per pool SD of a set mean's distance from the centre: equal means first, then small spread
SPREAD_COST = 5.0   # per unit of the common squared spread's distance from the pool's (sd-matched columns)
MAX_BINARIES = 2_000_000   # beyond this the solver finds nothing in any time a user waits, whatever the memory
BYTES_PER_BINARY = 400     # HiGHS's and scipy's copies of a column and its bounds, measured order of magnitude
BYTES_PER_NONZERO = 160    # the matrix in COO, CSR and HiGHS's row- and column-wise copies, presolve included
IN_PROCESS_BINARIES = 2000  # smaller programmes are solved in this process (HiGHS keeps to its limit on them)
GRACE_S = 0.3              # beyond the time limit, before a solver's child process is killed


@dataclass
class Problem:
    values: np.ndarray              # (M, C) the pool's numeric columns the request uses
    widths: np.ndarray              # (M,) mean interval width (zeros without intervals)
    eligible: list[np.ndarray]      # per set, the row indices it may take
    request: Request
    columns: tuple[str, ...] = DIMENSIONS
    scales: dict[str, float] = field(default_factory=dict)     # the pool's SD per matched column (1 when absent)
    levels: dict[str, np.ndarray] = field(default_factory=dict)  # balanced column -> (M,) level codes 0..L-1
    targets: dict[str, float] = field(default_factory=dict)    # sd-matched column -> the SD the sets are drawn to

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def scale(self, name: str) -> float:
        return self.scales.get(name) or 1.0


def candidate_centres(problem: Problem, dim: str, count: int = 3, step: float | None = None) -> list[float]:
    """Centres on ``dim`` where every set's N pictures nearest to it lie closest (the worst set's N-th distance),
    apart from each other by 0.2 points on the 1..9 ratings (a fortieth of the range on other columns), best
    first. On columns other than the ratings the median of the pictures the sets may take comes first: picture
    features pile up at one end (every silhouette has colourfulness 0), where the nearest pictures lie closest
    but only one kind of picture could be chosen."""
    v = problem.column(dim)
    n = problem.request.size
    chosen: list[float] = []
    if dim in DIMENSIONS:
        grid, apart = np.arange(1.0, 9.0 + 1e-9, step or 0.05), 0.2
    else:
        low, high = float(v.min()), float(v.max())
        grid = np.linspace(low, high, 161) if high > low else np.array([low])
        apart = (high - low) / 40
        chosen.append(float(np.median(v[np.unique(np.concatenate(problem.eligible))])))
    radius = np.zeros(len(grid))
    for members in problem.eligible:
        distances = np.abs(v[members][None, :] - grid[:, None])
        radius = np.maximum(radius, np.partition(distances, n - 1, axis=1)[:, n - 1])
    for g in np.argsort(radius, kind="stable"):
        if len(chosen) >= count:
            break
        if all(abs(grid[g] - c) >= apart for c in chosen):
            chosen.append(float(grid[g]))
    return chosen


def picture_costs(problem: Problem, centre: dict[str, float]) -> np.ndarray:
    """Each picture's own share of the objective (its squared distance from the centre, in the pool's SDs, on every
    matched column whose SDs are not matched, plus the width penalty), times N: the pictures a good selection is
    made of have low costs."""
    r = problem.request
    cost = np.zeros(len(problem.values))
    for dim, _ in r.match:
        if dim not in r.match_sd:
            cost += ((problem.column(dim) - centre[dim]) / problem.scale(dim)) ** 2
    return cost + r.prefer_sure * problem.widths


def ranked(problem: Problem) -> bool:
    """Whether pictures have costs to rank them by (a matched column or --prefer-sure)."""
    return bool(problem.request.match) or problem.request.prefer_sure > 0


def narrowed(problem: Problem, centre: dict[str, float], keep: int) -> Problem:
    """The same programme with each set offered only its ``keep`` cheapest eligible pictures (ties in pool order).
    Any solution of it is a solution of the full programme; it may be infeasible where the full one is not, so
    callers widen ``keep`` until it is not. A set offered few of a balanced level could hold few of it, so each
    level keeps its ``keep`` / (levels) cheapest at least."""
    cost = picture_costs(problem, centre)
    sd_columns = [d for d in problem.request.match_sd]
    eligible = []
    for members in problem.eligible:
        order = members[np.argsort(cost[members], kind="stable")]
        chosen = [order[:keep]]
        for codes in problem.levels.values():
            count = int(codes.max()) + 1 if len(codes) else 0
            share = max(keep // max(count, 1), problem.request.size)
            chosen += [order[codes[order] == level][:share] for level in range(count)]
        for dim in sd_columns:  # matched spreads need pictures away from the centre too: spread evenly over dim
            by_value = members[np.argsort(problem.column(dim)[members], kind="stable")]
            chosen.append(by_value[np.linspace(0, len(by_value) - 1, min(keep, len(by_value))).astype(int)])
        eligible.append(np.unique(np.concatenate(chosen)))
    return Problem(problem.values, problem.widths, eligible, problem.request, problem.columns, problem.scales,
                   problem.levels, problem.targets)


def counts_of(problem: Problem) -> tuple[int, int]:
    """(binaries, nonzeros) of ``problem``'s programme, from its eligible lists alone (nothing is built)."""
    r = problem.request
    nx = int(sum(len(m) for m in problem.eligible))
    per = 2 + (2 if r.differ else 0) + 3 * len(r.match) + 2 * len(r.match_sd) + 2 * len(r.balance)
    return nx, nx * per


def programme_bytes(problem: Problem) -> int:
    """An estimate of the memory the programme takes to build and solve, in bytes."""
    nx, nnz = counts_of(problem)
    return nx * BYTES_PER_BINARY + nnz * BYTES_PER_NONZERO


def memory_available() -> int:
    """Bytes of memory free for a programme: half of what the system reports available (the rest for Python,
    the pool and the machine's other work); 4 GB where it cannot tell."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def fits(problem: Problem) -> bool:
    """Whether ``problem``'s programme may be built: few enough binaries, and its estimated memory available."""
    nx, _ = counts_of(problem)
    return nx <= MAX_BINARIES and programme_bytes(problem) <= memory_available()


def bounded_milp(cost: np.ndarray, constraints: LinearConstraint, integrality: np.ndarray, bounds: Bounds,
                 seconds: float, child: bool = True) -> SimpleNamespace:
    """``scipy.optimize.milp`` that returns within ``seconds`` (and ``GRACE_S``) whatever HiGHS does.

    HiGHS's own time limit is checked between its steps, and one step on a programme of a
    few thousand binaries (the root relaxation, presolve's probing) can run many times
    past it: 0.5 s asked, 16 s taken on the shared pictures' full programme. So a programme
    above ``IN_PROCESS_BINARIES`` is solved in a forked child that is killed at the limit (a
    fork shares the programme's memory, and nothing is pickled but the answer). Where fork is
    not available the solve runs here, with HiGHS's limit only. The answer has milp's ``x``,
    ``fun``, ``status``, ``message``; x is None when nothing was found in time.
    """
    options = {"time_limit": seconds, "mip_rel_gap": 1e-4}
    context = None
    if child:
        try:
            context = multiprocessing.get_context("fork")
        except ValueError:
            context = None
    if context is None:
        result = milp(cost, constraints=constraints, integrality=integrality, bounds=bounds, options=options)
        return SimpleNamespace(x=result.x, fun=result.fun, status=result.status, message=result.message)
    receive, send = context.Pipe(duplex=False)

    def run() -> None:
        try:
            result = milp(cost, constraints=constraints, integrality=integrality, bounds=bounds, options=options)
            send.send((result.x, result.fun, result.status, result.message))
        except BaseException as e:  # the parent reads a failure as "nothing found", with the reason
            send.send((None, None, -1, f"{type(e).__name__}: {e}"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads about: the child only runs HiGHS
        process = context.Process(target=run, daemon=True)
        process.start()
    send.close()
    try:
        if receive.poll(seconds + GRACE_S):
            x, fun, status, message = receive.recv()
        else:
            x, fun, status, message = None, None, 1, f"stopped at the time limit ({seconds:.1f} s)"
    except EOFError:  # the child died without answering (killed for memory)
        x, fun, status, message = None, None, -1, "the solver's process ended without an answer"
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receive.close()
    return SimpleNamespace(x=x, fun=fun, status=status, message=message)


def solve(problem: Problem, centre: dict[str, float], relax: bool = False, time_limit_s: float = 10.0
          ) -> tuple[Selection | None, dict[str, float], bool]:
    """One solve for fixed centres; returns the selection (None when none was found), with ``relax`` the slack
    per constraint (``differ k-k+1``, ``match DIM`` and ``spread DIM``, in the column's units), and whether the
    solver proved that no selection exists (False when it merely ran out of time)."""
    r, n, K = problem.request, problem.request.size, problem.request.sets
    lengths = [len(m) for m in problem.eligible]
    item = np.concatenate([np.asarray(m, np.int64) for m in problem.eligible]) if sum(lengths) else np.zeros(0, int)
    group = np.repeat(np.arange(K), lengths)
    nx = len(item)
    slack_names: list[str] = []
    if relax:
        if r.differ is not None:
            slack_names += [f"differ {k + 1}-{k + 2}" for k in range(K - 1)]
        slack_names += [f"match {d}" for d, _ in r.match] + [f"spread {d}" for d in r.match_sd]
    level_counts = {c: int(codes.max()) + 1 if len(codes) else 0 for c, codes in problem.levels.items()}
    gap0 = nx + len(slack_names)
    spread0 = gap0 + K * len(r.match)              # per sd column: q (common spread), then d = |q - target|
    level0 = spread0 + 2 * len(r.match_sd)         # per balanced column and level: b
    nv = level0 + sum(level_counts.values())
    cost = np.zeros(nv)
    cost[:nx] = picture_costs(problem, centre)[item] / n
    cost[nx:gap0] = SLACK_COST
    for m, (dim, _) in enumerate(r.match):
        cost[gap0 + m * K: gap0 + (m + 1) * K] = GAP_COST / problem.scale(dim)
    cost[spread0 + 1:level0:2] = SPREAD_COST
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

    def slack(name: str) -> int:
        return nx + slack_names.index(name)

    columns = np.arange(nx)
    sets = np.arange(K)
    add_rows(group, columns, np.ones(nx), float(n), float(n))  # N pictures per set
    shared = np.bincount(item, minlength=len(problem.values))
    many = shared[item] > 1  # each picture in one set at most (rows only where it could be in two)
    if many.any():
        _, row_of = np.unique(item[many], return_inverse=True)
        add_rows(row_of, columns[many], np.ones(int(many.sum())), -np.inf, 1.0)
    if r.differ is not None:
        dim, delta = r.differ
        v = problem.column(dim)[item]
        for k in range(K - 1):
            upper_set, lower_set = np.flatnonzero(group == k + 1), np.flatnonzero(group == k)
            cols = np.r_[upper_set, lower_set]
            coefficients = np.r_[v[upper_set], -v[lower_set]]
            if relax:
                cols = np.r_[cols, slack(f"differ {k + 1}-{k + 2}")]
                coefficients = np.r_[coefficients, n]
            add_rows(np.zeros(len(cols), int), cols, coefficients, n * delta, np.inf)
    for m, (dim, bound) in enumerate(r.match):
        v = problem.column(dim)[item]
        eps = bound / 4
        gaps = gap0 + m * K + sets
        for sign in (-1.0, 1.0):  # N * gap_k >= +-(sum_k - N c)
            add_rows(np.r_[group, sets], np.r_[columns, gaps], np.r_[sign * v, np.full(K, float(n))],
                     sign * n * centre[dim], np.inf)
        if relax:  # |sum - N c| <= N (eps + slack), as two rows per set
            for sign, lo, hi in ((-1, -np.inf, n * (centre[dim] + eps)), (1, n * (centre[dim] - eps), np.inf)):
                add_rows(np.r_[group, sets], np.r_[columns, np.full(K, slack(f"match {dim}"))],
                         np.r_[v, np.full(K, sign * n)], lo, hi)
        else:
            add_rows(group, columns, v, n * (centre[dim] - eps), n * (centre[dim] + eps))
    for s, dim in enumerate(r.match_sd):
        # squared distance from c in pool SDs; every set's mean of it within `tol` of q: |Q_k - N q| <= N tol
        scale = problem.scale(dim)
        z2 = ((problem.column(dim)[item] - centre[dim]) / scale) ** 2
        q, d = spread0 + 2 * s, spread0 + 2 * s + 1
        target = problem.targets.get(dim, scale) / scale
        tol = 2 * target * (dict(r.match)[dim] / 4) / scale  # (t + e)^2 - t^2 ~ 2 t e: a quarter bound near the target
        for sign in (-1.0, 1.0):
            cols, coefficients = np.r_[columns, np.full(K, q)], np.r_[sign * z2, np.full(K, -sign * n)]
            if relax:
                cols, coefficients = np.r_[cols, np.full(K, slack(f"spread {dim}"))], np.r_[coefficients,
                                                                                            np.full(K, -n)]
            add_rows(np.r_[group, sets] if not relax else np.r_[group, sets, sets], cols, coefficients,
                     -np.inf, n * tol)
        add_rows(np.zeros(2, int), np.array([d, q]), np.array([1.0, -1.0]), -target ** 2, np.inf)  # d >= q - t^2
        add_rows(np.zeros(2, int), np.array([d, q]), np.array([1.0, 1.0]), target ** 2, np.inf)    # d >= t^2 - q
    b0 = level0
    for column_name, codes in problem.levels.items():
        level = codes[item]
        for k in range(K):  # b_l <= count of level l in set k <= b_l + 1
            here = np.flatnonzero(group == k)
            rows = np.r_[level[here], np.arange(level_counts[column_name])]
            cols = np.r_[here, b0 + np.arange(level_counts[column_name])]
            coefficients = np.r_[np.ones(len(here)), -np.ones(level_counts[column_name])]
            add_rows(rows, cols, coefficients, 0.0, 1.0)
        b0 += level_counts[column_name]
    rows = np.concatenate([b[0] for b in blocks])
    cols = np.concatenate([b[1] for b in blocks])
    data = np.concatenate([b[2] for b in blocks]).astype(float)
    matrix = coo_matrix((data, (rows, cols)), shape=(len(lower), nv)).tocsr()
    integrality = np.r_[np.ones(nx), np.zeros(level0 - nx), np.ones(nv - level0)]
    upper_bounds = np.r_[np.ones(nx), np.full(nv - nx, np.inf)]
    bounds = Bounds(np.zeros(nv), upper_bounds)
    start = time.perf_counter()
    result = bounded_milp(cost, LinearConstraint(matrix, lower, upper), integrality, bounds, max(time_limit_s, 0.05),
                          child=nx > IN_PROCESS_BINARIES)
    seconds = time.perf_counter() - start
    if result.x is None:
        return None, {}, result.status == 2  # scipy's status 2: the problem is infeasible
    chosen = np.asarray(result.x[:nx]) > 0.5
    members = [sorted(item[chosen & (group == k)].tolist()) for k in range(K)]
    if any(len(m) != n for m in members):
        return None, {}, False
    slacks = {name: float(result.x[nx + s]) for s, name in enumerate(slack_names)}
    return Selection(members, float(result.fun), dict(centre), seconds, f"HiGHS via scipy.optimize.milp: "
                     f"{result.message}"), slacks, False
