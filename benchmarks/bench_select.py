"""How long `picaffect select` takes on the shared sets, beside the solver offered the whole pool (the baseline).

The request is the stimulus-selection issue's: two sets of 40 from OASIS, Emotion6 and
BASS (3,463 pictures), valence means at least 3 points apart, arousal equivalent within
0.3. For each centre `select` tries, the same mixed-integer programme is solved twice
within the same time limit: with every picture offered to every set (about 7,000
binaries, what `select` did until a loaded CI machine found nothing in 20 s), and with
each set's 5N cheapest pictures (`narrowed`, what `select` now tries first). Then
`select` itself, end to end. Prints wall and CPU seconds, whether sets were found, and
their worst TOST p; the load average beside them, since the figures mean little on a
busy machine.

    .venv/bin/python benchmarks/bench_select.py [--data ../shared/data] [--work runs/bench] [--time-limit 10]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import ensure_dataset, present_sets  # noqa: E402

from picaffect.selection import read_pool, request_from_text, select  # noqa: E402
from picaffect.selection.choose import eligible_rows, worst_tost_p  # noqa: E402
from picaffect.selection.optimise import Problem, candidate_centres, narrowed, solve  # noqa: E402
from picaffect.selection.pool import widths  # noqa: E402
from picaffect.selection.statistics import set_statistics  # noqa: E402


def timed_solve(problem: Problem, centre: dict[str, float], limit_s: float) -> tuple[float, float, str]:
    """Wall and CPU seconds of one solve, and its outcome (the worst TOST p of the sets, or why there are none)."""
    wall, cpu = time.perf_counter(), time.process_time()
    selection, _, infeasible = solve(problem, centre, time_limit_s=limit_s)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if selection is None:
        return wall, cpu, "infeasible" if infeasible else "none found"
    values = problem.values
    statistics = set_statistics([values[m] for m in selection.members], dict(problem.request.match), 0.05)
    return wall, cpu, f"TOST p {worst_tost_p(statistics):.1e}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    p.add_argument("--work", type=Path, default=Path("runs/bench"), help="where the 16 px build is kept and reused")
    p.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve")
    args = p.parse_args()
    sets = present_sets(args.data)
    if not sets:
        sys.exit(f"no shared sets under {args.data}: pass --data")
    folder, _ = ensure_dataset(args.data, sets, 16, args.work)
    pool = read_pool(folder)
    request = request_from_text(sets=2, size=40, differ="valence:3", match=["arousal:0.3"])
    values = pool.table[["valence", "arousal"]].to_numpy(float)
    problem = Problem(values, widths(pool), eligible_rows(pool, request), request)
    print(f"select on {len(values)} pictures of {', '.join(sets)}: 2 sets of 40, valence 3 apart, arousal within "
          f"0.3; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    print(f"{'arousal centre':>14}  {'offered':>16}  {'wall s':>6}  {'CPU s':>6}  outcome")
    for c in candidate_centres(problem, "arousal"):
        centre = {"arousal": c}
        for label, candidates in (("whole pool", problem), ("5N cheapest", narrowed(problem, centre, 5 * 40))):
            wall, cpu, outcome = timed_solve(candidates, centre, args.time_limit)
            print(f"{c:14.2f}  {label:>16}  {wall:6.1f}  {cpu:6.1f}  {outcome}")
    wall, cpu = time.perf_counter(), time.process_time()
    result = select(pool, request)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"select end to end: {wall:.1f} s wall, {cpu:.1f} s CPU, arousal TOST p "
          f"{worst_tost_p(result.statistics):.1e}; load average "
          f"{os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
