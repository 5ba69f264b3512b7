"""What a speed figure depends on besides the code: the machine, and who else used it meanwhile.

A figure from a machine other jobs were using describes the jobs, not picaffect. The
load average cannot tell them apart during a benchmark (it counts the benchmark's own
work), so each benchmark is also charged with ``others_cpu``: the cores that processes
outside the benchmark used while it ran. A sampler walks /proc twice a second and adds
up the CPU time of every user-space process that does not descend from the runner;
the runner makes itself a child subreaper, so that daemons a benchmark starts (Ray's
raylet and workers, which detach from their parent) stay its descendants and count as
the benchmark's own, not as someone else's. A foreign process that starts and ends
between two samples is missed, which a half-second period makes a small loss.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# CPU features that decide CPU training and inference speed (bf16 and int8 paths).
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
LIBRARIES = ("picaffect", "torch", "onnxruntime", "onnx", "numpy", "pillow", "ray", "fastapi", "uvicorn", "httpx")
SPEED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "GLIBC_TUNABLES", "PICAFFECT_NO_ALLOCATOR_TUNING",
             "CUDA_VISIBLE_DEVICES")


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _cpuinfo() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor(), []
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return model, [f for f in FLAGS if f in flags]


def _memory_gb() -> float | None:
    try:
        line = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    except (OSError, StopIteration):
        return None
    return round(int(line.split()[1]) / 2**20, 1)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _torch_cpu(python: str) -> dict:
    """torch's own view (vector ISA it dispatches to, threads), asked in a child so this process stays light."""
    code = ("import json, torch; print(json.dumps({'capability': torch.backends.cpu.get_cpu_capability(), "
            "'threads': torch.get_num_threads(), 'cuda': torch.cuda.is_available()}))")
    run = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else {"error": run.stderr[-300:]}


def _git() -> dict:
    def git(*args: str) -> str | None:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def describe(python: str = sys.executable) -> dict:
    """The machine and software a results file was measured on."""
    model, flags = _cpuinfo()
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "cpu": model, "cpu_flags": flags, "memory_gb": _memory_gb(),
            "platform": platform.platform(), "python": platform.python_version(), "libraries": _versions(),
            "torch_cpu": _torch_cpu(python), "environment": {k: os.environ[k] for k in SPEED_ENV if k in os.environ},
            "git": _git()}


def processes() -> dict[int, tuple[int, int, int]]:
    """Every user-space process now: pid -> (parent pid, start time, CPU ticks used); kernel threads left out."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # ended while we looked
            continue
        ppid = int(fields[1])
        if ppid == 2 or int(entry.name) == 2:  # kthreadd and its children: the kernel's own work
            continue
        table[int(entry.name)] = (ppid, int(fields[19]), int(fields[11]) + int(fields[12]))
    return table


def descendants(table: dict[int, tuple[int, int, int]], root: int) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class OthersSampler:
    """CPU seconds used by processes outside this process's tree, sampled from /proc in a background thread."""

    def __init__(self, period_s: float = 0.5):
        self.period_s, self.root = period_s, os.getpid()
        self.ticks = 0
        self.last = {(pid, start): cpu for pid, (_, start, cpu) in processes().items()}
        self.known = set(self.last)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        table = processes()
        ours = descendants(table, self.root)
        for pid, (_, start, cpu) in table.items():
            key = (pid, start)
            seen = self.last.get(key, 0)  # a process born since the last look used all of its CPU since
            if pid not in ours:
                self.ticks += max(0, cpu - seen)
            self.last[key] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sample()

    def stop(self) -> float:
        """Seconds of CPU the others used since the start."""
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.ticks / os.sysconf("SC_CLK_TCK")


def become_subreaper() -> bool:
    """Orphans of our benchmarks become our children (Linux), so their CPU time is counted as ours once reaped."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_orphans(grace_s: float = 10.0) -> int:
    """Wait (up to ``grace_s``) for the descendants a finished benchmark left behind; returns how many were reaped.

    Call it only when no benchmark is running: it reaps any child."""
    reaped, deadline = 0, time.monotonic() + grace_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped  # no children left
        if pid:
            reaped += 1
        elif time.monotonic() > deadline:
            return reaped
        else:
            time.sleep(0.1)


@dataclass
class Meter:
    """Started before a benchmark, read after it: wall time, load averages, and the others' CPU meanwhile."""
    wall: float
    load_before: float | None
    others: OthersSampler | None

    @classmethod
    def start(cls) -> "Meter":
        sampler = OthersSampler() if Path("/proc/self/stat").is_file() else None
        return cls(time.perf_counter(), load_average(), sampler)

    def read(self) -> dict:
        seconds = time.perf_counter() - self.wall
        others = self.others.stop() / seconds if self.others is not None and seconds > 0 else None
        return {"seconds": round(seconds, 1), "load_before": self.load_before, "load_after": load_average(),
                "others_cpu": None if others is None else round(others, 3)}
