"""A per-machine cache of onnxruntime's optimised graphs, so that a second start skips the optimising.

Opening the shipped ``default.onnx`` takes onnxruntime about 100 ms on the 2-core
machine, 85 of them optimising the graph (folding the float16 weights, fusing batch
norms into convolutions, moving convolutions to its blocked layout): a quarter of
``picaffect predict one.jpg``'s wall time. onnxruntime can write the optimised graph
out; opened again with optimisation off, a session is ready in about 12 ms
(``benchmarks/bench_predict.py`` measures the whole command).

The optimised graph holds kernels chosen for this CPU and this onnxruntime version,
so the cache key names both, with the model file's path, size and modification
time: a new file, another onnxruntime or another machine sharing a home folder
gets its own entry. Where the cache lives: ``$PICAFFECT_CACHE_DIR`` (``off`` turns
the cache off), else ``$XDG_CACHE_HOME/picaffect``, else ``~/.cache/picaffect``.
The cache is only ever a shortcut: an entry that cannot be written or read is
passed over and the model file is opened as without it.
"""
from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

OFF = "off"


def cache_dir() -> Path | None:
    """Where optimised graphs go, or None when the user turned the cache off."""
    chosen = os.environ.get("PICAFFECT_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in (OFF, "") else Path(chosen) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "picaffect" / "onnx"


def _cpu() -> str:
    """The CPU's identity as far as compiled kernels care: model name and instruction-set flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() + platform.processor()
    keep = [line for line in info.splitlines() if line.startswith(("model name", "flags"))]
    return "\n".join(dict.fromkeys(keep))


def entry(model: Path, ort_version: str) -> Path | None:
    """The cache file for ``model`` opened by this onnxruntime on this CPU (None: no cache)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        stat = model.stat()
    except OSError:
        return None
    key = "\n".join([str(model.resolve()), str(stat.st_size), str(stat.st_mtime_ns), ort_version, _cpu()])
    return folder / f"{model.stem}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx"
