"""The pictures to choose from: a scores file (``picaffect predict``'s output, a norming study's table), or a built
dataset's published ratings.

Either way the pool is a table with ``picture`` (a unique name: the path of a predicted
picture, ``source/id`` of a rated one), ``valence`` and ``arousal`` on 1..9, and every
other column the source has: ``valence_width`` and ``arousal_width`` where the scores come
with prediction intervals, ``source``, the picture features (``data.picture_features``:
luminance, contrast, ...) of a dataset or of ``predict --describe``, and a user's own
columns (category, dominance, familiarity). Any numeric column can be a constraint, any
categorical one can be balanced.

Cells are read as text and converted here, so that nothing is lost silently: a numeric
column with cells that are not numbers ("4,69" in a file with decimal commas, a stray
"high") is recorded with the rows, and refused naming them when a constraint uses it
(valence and arousal at once); ``decimal=","`` reads decimal commas. Empty valence or
arousal cells (a picture that could not be scored) are left out and counted. Listed
pictures (``--exclude``) are removed and any name that matches nothing is reported,
since a typo in an exclusion list would otherwise keep a picture the user meant to drop.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import UsageError

READERS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
NAME_COLUMNS = ("picture", "path", "name", "id")
DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
SHOWN = 3  # rows named in a message


@dataclass
class Pool:
    table: pd.DataFrame                  # picture, valence, arousal, then every other column
    origin: str                          # "published ratings", "predicted by picaffect", "values from FILE"
    notes: list[str] = field(default_factory=list)
    bad_cells: dict[str, str] = field(default_factory=dict)  # numeric column -> its cells that are not numbers
    dataset: bool = False                # read from a built dataset folder

    @property
    def has_widths(self) -> bool:
        return {"valence_width", "arousal_width"} <= set(self.table.columns)

    def is_numeric(self, column: str) -> bool:
        return column not in self.bad_cells and pd.api.types.is_numeric_dtype(self.table[column]) and \
            not pd.api.types.is_bool_dtype(self.table[column])


def _read_table(path: Path) -> pd.DataFrame:
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: a scores file ends in {', '.join(READERS)}, or is a built dataset folder")
    try:
        if kind == "csv":
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                header = f.readline()
            separator = ";" if header.count(";") > header.count(",") else ","
            return pd.read_csv(path, dtype=str, sep=separator, encoding="utf-8-sig", skipinitialspace=True)
        if kind == "jsonl":
            return pd.read_json(path, lines=True)
        if kind == "parquet":
            return pd.read_parquet(path)
        payload = json.loads(path.read_text())
        return pd.DataFrame(payload["predictions"] if isinstance(payload, dict) else payload)
    except (ValueError, KeyError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise UsageError(f"{path}: cannot read it as a {kind} scores file ({str(e).splitlines()[0][:160]})") from None


def _where(kind: str, index: int) -> str:
    """A row as a user finds it: its line in a CSV (the header is line 1), else its row number from 1."""
    return f"line {index + 2}" if kind == "csv" else f"row {index + 1}"


def _convert(column: pd.Series, decimal: str) -> tuple[pd.Series, pd.Series]:
    """(the column as numbers, NaN where a cell is empty or not a number; the mask of non-empty cells that are
    not numbers). Numeric and boolean columns are kept as they are."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column, pd.Series(False, index=column.index)
    text = column.astype("string").str.strip()
    text = text.mask(text == "")
    if decimal == ",":
        text = text.str.replace(DECIMAL_COMMA, lambda m: m.group(0).replace(",", "."), regex=True)
    numbers = pd.to_numeric(text, errors="coerce")
    return numbers.astype(float), text.notna() & numbers.isna()


