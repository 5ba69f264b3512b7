"""``picaffect select`` as one call: from a scores file, less the pictures to leave out, to the written sets.

The command line parses its options into a ``Request`` (``request_from_text``) and prints;
the order of the work is decided here, so that a Python user gets the same: the output
folder is checked before the scores are read, the notes on the pool (rows left out,
pictures excluded, bounds chosen) are given as they arise, whether or not the request
then succeeds, the time limit counts from the start, and the five files are written, as
one unit, only once the sets are chosen.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .choose import Result, select
from .pool import exclude, read_exclusions, read_pool
from .report import check_out, write_result
from .request import Request


def _ignore(text: str) -> None:
    """The default ``note``: the notes stay in the result's ``notes``."""


def select_from_files(scores: str | Path, out: str | Path, request: Request, *,
                      exclude_files: Sequence[str | Path] = (),
                      note: Callable[[str], None] = _ignore, overwrite: bool = False,
                      decimal: str = ".") -> tuple[Result, list[Path]]:
    """Choose ``request``'s sets from ``scores`` (a scores file or a built dataset folder) without the pictures
    that ``exclude_files`` name, and write them to the folder ``out``; returns the result and the files written.

    ``note`` hears the pool's and the optimiser's notes (rows left out, pictures excluded, warnings) as they
    arise. ``overwrite`` lets a previous selection in ``out`` be replaced; ``decimal=","`` reads decimal commas.
    """
    start = time.perf_counter()
    out = check_out(out, overwrite)
    heard: list[str] = []
    names = read_exclusions(list(exclude_files), heard)
    pool = exclude(read_pool(scores, decimal=decimal), names)
    pool.notes[:0] = heard
    for text in pool.notes:
        note(text)
    result = select(pool, request, deadline=start + request.time_limit_s, note=note)
    return result, write_result(result, out, overwrite=overwrite)
