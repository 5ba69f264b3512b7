"""``select``: from a pool of rated or predicted pictures, K sets of N that differ on one column, match on others,
hold the same counts of each level of balanced columns, or an error that names the constraint the pool cannot
meet and by how much.

The order of the work: the request is checked against the pool (``resolve``: every named
column exists and is numeric, or categorical for ``--balance``; rows without a value in a
used column are left out and said so; a bare ``--match COLUMN`` gets its bound), then the
cheap necessary conditions, each with its own message (``check_feasible``,
``check_balance``), then the sorted-window start (``greedy``), then the solver over a few
centres. The time limit holds for all of it, the diagnosis of a failure included: the
solver gets what is left, and a request whose programme would not fit in memory is
never built.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import product

import numpy as np
import pandas as pd

from ..core.errors import UsageError
from .greedy import sorted_windows
from .optimise import Problem, candidate_centres, fits, narrowed, programme_bytes, ranked, solve
from .pool import Pool, widths
from .request import DIMENSIONS, MATCH_SDS, Request, Selection, SelectionError, number
from .statistics import counts, set_statistics, worst_tost_p

FIRST_PASS_S = 2.0  # wall seconds per centre in the first pass
NARROW_TIERS = (5, 20)  # candidates per set, in multiples of N, offered before the whole pool (see optimise.py)
COLLAPSED = 0.25  # a matched column whose SD inside a set is under this share of the pool's has collapsed to a band
MAX_LEVELS = 30  # a "categorical" column with more levels than this is a numeric one given to --balance


@dataclass
class Result:
    request: Request
    pool: Pool
    selection: Selection
    statistics: dict
    seconds: float
    notes: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=lambda: list(DIMENSIONS))   # the numeric columns reported
    categorical: list[str] = field(default_factory=list)                    # the columns counted per set
    warnings: list[str] = field(default_factory=list)

    def set_rows(self, k: int):
        """The pool's rows chosen for set ``k`` (0-based), in pool order."""
        return self.pool.table.iloc[self.selection.members[k]]


def _note(notes: list[str], heard: Callable[[str], None] | None, text: str) -> None:
    notes.append(text)
    if heard is not None:
        heard(text)


def _listing(columns) -> str:
    columns = [str(c) for c in columns]
    return ", ".join(columns[:25]) + (f", ... ({len(columns)} in all)" if len(columns) > 25 else "")


def _levels_text(values: pd.Series) -> str:
    levels = [str(v) for v in pd.unique(values.dropna())]
    return ", ".join(levels[:8]) + (", ..." if len(levels) > 8 else "")


def _unknown(pool: Pool, option: str, column: str) -> UsageError:
    from ..data.picture_features import FEATURE_COLUMNS

    text = f"{option} {column}: the pool has no column {column!r} (its columns: {_listing(pool.table.columns)})"
    if column in FEATURE_COLUMNS:
        text += ("; picture features come with a dataset built by this version (picaffect build) or a scores file "
                 "from picaffect predict --describe" if not pool.dataset else
                 "; this dataset was built before picaffect computed picture features: build it again")
    return UsageError(text)


