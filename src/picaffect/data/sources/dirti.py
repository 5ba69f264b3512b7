"""DIRTI, the Disgust-RelaTed-Images database (Haberkamp et al. 2017).

The publisher's layout is not confirmed here, so this preset is the generic ``csv``
reader with DIRTI's 1..9 scale: name the rating file and its columns with the
``csv`` options (``ratings``, ``path``, ``valence``, ``arousal``, ...).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from . import generic

DEFAULTS: dict[str, str] = {**generic.DEFAULTS, "scale": "1,9"}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    return generic.read(root, options, source="dirti")
