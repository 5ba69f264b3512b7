"""NAPS, the Nencki Affective Picture System (Marchewka et al. 2014).

The ratings spreadsheet (``.xls``, read with xlrd; ``.xlsx`` with openpyxl) has two
banner rows above the header, and the header repeats ``M``/``SD``/``N`` once per rater
group and dimension, so the columns are taken by POSITION. THE LAYOUT IS NOT
CONFIRMED: the defaults below are a guess to override with ``--option``.

Default layout (1-based positions as the options take them; 0-based in brackets):

- header on spreadsheet row 3 (``header_row``), data below it;
- ``id`` 1 [0]: the picture ID, e.g. ``Animals_001_h``; the picture is ``<ID>.jpg``
  in ``images``, extension in any case;
- column 2 [1]: the category, kept in ``extra`` with every other column;
- ``valence`` 3 [2], ``valence_sd`` 4 [3], ``valence_n`` 5 [4]: all raters;
- ``arousal`` 6 [5], ``arousal_sd`` 7 [6], ``arousal_n`` 8 [7]: all raters.

Columns may also be named: ``ID``, or ``M#7`` for the seventh column headed ``M``.
Public code that reads the published file (header on row 3) takes valence from the
7th ``M`` column and arousal from the 9th: ``valence=M#7 arousal=M#9`` (unverified).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import read_id_table

DEFAULTS: dict[str, str] = {
    "ratings": "Valence, arousal and approach-avoidance ratings (Marchewka et al., 2014).xls",
    "sheet": "",
    "header_row": "3",
    "images": "images",
    "id": "1",
    "valence": "3",
    "valence_sd": "4",
    "valence_n": "5",
    "arousal": "6",
    "arousal_sd": "7",
    "arousal_n": "8",
    "scale": "1,9",
}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    return read_id_table("naps", root, options, sheet=options["sheet"], header_row=options["header_row"])
