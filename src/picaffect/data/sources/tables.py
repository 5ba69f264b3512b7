"""What the source readers share: reading a publisher's rating table robustly.

Publishers' files come from Excel, R, SPSS and old Macs, so a reader meets byte
order marks, CR / CRLF / LF line endings, cp1252 text, ``;`` separators with
``,`` decimals, preamble and banner lines above the header, repeated or empty
header cells, and ``.`` / ``NA`` for a missing value. This module turns any of
them into a ``Table``: the header row, then one ``Row`` per data row, each with
its place in the file ("OASIS.csv line 12", "ratings.xls row 5") for messages.

Column options (``valence=Valence_mean``) are resolved here by ``find_column``,
which accepts, for every preset:

- a header name, matched exactly, else ignoring case and repeated spaces;
- a 1-based column position (``2`` = the second column);
- ``NAME#K``: the K-th column headed ``NAME`` (for sheets that repeat ``M``/``SD``/``N``);
- alternatives separated by ``|`` (``Mean Valence|Valence mean``): the first that exists.
"""
from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Iterator, Mapping

from ...core.scale import Scale
from ..pictures import is_picture_name
from ..records import Record
from .problems import RatingFileError

SPREADSHEET_SUFFIXES = (".xls", ".xlsx", ".xlsm", ".ods")
# pandas' reader for each spreadsheet ending, and the package it needs.
SHEET_ENGINES = {".xls": ("xlrd", "xlrd"), ".ods": ("odf", "odfpy")}

# Cell texts that mean "no value" in the publishers' files (IAPS writes '.').
MISSING = {"", ".", "na", "n/a", "nan", "none", "null", "#n/a"}


# --- options -------------------------------------------------------------------------------------

def parse_scale(text: str) -> Scale:
    """The ``scale`` option, ``MIN,MAX``; a bad value is the user's error, so ValueError."""
    try:
        return Scale.parse(text)
    except ValueError as e:
        raise ValueError(f"option scale: {e}") from None


def locate(root: Path, name: str, other_suffixes: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """(set folder, rating file) from ``root``, which is the folder or the rating file itself.

    ``other_suffixes`` are tried when ``name`` is absent (EmoMadrid ships ``EMindex``
    as .xlsx or .csv).
    """
    root = Path(root)
    if root.is_file():
        return root.parent, root
    if not name:
        raise RatingFileError(root, "is a folder: name its rating file with the 'ratings' option"
                                    f" (files here: {_listing(root)})")
    path = root / name
    if path.is_file():
        return root, path
    for suffix in other_suffixes:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return root, candidate
    raise RatingFileError(path, f"rating file not found (files here: {_listing(root)})")


def _listing(folder: Path, limit: int = 12) -> str:
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError:
        return "none"
    if not names:
        return "none"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# --- cells ---------------------------------------------------------------------------------------

def to_float(text: str) -> float:
    """A rating cell as a float: NaN for a missing marker, ValueError for anything else.

    A single ``,`` and no ``.`` is a decimal comma (EmoMadrid's CSV, German Excel).
    """
    s = str(text).strip().replace("\u2212", "-")
    if s.lower() in MISSING:
        return math.nan
    if "," in s and "." not in s and s.count(",") == 1:
        s = s.replace(",", ".")
    return float(s)


def optional_float(text: str) -> float | None:
    """An SD or N cell: None when missing or not a number (they are informative only)."""
    try:
        value = to_float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def clean_id(text: str) -> str:
    """A publisher's id as text; a number that went through a spreadsheet loses its ``.0``."""
    s = str(text).strip()
    match = re.fullmatch(r"(\d+)\.0+", s)
    return match.group(1) if match else s


def cell_value(text: str) -> float | str | None:
    """A cell kept in ``Record.extra``: a number when it reads as one, None for a missing marker, else the text."""
    s = str(text).strip()
    if s == "":
        return None
    try:
        value = to_float(s)
    except ValueError:
        return s
    return None if math.isnan(value) else value


def clean_key(name: str) -> str:
    """``[prob. anger]`` -> ``prob_anger``, ``Internal norms`` -> ``internal_norms``."""
    return re.sub(r"[\W_]+", "_", name.strip().lower()).strip("_")


# --- rows ----------------------------------------------------------------------------------------

@dataclass
class Row:
    """One non-blank row of a rating file, with its 1-based line (text) or row (sheet) number."""

    where: str
    number: int
    cells: list[str]

    def cell(self, index: int | None) -> str:
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index]

    def is_blank(self) -> bool:
        return all(not c.strip() for c in self.cells)