def resolve(pool: Pool, request: Request, note: Callable[[str], None] | None = None
            ) -> tuple[Pool, Request, list[str]]:
    """The request checked against the pool's columns, the rows it can use, and the request with every bound set;
    notes on rows left out. ``UsageError`` names an unknown column (listing the pool's), a categorical column
    given where a number is needed, a numeric one given to --balance, cells that are not numbers (their rows)."""
    table = pool.table
    notes: list[str] = []
    uses = [("--differ", request.differ[0])] if request.differ else []
    uses += [("--match", d) for d, _ in request.match] + [("--range", r.dimension) for r in request.ranges]
    for option, column in uses:
        if column not in table.columns:
            raise _unknown(pool, option, column)
        if column in pool.bad_cells:
            raise UsageError(f"{option} {column}: {column} is a numeric column, but {pool.bad_cells[column]}")
        if not pool.is_numeric(column):
            raise UsageError(f"{option} {column}: {column} is categorical (levels: {_levels_text(table[column])}), "
                             f"not numeric: --differ, --match and --range take numeric columns; balance a "
                             f"categorical one across the sets with --balance {column}")
    for column in request.balance:
        if column not in table.columns:
            raise _unknown(pool, "--balance", column)
        levels = table[column].nunique()
        if pool.is_numeric(column) and levels > MAX_LEVELS:
            raise UsageError(f"--balance {column}: {column} is numeric with {levels} different values; --balance "
                             f"takes a categorical column (source, category, greyscale); match a numeric one with "
                             f"--match {column}")
    used = [c for c in request.numeric_columns if c in table.columns] + list(request.balance)
    empty = table[used].isna().any(axis=1)
    if empty.any():
        missing = [c for c in used if table[c].isna().any()]
        _note(notes, note, f"{int(empty.sum())} rows without a value in {', '.join(missing)} left out (first: "
                           f"{table['picture'][empty].iloc[0]})")
        pool = Pool(table[~empty].reset_index(drop=True), pool.origin, pool.notes, pool.bad_cells, pool.dataset)
        table = pool.table
    if len(table) == 0:
        raise SelectionError("no picture in the pool has a value in every column the request uses")
    bounds = []
    for dim, bound in request.match:
        if bound is None:
            sd = float(table[dim].std())
            bound = float(f"{MATCH_SDS * sd:.3g}") if sd > 0 else 1e-9
            _note(notes, note, f"--match {dim}: equivalence bound +-{bound:g} ({MATCH_SDS:g} of the pool's SD "
                               f"{sd:.3g}); give --match {dim}:BOUND to choose it")
        bounds.append((dim, bound))
    if request.differ is not None:
        dim, delta = request.differ
        span = float(table[dim].max() - table[dim].min())
        if delta > span:
            raise SelectionError(f"--differ {dim}:{delta:g}: no two pictures of the pool differ by that much on "
                                 f"{dim} (its values span {number(float(table[dim].min()))} to "
                                 f"{number(float(table[dim].max()))}, {number(span)} in all)")
    return pool, replace(request, match=tuple(bounds)), notes


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
    limits = ", ".join(str(r).split(": ", 1)[1] for r in ranges)
    if request.max_width is not None:
        limits = ", ".join(filter(None, [limits, f"interval width <= {request.max_width:g}"]))
    return f"set {k}" + (f" ({limits})" if limits else "")


def check_feasible(values: np.ndarray, eligible: list[np.ndarray], request: Request,
                   columns: tuple[str, ...] = DIMENSIONS) -> None:
    """Necessary conditions, each with its own message: enough pictures per set and in all, and enough room on the
    ``differ`` column between consecutive sets (their extreme N pictures, ignoring the other constraints)."""
    n = request.size
    for k, members in enumerate(eligible, 1):
        if len(members) < n:
            raise SelectionError(f"{_describe_set(request, k)}: only {len(members)} pictures qualify, "
                                 f"{n - len(members)} short of the {n} asked")
    union = np.unique(np.concatenate(eligible))
    if len(union) < n * request.sets:
        raise SelectionError(f"{request.sets} sets of {n} need {n * request.sets} different pictures; only "
                             f"{len(union)} qualify for any set ({n * request.sets - len(union)} short)")
    if request.differ is not None:
        dim, delta = request.differ
        j = columns.index(dim)
        for k in range(request.sets - 1):
            low = np.sort(values[eligible[k], j])[:n].mean()
            high = np.sort(values[eligible[k + 1], j])[-n:].mean()
            if high - low < delta:
                unit = " points" if dim in DIMENSIONS else ""
                raise SelectionError(f"{dim}: set {k + 2}'s mean can exceed set {k + 1}'s by at most "
                                     f"{number(high - low)}{unit}, {number(delta - (high - low))} short of the "
                                     f"{delta:g} asked (set {k + 1}'s {n} lowest average {number(low)}, set {k + 2}'s {n} "
                                     f"highest {number(high)})")


