"""The Python API most users come for: pictures in, valence and arousal out.

    from picaffect import Predictor
    p = Predictor.from_pretrained()            # the shipped default model, offline
    p.predict("photo.jpg")                     # {"valence": 6.1, "arousal": 4.2, ...}
    p.predict([path, pil_image, numpy_array])  # a list of dicts, batched
    run = p.predict_files(["photos/"])         # what `picaffect predict` does: rows and notes

Pictures are prepared exactly as for training (decoded, EXIF-rotated, RGB,
squashed to the model's square input). Decoding runs on a few threads while the
network works on the previous batch, which is most of the speed of
``picaffect predict`` on a folder of photographs. One bad picture never ends a
stream: it becomes a row with an ``error``.

The network runs in a backend (``backends.py``): onnxruntime for ONNX files
(the shipped default has one; no torch is imported on that path) or torch for
checkpoints; ``backend="auto"`` takes the faster one that is at hand.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from ..data.images import ImageProblem, prepare_picture
from ..data.picture_features import empty_features, picture_features, prepared_with_features
from ..data.parallel import ordered_map
from ..data.pictures import Note, collect_pictures
from ..core.errors import UsageError
from ..core.runtime import pick_device
from ..core.scale import SAM, Scale, rescale
from .locate import resolve_model
from .backends import OnnxBackend, TorchBackend, choose, cpu_count, onnx_file
from .onnx_export import to_onnx_bytes
from .intervals import DEFAULT_LEVEL, INTERVAL_COLUMNS, check_level, empty_bounds
from .spec import ModelSpec

PictureLike = Union[str, Path, Image.Image, np.ndarray]


def quadrant(valence: float, arousal: float) -> str:
    """The circumplex quadrant; the midpoint 5 counts as pleasant / activated."""
    return f"{'pleasant' if valence >= SAM.midpoint else 'unpleasant'}-" \
           f"{'activated' if arousal >= SAM.midpoint else 'calm'}"


def failed_row(reason: str, calibrated: bool = False) -> dict[str, Any]:
    """The row of a picture that could not be scored: every value None (interval bounds too, for a
    calibrated model, so that every row has the same keys), and why."""
    return {"valence": None, "arousal": None, **dict.fromkeys(INTERVAL_COLUMNS if calibrated else ()),
            "quadrant": None, "error": reason}


def add_scaled(row: dict[str, Any], scale: Scale) -> dict[str, Any]:
    """Add the values on another scale (``--scale 1,7``) beside the 1..9 ones, interval bounds included."""
    for key in ("valence", "arousal", *(c for c in INTERVAL_COLUMNS if c in row)):
        value = row.get(key)
        row[f"{key}_scaled"] = None if value is None else round(float(rescale(value, SAM, scale)), 4)
    return row


def rating_fields(values: Sequence[float], calibrated: bool) -> dict[str, Any]:
    """A row's values from one line of ``predict_arrays_with_intervals``: valence, arousal, quadrant, and the
    interval bounds when the model is calibrated (NaN bounds, which a row never shows, only without)."""
    v, a = (round(float(t), 4) for t in values[:2])
    row: dict[str, Any] = {"valence": v, "arousal": a}
    if calibrated:
        row.update({c: round(float(t), 4) for c, t in zip(INTERVAL_COLUMNS, values[2:6])})
    row["quadrant"] = quadrant(v, a)
    return row


@dataclass
class PredictionRun:
    """What ``predict_files`` did: one row per picture, in order, and notes on every input passed
    over (``data.pictures.Note``: what, why, and whether the user meant it to be scored)."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["error"]]

    @property
    def problems(self) -> list[Note]:
        """Inputs meant to be scored that could not be (a named path that does not exist, a
        folder that cannot be read): ``--strict`` fails on them."""
        return [n for n in self.notes if n.problem]

    def summary(self) -> str:
        failed = len(self.failed)
        return (f"scored {len(self.rows) - failed} of {len(self.rows)} pictures"
                + (f", {failed} unreadable" if failed else "")
                + (f"; {len(self.notes)} note{'s' if len(self.notes) > 1 else ''} above" if self.notes else ""))


