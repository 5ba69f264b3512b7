"""EmoMadrid (Carretie et al. 2019).

The ``EMindex`` spreadsheet, as ``.xlsx`` or as a ``;``-separated CSV with ``,`` decimals
in cp1252 (``EMindex.csv`` is tried when ``EMindex.xlsx`` is absent). A banner row sits
above the header, which is found by its rating columns: ``Mean Valence``/``Mean Arousal``
or, in other releases, ``Valence mean``/``Arousal mean`` (either is accepted). Ratings
are on -2..2. The id is ``EM CODE`` and the picture ``<EM CODE>.jpg`` in ``images``.
Rows whose ``Thumbnail`` is ``Empty`` have no picture: they are yielded with that
problem rather than dropped, so that the counts reconcile.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import ImageFolder, clean_id, images_folder, load_table, locate, parse_scale, stats_options, table_record

DEFAULTS: dict[str, str] = {
    "ratings": "EMindex.xlsx",
    "sheet": "",
    "images": "images",
    "id": "EM CODE",
    "valence": "Mean Valence|Valence mean",
    "arousal": "Mean Arousal|Arousal mean",
    "valence_sd": "",
    "arousal_sd": "",
    "thumbnail": "Thumbnail",
    "scale": "-2,2",
}

NO_PICTURE = "no picture (Thumbnail is Empty)"


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    folder, ratings = locate(root, options["ratings"], other_suffixes=(".csv", ".xls", ".txt"))
    scale = parse_scale(options["scale"])
    pictures = ImageFolder(images_folder(folder, options["images"]))
    required = {k: options[k] for k in ("id", "valence", "arousal")}
    optional = {**stats_options(options), "thumbnail": options["thumbnail"]}
    table = load_table(ratings, required, optional, sheet=options["sheet"])
    for row in table.rows:
        code = clean_id(table.get(row, "id"))
        if table.get(row, "thumbnail").casefold() == "empty":
            path, problem = None, NO_PICTURE
        elif code:
            path, problem = pictures.lookup(code)
        else:
            path, problem = None, "no EM CODE in this row"
        yield table_record("emomadrid", table, row, id=code, path=path, scale=scale, problem=problem)
