"""``picaffect train --nproc N``: the same command as N data-parallel ranks under torchrun, on this machine.

Torch-free: the launching process only starts the ranks and waits for them; each rank
imports torch and joins the process group (``distributed.setup``).
"""
from __future__ import annotations

import os
import subprocess
import sys

from ..core.errors import UsageError
from ..core.runtime import allocator_env


def under_torchrun() -> bool:
    """Whether this process is one rank of several (torchrun sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_rank() -> bool:
    """Rank 0, or the only process: the one that reports."""
    return int(os.environ.get("RANK", "0")) == 0


def torchrun_command(argv: list[str], nproc: int) -> list[str]:
    """The torchrun command line that runs ``picaffect ARGV`` as ``nproc`` ranks; ``--nproc`` is dropped from
    ``argv``, so that the ranks themselves do not launch again."""
    rest, args = [], list(argv)
    while args:
        a = args.pop(0)
        if a == "--nproc":
            args.pop(0)
        elif not a.startswith("--nproc="):
            rest.append(a)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "picaffect", *rest]


def launch_torchrun(argv: list[str], nproc: int) -> None:
    """Run ``picaffect ARGV`` as ``nproc`` ranks (gloo on CPU, NCCL on CUDA) and wait for them; a failed rank is
    a ``UsageError`` (the ranks' own output says why)."""
    code = subprocess.call(torchrun_command(argv, nproc), env=allocator_env() or dict(os.environ))
    if code:
        raise UsageError(f"torchrun with {nproc} processes failed (exit status {code}); see above")


def launch_if_asked(argv: list[str], nproc: int) -> bool:
    """Run ``picaffect ARGV`` as ``nproc`` ranks when more than one is asked for and this process is not a rank
    already; True when it did (the ranks have trained and reported), False when this process should train.

    ``argv`` is the command line as given (``picaffect train ... --nproc N``), passed in rather than read
    from ``sys.argv``, so that ``main(argv)`` called from Python launches what it was given.
    """
    if nproc <= 1 or under_torchrun():
        return False
    launch_torchrun(argv, nproc)
    return True
