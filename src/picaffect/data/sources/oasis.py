"""OASIS, the Open Affective Standardized Image Set (Kurdi, Lozano & Banaji 2017).

``OASIS.csv`` (old-Mac CR line endings) has an unnamed first column (``I1``..``I900``),
then ``Theme,Category,Source,Valence_mean,Valence_SD,Valence_N,Arousal_mean,...`` on
1..7. The picture is ``images/<Theme>.jpg`` with the theme stripped: two themes carry
a trailing space in the CSV (``"Crosswalk 1 "``, ``"War 2 "``) but not in the file
name. Themes come numbered in groups of near-duplicates (``Acorns 1..3``), so the
group is the theme without its number.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import images_folder, load_table, locate, parse_scale, stats_options, table_record

DEFAULTS: dict[str, str] = {
    "ratings": "OASIS.csv",
    "images": "images",
    "theme": "Theme",
    "valence": "Valence_mean",
    "arousal": "Arousal_mean",
    "valence_sd": "Valence_SD",
    "arousal_sd": "Arousal_SD",
    "valence_n": "Valence_N",
    "arousal_n": "Arousal_N",
    "scale": "1,7",
}


def theme_group(theme: str) -> str:
    """``Acorns 1`` -> ``Acorns``: the numbered pictures of one theme are near-duplicates."""
    return re.sub(r"\s*\d+$", "", theme.strip()) or theme.strip()


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    folder, ratings = locate(root, options["ratings"])
    scale = parse_scale(options["scale"])
    images = images_folder(folder, options["images"])
    required = {k: options[k] for k in ("theme", "valence", "arousal")}
    table = load_table(ratings, required, stats_options(options), sep=",")
    for row in table.rows:
        theme = table.get(row, "theme")
        path = images / f"{theme}.jpg" if theme else None
        problem = None if theme else "no Theme in this row"
        yield table_record("oasis", table, row, id=theme, path=path, scale=scale,
                           group=theme_group(theme) if theme else None, problem=problem)
