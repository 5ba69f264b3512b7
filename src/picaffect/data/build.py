"""``picaffect build``: published rated sets in, one dataset on 1..9 out.

The output folder holds ``manifest.parquet`` (one row per input row, kept or
not), ``images.npy`` (the kept pictures, decoded once, in manifest ``index``
order), ``report.json`` and ``plots/``; the manifest and the cache carry the same
build id, and the folder appears only when complete (see ``core.atomic.staged_folder``).
Pictures are decoded on a small pool of threads (Pillow releases the GIL while it
decodes and resizes) and streamed to the cache in input order, so memory stays flat
and the output is the same whatever the number of workers.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..core.errors import PicaffectError
from .build_report import make_report, plot_dataset
from .cache import CacheWriter
from .images import ImageProblem, load_square
from .picture_features import FEATURE_COLUMNS, WORKING_SIDE, decode_with_features
from ..core.atomic import folder_problem, staged_folder
from .layout import BUILD_ID_ATTR, CACHE, CONTENTS, MANIFEST, PLOTS, REPORT
from .parallel import ordered_map
from .records import Record
from .sources import PRESETS, read_source
from .splits import assign


class BuildError(PicaffectError):
    """A build that cannot go on (bad arguments, an unreadable rating file, nothing kept)."""


class StrictStop(BuildError):
    """``--strict`` met a bad row: some items failed, which the command line reports with exit 1."""

    exit_code = 1


@dataclass
class SourceSpec:
    """One ``--source`` argument: ``PRESET=PATH`` or ``PRESET:NAME=PATH``.

    The name lets one preset appear twice (two private CSV sets, or the same set
    listed again for a benchmark); ``options`` override the preset's columns/scale.
    """

    preset: str
    path: Path
    name: str
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        if "=" not in text:
            raise BuildError(f"--source {text!r}: write PRESET=PATH (presets: {', '.join(PRESETS)})")
        head, path = text.split("=", 1)
        preset, _, name = head.partition(":")
        if preset not in PRESETS:
            raise BuildError(f"--source {text!r}: unknown preset {preset!r} (presets: {', '.join(PRESETS)})")
        return cls(preset, Path(path), name or preset)


def apply_options(specs: list[SourceSpec], assignments: Iterable[str]) -> None:
    """Attach ``NAME.OPTION=VALUE`` overrides (``--option``) to their sources."""
    by_name = {s.name: s for s in specs}
    for text in assignments:
        key, eq, value = text.partition("=")
        name, dot, option = key.partition(".")
        if not (eq and dot and option):
            raise BuildError(f"--option {text!r}: write NAME.OPTION=VALUE, e.g. oasis.scale=1,7")
        if name not in by_name:
            raise BuildError(f"--option {text!r}: no source named {name!r} (sources: {', '.join(by_name)})")
        by_name[name].options[option] = value


def _decode(size: int, features: bool = False) -> Callable[[Record], np.ndarray | tuple[np.ndarray, dict] | str]:
    """Per record: the (size, size, 3) picture (with ``features``, and its picture features from the same
    decode: ``picture_features``), or why it cannot be used."""
    def decode(record: Record) -> np.ndarray | tuple[np.ndarray, dict] | str:
        try:
            return decode_with_features(record.path, size) if features else load_square(record.path, size)
        except ImageProblem as e:
            return str(e)
    return decode


def build(out_dir: str | Path, sources: list[SourceSpec], *, size: int = 150, split: str = "thesis",
          seed: int = 0, workers: int | None = None, strict: bool = False, plots: bool = True,
          progress: bool = True, features: bool = True) -> dict:
    """Build a dataset; returns the report (also written to ``report.json``).

    ``features``: the manifest also carries each kept picture's features (``picture_features``:
    luminance, contrast, colourfulness, complexity, ..., computed from the same decode), which
    ``picaffect select`` can match sets on.

    The dataset is written into a temporary folder beside ``out_dir`` and moved into
    place only once complete, so an interrupted or failed build leaves ``out_dir`` as it
    was (an older dataset stays usable) and no half-built folder behind.
    """
    if not sources:
        raise BuildError("no --source given; for example --source oasis=../shared/data/oasis")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise BuildError(f"two sources share a name ({', '.join(names)}); name them PRESET:NAME=PATH")
    if size < 8:
        raise BuildError(f"--size {size} is too small (at least 8 pixels)")
    out = Path(out_dir)
    check_target(out)

    records: list[Record] = []
    for spec in sources:
        try:
            records.extend(read_source(spec.preset, spec.path, name=spec.name, options=spec.options))
        except ValueError as e:
            raise BuildError(str(e)) from None
    if strict:
        _stop_at_first_problem(records)
    if not records:
        raise BuildError("the sources hold no rows: nothing to build")

    with staged_folder(out) as folder:
        report = _write_dataset(folder, records, sources, size=size, split=split, seed=seed, workers=workers,
                                strict=strict, plots=plots, progress=progress, features=features)
    return report


def _write_dataset(folder: Path, records: list[Record], sources: list[SourceSpec], *, size: int, split: str,
                   seed: int, workers: int | None, strict: bool, plots: bool, progress: bool,
                   features: bool = True) -> dict:
    build_id = uuid.uuid4().hex
    status = [r.problem for r in records]
    index = np.full(len(records), -1, dtype=np.int64)
    usable = [i for i, r in enumerate(records) if r.problem is None]
    workers = workers or os.cpu_count() or 1
    described: dict[int, dict] = {}
    bar = tqdm(total=len(usable), unit="img", desc="decoding", disable=not progress)
    with CacheWriter(folder / CACHE, size, build_id) as cache:
        decoded = ordered_map(_decode(size, features), (records[i] for i in usable), workers)
        for i, result in zip(usable, decoded):
            bar.update()
            if isinstance(result, str):
                status[i] = f"image {records[i].path}: {result}"
                if strict:
                    raise StrictStop(f"{records[i].source} {records[i].row}: {status[i]}")
            else:
                if features:
                    result, described[i] = result
                index[i] = cache.append(result)
    bar.close()

    manifest = _manifest(records, status, index)
    if features:
        _add_features(manifest, described)
    ok = manifest["status"] == "ok"
    if not ok.any():
        reasons = Counter(_reason(s) for s in manifest["status"])
        shown = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
        raise BuildError(f"no row kept: all {len(manifest)} rows read were skipped ({shown}); nothing to train on")
    group_keys = manifest.loc[ok, "source"] + "/" + manifest.loc[ok, "group"].fillna("#" + manifest.loc[ok, "id"])
    manifest["split"] = None
    manifest.loc[ok, "split"] = assign(split, group_keys.tolist(), seed)
    manifest.attrs[BUILD_ID_ATTR] = build_id
    manifest.to_parquet(folder / MANIFEST, index=False)

    report = make_report(manifest, sources, size=size, split=split, seed=seed)
    report["build_id"] = build_id
    if features:
        report["picture_features"] = {"columns": list(FEATURE_COLUMNS), "working_side": WORKING_SIDE,
                                      "defined_in": "picaffect.data.picture_features"}
    (folder / REPORT).write_text(json.dumps(report, indent=2, allow_nan=False, default=str) + "\n")
    if plots:
        plot_dataset(manifest[ok], folder / PLOTS)
    return report


def _add_features(manifest: pd.DataFrame, described: dict[int, dict]) -> None:
    """The picture-feature columns, in manifest row order; empty (NA) for rows without a usable picture."""
    rows = [described.get(i) or {} for i in range(len(manifest))]
    for column in FEATURE_COLUMNS:
        values = pd.Series([r.get(column) for r in rows], index=manifest.index)
        if column == "greyscale":
            manifest[column] = values.astype("boolean")
        elif column in ("width", "height"):
            manifest[column] = values.astype("Int64")
        else:
            manifest[column] = pd.to_numeric(values).astype(float)


def _reason(status: str) -> str:
    return status.split(": ", 1)[-1] if status.startswith("image ") else status


def check_target(out: Path) -> None:
    """Refuse, before any work, a target a build must not replace: a file, or a folder of other things.

    A rebuild replaces the whole folder, so a folder holding anything but a dataset's
    own files (a user's pictures, a training run) is refused rather than deleted.
    """
    if out.is_symlink() and not out.exists():
        raise BuildError(f"{out} is a broken symbolic link; remove it or choose another output folder")
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out} is a file, not a folder: choose a folder for the dataset")
    problem = folder_problem(out.absolute().parent, must_exist=False)  # a missing parent is created
    if problem is not None:
        raise BuildError(f"cannot create {out}: {problem}")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in CONTENTS)
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise BuildError(f"{out} holds files that are not part of a dataset ({shown}); a rebuild replaces the "
                             "whole folder, so choose an empty or new folder")


def _stop_at_first_problem(records: list[Record]) -> None:
    for r in records:
        if r.problem is not None:
            raise StrictStop(f"{r.source} {r.row}: {r.problem}")


def _manifest(records: list[Record], status: list[str | None], index: np.ndarray) -> pd.DataFrame:
    def num(x):
        return np.nan if x is None else x

    rows = [{
        "source": r.source,
        "id": r.id,
        "path": None if r.path is None else str(r.path),
        "row": r.row,
        "valence": r.valence if r.problem is None else np.nan,  # rating usable even if the image is not
        "arousal": r.arousal if r.problem is None else np.nan,
        "valence_raw": num(r.valence_raw),
        "arousal_raw": num(r.arousal_raw),
        "scale_min": r.scale.min,
        "scale_max": r.scale.max,
        "valence_sd": num(r.valence_sd),
        "arousal_sd": num(r.arousal_sd),
        "valence_n": num(r.valence_n),
        "arousal_n": num(r.arousal_n),
        "group": r.group,
        "extra": json.dumps(r.extra, default=str, sort_keys=True),
        "status": "ok" if status[i] is None else status[i],
        "index": int(index[i]),
    } for i, r in enumerate(records)]
    columns = ["source", "id", "path", "row", "valence", "arousal", "valence_raw", "arousal_raw", "scale_min",
               "scale_max", "valence_sd", "arousal_sd", "valence_n", "arousal_n", "group", "extra", "status", "index"]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("valence_raw", "arousal_raw", "valence_sd", "arousal_sd", "valence_n", "arousal_n"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame
