"""Readers for the published rated picture sets, one module per set.

Each reader module defines ``DEFAULTS`` (its column names, native scale and file
names, all overridable) and ``read(root, options) -> Iterable[Record]``. This
module is the registry: ``read_source("oasis", path)`` picks the reader, merges the
user's overrides, and marks repeated ids so that nothing is silently dropped.
"""
from __future__ import annotations

from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import Mapping

from ..records import Record
from .problems import RatingFileError

PRESETS = ("oasis", "emotion6", "bass", "gaped", "iaps", "smid", "naps", "emomadrid", "cgna", "dirti", "csv")

__all__ = ["PRESETS", "RatingFileError", "read_source"]


# The preset ``csv`` lives in ``generic.py``: a module named ``csv`` would shadow the standard library's.
MODULES = {preset: preset for preset in PRESETS} | {"csv": "generic"}


def _module(preset: str):
    if preset not in PRESETS:
        raise ValueError(f"unknown source {preset!r}; known: {', '.join(PRESETS)}")
    return import_module(f"{__name__}.{MODULES[preset]}")


def read_source(preset: str, path: str | Path, name: str | None = None,
                options: Mapping[str, str] | None = None) -> list[Record]:
    """Read one published set. ``path`` is its folder (or its rating file).

    ``options`` override the preset's defaults (column names, ``scale`` as
    ``MIN,MAX``, file names); an unknown option is an error, not ignored.
    A rating file that is missing or cannot be parsed raises ``RatingFileError``.
    """
    module = _module(preset)
    merged = dict(module.DEFAULTS)
    for key, value in (options or {}).items():
        if key not in merged:
            raise ValueError(f"source {name or preset!r}: unknown option {key!r}; "
                             f"{preset} understands: {', '.join(sorted(merged))}")
        merged[key] = value
    path = Path(path)
    if not path.exists():
        raise RatingFileError(path, "does not exist")
    records = list(module.read(path, merged))
    label = name or preset
    return mark_duplicates([replace(r, source=label) for r in records])


def mark_duplicates(records: list[Record]) -> list[Record]:
    """Let each id enter once: its first usable row is kept, every other row is skipped saying so.

    Publishers list some pictures twice (IAPS rates a dozen numbers in two sets, with
    different values). A picture in the dataset twice would weigh double and could sit
    in train and validation at once, so one rating is kept: the first in file order
    that is usable, a rule anyone can check against the file. The skipped row's reason
    gives both ratings and where the kept one is.
    """
    kept: dict[str, Record] = {}
    for record in records:
        if record.problem is None and record.id not in kept:
            kept[record.id] = record
    for i, record in enumerate(records):
        first = kept.get(record.id)
        if first is None or first is record or record.problem is not None:
            continue
        records[i] = replace(record, problem=(
            f"duplicate id {record.id!r}: rated again here (valence {record.valence_raw:g}, arousal "
            f"{record.arousal_raw:g}); kept the first usable rating, at {first.row} (valence "
            f"{first.valence_raw:g}, arousal {first.arousal_raw:g}), so the picture enters once"))
    return records