def _columns(raw: pd.DataFrame, names: pd.Series, kind: str, decimal: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Each column numeric where its cells are numbers; mostly-numeric columns with a few other cells keep their
    text and a description of those cells (``bad_cells``); the rest stay categorical text."""
    out: dict[str, pd.Series] = {}
    bad: dict[str, str] = {}
    for name in raw.columns:
        column = raw[name]
        numbers, wrong = _convert(column, decimal)
        filled = int(column.notna().sum())
        if not wrong.any():
            out[name] = numbers
            continue
        commas = column[wrong].astype(str).str.strip().str.match(DECIMAL_COMMA.pattern)
        looks_numeric = int((~wrong & column.notna()).sum()) + int(commas.sum())
        if looks_numeric * 2 < filled:  # mostly words: a categorical column (source, category)
            out[name] = column.astype("string").str.strip().astype(object).where(column.notna(), None)
            continue
        rows = np.flatnonzero(wrong.to_numpy())
        shown = "; ".join(f"{_where(kind, i)} ({names.iloc[i]}): {column.iloc[i]!r}" for i in rows[:SHOWN])
        text = f"{len(rows)} cell{'s are' if len(rows) > 1 else ' is'} not a number ({shown}" + \
            (", ..." if len(rows) > SHOWN else "") + ")"
        if commas.any() and decimal != ",":
            text += "; they look like decimal commas: read the file with --decimal ','"
        bad[name] = text
        out[name] = column
    return pd.DataFrame(out, index=raw.index), bad


def _origin(path: Path, raw: pd.DataFrame) -> str:
    """Whether a file holds picaffect's predictions (its sidecar, or predict's own columns) or other values."""
    sidecar = path.with_name(path.name + ".meta.json")
    if sidecar.is_file() or {"quadrant", "error"} <= set(raw.columns):
        return "predicted by picaffect"
    return f"values from {path.name}"


def read_pool(path: str | Path, decimal: str = ".") -> Pool:
    """The pool in ``path``: the output of ``picaffect predict``, any table with a picture column (``picture``,
    ``path``, ``name`` or ``id``) and ``valence``/``arousal`` on 1..9, or a folder written by ``picaffect build``.

    ``decimal``: "," reads numbers written with decimal commas ("4,69").
    """
    if decimal not in (".", ","):
        raise UsageError(f"--decimal {decimal!r}: the decimal mark is '.' or ','")
    path = Path(path)
    if path.is_dir():
        return _read_dataset(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such scores file or dataset folder")
    raw = _read_table(path)
    kind = READERS[path.suffix.lower()]
    raw.columns = [str(c).strip() for c in raw.columns]
    name = next((c for c in NAME_COLUMNS if c in raw.columns), None)
    missing = [c for c in ("valence", "arousal") if c not in raw.columns]
    if name is None or missing:
        shown = ", ".join(map(str, raw.columns[:12])) or "no columns"
        raise UsageError(f"{path}: a scores file needs a picture column (picture, path, name or id) and valence, "
                         f"arousal; it has {shown}")
    origin = _origin(path, raw)
    names = raw[name].astype(str)
    values, bad = _columns(raw.drop(columns=[name]), names, kind, decimal)
    for dim in ("valence", "arousal"):
        if dim in bad:
            raise UsageError(f"{path}: {dim}: {bad[dim]}")
        if not pd.api.types.is_numeric_dtype(values[dim]) or pd.api.types.is_bool_dtype(values[dim]):
            first = raw[dim].dropna()
            raise UsageError(f"{path}: {dim} holds no numbers (first cell {first.iloc[0] if len(first) else ''!r})")
    table = pd.concat([names.rename("picture"), values.drop(columns=[c for c in ("picture",) if c in values])],
                      axis=1)
    for dim in ("valence", "arousal"):
        if {f"{dim}_low", f"{dim}_high"} <= set(values.columns) and f"{dim}_low" not in bad and \
                f"{dim}_high" not in bad:
            table[f"{dim}_width"] = values[f"{dim}_high"] - values[f"{dim}_low"]
    notes: list[str] = []
    empty = table[["valence", "arousal"]].isna().any(axis=1)
    if empty.any():
        first = _where(kind, int(np.flatnonzero(empty.to_numpy())[0]))
        why = " (pictures that could not be scored)" if origin.startswith("predicted") else ""
        notes.append(f"{int(empty.sum())} rows without valence or arousal{why} left out (first: {first}, "
                     f"{table['picture'][empty].iloc[0]})")
        table = table[~empty]
    outside = ~(table["valence"].between(1, 9) & table["arousal"].between(1, 9))
    if outside.any():
        row = table[outside].iloc[0]
        raise UsageError(f"{path}: {int(outside.sum())} rows with values outside 1..9 (first: {row['picture']}, "
                         f"valence {row['valence']:g}, arousal {row['arousal']:g}); picaffect select works on the "
                         f"1..9 columns")
    repeated = table["picture"].duplicated()
    if repeated.any():
        raise UsageError(f"{path}: the picture {table['picture'][repeated].iloc[0]} appears more than once")
    if not {"valence_width", "arousal_width"} <= set(table.columns) or table.filter(like="_width").isna().all().all():
        table = table.drop(columns=[c for c in ("valence_width", "arousal_width") if c in table.columns])
    return Pool(table.reset_index(drop=True), origin, notes, bad)


# Manifest columns that say how the build went, not what the picture is.
_BOOKKEEPING = ("id", "row", "valence_raw", "arousal_raw", "scale_min", "scale_max", "extra", "status", "index",
                "split")


def _read_dataset(path: Path) -> Pool:
    """A built dataset's kept rows: published ratings, source, the picture features where the build computed them,
    and the publishers' own columns (``extra``: OASIS's category, BASS's black_px, ...)."""
    from ..data.layout import MANIFEST

    # Only the ratings are needed, not the pictures: the manifest alone, read without torch.
    if not (path / MANIFEST).is_file():
        raise UsageError(f"{path}: a folder given as scores must be a built dataset ({MANIFEST} is missing)")
    try:
        manifest = pd.read_parquet(path / MANIFEST)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise UsageError(f"{path / MANIFEST}: cannot read it ({str(e).splitlines()[0][:160]})") from None
    ok = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    names = ok["source"].astype(str) + "/" + ok["id"].astype(str)
    table = pd.DataFrame({"picture": names, "valence": ok["valence"].to_numpy(float),
                          "arousal": ok["arousal"].to_numpy(float)})
    for column in ok.columns:
        if column not in table.columns and column not in _BOOKKEEPING:
            table[column] = ok[column].to_numpy() if column != "greyscale" else ok[column].astype(object).to_numpy()
    if "extra" in ok.columns:
        extra = pd.DataFrame([json.loads(e) if isinstance(e, str) and e else {} for e in ok["extra"]])
        extra = extra.rename(columns={c: f"published_{c}" for c in extra.columns if c in table.columns})
        for column in extra.columns:
            if extra[column].map(lambda v: isinstance(v, (list, dict))).any():
                continue
            table[column] = extra[column].to_numpy()
    values, bad = _columns(table.drop(columns=["picture"]), names, "dataset", ".")
    table = pd.concat([names.rename("picture"), values], axis=1)
    return Pool(table, "published ratings", [], bad, dataset=True)


