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
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from ..data.images import ImageProblem, array_to_rgb, load_square, square, to_rgb
from ..data.parallel import ordered_map
from ..data.pictures import Note, collect_pictures
from ..errors import CheckpointError
from ..names import SHIPPED
from ..scale import SAM, Scale, rescale
from .checkpoint import ModelSpec, load_model
from .forward import ratings

PictureLike = Union[str, Path, Image.Image, np.ndarray]


def quadrant(valence: float, arousal: float) -> str:
    """The circumplex quadrant; the midpoint 5 counts as pleasant / activated."""
    return f"{'pleasant' if valence >= SAM.midpoint else 'unpleasant'}-" \
           f"{'activated' if arousal >= SAM.midpoint else 'calm'}"


def add_scaled(row: dict[str, Any], scale: Scale) -> dict[str, Any]:
    """Add the values on another scale (``--scale 1,7``) beside the 1..9 ones."""
    for key in ("valence", "arousal"):
        value = row.get(key)
        row[f"{key}_scaled"] = None if value is None else round(float(rescale(value, SAM, scale)), 4)
    return row


def shipped_path(name: str) -> Path:
    """The file of a model shipped inside the package (``default``)."""
    if name not in SHIPPED:
        raise CheckpointError(f"no shipped model named {name!r}; shipped: {', '.join(SHIPPED)}")
    path = Path(str(resources.files("picaffect") / "weights" / SHIPPED[name]))
    if not path.is_file():
        raise CheckpointError(f"the shipped model file {path} is missing: reinstall picaffect")
    return path


def resolve_model(ref: str | Path) -> Path:
    """A shipped model's name, a training run folder (its ``best.pt``) or a checkpoint file -> the file."""
    path = Path(ref)
    if path.is_dir():
        if not (path / "best.pt").is_file():
            raise CheckpointError(f"{path} holds no best.pt: is it a picaffect training run?")
        return path / "best.pt"
    if path.is_file():
        return path
    if str(ref) in SHIPPED:
        return shipped_path(str(ref))
    raise CheckpointError(f"{ref} is neither a training run folder, a checkpoint file, nor a shipped model "
                          f"({', '.join(SHIPPED)})")


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
                + (f"; {len(self.notes)} notes" if self.notes else ""))


class Predictor:
    """A trained network with its input size and output mapping, ready to score pictures."""

    def __init__(self, model: torch.nn.Module, spec: ModelSpec, *, name: str = "model",
                 device: str | torch.device = "cpu", workers: int | None = None) -> None:
        self.device = torch.device(device)
        model = model.eval()
        if hasattr(model, "fuse_for_inference"):  # batch norms folded into convolutions: same output, faster
            model = model.fuse_for_inference()
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.spec = spec
        self.name = name
        self.workers = workers

    @property
    def size(self) -> int:
        return self.spec.size

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", device: str = "auto",
                        workers: int | None = None) -> "Predictor":
        """A shipped model by name (``default``), a training run folder, or a checkpoint file."""
        from ..runtime import pick_device

        model, spec = load_model(resolve_model(name_or_path))
        return cls(model, spec, name=str(name_or_path), device=pick_device(device), workers=workers)

    # -- pictures ------------------------------------------------------------------------------------------------
    def prepare(self, picture: PictureLike) -> np.ndarray:
        """One picture as a (size, size, 3) uint8 array; ``ImageProblem`` says why not."""
        if isinstance(picture, (str, Path)):
            return load_square(picture, self.size)
        if isinstance(picture, Image.Image):
            return square(to_rgb(picture.copy()), self.size)
        if isinstance(picture, np.ndarray):
            return square(array_to_rgb(picture), self.size)
        raise ImageProblem(f"cannot read a {type(picture).__name__} as a picture (give a path, a PIL image or an "
                           f"array)")

    def score_images(self, images: torch.Tensor, tta: bool = False) -> np.ndarray:
        """uint8 (N, 3, H, W) -> (N, 2) ratings on 1..9, unclipped (for evaluation)."""
        return ratings(self.model, images, self.spec, self.device, tta).numpy()

    def predict_arrays(self, arrays: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, size, size, 3) uint8 -> (N, 2) (valence, arousal) on 1..9, clipped to the scale."""
        out = self.score_images(torch.from_numpy(np.ascontiguousarray(arrays)).permute(0, 3, 1, 2), tta)
        return np.clip(out, SAM.min, SAM.max)

    def predict_stream(self, pictures: Iterable[PictureLike], batch_size: int = 32,
                       tta: bool = False) -> Iterator[dict[str, Any]]:
        """One result per picture, in input order; an unreadable picture gives a row with ``error``."""
        if batch_size < 1:
            from ..errors import UsageError
            raise UsageError(f"batch size must be at least 1, not {batch_size}")
        workers = self.workers or torch.get_num_threads()
        prepared = ordered_map(self._prepare_or_error, pictures, workers)
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
        values = iter(self.predict_arrays(np.stack(good), tta) if good else [])
        for picture, array in batch:
            row: dict[str, Any] = {"path": str(picture) if isinstance(picture, (str, Path)) else None}
            if isinstance(array, str):
                row.update(valence=None, arousal=None, quadrant=None, error=array)
            else:
                v, a = (round(float(t), 4) for t in next(values))
                row.update(valence=v, arousal=a, quadrant=quadrant(v, a), error=None)
            yield row

    def predict(self, pictures: PictureLike | Sequence[PictureLike], batch_size: int = 32, tta: bool = False,
                scale: Scale | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """Score one picture (a dict) or several (a list or tuple of them: a list of dicts, batched).

        Values are on 1..9; with ``scale`` the dicts also carry ``valence_scaled`` and
        ``arousal_scaled`` on that scale. A picture that cannot be read raises
        ``ImageProblem`` here; ``predict_stream`` reports it in the row instead.
        """
        single = not isinstance(pictures, (list, tuple))
        rows = list(self.predict_stream([pictures] if single else pictures, batch_size, tta))
        for row in rows:
            if row["error"]:
                raise ImageProblem(f"{row['path'] or 'picture'}: {row['error']}")
            if scale is not None:
                add_scaled(row, scale)
            if row["path"] is None:
                del row["path"]
        return rows[0] if single else rows

    def predict_files(self, paths: Sequence[str | Path], *, recursive: bool = False, batch_size: int = 32,
                      tta: bool = False, scale: Scale | None = None,
                      progress: Callable[[Iterator[dict[str, Any]], int], Iterable[dict[str, Any]]] | None = None
                      ) -> PredictionRun:
        """Score the pictures named by files, folders and globs, as ``picaffect predict`` does.

        Every input is accounted for: a picture is a row (with ``error`` if it could not
        be read), anything passed over (not a picture, no such path) is a note.
        ``progress`` may wrap the row stream (e.g. a tqdm bar), given the stream and its length.
        """
        pictures, notes = collect_pictures([str(p) for p in paths], recursive=recursive)
        run = PredictionRun(notes=list(notes))
        stream = self.predict_stream(pictures, batch_size=batch_size, tta=tta)
        for row in (progress(stream, len(pictures)) if progress else stream):
            run.rows.append(add_scaled(row, scale) if scale else row)
        return run
