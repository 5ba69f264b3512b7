"""GAPED, the Geneva Affective PicturE Database (Dan-Glauser & Scherer 2011).

One tab-separated rating file per category (``A.txt H.txt N.txt P.txt Sn.txt Sp.txt``)
beside one picture folder per category (``A/ H/ ...``). The header's first cell is
empty (that column holds the picture name), then ``Valence`` and ``Arousal`` on
0..100; ``A`` and ``H`` have two more columns (``Internal norms``, ``External norms``),
kept in ``extra``. Rows name ``A001.jpg`` but the files are ``A/A001.bmp``: the
picture is found by its stem inside the category folder, whatever its extension.
The ``*_with SD.txt`` twins and ``Thumbs.db`` are never read. The id is the stem
(``A001``) and the group is the category.

``categories`` lists the categories to read (comma-separated); their rating files
are ``<category>.txt`` and their folders ``<category>/`` under ``images`` (default:
the set folder itself). Given a rating file instead of the folder, its folder is
the set folder and all ``categories`` are read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .problems import RatingFileError
from .tables import ImageFolder, images_folder, load_table, parse_scale, picture_stem, stats_options, table_record

DEFAULTS: dict[str, str] = {
    "categories": "A,H,N,P,Sn,Sp",
    "images": "",
    "image": "1",
    "valence": "Valence",
    "arousal": "Arousal",
    "scale": "0,100",
}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    folder = root.parent if root.is_file() else root
    scale = parse_scale(options["scale"])
    categories = [c.strip() for c in options["categories"].split(",") if c.strip()]
    if not categories:
        raise ValueError("option categories must list at least one GAPED category, e.g. A,H,N,P,Sn,Sp")
    for category in categories:
        ratings = folder / f"{category}.txt"
        if not ratings.is_file():
            raise RatingFileError(ratings, f"rating file of GAPED category {category!r} not found")
        yield from _category(ratings, category, images_folder(folder, options["images"]) / category,
                             scale, options)


def _category(ratings: Path, category: str, image_dir: Path, scale, options) -> Iterator[Record]:
    required = {k: options[k] for k in ("image", "valence", "arousal")}
    table = load_table(ratings, required, stats_options(options), sep="\t")
    pictures = ImageFolder(image_dir)
    for row in table.rows:
        stem = picture_stem(table.get(row, "image"))
        if stem:
            path, problem = pictures.lookup(stem, prefer=".bmp")
        else:
            path, problem = None, "no picture name in this row"
        yield table_record("gaped", table, row, id=stem, path=path, scale=scale,
                           group=category, problem=problem)
