"""What the picture features cost: `build` and `predict` with and without them, in the same run.

The goal (issue 34): luminance, contrast, colourfulness, complexity and the rest add at
most 20 % to the wall time of `picaffect build` (which computes them from the decode it
already makes) and of `picaffect predict` (`--describe`). Each measurement runs in a
fresh process, the two conditions alternating (with, without, without, with, ...) so
that a machine's drift falls on both; the medians and the overhead are printed.

    build:   the shared sets (or the smoke set) built at --size with features (the default)
             and with build(..., features=False), --no-plots, the default workers;
             the seconds of the build call itself, as bench_build reports them
    predict: the same --pictures pictures (the first of each set, as files) scored by
             `picaffect predict FOLDER --out x.csv` with and without --describe, with the
             shipped default model; the command's whole wall time, model loading included

    nice -n 19 .venv/bin/python -m benchmarks.bench_features [--data ../shared/data] [--sets oasis,emotion6,bass]
        [--size 224] [--pictures 600] [--repeats 2] [--smoke] [--json figures.json]

--smoke builds a small synthetic set in OASIS's layout and scores its pictures: a check
that the script runs (in well under a minute), with figures that mean nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.datasets import present_sets, synthetic_oasis
from picaffect.data.pictures import is_picture_name
from picaffect.data.rated_sets import RATED_SETS

ROOT = Path(__file__).resolve().parents[1]

# In a fresh process: build the sources in argv[1] (JSON: out, sources, size, features) and print the seconds.
BUILD = """
import json, sys, time
from picaffect.data.build import SourceSpec, build
job = json.loads(sys.argv[1])
specs = [SourceSpec.parse(text) for text in job["sources"]]
start = time.perf_counter()
build(job["out"], specs, size=job["size"], plots=False, progress=False, features=job["features"])
print("SECONDS", time.perf_counter() - start)
"""


def build_seconds(sources: list[str], size: int, features: bool, work: Path) -> float:
    out = work / f"built-{'with' if features else 'without'}-{time.monotonic_ns()}"
    job = json.dumps({"out": str(out), "sources": sources, "size": size, "features": features})
    done = subprocess.run([sys.executable, "-c", BUILD, job], check=True, capture_output=True, text=True)
    return float(next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("SECONDS")))


def predict_seconds(folder: Path, describe: bool, work: Path) -> float:
    out = work / f"scores-{'with' if describe else 'without'}-{time.monotonic_ns()}.csv"
    command = [sys.executable, "-m", "picaffect", "predict", str(folder), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command + (["--describe"] if describe else []), check=True, capture_output=True)
    return time.perf_counter() - start


def pictures_folder(data_folders: list[Path], count: int, work: Path) -> Path:
    """A folder of links to the first ``count`` pictures, taken in turn from each set's files."""
    found = [sorted(p for p in folder.rglob("*") if p.is_file() and is_picture_name(p)) for folder in data_folders]
    chosen = [p for group in zip(*found) for p in group][:count] or [p for group in found for p in group][:count]
    folder = work / "pictures"
    folder.mkdir()
    for i, path in enumerate(chosen):
        (folder / f"{i:05d}{path.suffix.lower()}").symlink_to(path.resolve())
    return folder


def alternate(measure, repeats: int) -> dict[bool, list[float]]:
    """``measure(flag)`` ``2 * repeats`` times, in the order True, False, False, True, True, False, ..."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(repeats):
        for flag in ((True, False) if r % 2 == 0 else (False, True)):
            times[flag].append(measure(flag))
    return times


def summary(name: str, times: dict[bool, list[float]]) -> dict:
    with_, without = statistics.median(times[True]), statistics.median(times[False])
    overhead = with_ / without - 1
    print(f"  {name:8s} without {without:7.2f} s   with {with_:7.2f} s   overhead {overhead:+.1%}   "
          f"(goal at most +20 %; runs {', '.join(f'{t:.2f}' for t in times[False])} / "
          f"{', '.join(f'{t:.2f}' for t in times[True])})")
    return {"without_s": times[False], "with_s": times[True], "median_without_s": without,
            "median_with_s": with_, "overhead": overhead}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--sets", default=",".join(RATED_SETS), help="which shared sets to build and score")
    p.add_argument("--size", type=int, default=224, help="the build's side in pixels (the default model's is 224)")
    p.add_argument("--pictures", type=int, default=600, help="pictures predict scores in each run")
    p.add_argument("--repeats", type=int, default=2, help="runs of each condition (alternating)")
    p.add_argument("--smoke", action="store_true", help="a small synthetic set: a check that the script runs")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
        work = Path(tmp)
        if args.smoke:
            folder = synthetic_oasis(work / "oasis", n=24)
            sources, folders, label = [f"oasis={folder}"], [folder / "images"], "a synthetic set of 24 (smoke)"
            args.pictures, args.repeats = min(args.pictures, 24), 1
        else:
            wanted = [s for s in args.sets.split(",") if s]
            present = [s for s in wanted if s in present_sets(args.data)]
            if present != wanted:
                sys.exit(f"not found under {args.data}: {', '.join(sorted(set(wanted) - set(present)))}")
            sources = [f"{name}={args.data / name}" for name in present]
            folders, label = [args.data / name for name in present], ", ".join(present)
        pictures = pictures_folder(folders, args.pictures, work)
        count = len(list(pictures.iterdir()))
        load = os.getloadavg()[0]
        print(f"picture features: {label} built at {args.size} px, {count} pictures scored; {os.cpu_count()} cores, "
              f"load average {load:.2f} at the start")
        figures = {"sets": label, "size": args.size, "pictures": count, "cores": os.cpu_count(),
                   "measured": time.strftime("%Y-%m-%d %H:%M"), "load_average_start": load,
                   "build": summary("build", alternate(lambda f: build_seconds(sources, args.size, f, work),
                                                        args.repeats)),
                   "predict": summary("predict", alternate(lambda f: predict_seconds(pictures, f, work),
                                                            args.repeats)),
                   "load_average_end": os.getloadavg()[0]}
        print(f"  load average {figures['load_average_end']:.2f} at the end")
    if args.json:
        from picaffect.core.atomic import write_bytes_atomically

        write_bytes_atomically(args.json, (json.dumps(figures, indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
