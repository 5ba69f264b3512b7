"""IAPS, the International Affective Picture System (Lang, Bradley & Cuthbert 2008).

``AllSubjects_1-20.txt`` is tab-separated with preamble lines before the header (the
header is the first line holding the ``valmn`` column), lines that may end in ``\\``,
and ``.`` for a missing value. Ratings ``valmn``/``aromn`` (+ ``valsd``/``arosd``) are on
1..9. The id is the ``IAPS`` number as text (``2345.1``), without the ``.0`` a
spreadsheet adds (``1050.0`` -> ``1050``); the picture is ``<IAPS>.jpg`` in ``images``,
extension in any case. Some numbers appear twice: every row is yielded and the
registry marks the later ones as duplicates.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import read_id_table

DEFAULTS: dict[str, str] = {
    "ratings": "AllSubjects_1-20.txt",
    "images": "images",
    "id": "IAPS",
    "valence": "valmn",
    "arousal": "aromn",
    "valence_sd": "valsd",
    "arousal_sd": "arosd",
    "scale": "1,9",
}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    return read_id_table("iaps", root, options, sep="\t", line_suffix="\\")