class Predictor:
    """A trained network with its input size and output mapping, ready to score pictures.

    ``model`` is a torch module (with ``spec``) or a backend (``OnnxBackend``,
    ``TorchBackend``), which brings its own spec.
    """

    def __init__(self, model: Any, spec: ModelSpec | None = None, *, name: str = "model",
                 device: Any = "cpu", workers: int | None = None, level: float = DEFAULT_LEVEL) -> None:
        if isinstance(model, (OnnxBackend, TorchBackend)):
            self.backend = model
        else:
            if spec is None:
                raise UsageError("Predictor(model, spec): a torch model needs its ModelSpec")
            self.backend = TorchBackend(model, spec, device)
        self.spec = spec or self.backend.spec
        self.name = name
        self.workers = workers
        self.level = level

    @property
    def calibration(self):
        """The model's ``intervals.Calibration`` (``picaffect calibrate``), or None: then rows have no intervals."""
        return getattr(self.backend, "calibration", None)

    @property
    def level(self) -> float:
        """The coverage of the intervals rows carry (0.9: 90 %), between 0 and 1."""
        return self._level

    @level.setter
    def level(self, value: float) -> None:
        self._level = check_level(value)

    @property
    def interval_level(self) -> float | None:
        """The coverage of the intervals the rows carry, or None when the model has no calibration (and
        its rows no intervals): what an output's description states."""
        return self.level if self.calibration is not None else None

    @property
    def model(self):
        """The torch module (None with the onnx backend)."""
        return self.backend.model

    @property
    def device(self):
        return self.backend.device

    @property
    def size(self) -> int:
        return self.spec.size

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", device: str = "auto",
                        workers: int | None = None, backend: str = "auto",
                        level: float = DEFAULT_LEVEL) -> "Predictor":
        """A shipped model by name (``default``), a training run folder, a checkpoint or an ONNX file.

        ``backend``: ``onnx`` (onnxruntime, CPU, no torch), ``torch``, or ``auto``: ONNX
        when an ONNX file is at hand and no GPU is asked for or present (the faster one
        on a CPU), else torch. ``onnx`` with a torch checkpoint converts it in memory
        (needs torch and onnx). ``level``: the coverage of the prediction intervals of a
        calibrated model (rows of an uncalibrated one have none).
        """
        kind = choose(name_or_path, backend, device)
        if kind == "onnx":
            if device not in ("auto", "cpu"):
                raise UsageError(f"the onnx backend runs on the CPU, not {device}")
            path = onnx_file(name_or_path)
            if path is None:
                source: Path | bytes = to_onnx_bytes(resolve_model(name_or_path), name=str(name_or_path))
            else:
                source = path
            return cls(OnnxBackend(source, name=str(name_or_path)), name=str(name_or_path), workers=workers,
                       level=level)
        from .checkpoint import build_model, read
        from .intervals import from_record

        path = resolve_model(name_or_path)
        record = read(path)
        model, spec = build_model(record, path)
        calibration, head = from_record(record, str(path))
        backend_ = TorchBackend(model, spec, pick_device(device), calibration=calibration, error_head=head)
        return cls(backend_, name=str(name_or_path), workers=workers, level=level)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    # -- pictures ------------------------------------------------------------------------------------------------
    def prepare(self, picture: PictureLike) -> np.ndarray:
        """One picture as a (size, size, 3) uint8 array; ``ImageProblem`` says why not (None, a closed
        or empty image, an all-NaN array, another type: each one error row, never the end of a stream)."""
        return prepare_picture(picture, self.size)

    def score_images(self, images: Any, tta: bool = False) -> np.ndarray:
        """uint8 (N, 3, H, W) (numpy or torch) -> (N, 2) float32 ratings on 1..9, unclipped (for evaluation)."""
        return self.spec.decode(self.backend.run(images, tta)).astype(np.float32, copy=False)

    def score_with_intervals(self, images: Any, tta: bool = False, level: float | None = None
                             ) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, 3, H, W) -> (N, 2) unclipped ratings and (N, 4) interval bounds on 1..9 at ``level``
        (default ``self.level``): valence_low, valence_high, arousal_low, arousal_high; NaN without calibration."""
        outputs, difficulty = self.backend.run_with_difficulty(images, tta)
        ratings = self.spec.decode(outputs).astype(np.float32, copy=False)
        if self.calibration is None:
            return ratings, empty_bounds(len(ratings))
        return ratings, self.calibration.bounds(ratings, difficulty, self.level if level is None else level)

    def predict_arrays(self, arrays: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, size, size, 3) uint8 -> (N, 2) (valence, arousal) on 1..9, clipped to the scale."""
        out = self.score_images(np.ascontiguousarray(arrays).transpose(0, 3, 1, 2), tta)
        return np.clip(out, SAM.min, SAM.max)

    def release_memory(self) -> None:
        """Hand back the memory that scoring large batches left held (the backend's buffers, then
        the C heap's free pages): for a long-running process that has gone idle."""
        from ..core.runtime import trim_memory

        self.backend.release_memory()
        trim_memory()

    def rows_for_arrays(self, arrays: np.ndarray, tta: bool = False) -> list[dict[str, Any]]:
        """(N, size, size, 3) uint8 -> one row per picture: ``valence``, ``arousal`` (1..9, 4 decimals),
        ``quadrant``, ``error`` (None).

        The one place a score becomes a row: ``predict_stream`` and the service both take
        their rows from here, so a key added here reaches every answer.
        """
        calibrated = self.calibration is not None
        return [{**rating_fields(values, calibrated), "error": None}
                for values in self.predict_arrays_with_intervals(arrays, tta)]

    def predict_arrays_with_intervals(self, arrays: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, size, size, 3) uint8 -> (N, 6): valence, arousal (clipped to 1..9), then the bounds of their
        ``self.level`` intervals (``INTERVAL_COLUMNS``; NaN when the model has no calibration)."""
        ratings, bounds = self.score_with_intervals(np.ascontiguousarray(arrays).transpose(0, 3, 1, 2), tta)
        return np.concatenate([np.clip(ratings, SAM.min, SAM.max), bounds], axis=1)

    def predict_stream(self, pictures: Iterable[PictureLike], batch_size: int = 32,
                       tta: bool = False) -> Iterator[dict[str, Any]]:
        """One result per picture, in input order; an unreadable picture gives a row with ``error``."""
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, not {batch_size}")
        workers = self.workers or cpu_count()
        # Two batches ahead: while the network scores one batch, the threads decode the next, and the
        # network never waits for a batch that started decoding only when the last one was done.
        prepared = ordered_map(self._prepare_or_error, pictures, workers, ahead=2 * batch_size)
        batch: list[tuple[Any, np.ndarray | str]] = []
        for item in prepared:
            batch.append(item)
            if len(batch) == batch_size:
                yield from self._score(batch, tta)
                batch = []
        if batch:
            yield from self._score(batch, tta)

    def _prepare_or_error(self, picture: PictureLike) -> tuple[Any, np.ndarray | str]:
        try:
            return picture, self.prepare(picture)
        except ImageProblem as e:
            return picture, str(e)

    def _score(self, batch: list[tuple[Any, np.ndarray | str]], tta: bool) -> Iterator[dict[str, Any]]:
        good = [a for _, a in batch if isinstance(a, np.ndarray)]
        scored = iter(self.rows_for_arrays(np.stack(good), tta) if good else [])
        for picture, array in batch:
            path = str(picture) if isinstance(picture, (str, Path)) else None
            yield {"path": path, **(failed_row(array, self.calibration is not None) if isinstance(array, str) else next(scored))}

    def predict(self, pictures: PictureLike | Sequence[PictureLike], batch_size: int = 32, tta: bool = False,
                scale: Scale | None = None, strict: bool = False) -> dict[str, Any] | list[dict[str, Any]]:
        """Score one picture (a dict) or several (a list or tuple of them: a list of dicts, batched).

        Values are on 1..9; with ``scale`` the dicts also carry ``valence_scaled`` and
        ``arousal_scaled`` on that scale. A calibrated model's dicts carry ``valence_low``,
        ``valence_high``, ``arousal_low``, ``arousal_high``: the ``self.level`` prediction
        interval, clipped to the scale (and scaled with ``scale`` too). One picture that cannot be read
        raises ``ImageProblem``; in a list, a bad item (a missing or broken file, ``None``, an array of
        another type) gets a row of None values whose ``error`` names its index and why, as ``picaffect
        predict`` gives it a row, and the others are scored; ``strict`` raises for the first bad item instead.
        """
        single = not isinstance(pictures, (list, tuple))
        rows = list(self.predict_stream([pictures] if single else pictures, batch_size, tta))
        for i, row in enumerate(rows):
            if row["error"]:
                if single:
                    raise ImageProblem(f"{row['path'] or 'picture'}: {row['error']}")
                item = pictures[i]
                what = row["path"] or ("None" if item is None else "an array" if isinstance(item, np.ndarray)
                                       else "a PIL image" if isinstance(item, Image.Image) else type(item).__name__)
                row["error"] = f"item {i} ({what}): {row['error']}"
                if strict:
                    raise ImageProblem(row["error"])
            if scale is not None:
                add_scaled(row, scale)
            if row["path"] is None:
                del row["path"]
        return rows[0] if single else rows

    def predict_files(self, paths: Sequence[str | Path], *, recursive: bool = False, batch_size: int = 32,
                      tta: bool = False, scale: Scale | None = None,
                      progress: Callable[[Iterator[dict[str, Any]], int], Iterable[dict[str, Any]]] | None = None,
                      describe: bool = False) -> PredictionRun:
        """Score the pictures named by files, folders and globs, as ``picaffect predict`` does.

        Every input is accounted for: a picture is a row (with ``error`` if it could not
        be read), anything passed over (not a picture, no such path) is a note.
        ``progress`` may wrap the row stream (e.g. a tqdm bar), given the stream and its length.
        ``describe``: rows also carry the pictures' features (``predict_and_describe_stream``).
        """
        pictures, notes = collect_pictures([str(p) for p in paths], recursive=recursive)
        run = PredictionRun(notes=list(notes))
        stream = (self.predict_and_describe_stream if describe else self.predict_stream)(
            pictures, batch_size=batch_size, tta=tta)
        for row in (progress(stream, len(pictures)) if progress else stream):
            run.rows.append(add_scaled(row, scale) if scale else row)
        return run

    # -- picture features ---------------------------------------------------------------------------------------------
    def describe(self, pictures: PictureLike | Sequence[PictureLike]) -> dict[str, Any] | list[dict[str, Any]]:
        """The picture features of one picture (a dict) or several (a list or tuple: a list of dicts), without
        running the model: width, height, aspect, greyscale, luminance, contrast, rms_contrast, colourfulness,
        complexity, edge_density (formulas and references in ``picaffect.data.picture_features``).

        Files are decoded as for this model's input, so the values are those ``predict --describe`` adds.
        A picture that cannot be read raises ``ImageProblem`` naming it, as ``predict`` does.
        """
        single = not isinstance(pictures, (list, tuple))
        items = [pictures] if single else list(pictures)

        def features(picture: PictureLike) -> dict[str, Any]:
            try:
                return picture_features(picture, self.size)
            except ImageProblem as e:
                raise ImageProblem(f"{picture if isinstance(picture, (str, Path)) else 'picture'}: {e}") from None

        rows = list(ordered_map(features, items, self.workers or cpu_count()))
        return rows[0] if single else rows

    def predict_and_describe_stream(self, pictures: Iterable[PictureLike], batch_size: int = 32,
                                    tta: bool = False) -> Iterator[dict[str, Any]]:
        """``predict_stream``'s rows, each with the picture's features added (None for a picture that could not
        be read). Each picture is decoded once, for the model and the features together, on the decoding
        threads, while the network scores the batch before."""
        pending: deque[tuple[Any, dict[str, Any] | None]] = deque()

        def decode(picture: PictureLike) -> tuple[Any, np.ndarray | None, dict[str, Any] | None]:
            try:
                return (picture, *prepared_with_features(picture, self.size))
            except ImageProblem:
                return picture, None, None

        def arrays() -> Iterator[Any]:
            decoded = ordered_map(decode, pictures, self.workers or cpu_count(), ahead=2 * batch_size)
            for picture, array, features in decoded:
                pending.append((picture, features))
                # a picture that could not be read goes on as itself: predict_stream gives its row and reason
                yield picture if array is None else array

        for row in self.predict_stream(arrays(), batch_size, tta):
            picture, features = pending.popleft()
            if features is not None:
                row["path"] = str(picture) if isinstance(picture, (str, Path)) else None
            yield {**row, **(features or empty_features())}
