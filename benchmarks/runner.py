"""Run every speed benchmark in sequence and write one results file (``python -m benchmarks``).

Each benchmark is its own script, run here as a child process with ``--json`` (so each
still runs by hand, and one that crashes or hangs costs only its own row); this module
adds what a figure needs to be read: the machine, the load before and after, the CPU
that other processes took meanwhile, the exact command, and the date.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from picaffect.core.atomic import write_bytes_atomically

from . import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NAMES = ("build", "train", "inference", "predict", "serve", "ray")


@dataclass
class Benchmark:
    """One script and its arguments for this run."""
    name: str
    script: str
    args: list[str] = field(default_factory=list)

    def command(self, python: str, json_out: Path) -> list[str]:
        return [python, str(HERE / self.script), *self.args, "--json", str(json_out)]

    def shown(self) -> str:
        """The command as a user retypes it from the repository root."""
        return shlex.join(["python", f"benchmarks/{self.script}", *(_relative(a) for a in self.args)])


def _relative(arg: str) -> str:
    """A path argument as seen from the repository root (``runs/data/...``, ``../shared/data``)."""
    if "/" not in arg:
        return arg
    path = Path(arg).absolute()
    for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
        if path.is_relative_to(base):
            return prefix + str(path.relative_to(base))
    return arg


def plan(data: Path, sets: tuple[str, ...], train_data: Path, smoke: bool, peer_python: str | None,
         photos: Path) -> list[Benchmark]:
    """Every benchmark with its arguments: sized for a full run in under 30 minutes on 2 cores, or tiny."""
    peer = ["--peer-python", peer_python] if peer_python else []
    if smoke:
        return [
            Benchmark("build", "bench_build.py", ["--data", str(data), "--sets", ",".join(sets), "--size", "80"]),
            Benchmark("train", "bench_train.py", ["--data", str(train_data), "--models", "emosepar", "--configs",
                                                  "fp32_nchw,bf16_channels_last", "--batch", "8", "--warmup", "0",
                                                  "--seconds", "0", "--max-steps", "2", "--steps", "2", "--rounds",
                                                  "1", *peer]),
            Benchmark("inference", "bench_inference.py", ["--models", "emosepar,default", "--steps", "1", "--warmup",
                                                          "0", "--batch", "2", "--size", "80", "--device", "cpu"]),
            Benchmark("predict", "bench_predict.py", ["--photos", str(photos), "--n", "8", "--rounds", "1",
                                                      "--walls", "1"]),
            Benchmark("serve", "bench_serve.py", ["--clients", "2", "--requests", "1", "--pictures", "4",
                                                  "--deadline", "120"]),
            Benchmark("ray", "bench_ray.py", ["--n", "8"]),
        ]
    return [
        Benchmark("build", "bench_build.py", ["--data", str(data), "--sets", ",".join(sets), "--size", "150"]),
        # torch.compile is left out of the full run: its first steps compile for about 5 minutes across the four
        # models and it was slower than eager bf16 for every one (results/bench/2026-12-02-013508.json); `bench_train.py`
        # still measures it when asked with --configs.
        Benchmark("train", "bench_train.py", ["--data", str(train_data), "--configs",
                                              "fp32_nchw,fp32_channels_last,bf16_channels_last", *peer]),
        Benchmark("inference", "bench_inference.py", ["--steps", "3", "--device", "cpu"]),
        Benchmark("predict", "bench_predict.py", ["--photos", str(photos), "--n", "256"]),
        Benchmark("serve", "bench_serve.py", ["--clients", "40", "--requests", "5"]),
        Benchmark("ray", "bench_ray.py", ["--n", "1000"]),
    ]


def _stream(pipe, sink: list[str], prefix: str) -> None:
    for line in pipe:
        sink.append(line)
        print(f"{prefix}{line}", end="", flush=True)


def _stop(proc: subprocess.Popen) -> None:
    """End a benchmark script and whatever it started (its own process group): politely, then not."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # every process of the group has ended already
            break
        try:
            proc.wait(timeout=20)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def run_one(bench: Benchmark, python: str, timeout_s: float) -> dict:
    """Run one benchmark script; its figures, or why there are none, with the meter's readings."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        started = now()
        meter = machine.Meter.start()
        lines: list[str] = []
        proc = subprocess.Popen(bench.command(python, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=ROOT, start_new_session=True)
        reader = threading.Thread(target=_stream, args=(proc.stdout, lines, f"[{bench.name}] "), daemon=True)
        reader.start()
        status, reason = "ok", None
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            status, reason = "failed", f"stopped after the {timeout_s:.0f} s limit"
        except BaseException:  # Ctrl-C: the script runs in its own session, so the terminal's signal missed it
            _stop(proc)
            raise
        reader.join(timeout=10)
        machine.reap_orphans()
        reading = meter.read()
        if status == "ok" and proc.returncode != 0:
            status, reason = "failed", f"exit status {proc.returncode}"
        figures = json.loads(out.read_text()) if status == "ok" and out.is_file() else None
        if status == "ok" and figures is None:
            status, reason = "failed", "the script wrote no figures"
    return {"name": bench.name, "command": bench.shown(), "started": started, "status": status, "reason": reason,
            **reading, "figures": figures, "output": "".join(lines)[-6000:]}


def now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def write_results(results: dict, folder: Path) -> Path:
    """``folder/<start date and time>.json``, written whole (never seen half-written)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(results["started"]).strftime("%Y-%m-%d-%H%M%S")
    return write_bytes_atomically(folder / f"{stamp}.json", (json.dumps(results, indent=2) + "\n").encode())