def check_balance(problem: Problem, names: dict[str, list[str]]) -> None:
    """Whether the sets can hold the same count of each level, within one: a set holds at most one more of a
    level than the set that can take fewest of it, and the K sets together no more than the pool has; when even
    so the levels cannot fill N pictures, the message names the levels that limit and by how many."""
    r = problem.request
    union = np.unique(np.concatenate(problem.eligible))
    for column, codes in problem.levels.items():
        levels = names[column]
        per_set = np.array([np.bincount(codes[m], minlength=len(levels)) for m in problem.eligible])
        in_all = np.bincount(codes[union], minlength=len(levels))
        fewest = per_set.min(axis=0)
        cap = np.minimum(fewest + 1, per_set.max(axis=0))
        cap = np.minimum(cap, in_all // r.sets + (in_all % r.sets > 0))
        if cap.sum() >= r.size:
            continue
        most = per_set.max(axis=0)
        limits = []
        for level in np.argsort(cap - most, kind="stable")[:3]:
            if cap[level] >= most[level]:
                continue
            k = int(np.argmin(per_set[:, level]))
            if cap[level] == fewest[level] + 1:
                limits.append(f"{levels[level]}: at most {cap[level]} per set, since {_describe_set(r, k + 1)} can "
                              f"take only {fewest[level]}")
            else:
                limits.append(f"{levels[level]}: at most {cap[level]} per set, {in_all[level]} in the pool for "
                              f"{r.sets} sets")
        raise SelectionError(f"--balance {column}: with the same count of each level in every set (within one), "
                             f"a set can hold at most {int(cap.sum())} pictures, {r.size - int(cap.sum())} short of "
                             f"the {r.size} asked ({'; '.join(limits)})")


def _combos(problem: Problem) -> list[dict[str, float]]:
    """Centres to try: every matched column at its best centre first, then each column at its other candidates in
    turn (the others at their best), so that five matched columns cost six solves, not 2^5."""
    r = problem.request
    if not r.match:
        return [{}]
    count = 3 if len(r.match) == 1 else 2
    options = {d: candidate_centres(problem, d, count=count) for d, _ in r.match}
    if len(r.match) <= 2:
        return [dict(zip(options, c)) for c in product(*options.values())]
    best = {d: c[0] for d, c in options.items()}
    combos = [best]
    for d, candidates in options.items():
        combos += [{**best, d: c} for c in candidates[1:]]
    return combos


def solve_widening(problem: Problem, centre: dict[str, float], seconds: float) -> Selection | None:
    """Sets for one centre from each set's cheapest 5N pictures, else its cheapest 20N, else all of them, within
    ``seconds`` of wall time (each solve at least a twentieth of a second); None when none was found. A tier
    whose programme would not fit in memory is not built."""
    deadline = time.perf_counter() + seconds
    r = problem.request
    tiers = [k * r.size for k in NARROW_TIERS if ranked(problem) and k * r.size < max(map(len, problem.eligible))]
    for keep in tiers + [None]:
        candidates = problem if keep is None else narrowed(problem, centre, keep)
        remaining = deadline - time.perf_counter()
        if remaining <= 0.05 or not fits(candidates):
            return None
        selection, _, _ = solve(candidates, centre, time_limit_s=remaining)
        if selection is not None:
            return selection
    return None


def _codes(table: pd.DataFrame, columns: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    codes, names = {}, {}
    for column in columns:
        values, uniques = pd.factorize(table[column].astype(str), sort=True)
        codes[column], names[column] = values.astype(np.int64), [str(u) for u in uniques]
    return codes, names


def select(pool: Pool, request: Request, *, deadline: float | None = None,
           note: Callable[[str], None] | None = None) -> Result:
    """Choose the sets; ``SelectionError`` says which constraint fails and by how much.

    ``deadline`` (``time.perf_counter()`` seconds) ends the whole selection, diagnosis included: by default
    ``request.time_limit_s`` from now. ``note`` hears the notes (rows left out, bounds chosen) as they arise,
    so that a caller shows them even when the request then fails.
    """
    start = time.perf_counter()
    deadline = start + request.time_limit_s if deadline is None else deadline
    if request.prefer_sure and not pool.has_widths:
        raise SelectionError("--prefer-sure needs prediction intervals in the scores file (predict with a calibrated "
                             "model)")
    pool, request, notes = resolve(pool, request, note)
    columns = tuple(c for c in request.numeric_columns if c in pool.table.columns)
    values = pool.table[list(columns)].to_numpy(float)
    eligible = eligible_rows(pool, request)
    check_feasible(values, eligible, request, columns)
    levels, level_names = _codes(pool.table, request.balance)
    scales = {d: float(pool.table[d].std()) or 1.0 for d, _ in request.match}
    targets = spread_targets(request, scales)
    for dim, target in targets.items():
        _note(notes, note, f"--match {dim}:...:sd: the sets' SDs are drawn towards {number(target)} (the pool's SD "
                           f"{number(scales[dim])}, or the widest at which TOST can pass with sets of "
                           f"{request.size}, the smaller)")
    problem = Problem(values, widths(pool), eligible, request, columns, scales, levels, targets)
    check_balance(problem, level_names)
    combos = _combos(problem)
    match = dict(request.match)
    best: tuple[float, float, Selection, dict] | None = None

    def statistics_of(selection: Selection) -> dict:
        return set_statistics([values[m] for m in selection.members], match, request.alpha, columns,
                              request.match_sd)

    def keep(selection: Selection) -> float:
        """Keep the sets if their worst TOST p is the lowest yet; returns that p."""
        nonlocal best
        statistics = statistics_of(selection)
        key = (worst_tost_p(statistics), selection.objective)
        if best is None or key < best[:2]:
            best = (*key, selection, statistics)
        return key[0]

    started = sorted_windows(problem, combos[0])
    if started is not None:
        keep(started)
    if started is None or ranked(problem):  # with nothing to optimise, sets that meet every constraint are optimal
        if not fits(narrowed(problem, combos[0], NARROW_TIERS[0] * request.size) if ranked(problem) else problem) \
                and best is None:
            raise SelectionError(_too_big(problem))
        _optimise(problem, combos, deadline, keep, lambda: best, match)
    if best is None:
        raise SelectionError(_diagnose(problem, combos[0], deadline))
    worst_p, _, selection, statistics = best
    if match and worst_p >= request.alpha:
        raise SelectionError(_equivalence_failure(statistics, request))
    selection.seconds = time.perf_counter() - start
    counted = [c for c in dict.fromkeys([*request.balance, "source"]) if c in pool.table.columns]
    statistics["counts"] = {c: counts([pool.table[c].astype(str).to_numpy()[m] for m in selection.members])
                            for c in counted}
    statistics["pool"] = {c: describe_pool(pool.table[c]) for c in columns}
    warnings = collapsed_bands(statistics, request)
    for text in warnings:
        _note(notes, note, text)
    return Result(request, pool, selection, statistics, time.perf_counter() - start, list(pool.notes) + notes,
                  list(columns), counted, warnings)


def spread_targets(request: Request, scales: dict[str, float]) -> dict[str, float]:
    """Per sd-matched column, the SD the sets are drawn towards: the pool's, unless sets that wide could not pass
    the TOST with N pictures each (the standard error of two sets of SD s is s sqrt(2/N), and the TOST needs the
    bound to exceed the mean difference plus t(1 - alpha) of those); then 85 % of the widest that could,
    leaving room for the means' own difference."""
    from scipy import stats

    n = request.size
    t = float(stats.t.ppf(1 - request.alpha, 2 * n - 2))
    bounds = dict(request.match)
    return {d: min(scales[d], 0.85 * bounds[d] / (t * (2 / n) ** 0.5)) for d in request.match_sd}


def _optimise(problem: Problem, combos: list[dict[str, float]], deadline: float, keep: Callable[[Selection], float],
              best: Callable[[], tuple | None], match: dict[str, float]) -> None:
    """The solver over the centres, within the deadline: a short first pass over them all (the solver finds good
    sets quickly and then spends its time proving that nothing is better, which the tests do not need), then the
    rest of the time to the most promising centre when nothing, or nothing equivalent, was found."""
    alpha = problem.request.alpha
    for n, centre in enumerate(combos):
        remaining = deadline - time.perf_counter()
        if remaining <= 0.1 or (remaining <= 0.5 and best() is not None):
            return
        found = solve_widening(problem, centre, max(min(remaining / (len(combos) - n), FIRST_PASS_S), 0.1))
        if found is None:
            continue
        p = keep(found)
        if not match or p < alpha / 1000:  # nothing to test, or decisively equivalent: stop here
            return
    remaining = deadline - time.perf_counter()
    current = best()
    if remaining > 0.5 and (current is None or (match and current[0] >= alpha)):
        found = solve_widening(problem, combos[0] if current is None else current[2].centre, remaining)
        if found is not None:
            keep(found)


def describe_pool(column: pd.Series) -> dict[str, float]:
    values = column.to_numpy(float)
    return {"n": int(len(values)), "mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1
            else 0.0, "min": float(values.min()), "max": float(values.max())}


def collapsed_bands(statistics: dict, request: Request) -> list[str]:
    """A warning per matched column whose SD inside some set is under ``COLLAPSED`` of the pool's: the sets are
    matched by keeping every picture in one narrow band, which a reader of the methods should know."""
    out = []
    for dim, bound in request.match:
        pool_sd = statistics["pool"][dim]["sd"]
        sds = [s[dim]["sd"] for s in statistics["sets"]]
        if pool_sd > 0 and min(sds) < COLLAPSED * pool_sd:
            means = [s[dim]["mean"] for s in statistics["sets"]]
            advice = ("" if dim in request.match_sd else
                      f"; to match distributions instead, ask for --match {dim}:{bound:g}:sd")
            out.append(f"{dim}: the SD inside the sets ({number(min(sds))}-{number(max(sds))}) is under a quarter of "
                       f"the pool's ({number(pool_sd)}): the sets are matched by keeping their pictures in a narrow "
                       f"band around {number(float(np.mean(means)))}{advice}")
    return out


def _too_big(problem: Problem) -> str:
    from .optimise import counts_of, memory_available

    r = problem.request
    nx, _ = counts_of(problem)
    return (f"{r.sets} sets of {r.size} from {len(problem.values)} pictures make an optimisation programme of about "
            f"{nx:,} binary variables ({programme_bytes(problem) / 2 ** 30:.1f} GB), more than this machine can "
            f"hold ({memory_available() / 2 ** 30:.1f} GB free for it) and no sorted selection met the constraints: "
            f"ask for fewer sets, or narrow the pool with --range")


def _diagnose(problem: Problem, centre: dict[str, float], deadline: float) -> str:
    """Why no solution exists: the slack each soft constraint needs, in the column's units; within the time left."""
    r = problem.request
    remaining = deadline - time.perf_counter()
    if remaining < 0.2:
        return _timed_out(r)
    if not fits(problem):
        return _too_big(problem)
    selection, slack, infeasible = solve(problem, centre, relax=True, time_limit_s=remaining)
    if selection is None and infeasible:
        return (f"no {r.sets} sets of {r.size} pictures satisfy the ranges" + (" and --balance" if r.balance else "") +
                " together (each picture can be in one set only); loosen a --range")
    if selection is None:
        return _timed_out(r)
    failing = []
    for name, value in slack.items():
        kind, what = name.split(" ", 1)
        if kind == "differ":
            dim, delta = r.differ
            if value < 0.005 * max(delta, 1e-9):  # zero at the precision reported: not what fails
                continue
            a, b = what.split("-")
            failing.append(f"{dim}: with the other constraints met, set {b}'s mean can exceed set {a}'s by at most "
                           f"{number(delta - value)}, {number(value)} short of the {delta:g} asked")
        elif kind == "match":
            bound = dict(r.match)[what]
            if value < 0.005 * bound:
                continue
            failing.append(f"{what}: with the other constraints met, the sets' means cannot all lie within "
                           f"{bound / 4:g} of one value (a quarter of the bound {bound:g}); they need {number(value)} "
                           f"more (the pairwise difference may then reach {number(2 * (bound / 4 + value))})")
        elif value > 0.005:
            failing.append(f"{what}: with the other constraints met, the sets' SDs cannot be matched (--match "
                           f"{what}:...:sd); drop :sd or widen the bound")
    return "; ".join(failing) or f"every constraint can be met, but {_timed_out(r)}"


def _timed_out(r: Request) -> str:
    return (f"the optimiser found no sets within its time limit ({r.time_limit_s:g} s of wall time): give it longer "
            f"with --time-limit, or narrow the pool with --range")


def _equivalence_failure(statistics: dict, request: Request) -> str:
    worst = []
    for pair in statistics["pairs"]:
        for dim, _ in request.match:
            t = pair[dim].get("tost")
            if t is not None and t["p"] >= request.alpha:
                a, b = pair["sets"]
                sd = [statistics["sets"][s - 1][dim]["sd"] for s in (a, b)]
                worst.append(f"{dim}: sets {a} and {b} are not shown equivalent within +-{t['bound']:g} (TOST p = "
                             f"{t['p']:.3f} >= {request.alpha:g}; means differ by {t['difference']:+.3f}, SDs "
                             f"{number(sd[0])} and {number(sd[1])}); equivalence would hold from "
                             f"+-{number(t['equivalent_from'])}, {number(t['equivalent_from'] - t['bound'])} wider "
                             f"than asked, or with larger sets")
    for dim, w in statistics.get("worst_tost", {}).items():
        if w["p"] >= request.alpha and not any(text.startswith(f"{dim}:") for text in worst):
            a, b = w["sets"]
            worst.append(f"{dim}: sets {a} and {b} are not shown equivalent within +-{w['bound']:g} (TOST p = "
                         f"{w['p']:.3f} >= {request.alpha:g}; means differ by {w['difference']:+.3f})")
    return "; ".join(worst)

