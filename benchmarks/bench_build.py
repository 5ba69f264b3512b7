"""Build speed and peak memory on the shared sets (issue: `picaffect build`).

Prints images/s of a build of OASIS, Emotion6 and BASS at 150 px with the default
parallel decoding beside the single-worker figure (the baseline, same run), and
the peak resident memory of a build at 1x and 4x the sets (each in a fresh
process, listing the sources again under other names).

    .venv/bin/python benchmarks/bench_build.py [--data ../shared/data] [--size 150] [--sets oasis,emotion6,bass]
        [--json figures.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from picaffect.data.rated_sets import RATED_SETS as SETS


def sources(data: Path, copies: int, sets: tuple[str, ...] = SETS) -> list[str]:
    args = []
    for c in range(copies):
        for name in sets:
            args += ["--source", f"{name}:{name}{c}={data / name}" if c else f"{name}={data / name}"]
    return args


def one_build(data: Path, size: int, workers: int, copies: int, sets: tuple[str, ...] = SETS) -> dict:
    """Run a build in a child process; returns its wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        code = ("import resource, sys, time; from picaffect.app.cli import main; t = time.perf_counter(); "
                "rc = main(sys.argv[1:]); print('SECONDS', time.perf_counter() - t); "
                "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
        cmd = [sys.executable, "-c", code, "build", f"{tmp}/out", *sources(data, copies, sets), "--size", str(size),
               "--workers", str(workers), "--no-plots"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        report = json.loads(Path(f"{tmp}/out/report.json").read_text())
    values = dict(line.split() for line in out.splitlines() if line.startswith(("SECONDS", "PEAK_KB")))
    seconds = float(values["SECONDS"])
    return {"kept": report["kept"], "seconds": seconds, "images_per_s": report["kept"] / seconds,
            "peak_mb": int(values["PEAK_KB"]) / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--workers", type=int, default=0, help="0 = one per core")
    p.add_argument("--sets", default=",".join(SETS), help="which of the presets' folders under --data to build")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file (for python -m benchmarks)")
    args = p.parse_args()
    workers = args.workers or os.cpu_count()
    sets = tuple(args.sets.split(","))

    print(f"build of {', '.join(sets)} at {args.size} px, {os.cpu_count()} cores")
    single = one_build(args.data, args.size, 1, 1, sets)
    print(f"  1 worker  : {single['kept'] / single['seconds']:7.1f} img/s ({single['kept']} in {single['seconds']:.1f} s), "
          f"peak {single['peak_mb']:.0f} MB   <- baseline")
    multi = one_build(args.data, args.size, workers, 1, sets)
    print(f"  {workers} workers : {multi['kept'] / multi['seconds']:7.1f} img/s ({multi['kept']} in {multi['seconds']:.1f} s), "
          f"peak {multi['peak_mb']:.0f} MB   ({single['seconds'] / multi['seconds']:.2f}x)")
    big = one_build(args.data, args.size, workers, 4, sets)
    print(f"  4x sets   : {big['kept'] / big['seconds']:7.1f} img/s ({big['kept']} in {big['seconds']:.1f} s), "
          f"peak {big['peak_mb']:.0f} MB   (1x peak {multi['peak_mb']:.0f} MB; goal < 1024 MB and flat)")

    if args.json:
        from picaffect.core.atomic import write_bytes_atomically

        figures = {"sets": list(sets), "size": args.size, "workers": workers, "one_worker": single, "all_workers": multi,
                   "four_times": big, "speedup": single["seconds"] / multi["seconds"]}
        write_bytes_atomically(args.json, json.dumps(figures, indent=2).encode())


if __name__ == "__main__":
    main()
