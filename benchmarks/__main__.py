"""``python -m benchmarks`` (``make bench``): every speed benchmark, one results file.

    .venv/bin/python -m benchmarks [--peer-python .venv-peer/bin/python] [--data ../shared/data]
        [--out results/bench] [--work runs] [--only train,predict] [--max-load 0.5] [--busy-ok]
    .venv/bin/python -m benchmarks --smoke      # the whole bench at toy sizes: checks it runs, measures nothing

Refuses to start (exit status 3) when the 1-minute load average is at or above
``--max-load`` (0.5), unless ``--busy-ok``: a figure from a busy machine describes the
other jobs. Writes ``results/bench/<date>.json``; ``make figures`` (scripts/figures.py)
then rewrites the speed tables from it. Exit status 1 when a benchmark failed.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import datasets, machine, runner

ROOT = runner.ROOT


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared rated sets")
    p.add_argument("--work", type=Path, default=ROOT / "runs",
                   help="scratch folder: built datasets in WORK/data/ (runs/data/, shared with the other scripts)")
    p.add_argument("--out", type=Path, default=None, help="results folder (results/bench; smoke: WORK/smoke-results)")
    p.add_argument("--peer-python", help="a Python with tensorflow-cpu and keras: the training peer (make peer-venv)")
    p.add_argument("--only", help=f"comma-separated, of {', '.join(runner.NAMES)}")
    p.add_argument("--smoke", action="store_true", help="toy sizes and a synthetic set: checks the bench runs")
    p.add_argument("--max-load", type=float, default=0.5, help="refuse at or above this 1-minute load average")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the load to fall before refusing")
    p.add_argument("--settle", type=float, default=None,
                   help="seconds to wait before each benchmark for the load to fall under --max-load (240; smoke 0)")
    p.add_argument("--busy-ok", action="store_true", help="run on a busy machine anyway (the results say so)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per benchmark (1500; smoke 300)")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(runner.NAMES)
    unknown = set(names) - set(runner.NAMES)
    if unknown:
        p.error(f"--only: unknown benchmark {', '.join(sorted(unknown))}; choose from {', '.join(runner.NAMES)}")
    args.names = names
    # the benchmarks run from the repository root: paths given from elsewhere must still hold (links kept: a
    # venv's python is one)
    args.data, args.work = args.data.absolute(), args.work.absolute()
    args.out = args.out.absolute() if args.out else None
    args.peer_python = str(Path(args.peer_python).absolute()) if args.peer_python else None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    started = runner.now()
    load = runner.wait_for_idle(args.max_load, 0 if args.smoke else args.wait)
    if load is not None and load >= args.max_load:
        if args.smoke:
            print(f"load {load:.2f}: smoke mode measures nothing, so it runs anyway")
        elif not args.busy_ok:
            print(f"The machine is not idle: 1-minute load average {load:.2f} >= {args.max_load} (other jobs are "
                  f"running). Figures measured now would describe them, not picaffect. Run the bench when the machine "
                  f"is idle, or add --busy-ok to measure anyway (the results file records the load).", file=sys.stderr)
            return 3
        else:
            print(f"load {load:.2f} >= {args.max_load}: measuring anyway (--busy-ok); the results say so", flush=True)
    machine.become_subreaper()

    if args.smoke:
        data = args.work / "smoke-sets"
        datasets.synthetic_oasis(data / "oasis")
        sets, size, photos = ("oasis",), 80, data / "oasis" / "images"
    else:
        data, size, photos = args.data, 150, args.data / "emotion6" / "images"
        sets = datasets.present_sets(data)
        if not sets and {"build", "train"} & set(args.names):
            print(f"no rated sets ({', '.join(datasets.SETS)}) under {data}: pass --data", file=sys.stderr)
            return 2
    train_data, built = None, False
    if "train" in args.names:
        train_data, built = datasets.ensure_dataset(data, sets, size, args.work)
        print(f"training data: {train_data} ({'built now' if built else 'reused'})", flush=True)
    chosen = [b for b in runner.plan(data, sets, train_data or Path(), args.smoke, args.peer_python, photos)
              if b.name in args.names]
    out = args.out or (args.work / "smoke-results" if args.smoke else ROOT / "results" / "bench")
    timeout = args.timeout or (300 if args.smoke else 1500)
    path, results = runner.run_all(
        chosen, python=sys.executable, timeout_s=timeout, max_load=args.max_load, smoke=args.smoke, command=command,
        started=started, load_at_start=load, out=out,
        settle_s=args.settle if args.settle is not None else (0 if args.smoke else 240),
        dataset={"sets": list(sets), "size": size, "path": str(train_data) if train_data else None, "built": built})
    failed = [b["name"] for b in results["benchmarks"] if b["status"] != "ok"]
    noisy = [b["name"] for b in results["benchmarks"] if b["quiet"] is False]
    took = runner.datetime.fromisoformat(results["finished"]) - runner.datetime.fromisoformat(started)
    print(f"results: {path} ({took.total_seconds() / 60:.1f} minutes)")
    if noisy:
        print(f"other processes used {args.max_load}+ cores during: {', '.join(noisy)} (those figures are marked)")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
