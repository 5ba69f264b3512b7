"""The Python API most users come for: pictures in, valence and arousal out.

    from picaffect import Predictor
    p = Predictor.from_pretrained()            # the shipped default model, offline
    p.predict("photo.jpg")                     # {"valence": 6.1, "arousal": 4.2, ...}
    p.predict([path, pil_image, numpy_array])  # a list of dicts, batched

Pictures are prepared exactly as for training (decoded, EXIF-rotated, RGB,
squashed to the model's square input). Decoding runs on a few threads while the
network works on the previous batch's tensors, which is most of the speed of
``picaffect predict`` on a folder of photographs.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from .data.images import ImageProblem, array_to_rgb, load_square, square, to_rgb
from .data.parallel import ordered_map
from .scale import SAM, Scale, rescale

PictureLike = Union[str, Path, Image.Image, np.ndarray]
SHIPPED = {"default": "default.pt"}


def quadrant(valence: float, arousal: float) -> str:
    """The circumplex quadrant; the midpoint 5 counts as pleasant / activated."""
    return f"{'pleasant' if valence >= SAM.midpoint else 'unpleasant'}-" \
           f"{'activated' if arousal >= SAM.midpoint else 'calm'}"


def shipped_path(name: str) -> Path:
    if name not in SHIPPED:
        raise FileNotFoundError(f"no shipped model named {name!r}; shipped: {', '.join(SHIPPED)}")
    path = Path(str(resources.files("picaffect") / "weights" / SHIPPED[name]))
    if not path.is_file():
        raise FileNotFoundError(f"the shipped model file {path} is missing: reinstall picaffect")
    return path


class Predictor:
    """A trained model with its input size and output mapping, ready to score pictures."""

    def __init__(self, model: torch.nn.Module, recipe, size: int, name: str = "model",
                 device: str | torch.device = "cpu", workers: int | None = None) -> None:
        from .training.runtime import tune_allocator

        tune_allocator()
        self.device = torch.device(device)
        model = model.eval()
        if hasattr(model, "fuse_for_inference"):  # batch norms folded into convolutions: same output, faster
            model = model.fuse_for_inference()
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.recipe = recipe
        self.size = size
        self.name = name
        self.workers = workers

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", device: str = "auto",
                        workers: int | None = None) -> "Predictor":
        """A shipped model by name (``default``), a training run folder, or a checkpoint file."""
        from .training.engine import load_checkpoint
        from .training.runtime import pick_device

        ref = Path(name_or_path)
        if ref.is_dir():
            path = ref / "best.pt"
            if not path.is_file():
                raise FileNotFoundError(f"{ref} holds no best.pt: is it a picaffect training run?")
        elif ref.is_file():
            path = ref
        elif str(name_or_path) in SHIPPED:
            path = shipped_path(str(name_or_path))
        else:
            raise FileNotFoundError(f"{name_or_path} is neither a training run folder, a checkpoint file, nor a "
                                    f"shipped model ({', '.join(SHIPPED)})")
        model, recipe, size = load_checkpoint(path)
        return cls(model, recipe, size, name=str(name_or_path), device=pick_device(device), workers=workers)

    # -- pictures ------------------------------------------------------------------------------------------------
    def prepare(self, picture: PictureLike) -> np.ndarray:
        """One picture as a (size, size, 3) uint8 array; ``ImageProblem`` says why not."""
        if isinstance(picture, (str, Path)):
            return load_square(picture, self.size)
        if isinstance(picture, Image.Image):
            return square(to_rgb(picture.copy()), self.size)
        if isinstance(picture, np.ndarray):
            return square(array_to_rgb(picture), self.size)
        raise ImageProblem(f"cannot read a {type(picture).__name__} as a picture (give a path, a PIL image or an array)")

    @torch.no_grad()
    def predict_arrays(self, arrays: np.ndarray, tta: bool = False) -> np.ndarray:
        """(N, size, size, 3) uint8 -> (N, 2) (valence, arousal) on 1..9, clipped to the scale."""
        from .training.engine import to_input

        x = to_input(torch.from_numpy(arrays).permute(0, 3, 1, 2), self.size, self.device)
        y = self.model(x).float()
        if tta:
            y = (y + self.model(x.flip(-1)).float()) / 2
        return self.recipe.decode(y).clamp(SAM.min, SAM.max).cpu().numpy()

    def predict_stream(self, pictures: Iterable[PictureLike], batch_size: int = 32,
                       tta: bool = False) -> Iterator[dict[str, Any]]:
        """One result per picture, in input order; an unreadable picture gives a row with ``error``."""
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
        """Score one picture (a dict) or several (a list of dicts, batched).

        Values are on 1..9; with ``scale`` the dicts also carry ``valence_scaled`` and
        ``arousal_scaled`` on that scale. A picture that cannot be read raises
        ``ImageProblem`` here; ``predict_stream`` reports it in the row instead.
        """
        single = isinstance(pictures, (str, Path, Image.Image, np.ndarray))
        rows = list(self.predict_stream([pictures] if single else pictures, batch_size, tta))
        for row in rows:
            if row["error"]:
                raise ImageProblem(f"{row['path'] or 'picture'}: {row['error']}")
            if scale is not None:
                add_scaled(row, scale)
            if row["path"] is None:
                del row["path"]
        return rows[0] if single else rows

    def predict_dataset(self, dataset, batch_size: int = 64, tta: bool = False, clip: bool = False) -> np.ndarray:
        """Predictions for a built dataset's rows (for ``picaffect evaluate``).

        Unclipped by default: an evaluation describes the network as it is (a model
        early in training predicts below 1, and clipping would hide it).
        """
        from .training.engine import predict_loader

        out = predict_loader(self.model, dataset, self.recipe, self.size, self.device, batch_size, tta=tta)
        return (out.clamp(SAM.min, SAM.max) if clip else out).numpy()


def add_scaled(row: dict[str, Any], scale: Scale) -> dict[str, Any]:
    """Add the values on another scale (``--scale 1,7``) beside the 1..9 ones."""
    for key in ("valence", "arousal"):
        value = row.get(key)
        row[f"{key}_scaled"] = None if value is None else round(float(rescale(value, SAM, scale)), 4)
    return row