def quiet(entry: dict, max_load: float) -> bool | None:
    """Whether other processes stayed under ``max_load`` cores during the benchmark (None: not known)."""
    return None if entry.get("others_cpu") is None else entry["others_cpu"] < max_load


def run_all(benchmarks: list[Benchmark], *, python: str, timeout_s: float, max_load: float, smoke: bool,
            command: str, started: str, load_at_start: float | None, dataset: dict, out: Path,
            settle_s: float = 0.0) -> tuple[Path, dict]:
    """Every benchmark in turn; the results file is rewritten after each, so an interrupted run keeps its rows.

    Before each benchmark it waits up to ``settle_s`` for the 1-minute load average to fall under ``max_load``:
    the average decays over minutes, so right after a benchmark that kept both cores busy it still reads near 2
    although nothing runs, and a row measured then would look busy when it was not (or be, if something else
    had started meanwhile)."""
    results = {"schema": 1, "smoke": smoke, "command": command, "started": started, "finished": None,
               "max_load": max_load, "load_at_start": load_at_start, "machine": machine.describe(python),
               "dataset": dataset, "benchmarks": []}
    path = write_results(results, out)
    for bench in benchmarks:
        waited = time.monotonic()
        load = wait_for_idle(max_load, settle_s)
        waited = time.monotonic() - waited
        settled = f", after {waited:.0f} s for it to settle" if waited >= 1 else ""
        print(f"== {bench.name}: {bench.shown()}  (load {load if load is None else round(load, 2)}{settled})",
              flush=True)
        entry = run_one(bench, python, timeout_s)
        entry["quiet"] = quiet(entry, max_load)
        results["benchmarks"].append(entry)
        note = "" if entry["quiet"] is not False else f"; other processes used {entry['others_cpu']:.2f} cores"
        print(f"== {bench.name}: {entry['status']}{' (' + entry['reason'] + ')' if entry['reason'] else ''} in "
              f"{entry['seconds']:.0f} s{note}", flush=True)
        write_results(results, out)
    results["finished"] = now()
    return write_results(results, out), results


def wait_for_idle(max_load: float, wait_s: float) -> float | None:
    """The 1-minute load average, after waiting up to ``wait_s`` for it to fall under ``max_load``."""
    deadline = time.monotonic() + wait_s
    load = machine.load_average()
    while load is not None and load >= max_load and time.monotonic() < deadline:
        time.sleep(5)
        load = machine.load_average()
    return load
