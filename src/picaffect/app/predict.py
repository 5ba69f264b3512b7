"""``picaffect predict`` as one call: the checks made before any work, the scoring, and where the rows go.

The command line parses options and prints; this decides. A bad ``--scale``, ``--level`` or
``--out`` fails before a model is loaded (a typo should not cost a scoring run); a model
without a calibration earns a note on how to add intervals; the rows go to the file ``out``
(its format from its ending) or come back as text. In ``app`` because the files are
``outputs``' formats; a Python user calls ``predict_paths`` and gets the same.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import PicaffectError, UsageError
from ..core.scale import Scale
from ..inference import PredictionRun, Predictor
from ..inference.intervals import check_level
from .outputs import check_output_path, output_meta, render, write_predictions

Progress = Callable[[Iterator[dict[str, Any]], int], Iterable[dict[str, Any]]]


def parse_scale(text: str | None) -> Scale | None:
    """``--scale MIN,MAX`` as a ``Scale`` (None when not given); a bad one is a ``UsageError`` naming the option."""
    if text is None:
        return None
    try:
        return Scale.parse(text)
    except (ValueError, PicaffectError) as e:
        raise UsageError(f"--scale {text}: {e}") from None


def _ignore(text: str) -> None:
    """The default ``note``: the notes stay in the returned run's ``notes``."""


def predict_paths(paths: Sequence[str | Path], *, model: str | Path = "default", out: str | Path | None = None,
                  fmt: str = "table", scale: Scale | str | None = None, level: float = 0.9,
                  recursive: bool = False, batch_size: int = 32, workers: int | None = None, tta: bool = False,
                  device: str = "auto", backend: str = "auto", progress: Progress | None = None,
                  note: Callable[[str], None] = _ignore, describe: bool = False) -> tuple[PredictionRun, str]:
    """Score the pictures that ``paths`` (files, folders, globs) name; write the rows to ``out`` or render them.

    Returns the run (rows, failed pictures, passed-over inputs) and the rows as ``fmt`` text
    (``table``, ``csv``, ``jsonl``), or '' once written to ``out``. ``note`` hears, as they
    arise, what a user should know: a model without a calibration, each input passed over.
    Raises ``UsageError`` when nothing at all is left to score. ``describe``: rows also carry each picture's
    features (``picaffect.data.picture_features``), computed from the same decode.
    """
    scale = scale if isinstance(scale, Scale) else parse_scale(scale)
    check_level(level)
    if out is not None:
        check_output_path(out)
    predictor = Predictor.from_pretrained(model, device=device, workers=workers, backend=backend, level=level)
    if predictor.calibration is None:
        note(f"model {model} has no calibration, so no prediction intervals (add them with "
             f"`picaffect calibrate {model} --data DATASET --out calibrated.pt`)")
    run = predictor.predict_files(paths, recursive=recursive, batch_size=batch_size, tta=tta, scale=scale,
                                  progress=progress, describe=describe)
    for passed_over in run.notes:
        note(str(passed_over))
    if not run.rows:
        raise UsageError("no pictures to score")
    meta = output_meta(str(model), str(scale) if scale else None, predictor.interval_level, described=describe,
                       calibrated_on=_pilot_protocol(predictor.calibration))
    if out is None:
        return run, render(run.rows, fmt, meta)
    write_predictions(run.rows, out, meta)
    return run, ""


def _pilot_protocol(calibration) -> str | None:
    """How a pilot calibration's intervals were made, for the output's description (None for any other)."""
    info = getattr(calibration, "info", None) or {}
    if (info.get("protocol") or {}).get("name") != "pilot":
        return None
    return f"jackknife+ on a rated pilot of {(info.get('pilot') or {}).get('pictures', '?')} pictures of your set"
