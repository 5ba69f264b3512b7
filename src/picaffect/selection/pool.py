"""The pictures to choose from: a predictions file, or a built dataset's published ratings.

Either way the pool is a table with ``picture`` (a unique name: the path of a
predicted picture, ``source/id`` of a rated one), ``valence`` and ``arousal`` on
1..9, and, where the scores come from a calibrated model, ``valence_width`` and
``arousal_width`` (the prediction intervals' widths). Rows without values (a
picture that could not be scored) are left out and counted; listed pictures
(``--exclude``) are removed and any name that matches nothing is reported, since
a typo in an exclusion list would otherwise keep a picture the user meant to drop.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import UsageError

READERS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass
class Pool:
    table: pd.DataFrame                  # picture, valence, arousal, [valence_width, arousal_width], [source]
    origin: str                          # "predicted" or "published ratings"
    notes: list[str] = field(default_factory=list)

    @property
    def has_widths(self) -> bool:
        return {"valence_width", "arousal_width"} <= set(self.table.columns)


def _read_table(path: Path) -> pd.DataFrame:
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise UsageError(f"{path}: a scores file ends in {', '.join(READERS)}, or is a built dataset folder")
    try:
        if kind == "csv":
            return pd.read_csv(path)
        if kind == "jsonl":
            return pd.read_json(path, lines=True)
        if kind == "parquet":
            return pd.read_parquet(path)
        payload = json.loads(path.read_text())
        return pd.DataFrame(payload["predictions"] if isinstance(payload, dict) else payload)
    except (ValueError, KeyError, OSError) as e:
        raise UsageError(f"{path}: cannot read it as a {kind} scores file ({str(e).splitlines()[0][:160]})") from None


def read_pool(path: str | Path) -> Pool:
    """The pool in ``path``: the output of ``picaffect predict``, any table with a picture column (``path``, ``id``
    or ``picture``) and ``valence``/``arousal`` on 1..9, or a folder written by ``picaffect build``."""
    path = Path(path)
    notes: list[str] = []
    if path.is_dir():
        from ..data.layout import MANIFEST

        # Only the ratings are needed, not the pictures: the manifest alone, read without torch.
        if not (path / MANIFEST).is_file():
            raise UsageError(f"{path}: a folder given as scores must be a built dataset ({MANIFEST} is missing)")
        try:
            manifest = pd.read_parquet(path / MANIFEST, columns=["source", "id", "valence", "arousal", "status"])
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise UsageError(f"{path / MANIFEST}: cannot read it ({str(e).splitlines()[0][:160]})") from None
        ok = manifest[manifest["status"] == "ok"]
        table = pd.DataFrame({"picture": ok["source"].astype(str) + "/" + ok["id"].astype(str),
                              "valence": ok["valence"].to_numpy(float), "arousal": ok["arousal"].to_numpy(float),
                              "source": ok["source"].astype(str).to_numpy()})
        return Pool(table.reset_index(drop=True), "published ratings", notes)
    if not path.is_file():
        raise UsageError(f"{path}: no such scores file or dataset folder")
    raw = _read_table(path)
    name = next((c for c in ("picture", "path", "name", "id") if c in raw.columns), None)
    missing = [c for c in ("valence", "arousal") if c not in raw.columns]
    if name is None or missing:
        raise UsageError(f"{path}: a scores file needs a picture column (picture, path, name or id) and valence, "
                         f"arousal; it has {', '.join(map(str, raw.columns[:12]))}")
    table = pd.DataFrame({"picture": raw[name].astype(str),
                          "valence": pd.to_numeric(raw["valence"], errors="coerce"),
                          "arousal": pd.to_numeric(raw["arousal"], errors="coerce")})
    for dim in ("valence", "arousal"):
        if {f"{dim}_low", f"{dim}_high"} <= set(raw.columns):
            table[f"{dim}_width"] = pd.to_numeric(raw[f"{dim}_high"], errors="coerce") - \
                pd.to_numeric(raw[f"{dim}_low"], errors="coerce")
    if "source" in raw.columns:
        table["source"] = raw["source"].astype(str)
    empty = table[["valence", "arousal"]].isna().any(axis=1)
    if empty.any():
        notes.append(f"{int(empty.sum())} rows without valence or arousal (pictures that could not be scored) "
                     f"left out")
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
    return Pool(table.reset_index(drop=True), "predicted", notes)


def read_exclusions(paths: list[str | Path]) -> list[str]:
    """Picture names to leave out: one per line of a text file, or the first (or ``picture``/``path``/``id``)
    column of a CSV."""
    names: list[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise UsageError(f"--exclude {path}: no such file")
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path, dtype=str)
            column = next((c for c in ("picture", "path", "id", "name") if c in table.columns), table.columns[0])
            names += table[column].dropna().astype(str).str.strip().tolist()
        else:
            names += [line.strip() for line in path.read_text().splitlines() if line.strip() and
                      not line.lstrip().startswith("#")]
    return names


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
    return Pool(pool.table[~hit].reset_index(drop=True), pool.origin, notes)


def widths(pool: Pool) -> np.ndarray:
    """(rows,) the mean of the two interval widths per picture (zeros without intervals)."""
    if not pool.has_widths:
        return np.zeros(len(pool.table))
    return pool.table[["valence_width", "arousal_width"]].to_numpy(float).mean(axis=1)
