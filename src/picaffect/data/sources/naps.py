"""NAPS, the Nencki Affective Picture System (Marchewka et al. 2014).

The ratings as published in the journal's supplementary material,
``13428_2013_379_MOESM1_ESM.xls`` (Excel 97, read with xlrd), layout confirmed on a
real copy: one sheet, ``Supplementary Table  `` (two trailing spaces), three header rows.

- row 1: group banners ``Women`` (above column F), ``Men`` (L), ``All`` (R);
- row 2: ``Valence``, ``Av/Ap``, ``Arousal`` above each M/SD pair;
- row 3: ``ID, Category, Nr, V/H, Description``, then ``M, SD`` nine times (Women,
  Men, All; each valence, approach-avoidance, arousal), then ``Width, Height,
  Luminance, Contrast, JPEG_size80, LABL, LABA, LABB, Entropy``, an empty column, and a
  9-row legend (``Acronym, Description``) beside the first data rows;
- data from row 4, one row per picture: ``Animals_001_h, Animals, 1.0, h, Dead Stork, ...``.

The pooled ratings are the ``All`` block: valence mean is the 7th ``M`` column
(0-based column 17), arousal the 9th (column 21), each SD beside it; there are no N
columns. Scale 1..9. The picture is ``<ID>.jpg`` in ``images``, extension in any case;
the category is the group. Columns past the first unnamed header cell (the legend) are
not data and are not kept. With the default columns, the banners above them are
checked (``All``, ``Valence``, ``Arousal``), so that a file laid out otherwise stops
with a message instead of being read from the wrong columns.

The rating file is found as: the file given, else ``ratings`` when set, else the
journal's name, else the name a NAPS distribution uses, else the only spreadsheet or
CSV in the folder. A CSV export of the same sheet (``;`` separators, decimal commas,
lines padded with ``;``) reads the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .problems import RatingFileError
from .tables import (SPREADSHEET_SUFFIXES, ImageFolder, Table, clean_id, images_folder, load_table, locate,
                     parse_scale, stats_options, table_record)

JOURNAL_NAME = "13428_2013_379_MOESM1_ESM.xls"
DISTRIBUTION_NAME = "Valence, arousal and approach-avoidance ratings (Marchewka et al., 2014).xls"

DEFAULTS: dict[str, str] = {
    "ratings": "",
    "sheet": "",
    "header_row": "3",
    "images": "images",
    "id": "ID",
    "group": "Category",
    "valence": "M#7",
    "valence_sd": "SD#7",
    "arousal": "M#9",
    "arousal_sd": "SD#9",
    "scale": "1,9",
}

# What the two banner rows hold above the default rating columns.
EXPECTED_BANNERS = {"valence": ("All", "Valence"), "arousal": ("All", "Arousal")}


def find_ratings(root: Path, name: str) -> tuple[Path, Path]:
    """(set folder, rating file): see the module docstring for the order of the search."""
    if root.is_file() or name:
        return locate(root, name)
    for known in (JOURNAL_NAME, DISTRIBUTION_NAME):
        if (root / known).is_file():
            return root, root / known
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SPREADSHEET_SUFFIXES + (".csv",))
    if len(tables) == 1:
        return root, tables[0]
    found = ", ".join(p.name for p in tables) or "none"
    raise RatingFileError(root, f"no NAPS rating file: expected {JOURNAL_NAME} or the only spreadsheet in the "
                                f"folder (spreadsheets here: {found}); name it with the option ratings")


def check_banners(table: Table, options: dict[str, str]) -> None:
    """With the default columns, the banners above them must say ``All`` and ``Valence``/``Arousal``."""
    if len(table.above) < 2:
        raise RatingFileError(table.path, f"expected two banner rows above the header ({table.header_where}), "
                                          f"found {len(table.above)}: not the published NAPS layout; name the "
                                          "columns with the options valence, arousal and header_row")
    groups, dimensions = table.above[-2], table.above[-1]
    for option, (group, dimension) in EXPECTED_BANNERS.items():
        if options[option] != DEFAULTS[option]:
            continue
        column = table.columns[option]
        banner = next((groups.cell(i).strip() for i in range(column, -1, -1) if groups.cell(i).strip()), "")
        above = dimensions.cell(column).strip()
        if banner.casefold() != group.casefold() or above.casefold() != dimension.casefold():
            raise RatingFileError(table.path, f"column {column + 1} ({options[option]}) is under "
                                              f"{banner or '(no banner)'!r} / {above or '(empty)'!r}, not "
                                              f"{group!r} / {dimension!r}: not the published NAPS layout; name "
                                              f"the {option} column with --option")


def _data_width(header: list[str], first: int) -> int | None:
    """The first unnamed header column after ``first``: the legend beside the data starts past it."""
    for i in range(first + 1, len(header)):
        if not header[i].strip():
            return i
    return None


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    folder, ratings = find_ratings(root, options["ratings"])
    scale = parse_scale(options["scale"])
    pictures = ImageFolder(images_folder(folder, options["images"]))
    required = {k: options[k] for k in ("id", "valence", "arousal")}
    optional = {**stats_options(options), "group": options["group"]}
    table = load_table(ratings, required, optional, sheet=options["sheet"], header_row=options["header_row"])
    check_banners(table, options)
    table.width = _data_width(table.header, max(i for i in table.columns.values() if i is not None))
    for row in table.rows:
        picture_id = clean_id(table.get(row, "id"))
        if picture_id:
            path, problem = pictures.lookup(picture_id)
        else:
            path, problem = None, f"no picture ID in this row (column {options['id']})"
        yield table_record("naps", table, row, id=picture_id, path=path, scale=scale,
                           group=table.get(row, "group") or None, problem=problem)
