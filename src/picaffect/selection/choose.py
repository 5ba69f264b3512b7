"""``select``: from a pool of rated or predicted pictures, K sets of N that differ on one dimension and match on
the other, or an error that names the constraint the pool cannot meet and by how much."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import product

import numpy as np

from .optimise import Problem, candidate_centres, narrowed, solve
from .pool import Pool, widths
from .request import DIMENSIONS, Request, Selection, SelectionError
from .statistics import set_statistics

FIRST_PASS_S = 2.0  # wall seconds per centre in the first pass
NARROW_TIERS = (5, 20)  # candidates per set, in multiples of N, offered before the whole pool (see optimise.py)


@dataclass
class Result:
    request: Request
    pool: Pool
    selection: Selection
    statistics: dict
    seconds: float
    notes: list[str] = field(default_factory=list)

    def set_rows(self, k: int):
        """The pool's rows chosen for set ``k`` (0-based), in pool order."""
        return self.pool.table.iloc[self.selection.members[k]]


def eligible_rows(pool: Pool, request: Request) -> list[np.ndarray]:
    """Per set, the pool rows its ranges and the width ceiling allow."""
    table = pool.table
    out = []
    for k in range(1, request.sets + 1):
        keep = np.ones(len(table), bool)
        for r in request.ranges_of(k):
            keep &= table[r.dimension].between(r.low, r.high).to_numpy()
        if request.max_width is not None:
            if not pool.has_widths:
                raise SelectionError("--max-width needs prediction intervals in the scores file (valence_low, ...: "
                                     "predict with a calibrated model)")
            keep &= widths(pool) <= request.max_width
        out.append(np.flatnonzero(keep))
    return out


def _describe_set(request: Request, k: int) -> str:
    ranges = request.ranges_of(k)
    limits = ", ".join(f"{r.low:g} <= {r.dimension} <= {r.high:g}" for r in ranges)
    if request.max_width is not None:
        limits = ", ".join(filter(None, [limits, f"interval width <= {request.max_width:g}"]))
    return f"set {k}" + (f" ({limits})" if limits else "")


def check_feasible(values: np.ndarray, eligible: list[np.ndarray], request: Request) -> None:
    """Necessary conditions, each with its own message: enough pictures per set and in all, and enough room on the
    ``differ`` dimension between consecutive sets (their extreme N pictures, ignoring the other constraints)."""
    n = request.size
    for k, members in enumerate(eligible, 1):
        if len(members) < n:
            raise SelectionError(f"{_describe_set(request, k)}: only {len(members)} pictures qualify, {n - len(members)} "
                                 f"short of the {n} asked")
    union = np.unique(np.concatenate(eligible))
    if len(union) < n * request.sets:
        raise SelectionError(f"{request.sets} sets of {n} need {n * request.sets} different pictures; only "
                             f"{len(union)} qualify for any set ({n * request.sets - len(union)} short)")
    if request.differ is not None:
        dim, delta = request.differ
        j = DIMENSIONS.index(dim)
        for k in range(request.sets - 1):
            low = np.sort(values[eligible[k], j])[:n].mean()
            high = np.sort(values[eligible[k + 1], j])[-n:].mean()
            if high - low < delta:
                raise SelectionError(f"{dim}: set {k + 2}'s mean can exceed set {k + 1}'s by at most {high - low:.2f} "
                                     f"points, {delta - (high - low):.2f} short of the {delta:g} asked (set {k + 1}'s "
                                     f"{n} lowest average {low:.2f}, set {k + 2}'s {n} highest {high:.2f})")


def worst_tost_p(statistics: dict) -> float:
    ps = [pair[dim]["tost"]["p"] for pair in statistics["pairs"] for dim in DIMENSIONS if "tost" in pair[dim]]
    return max(ps) if ps else 0.0


def solve_widening(problem: Problem, centre: dict[str, float], seconds: float) -> Selection | None:
    """Sets for one centre from each set's cheapest 5N pictures, else its cheapest 20N, else all of them, within
    ``seconds`` of wall time (each solve at least half a second); None when none was found."""
    deadline = time.perf_counter() + seconds
    r = problem.request
    ranked = bool(r.match) or r.prefer_sure > 0  # otherwise every picture costs nothing: no order to narrow by
    tiers = [k * r.size for k in NARROW_TIERS if ranked and k * r.size < max(map(len, problem.eligible))] + [None]
    for keep in tiers:
        candidates = problem if keep is None else narrowed(problem, centre, keep)
        selection, _, _ = solve(candidates, centre, time_limit_s=max(deadline - time.perf_counter(), 0.5))
        if selection is not None:
            return selection
    return None


