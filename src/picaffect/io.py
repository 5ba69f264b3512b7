"""Finding pictures on disk and writing predictions in the formats users ask for."""
from __future__ import annotations

import csv
import glob
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from . import __version__

COLUMNS = ["path", "valence", "arousal", "quadrant", "error"]
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def image_extensions() -> set[str]:
    """Every file ending Pillow can open (.jpg, .png, .gif, .bmp, .tif, .webp, ...)."""
    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


class _LazyExtensions:
    def __init__(self) -> None:
        self._set: set[str] | None = None

    def __contains__(self, ending: object) -> bool:
        if self._set is None:
            self._set = image_extensions()
        return ending in self._set


def collect_pictures(paths: Sequence[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Expand files, folders and globs into picture paths, in a stable order.

    Returns ``(pictures, notes)``: notes name what was passed over (files that are
    not pictures by their ending, folders without ``--recursive``, paths that match
    nothing) so that nothing is dropped silently. A file named explicitly is always
    kept: if it is not a picture, its row will say so.
    """
    # Every Pillow plugin is loaded only when a folder or glob needs the endings (a fifth of a second):
    # `picaffect predict one.jpg` does without.
    extensions = _LazyExtensions()
    pictures: list[Path] = []
    notes: list[str] = []
    for text in paths:
        path = Path(text)
        if path.is_file():
            pictures.append(path)
        elif path.is_dir():
            found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file())
            others = [p for p in found if p.suffix.lower() not in extensions]
            pictures += [p for p in found if p.suffix.lower() in extensions]
            notes += [f"{p}: skipped, not a picture file" for p in others]
            if not recursive and any(p.is_dir() for p in path.iterdir()):
                notes.append(f"{path}: sub-folders not searched (add --recursive)")
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=recursive) if Path(p).is_file())
            if not matches:
                notes.append(f"{text}: matches no file")
            pictures += [p for p in matches if p.suffix.lower() in extensions]
            notes += [f"{p}: skipped, not a picture file" for p in matches if p.suffix.lower() not in extensions]
        else:
            notes.append(f"{text}: no such file or folder")
    return pictures, notes


def output_columns(rows: list[dict[str, Any]]) -> list[str]:
    extra = [k for k in ("valence_scaled", "arousal_scaled") if rows and k in rows[0]]
    return COLUMNS[:3] + extra + COLUMNS[3:]


def output_meta(model: str, scaled: str | None = None) -> dict[str, Any]:
    """What every output states about itself: the model, the 1..9 scale, and any extra scale."""
    text = f"picaffect {__version__}, model {model}: valence and arousal on the 1..9 SAM scale"
    return {"model": model, "scale": "1..9", "scaled": scaled,
            "description": text + (f"; *_scaled columns on {scaled}" if scaled else "")}


def check_output_path(out: Path) -> Path:
    """Refuse, before any work, an output path that cannot be written."""
    from .errors import UsageError

    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out {out}: unknown ending; use one of {', '.join(FORMATS)}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name the file to write")
    if out.suffix.lower() == ".parquet":
        from importlib.util import find_spec
        if find_spec("pyarrow") is None:
            raise UsageError(f"--out {out}: writing Parquet needs pyarrow: pip install 'picaffect[parquet]' "
                             f"(or write .csv, .json or .jsonl)")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is a file, not a folder")
    import os
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--out {out}: {parent} is not writable (permission denied)")
    return out


def write_predictions(rows: list[dict[str, Any]], out: Path, meta: dict[str, Any]) -> None:
    """Write to ``out``; the format comes from its ending (.csv .json .jsonl .parquet)."""
    kind = FORMATS.get(out.suffix.lower())
    if kind is None:
        raise ValueError(f"--out {out}: unknown ending; use one of {', '.join(FORMATS)}")
    columns = output_columns(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        out.write_text(render(rows, "csv", meta))
    elif kind == "jsonl":
        out.write_text(render(rows, "jsonl", meta))
    elif kind == "json":
        out.write_text(json.dumps({"meta": meta, "predictions": [{c: r.get(c) for c in columns} for r in rows]},
                                  indent=1) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
        table = table.replace_schema_metadata({"picaffect": json.dumps(meta)})
        pq.write_table(table, out)


def render(rows: list[dict[str, Any]], fmt: str, meta: dict[str, Any]) -> str:
    """Rows as text: ``table`` (for people), ``csv`` (with a ``#`` header comment) or ``jsonl``."""
    columns = output_columns(rows)
    if fmt == "jsonl":
        return "".join(json.dumps({**{c: r.get(c) for c in columns}, "scale": meta["scale"]}) + "\n" for r in rows)
    if fmt == "csv":
        buffer = io.StringIO()
        buffer.write(f"# {meta['description']}\n")
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    return table(rows, columns) + f"\n({meta['description']})\n"


def table(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
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
