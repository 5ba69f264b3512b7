"""How the ``picaffect`` command starts: which commands need the training extra, and which
re-execute once with glibc's allocator told to keep freed memory (``core.runtime.allocator_env``):
about twice the CPU training speed, which an in-process setting only partly gets.

``predict`` on the ONNX backend (the default with the shipped model) does not re-execute:
it starts at once, without a second interpreter and without importing torch.
"""
from __future__ import annotations

import os
import sys
from argparse import Namespace
from collections.abc import Callable
from importlib.util import find_spec

from ..core.errors import PicaffectError, UsageError
from ..core.runtime import allocator_env

# Commands that need the training extra (torch, pandas, ...); `predict` and `demo` run without it.
TRAIN_COMMANDS = {"build", "train", "evaluate", "experiment", "retrain", "export", "calibrate"}
# Commands that run torch whatever their options; `predict` runs it on the torch backend only.
HEAVY_COMMANDS = {"train", "experiment", "evaluate", "features", "retrain", "demo", "serve", "calibrate"}


def check_extras(command: str) -> None:
    """A ``UsageError`` that names the extra to install when ``command`` needs one this install lacks."""
    if command in TRAIN_COMMANDS and (find_spec("torch") is None or find_spec("pandas") is None):
        raise UsageError(f"`picaffect {command}` needs the training extra: pip install 'picaffect[train]' "
                         f"(this install scores pictures only)")
    if command == "select" and any(find_spec(m) is None for m in ("scipy", "pandas", "matplotlib")):
        raise UsageError("`picaffect select` needs scipy, pandas and matplotlib: pip install 'picaffect[select]'")


def wants_allocator(argv: list[str], parse: Callable[[list[str]], Namespace]) -> bool:
    """Whether the command line ``argv`` will run torch, whose CPU speed the allocator setting doubles;
    ``parse`` reads a ``predict`` or ``serve`` command line (its backend decides).

    ``predict`` and ``serve`` on the ONNX backend (the default with the shipped model) do
    not: they start at once, without a second interpreter and without importing torch,
    and a server hands the memory of a burst of uploads back when the burst is over.
    """
    if not argv or argv[0] not in HEAVY_COMMANDS | {"predict"}:
        return False
    if argv[0] not in ("predict", "serve"):
        return True
    try:
        args = parse(argv)
    except SystemExit:  # a usage error: the command itself reports it
        return False
    if getattr(args, "engine", None) == "ray":
        return False
    from ..inference.backends import choose  # here: only a predict or serve command line pays for it

    try:
        return choose(args.model, getattr(args, "backend", "auto"), args.device) == "torch"
    except PicaffectError:
        return False


def relaunch_with_allocator(argv: list[str]) -> None:
    """Replace this process by ``python -m picaffect ARGV`` under the allocator setting; returns only when
    the setting is off or already in place."""
    env = allocator_env()
    if env is not None:
        os.execve(sys.executable, [sys.executable, "-m", "picaffect", *argv], env)