def select(pool: Pool, request: Request) -> Result:
    """Choose the sets; ``SelectionError`` says which constraint fails and by how much."""
    if request.prefer_sure and not pool.has_widths:
        raise SelectionError("--prefer-sure needs prediction intervals in the scores file (predict with a calibrated "
                             "model)")
    start = time.perf_counter()
    values = pool.table[["valence", "arousal"]].to_numpy(float)
    eligible = eligible_rows(pool, request)
    check_feasible(values, eligible, request)
    problem = Problem(values, widths(pool), eligible, request)
    centre_options = [candidate_centres(problem, dim, count=3 if len(request.match) == 1 else 2)
                      for dim, _ in request.match]
    combos = [dict(zip([d for d, _ in request.match], c)) for c in product(*centre_options)] or [{}]
    best: tuple[float, float, Selection, dict] | None = None
    match = dict(request.match)

    def consider(centre: dict[str, float], seconds: float) -> float | None:
        """Solve for one centre and keep the sets if their worst TOST p is the lowest yet; returns that p."""
        nonlocal best
        selection = solve_widening(problem, centre, seconds)
        if selection is None:
            return None
        statistics = set_statistics([values[m] for m in selection.members], match, request.alpha)
        key = (worst_tost_p(statistics), selection.objective)
        if best is None or key < best[:2]:
            best = (*key, selection, statistics)
        return key[0]

    # A short first pass over the centres: the solver finds good sets quickly and then spends its time proving
    # that nothing is better (with a near-zero objective a relative gap never closes), which the tests do not need.
    for centre in combos:
        remaining = request.time_limit_s - (time.perf_counter() - start)
        if remaining <= 0.5 and best is not None:
            break
        p = consider(centre, max(min(remaining / len(combos), FIRST_PASS_S), 0.5))
        if p is not None and (not match or p < request.alpha / 1000):  # decisively equivalent: stop here
            break
    remaining = request.time_limit_s - (time.perf_counter() - start)
    if remaining > 0.5 and (best is None or (match and best[0] >= request.alpha)):
        # nothing found, or not equivalent, in the short pass: the most promising centre gets the rest of the time
        consider(combos[0] if best is None else best[2].centre, remaining)
    if best is None:
        raise SelectionError(_diagnose(problem, combos[0]))
    worst_p, _, selection, statistics = best
    if match and worst_p >= request.alpha:
        raise SelectionError(_equivalence_failure(statistics, request))
    return Result(request, pool, selection, statistics, time.perf_counter() - start, list(pool.notes))


def _diagnose(problem: Problem, centre: dict[str, float]) -> str:
    """Why no solution exists: the slack each soft constraint needs, in points."""
    r = problem.request
    selection, slack, infeasible = solve(problem, centre, relax=True, time_limit_s=max(r.time_limit_s, 5.0))
    if selection is None and infeasible:
        return (f"no {r.sets} sets of {r.size} pictures satisfy the ranges together (each picture can be in one set "
                f"only); loosen a --range")
    if selection is None:
        return _timed_out(r)
    failing = []
    for name, value in slack.items():
        if value < 0.005:  # zero at the precision reported: this constraint is not what fails
            continue
        kind, what = name.split(" ", 1)
        if kind == "differ":
            dim, delta = r.differ
            a, b = what.split("-")
            failing.append(f"{dim}: with the other constraints met, set {b}'s mean can exceed set {a}'s by at most "
                           f"{delta - value:.2f} points, {value:.2f} short of the {delta:g} asked")
        else:
            bound = dict(r.match)[what]
            failing.append(f"{what}: with the other constraints met, the sets' means cannot all lie within "
                           f"{bound / 4:g} of one value (a quarter of the bound {bound:g}); they need {value:.2f} "
                           f"more (the pairwise difference may then reach {2 * (bound / 4 + value):.2f})")
    return "; ".join(failing) or f"every constraint can be met, but {_timed_out(r)}"


def _timed_out(r: Request) -> str:
    return (f"the optimiser found no sets within its time limit ({r.time_limit_s:g} s of wall time): give it longer "
            f"with --time-limit, or narrow the pool with --range")


def _equivalence_failure(statistics: dict, request: Request) -> str:
    worst = []
    for pair in statistics["pairs"]:
        for dim in DIMENSIONS:
            t = pair[dim].get("tost")
            if t is not None and t["p"] >= request.alpha:
                a, b = pair["sets"]
                sd = [statistics["sets"][s - 1][dim]["sd"] for s in (a, b)]
                worst.append(f"{dim}: sets {a} and {b} are not shown equivalent within +-{t['bound']:g} (TOST p = "
                             f"{t['p']:.3f} >= {request.alpha:g}; means differ by {t['difference']:+.3f}, SDs "
                             f"{sd[0]:.2f} and {sd[1]:.2f}); equivalence would hold from +-{t['equivalent_from']:.2f}, "
                             f"{t['equivalent_from'] - t['bound']:.2f} wider than asked, or with larger sets")
    return "; ".join(worst)
