"""How long `picaffect select` takes on the shared sets: the stimulus-selection goal request, end to end.

The goal (issue 34): on the published ratings of OASIS, Emotion6 and BASS, 3 sets of 30
whose valence means are at least 1.5 points apart, balanced by source (the same count of
each source in every set, within one), matched on arousal (TOST within +-0.3 points),
luminance, contrast, colourfulness and complexity (each within +-0.3 of the pool's SD,
the default bound, which the output states), found in under 30 s. Prints the wall and
CPU seconds of `select` itself (reading the pool apart), whether sets were found, their
worst TOST p, each set's source counts and matched columns, and the load average beside
them, since the figures mean little on a busy machine.

The pool is a built dataset (default: the 224 px group-split build in runs/data/). A
dataset built before picaffect computed picture features lacks them in its manifest:
then they are computed here from the picture files the manifest names, decoded as the
build decodes them, cached beside the other benchmark files (`--work`) and timed apart,
or, with `--no-compute`, the script says to rebuild the dataset. `--solves` adds the
older comparison: per centre, the 2 x 40 request (valence 3 apart, arousal within 0.3)
solved with the whole pool offered to the solver beside each set's 5N cheapest.

    .venv/bin/python benchmarks/bench_select.py [--dataset runs/data/oasis+emotion6+bass-224px-group]
        [--time-limit 30] [--work runs/bench] [--no-compute] [--solves] [--json figures.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from picaffect.data.parallel import ordered_map
from picaffect.data.picture_features import FEATURE_COLUMNS, picture_features
from picaffect.selection import Pool, read_pool, request_from_text, select
from picaffect.selection.choose import eligible_rows
from picaffect.selection.optimise import Problem, candidate_centres, narrowed, solve
from picaffect.selection.pool import widths
from picaffect.selection.request import SelectionError
from picaffect.selection.statistics import set_statistics, worst_tost_p

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "runs" / "data" / "oasis+emotion6+bass-224px-group"
GOAL = {"sets": 3, "size": 30, "differ": "valence:1.5", "balance": ["source"],
        "match": ["arousal", "luminance", "contrast", "colourfulness", "complexity"]}
GOAL_S = 30.0


def with_features(folder: Path, work: Path, compute: bool) -> tuple[Pool, str]:
    """The dataset's pool with its picture features: from the manifest, or computed (and cached) from the files."""
    pool = read_pool(folder)
    if set(FEATURE_COLUMNS) <= set(pool.table.columns):
        return pool, "picture features from the manifest"
    if not compute:
        sys.exit(f"{folder}: its manifest has no picture features (built before picaffect computed them): build it "
                 f"again with picaffect build, or run without --no-compute to compute them here")
    size = int(json.loads((folder / "report.json").read_text()).get("size", 224))
    cache = work / f"select-features-{folder.name}.parquet"
    table = pd.read_parquet(cache) if cache.is_file() else None
    if table is None or set(table["picture"]) != set(pool.table["picture"]):
        start = time.perf_counter()
        rows = list(ordered_map(lambda path: picture_features(path, size), pool.table["path"], os.cpu_count() or 1))
        table = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS)).assign(picture=pool.table["picture"].to_numpy())
        cache.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(cache, index=False)
        how = (f"picture features computed from {len(rows)} files in {time.perf_counter() - start:.1f} s (not part "
               f"of select's time; cached in {cache})")
    else:
        how = f"picture features computed earlier, read from {cache}"
    merged = pool.table.merge(table.assign(greyscale=table["greyscale"].astype(str)), on="picture", how="left")
    return Pool(merged, pool.origin, pool.notes, pool.bad_cells, pool.dataset), how


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (select solves large programmes in a child)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def goal(pool: Pool, time_limit: float) -> dict:
    """The goal request, end to end, with its figures."""
    request = request_from_text(time_limit_s=time_limit, **GOAL)
    heard: list[str] = []
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), cpu_seconds()
    try:
        result = select(pool, request, note=heard.append)
        error = None
    except SelectionError as e:
        result, error = None, str(e)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    figures = {"request": GOAL, "time_limit_s": time_limit, "wall_s": wall, "cpu_s": cpu, "found": result is not None,
               "under_goal": result is not None and wall < GOAL_S, "load_average": [load, os.getloadavg()[0]],
               "cores": os.cpu_count(), "notes": heard, "error": error}
    if result is not None:
        figures.update(worst_tost_p=worst_tost_p(result.statistics), solver=result.selection.solver,
                       bounds=dict(result.request.match), counts=result.statistics["counts"]["source"],
                       sets=[{d: {k: round(s[d][k], 3) for k in ("mean", "sd")} for d in result.columns}
                             for s in result.statistics["sets"]], warnings=result.warnings)
    return figures


