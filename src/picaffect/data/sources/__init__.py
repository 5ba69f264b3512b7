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

__all__ = ["PRESETS", "RatingFileError", "read_source", "reader_defaults"]


# The preset ``csv`` lives in ``generic.py``: a module named ``csv`` would shadow the standard library's.
MODULES = {preset: preset for preset in PRESETS} | {"csv": "generic"}


def _module(preset: str):
    if preset not in PRESETS:
        raise ValueError(f"unknown source {preset!r}; known: {', '.join(PRESETS)}")
    return import_module(f"{__name__}.{MODULES[preset]}")


def reader_defaults(preset: str) -> dict[str, str]:
    """The options a preset understands, with their default values."""
    return dict(_module(preset).DEFAULTS)


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
    """Keep the first row of each id; later ones become skipped rows that say so."""
    first_row: dict[str, str] = {}
    for i, record in enumerate(records):
        if record.id in first_row:
            if record.problem is None:
                records[i] = replace(record, problem=f"duplicate id {record.id!r} (first at {first_row[record.id]})")
        else:
            first_row[record.id] = record.row
    return records
