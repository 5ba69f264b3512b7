"""Process-level settings that decide CPU training speed more than the model does.

On this kind of machine glibc hands PyTorch's large activation buffers back to
the kernel after every operation and faults them in again; that costs 40-50 % of
the CPU as system time (SPEC.md, "Measured on this 2-core machine"). Two fixes,
both trading about 1.3 GB of peak memory for a 2x speed-up:

- ``GLIBC_TUNABLES`` set before the interpreter starts (the fastest): the
  ``picaffect`` launcher re-executes itself with it for heavy commands;
- ``tune_allocator()`` (``mallopt`` from inside the process, before the first
  large tensor): an explicit opt-in for API users and notebooks. Nothing in the
  library calls it behind the user's back, because it changes the whole host
  process: about 1.3 GB more peak memory, never handed back to the system.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from .errors import DeviceError
from .names import DEVICES, check

GLIBC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=34359738368"
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_tuned = False


def _tuning_allowed() -> bool:
    """Linux only, and never when the user turned it off with PICAFFECT_NO_ALLOCATOR_TUNING."""
    return sys.platform.startswith("linux") and not os.environ.get("PICAFFECT_NO_ALLOCATOR_TUNING")


def allocator_env() -> dict[str, str] | None:
    """The environment for a re-executed process, or None when nothing would change."""
    if not _tuning_allowed():
        return None
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return None
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), GLIBC_TUNABLES]))
    return env


def tune_allocator() -> bool:
    """Opt in to keeping freed memory in the heap (glibc only): about 2x CPU speed for
    about 1.3 GB more peak memory. Call it once, before the first large tensor.
    Returns whether it was applied."""
    global _tuned
    if _tuned:
        return True
    if not _tuning_allowed():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    _tuned = ok
    return ok


def trim_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``); False where
    there is no glibc.

    After a burst of large allocations (a server decoding many uploads on several
    threads), glibc keeps the freed memory in its per-thread arenas, so the process
    stays at its peak size long after the load ended. A long-running process calls
    this when it goes idle; it costs a few milliseconds, and nothing while busy.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (musl): nothing to trim this way
        return False


def pick_device(name: str = "auto"):
    """``auto`` takes CUDA when there is one; asking for CUDA without one is a ``DeviceError``."""
    import torch  # here, so that the launcher can read this module without paying for torch

    check("device", str(name), DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for, but torch sees no CUDA device (use --device cpu or auto)")
    return torch.device(name)