def read_exclusions(paths: list[str | Path], notes: list[str] | None = None) -> list[str]:
    """Picture names to leave out: one per line of a text file, or the first (or ``picture``/``path``/``id``)
    column of a CSV. A file that names none (empty) adds a line to ``notes``; one that is not UTF-8 text is
    refused."""
    names: list[str] = []
    notes = [] if notes is None else notes
    for path in map(Path, paths):
        if not path.is_file():
            raise UsageError(f"--exclude {path}: no such file")
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise UsageError(f"--exclude {path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at position "
                             f"{e.start}); save it as UTF-8") from None
        except OSError as e:
            raise UsageError(f"--exclude {path}: cannot read it ({e.strerror or e})") from None
        if path.suffix.lower() == ".csv":
            found = _csv_names(path, text)
        else:
            found = [line.strip() for line in text.splitlines() if line.strip() and
                     not line.lstrip().startswith("#")]
        if not found:
            notes.append(f"--exclude {path} names no pictures: nothing excluded from it")
        names += found
    return names


def _csv_names(path: Path, text: str) -> list[str]:
    import io

    if not text.strip():
        return []
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str)
    except (ValueError, pd.errors.ParserError) as e:
        raise UsageError(f"--exclude {path}: cannot read it as CSV ({str(e).splitlines()[0][:160]})") from None
    if not len(table.columns):
        return []
    column = next((c for c in ("picture", "path", "id", "name") if c in table.columns), table.columns[0])
    return table[column].dropna().astype(str).str.strip().tolist()


def exclude(pool: Pool, names: list[str]) -> Pool:
    """The pool without the named pictures (by full name, or by file name for predicted paths)."""
    if not names:
        return pool
    wanted = set(names)
    pictures = pool.table["picture"]
    hit = pictures.isin(wanted) | pictures.map(lambda p: Path(p).name in wanted)
    found = set(pictures[hit]) | {Path(p).name for p in pictures[hit]}
    unknown = sorted(wanted - found)
    notes = list(pool.notes) + [f"excluded {int(hit.sum())} pictures"]
    if unknown:
        notes.append(f"{len(unknown)} excluded names match no picture in the pool (first: {unknown[0]})")
    return Pool(pool.table[~hit].reset_index(drop=True), pool.origin, notes, pool.bad_cells, pool.dataset)


def widths(pool: Pool) -> np.ndarray:
    """(rows,) the mean of the two interval widths per picture (zeros without intervals)."""
    if not pool.has_widths:
        return np.zeros(len(pool.table))
    return pool.table[["valence_width", "arousal_width"]].to_numpy(float).mean(axis=1)