def read_text(path: Path) -> str:
    """The file as text with LF line endings: UTF-8 (BOM or not), UTF-16 with a BOM, else cp1252."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def guess_sep(path: Path, text: str) -> str:
    """Tab for .tsv/.tab; else whichever of tab, ``;``, ``,`` appears on the most early lines.

    Counting lines rather than characters keeps ``;`` files with ``,`` decimals right.
    """
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    lines = [line for line in text.split("\n") if line.strip()][:20]
    best, best_lines = ",", 0
    for sep in ("\t", ";", ","):
        present = sum(sep in line for line in lines)
        if present > best_lines:
            best, best_lines = sep, present
    return best


def sep_option(text: str) -> str:
    """The ``sep`` option as typed on a command line: ``tab`` or ``\\t`` mean a tab."""
    if text.strip().lower() in ("tab", "\\t", "\t"):
        return "\t"
    if len(text) > 1:
        raise ValueError(f"option sep must be one character or 'tab', got {text!r}")
    return text


def text_rows(path: Path, sep: str = "", line_suffix: str = "") -> list[Row]:
    """Non-blank rows of a delimited text file, numbered by the line they start on.

    ``line_suffix`` is stripped from the end of every line first (IAPS lines end in ``\\``).
    Tab-separated files are read without quote handling: their text cells hold quotes.
    """
    text = read_text(path)
    if line_suffix:
        text = "\n".join(line.rstrip().removesuffix(line_suffix) for line in text.split("\n"))
    sep = sep or guess_sep(path, text)
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text), delimiter=sep, quoting=quoting)
    rows, line = [], 1
    try:
        for cells in reader:
            row = Row(f"{path.name} line {line}", line, cells)
            if not row.is_blank():
                rows.append(row)
            line = reader.line_num + 1
    except csv.Error as e:
        raise RatingFileError(path, f"cannot parse line {line}: {e}") from None
    return rows


def sheet_rows(path: Path, sheet: str = "") -> list[Row]:
    """Non-blank rows of a spreadsheet (.xls via xlrd, .xlsx via openpyxl, .ods via odfpy), numbered as Excel does."""
    import pandas as pd

    engine, package = SHEET_ENGINES.get(path.suffix.lower(), ("openpyxl", "openpyxl"))
    sheet_name: int | str = int(sheet) - 1 if sheet.isdigit() else (sheet or 0)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*xlrd engine is deprecated.*")
            frame = pd.read_excel(path, sheet_name=sheet_name, header=None, dtype=object, engine=engine)
    except ImportError as e:
        hint = "pip install odfpy, or save it as .xlsx" if package == "odfpy" else "pip install 'picaffect[spreadsheets]'"
        raise RatingFileError(path, f"reading {path.suffix} files needs {package} ({hint}): {e}") from None
    except Exception as e:  # corrupt files raise anything from zipfile, xlrd, openpyxl
        raise RatingFileError(path, f"cannot read the spreadsheet: {e}") from None
    rows = []
    for i, values in enumerate(frame.itertuples(index=False, name=None)):
        row = Row(f"{path.name} row {i + 1}", i + 1, [_sheet_cell(v) for v in values])
        if not row.is_blank():
            rows.append(row)
    return rows


def _sheet_cell(value: Any) -> str:
    """A spreadsheet cell as the text a CSV export would hold (``1050.0`` -> ``1050``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_rows(path: Path, sep: str = "", sheet: str = "", line_suffix: str = "") -> list[Row]:
    """Rows of a text table or a spreadsheet, picked by the file's extension."""
    if path.suffix.lower() in SPREADSHEET_SUFFIXES:
        return sheet_rows(path, sheet)
    return text_rows(path, sep, line_suffix)


# --- header and columns --------------------------------------------------------------------------

def find_column(header: list[str], spec: str) -> int | None:
    """The 0-based index of the column ``spec`` names in ``header`` (see the module docstring)."""
    for alternative in spec.split("|"):
        alternative = alternative.strip()
        if alternative.isdigit():
            index = int(alternative) - 1
            if 0 <= index < len(header):
                return index
            continue
        name, hash_, nth = alternative.rpartition("#")
        if hash_ and name and nth.isdigit():
            matches = _matching(header, name)
            if 1 <= int(nth) <= len(matches):
                return matches[int(nth) - 1]
            continue
        matches = _matching(header, alternative)
        if matches:
            return matches[0]
    return None


def _matching(header: list[str], name: str) -> list[int]:
    exact = [i for i, cell in enumerate(header) if cell.strip() == name]
    if exact:
        return exact
    loose = _loose(name)
    return [i for i, cell in enumerate(header) if _loose(cell) == loose]


def _loose(text: str) -> str:
    return " ".join(text.split()).casefold()


def _is_positional(spec: str) -> bool:
    return all(alt.strip().isdigit() for alt in spec.split("|"))


@dataclass
class Table:
    """A rating file's header and data rows, with the options' columns resolved."""

    path: Path
    header: list[str]
    header_where: str
    rows: list[Row]
    columns: dict[str, int | None] = field(default_factory=dict)  # option name -> column index
    above: list[Row] = field(default_factory=list)  # rows above the header (banners, preamble)
    width: int | None = None  # columns from here on are not data (a legend beside the table)

    def get(self, row: Row, option: str) -> str:
        """The cell of the column that ``option`` named; "" when the option names none."""
        return row.cell(self.columns.get(option)).strip()

    def extra(self, row: Row) -> dict[str, Any]:
        """Every column no option claimed, under a clean key (``column_N`` when unnamed)."""
        used = {i for i in self.columns.values() if i is not None}
        out: dict[str, Any] = {}
        width = max(len(self.header), len(row.cells))
        if self.width is not None:
            width = min(width, self.width)
        for i in range(width):
            if i in used:
                continue
            name = self.header[i] if i < len(self.header) else ""
            value = cell_value(row.cell(i))
            if not name.strip() and value is None:
                continue  # padding: an unnamed, empty cell (exports padded with hundreds of ';')
            key = clean_key(name) or f"column_{i + 1}"
            if key in out:
                key = f"{key}_{i + 1}"
            out[key] = value
        return out


def load_table(path: Path, required: Mapping[str, str], optional: Mapping[str, str] | None = None,
               *, sep: str = "", sheet: str = "", header_row: str = "", line_suffix: str = "") -> Table:
    """Read ``path`` and resolve its columns.

    ``required`` / ``optional`` map option names to column specs. The header is the row
    numbered ``header_row`` when given (``0``: there is none, columns go by position);
    else the first row where every required column named by a header name is found
    (which skips IAPS's preamble and EmoMadrid's banner); else, when all columns are
    positions, the first row. A required column that is absent
    raises RatingFileError naming it and the columns there are; an absent optional one
    (SD, N) is left out. A header row that holds numbers where the ratings are (a file
    without a header, read by position) and a header with no rows below it raise
    RatingFileError too: neither may turn into a dataset that silently lacks rows.
    """
    for option, spec in required.items():
        if not spec.strip():
            raise ValueError(f"option {option} must name a column of {path.name}")
    rows = read_rows(path, sep=sep, sheet=sheet, line_suffix=line_suffix)
    if not rows:
        raise RatingFileError(path, "holds no rows")
    if header_row.strip() == "0":  # the user says the file has no header: every row is data
        table = Table(path, [""] * max(len(r.cells) for r in rows), "no header", rows)
    else:
        at = _header_index(path, rows, required, header_row)
        header = [c.strip() for c in rows[at].cells]
        _refuse_data_as_header(path, header, required, rows[at].where)
        table = Table(path, header, rows[at].where, rows[at + 1:], above=rows[:at])
        if not table.rows:
            raise RatingFileError(path, f"has a header ({rows[at].where}) but no data rows")
    header = table.header
    for option, spec in required.items():
        index = find_column(header, spec)
        if index is None:
            raise RatingFileError(path, _missing(option, spec, header, table.header_where))
        table.columns[option] = index
    for option, spec in (optional or {}).items():
        table.columns[option] = find_column(header, spec) if spec.strip() else None
    return table


def _refuse_data_as_header(path: Path, header: list[str], required: Mapping[str, str], where: str) -> None:
    """Stop when the row taken as the header holds numbers where the ratings are.

    With columns given by position, the first row is taken as the header; in a file
    without a header line that row is a picture's ratings, and reading on would lose
    it without a word.
    """
    ratings = [required[k] for k in ("valence", "arousal") if k in required]
    if not ratings:
        return
    cells = []
    for spec in ratings:
        index = find_column(header, spec)
        if index is None:
            return
        try:
            value = to_float(header[index])
        except ValueError:
            return
        if math.isnan(value):
            return
        cells.append(header[index])
    raise RatingFileError(path, f"{where} looks like data, not a header (ratings {', '.join(cells)}): "
                                "this file seems to have no header line; add one (or read it with the csv "
                                "preset and its option header_row=0: every line data, columns by position)")


def _header_index(path: Path, rows: list[Row], required: Mapping[str, str], header_row: str) -> int:
    if header_row.strip():
        if not header_row.strip().isdigit():
            raise ValueError(f"option header_row must be a row number, got {header_row!r}")
        for i, row in enumerate(rows):
            if row.number == int(header_row):
                return i
        raise RatingFileError(path, f"header row {header_row} is blank or beyond the end of the file")
    named = {k: v for k, v in required.items() if not _is_positional(v)}
    if not named:
        return 0
    best, best_found = 0, -1
    for i, row in enumerate(rows):
        header = [c.strip() for c in row.cells]
        found = sum(find_column(header, spec) is not None for spec in named.values())
        if found == len(named):
            return i
        if found > best_found:
            best, best_found = i, found
    header = [c.strip() for c in rows[best].cells]
    option, spec = next((k, v) for k, v in named.items() if find_column(header, v) is None)
    hint = ""
    if sum(_is_number(c) for c in rows[0].cells) >= 2:
        hint = f"; {rows[0].where} holds numbers, as data does: does the file lack its header line?"
    raise RatingFileError(path, "no header row found: " + _missing(option, spec, header, rows[best].where) + hint)


def _is_number(text: str) -> bool:
    try:
        return not math.isnan(to_float(text)) and bool(text.strip())
    except ValueError:
        return False


def _missing(option: str, spec: str, header: list[str], where: str) -> str:
    shown = ", ".join(repr(c) for c in header)
    return (f"no column {spec!r} (option {option}); the header ({where}) has {len(header)} "
            f"columns: {shown}")


# --- images --------------------------------------------------------------------------------------

class ImageFolder:
    """The pictures in one folder, found by stem with any picture ending in any case.

    Listed once, so that a set of 10,000 pictures costs one directory read. Files that
    are not pictures (``Thumbs.db``, ``.DS_Store``) are never matches. An entry that ends
    like a picture but cannot be read (a symlink loop, a broken link) is still a match:
    decoding it then reports the true reason instead of "no image file".
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._by_stem: dict[str, list[Path]] = {}
        self._by_loose_stem: dict[str, list[Path]] = {}
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            entries = []
        for entry in entries:
            if is_picture_name(entry.name) and not _is_dir(entry):
                path = folder / entry.name
                self._by_stem.setdefault(path.stem, []).append(path)
                self._by_loose_stem.setdefault(path.stem.casefold(), []).append(path)

    def find(self, stem: str, prefer: str = ".jpg") -> Path | None:
        """The picture named ``stem`` (its ``prefer`` extension first when there are several)."""
        found = self._by_stem.get(stem) or self._by_loose_stem.get(stem.casefold()) or []
        for path in found:
            if path.suffix.lower() == prefer.lower():
                return path
        return found[0] if found else None

    def lookup(self, stem: str, prefer: str = ".jpg") -> tuple[Path, str | None]:
        """(path, problem): the found picture, or the expected path and why it is not there."""
        path = self.find(stem, prefer)
        if path is not None:
            return path, None
        where = self.folder if self.folder.is_dir() else f"{self.folder} (no such folder)"
        return self.folder / f"{stem}{prefer}", f"no image file for id {stem!r} in {where}"


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def picture_stem(name: str) -> str:
    """``A001.jpg`` -> ``A001``; a name without a picture ending (``2345.1``) stays whole."""
    path = PurePath(name.strip())
    return path.stem if is_picture_name(path) else name.strip()


def images_folder(folder: Path, option: str) -> Path:
    """The ``images`` option: relative to the set folder; "" or "." is the set folder itself."""
    return folder / option if option.strip() not in ("", ".") else folder


# --- records -------------------------------------------------------------------------------------

def make_record(source: str, *, id: str, path: Path | None, where: str, scale: Scale,
                valence: str, arousal: str, valence_sd: str = "", arousal_sd: str = "",
                valence_n: str = "", arousal_n: str = "", group: str | None = None,
                extra: dict[str, Any] | None = None, problem: str | None = None) -> Record:
    """A Record from a row's cell texts; a rating that is not a number becomes the row's problem.

    A missing or out-of-scale rating is left to ``Record`` itself to report.
    """
    ratings = {}
    for name, text in (("valence", valence), ("arousal", arousal)):
        try:
            ratings[name] = to_float(text)
        except ValueError:
            ratings[name] = math.nan
            problem = problem or f"{name} {text.strip()!r} is not a number"
    return Record(
        source=source, id=id, path=path, row=where, scale=scale,
        valence_raw=ratings["valence"], arousal_raw=ratings["arousal"],
        valence_sd=optional_float(valence_sd), arousal_sd=optional_float(arousal_sd),
        valence_n=optional_float(valence_n), arousal_n=optional_float(arousal_n),
        group=group or None, extra=extra or {}, problem=problem,
    )


def table_record(source: str, table: Table, row: Row, *, id: str, path: Path | None, scale: Scale,
                 group: str | None = None, problem: str | None = None,
                 extra: dict[str, Any] | None = None) -> Record:
    """``make_record`` for the usual case: ratings, SD and N from the options of the same names."""
    return make_record(
        source, id=id, path=path, where=row.where, scale=scale,
        valence=table.get(row, "valence"), arousal=table.get(row, "arousal"),
        valence_sd=table.get(row, "valence_sd"), arousal_sd=table.get(row, "arousal_sd"),
        valence_n=table.get(row, "valence_n"), arousal_n=table.get(row, "arousal_n"),
        group=group, extra=table.extra(row) if extra is None else extra, problem=problem,
    )


STATS = ("valence_sd", "arousal_sd", "valence_n", "arousal_n")


def stats_options(options: Mapping[str, str]) -> dict[str, str]:
    """The SD and N options a preset has, for ``load_table(optional=...)``."""
    return {k: options[k] for k in STATS if k in options}


def read_named_images(source: str, root: Path, options: Mapping[str, str], sep: str) -> Iterator[Record]:
    """Rating tables whose ``image`` column names each picture's file inside the ``images`` folder.

    BASS and Emotion6 are laid out this way; only their separators and column names differ.
    """
    folder, ratings = locate(root, options["ratings"])
    scale = parse_scale(options["scale"])
    images = images_folder(folder, options["images"])
    required = {k: options[k] for k in ("image", "valence", "arousal")}
    table = load_table(ratings, required, stats_options(options), sep=sep)
    for row in table.rows:
        name = table.get(row, "image")
        yield table_record(source, table, row, id=name, path=images / name if name else None,
                           scale=scale, problem=None if name else "no image file name in this row")


def read_id_table(source: str, root: Path, options: Mapping[str, str], **table_options) -> Iterator[Record]:
    """Rating tables whose ``id`` column names a picture found by stem in the ``images`` folder.

    IAPS, NAPS and SMID are laid out this way (``2345.1`` -> ``2345.1.jpg``, ``P012`` ->
    ``p012.JPG``, ``img7`` -> ``img7.gif``); ``table_options`` go to ``load_table``.
    """
    folder, ratings = locate(root, options["ratings"])
    scale = parse_scale(options["scale"])
    pictures = ImageFolder(images_folder(folder, options["images"]))
    required = {k: options[k] for k in ("id", "valence", "arousal")}
    table = load_table(ratings, required, stats_options(options), **table_options)
    for row in table.rows:
        picture_id = picture_stem(clean_id(table.get(row, "id")))
        if picture_id:
            path, problem = pictures.lookup(picture_id)
        else:
            path, problem = None, f"no picture id in this row (column {options['id']})"
        yield table_record(source, table, row, id=picture_id, path=path, scale=scale, problem=problem)
