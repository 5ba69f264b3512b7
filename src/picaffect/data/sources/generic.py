"""The generic reader: any CSV, TSV or spreadsheet naming one picture per row.

The escape hatch for every set without a preset (LAI-GAI, NAPS variants, private
sets). Options:

- ``ratings``: the rating file, when the source path is a folder;
- ``sep``: the text separator (``,`` ``;`` ``tab``); "" = from the extension (.tsv is
  tab), else whichever of tab, ``;``, ``,`` is on the most of the first lines;
- ``sheet``: a spreadsheet's sheet, by name or 1-based number ("" = the first);
- ``header_row``: the header's line (text) or row (sheet) number; "" = the first line
  that holds the named columns; ``0`` = the file has no header (name columns by position).
  A first line that holds numbers where the ratings are stops the build rather than
  being taken for a header;
- ``path``: the column holding the picture's path, relative to ``root`` (``\\`` is read
  as ``/``); ``root``: "" = the rating file's folder, a relative root is taken from there;
- ``valence``, ``arousal``: the rating columns; ``scale``: their native scale
  ``MIN,MAX``. The default ``1,9`` is only a default: give the set's own scale;
- ``id`` (default: the path cell), ``group``, ``valence_sd``, ``arousal_sd``,
  ``valence_n``, ``arousal_n``: optional columns, "" = absent.

Columns are named by header name or 1-based position (see ``tables``); every
column no option names is kept in ``extra``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import load_table, locate, parse_scale, sep_option, stats_options, table_record

DEFAULTS: dict[str, str] = {
    "ratings": "",
    "sep": "",
    "sheet": "",
    "header_row": "",
    "path": "path",
    "root": "",
    "valence": "valence",
    "arousal": "arousal",
    "scale": "1,9",
    "id": "",
    "group": "",
    "valence_sd": "",
    "arousal_sd": "",
    "valence_n": "",
    "arousal_n": "",
}


def read(root: Path, options: dict[str, str], source: str = "csv") -> Iterator[Record]:
    folder, ratings = locate(root, options["ratings"])
    scale = parse_scale(options["scale"])
    base = folder / options["root"] if options["root"].strip() else folder
    required = {k: options[k] for k in ("path", "valence", "arousal", "id", "group") if options[k].strip()}
    table = load_table(ratings, required, stats_options(options), sep=sep_option(options["sep"]),
                       sheet=options["sheet"], header_row=options["header_row"])
    for row in table.rows:
        cell = table.get(row, "path").replace("\\", "/")
        path = base / cell if cell else None
        picture_id = table.get(row, "id") if "id" in required else cell
        yield table_record(source, table, row, id=picture_id, path=path, scale=scale,
                           group=table.get(row, "group") or None,
                           problem=None if cell else "no picture path in this row")