def solver_comparison(pool: Pool, time_limit: float) -> None:
    """Per centre, the 2 x 40 request solved with the whole pool offered, and with each set's 5N cheapest."""
    request = request_from_text(sets=2, size=40, differ="valence:3", match=["arousal:0.3"])
    values = pool.table[["valence", "arousal"]].to_numpy(float)
    problem = Problem(values, widths(pool), eligible_rows(pool, request), request)
    print(f"\nsolver on {len(values)} pictures: 2 sets of 40, valence 3 apart, arousal within 0.3")
    print(f"{'arousal centre':>14}  {'offered':>16}  {'wall s':>6}  {'CPU s':>6}  outcome")
    for c in candidate_centres(problem, "arousal"):
        centre = {"arousal": c}
        for label, candidates in (("whole pool", problem), ("5N cheapest", narrowed(problem, centre, 5 * 40))):
            wall, cpu = time.perf_counter(), time.process_time()
            selection, _, infeasible = solve(candidates, centre, time_limit_s=time_limit)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if selection is None:
                outcome = "infeasible" if infeasible else "none found"
            else:
                stats = set_statistics([values[m] for m in selection.members], {"arousal": 0.3}, 0.05)
                outcome = f"TOST p {worst_tost_p(stats):.1e}"
            print(f"{c:14.2f}  {label:>16}  {wall:6.1f}  {cpu:6.1f}  {outcome}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, default=DATASET, help="a built dataset of the shared sets")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench", help="where computed features are cached")
    p.add_argument("--time-limit", type=float, default=GOAL_S, help="select's own time limit (default 30 s)")
    p.add_argument("--no-compute", action="store_true", help="refuse a dataset without features instead of "
                                                              "computing them")
    p.add_argument("--solves", action="store_true", help="also time the solver on the whole pool and narrowed")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args()
    if not (args.dataset / "manifest.parquet").is_file():
        sys.exit(f"{args.dataset}: not a built dataset (build the shared sets with picaffect build first)")
    pool, how = with_features(args.dataset, args.work, not args.no_compute)
    print(f"pool: {len(pool.table)} pictures of {args.dataset.name}; {how}")
    print(f"request: {GOAL['sets']} sets of {GOAL['size']}, {GOAL['differ']} apart, balanced by source, matched on "
          f"{', '.join(GOAL['match'])}; time limit {args.time_limit:g} s; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f} at the start")
    figures = goal(pool, args.time_limit)
    for text in figures["notes"]:
        print(f"  note: {text}")
    if not figures["found"]:
        print(f"select: no sets in {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU: {figures['error']}")
    else:
        print(f"select: {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU ({figures['solver']}); worst "
              f"TOST p {figures['worst_tost_p']:.1e}; goal under {GOAL_S:g} s: "
              f"{'met' if figures['under_goal'] else 'not met'}; load average {os.getloadavg()[0]:.2f} at the end")
        counts = figures["counts"]
        for k, (row, means) in enumerate(zip(counts["per_set"], figures["sets"]), 1):
            print(f"  set {k}: " + ", ".join(f"{n} {level}" for level, n in zip(counts["levels"], row)) + "; " +
                  ", ".join(f"{d} {v['mean']:.2f} (SD {v['sd']:.2f})" for d, v in means.items()))
    if args.json:
        from picaffect.core.atomic import write_bytes_atomically

        write_bytes_atomically(args.json, (json.dumps(figures, indent=1, default=str) + "\n").encode())
    if args.solves:
        solver_comparison(pool, args.time_limit / 3)


if __name__ == "__main__":
    main()
