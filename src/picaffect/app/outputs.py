"""Writing predictions in the formats users ask for, so that every common tool opens them.

CSV is plain RFC 4180 (header first, CRLF line ends; pandas, R's ``read.csv`` and Excel
read it as is) and its metadata (model, scale) goes into a sidecar ``x.csv.meta.json``;
JSON carries ``meta`` beside ``predictions``; JSONL repeats the scale on every row;
Parquet keeps the metadata in its schema. JSON never holds NaN or Infinity (missing
values are ``null``). Every file is written to a temporary name beside the target and
moved into place, so an interrupted write never leaves half a file under the real name.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.atomic import folder_problem, write_bytes_atomically
from ..core.errors import PicaffectError
from ..core.jsonsafe import jsonable

COLUMNS = ["path", "valence", "arousal", "quadrant", "error"]
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
META_SUFFIX = ".meta.json"


class OutputError(PicaffectError):
    """An output path that cannot be written (unknown ending, a folder, below a file, read-only)."""


def check_output_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path once it is known to be writable, checked before any work is done.

    Raises ``OutputError`` naming the path and the reason: an ending other than .csv,
    .json, .jsonl, .parquet; a path that is a folder; a parent that is missing, is a
    file (or lies below one), or is not writable.
    """
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise OutputError(f"{out}: unknown ending {out.suffix or '(none)'!r}; use one of {', '.join(FORMATS)}")
    if out.is_dir():
        raise OutputError(f"{out} is a folder: name a file inside it, e.g. {out / ('predictions' + out.suffix)}")
    problem = folder_problem(out.absolute().parent)
    if problem is not None:
        raise OutputError(f"cannot write {out}: {problem}")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputError(f"cannot write {out}: the file is read-only (permission denied)")
    return out


INTERVALS = ["valence_low", "valence_high", "arousal_low", "arousal_high"]


def output_columns(rows: list[dict[str, Any]]) -> list[str]:
    """path, valence, arousal, the interval bounds (a calibrated model), the *_scaled values, quadrant, the picture
    features (``--describe``), error."""
    from ..data.picture_features import FEATURE_COLUMNS

    first = rows[0] if rows else {}
    intervals = [k for k in INTERVALS if k in first]
    extra = [f"{k}_scaled" for k in ("valence", "arousal", *intervals) if f"{k}_scaled" in first]
    features = [k for k in FEATURE_COLUMNS if k in first]
    return COLUMNS[:3] + intervals + extra + COLUMNS[3:4] + features + COLUMNS[4:]


def output_meta(model: str, scaled: str | None = None, level: float | None = None,
                described: bool = False, calibrated_on: str | None = None) -> dict[str, Any]:
    """What every output states about itself: the model, the 1..9 scale, any extra scale, the coverage of
    the prediction intervals (None: the model is not calibrated and rows have none; ``calibrated_on``: how,
    when not the shipped leave-one-source-out protocol), and whether rows carry picture features (``described``)."""
    text = f"picaffect {__version__}, model {model}: valence and arousal on the 1..9 SAM scale"
    if level is not None:
        text += (f"; *_low / *_high: {level:.0%} prediction intervals "
                 f"({calibrated_on or 'conformal, calibrated leaving one source out'}), clipped to the scale")
    else:
        text += "; no prediction intervals (the model is not calibrated)"
    if scaled:
        text += f"; *_scaled columns on {scaled}"
    if described:
        from ..data.picture_features import WORKING_SIDE

        text += (f"; picture features computed at {WORKING_SIDE} px on the longer side: luminance (mean CIELAB L*), "
                 f"contrast (SD of L*), rms_contrast (SD/mean of relative luminance), colourfulness (Hasler & "
                 f"Süsstrunk 2003), complexity (JPEG q75 bytes per pixel), edge_density (share of Sobel edges), "
                 f"see picaffect.data.picture_features")
    return {"model": model, "scale": "1..9", "scaled": scaled, "interval_level": level, "description": text}


def _records(rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    return [{c: jsonable(r.get(c)) for c in columns} for r in rows]


def _frame(rows: list[dict[str, Any]], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(_records(rows, columns), columns=columns)


def _csv_text(rows: list[dict[str, Any]], columns: list[str], newline: str = "\n") -> str:
    """Plain RFC 4180 CSV, header first, through the standard library's writer: the predict
    path stays free of pandas (a scoring-only install has no pandas, and importing it costs
    more than scoring one picture), and every CSV reader (pandas, R, Excel) reads it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator=newline)
    writer.writeheader()
    writer.writerows({c: "" if v is None else v for c, v in r.items()} for r in _records(rows, columns))
    return buffer.getvalue()


def write_predictions(rows: list[dict[str, Any]], out: str | os.PathLike, meta: dict[str, Any]) -> list[Path]:
    """Write ``rows`` to ``out`` (format from its ending); returns the files written.

    A .csv also gets ``out.meta.json`` with ``meta``: a CSV has no place for it that
    every reader understands.
    """
    out = check_output_path(out)
    kind = FORMATS[out.suffix.lower()]
    columns = output_columns(rows)
    if kind == "csv":
        text = _csv_text(rows, columns, newline="\r\n")
        sidecar = out.with_name(out.name + META_SUFFIX)
        _atomic_write(sidecar, (json.dumps({**meta, "columns": columns}, indent=1, allow_nan=False) + "\n").encode())
        _atomic_write(out, text.encode("utf-8"))
        return [out, sidecar]
    if kind == "jsonl":
        _atomic_write(out, render(rows, "jsonl", meta).encode("utf-8"))
    elif kind == "json":
        payload = {"meta": meta, "predictions": _records(rows, columns)}
        _atomic_write(out, (json.dumps(payload, indent=1, allow_nan=False) + "\n").encode("utf-8"))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(_frame(rows, columns), preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"picaffect": json.dumps(meta)})
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer)
        _atomic_write(out, buffer.getvalue().to_pybytes())
    return [out]


def _atomic_write(path: Path, data: bytes) -> None:
    """``write_bytes_atomically``, with a failure as one ``OutputError`` naming the file."""
    try:
        write_bytes_atomically(path, data)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None


def render(rows: list[dict[str, Any]], fmt: str, meta: dict[str, Any]) -> str:
    """Rows as text: ``table`` (for people), ``csv`` (plain, header first) or ``jsonl``."""
    columns = output_columns(rows)
    if fmt == "jsonl":
        return "".join(json.dumps({**r, "scale": meta["scale"]}, allow_nan=False) + "\n"
                       for r in _records(rows, columns))
    if fmt == "csv":
        return _csv_text(rows, columns)
    return text_table(rows, columns) + f"\n({meta['description']})\n"


def text_table(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
