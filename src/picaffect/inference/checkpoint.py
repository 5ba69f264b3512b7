"""The checkpoint format: everything needed to score a picture, as data.

A checkpoint names the architecture and its constructor arguments, the input
(square side, pixel scaling) and the mapping of the network's outputs to 1..9 as
numbers. Nothing is rebuilt from the code's current recipes, so editing a
training recipe can never change what a shipped model predicts.

    {"format": "picaffect.model", "version": 2,
     "spec": {"architecture": "efficientnet_lite0", "arguments": {...}, "size": 224,
              "input_scale": 1/255, "output_scale": 4.0, "output_offset": 5.0},
     "weights": {...state dict...}, "metadata": {...},
     "training": {...},   # only in a training run's last.pt / best.pt: optimiser, epoch, config
     "calibration": {...}}  # only after `picaffect calibrate`: conformal scores, error head (intervals.py)

Files are written atomically (temporary file, fsync, rename), so a reader never
sees half a file even if the writer is killed. Checkpoints of picaffect 0.1
(format 1: a recipe name instead of numbers) are converted on reading, with the
same predictions; anything else is refused with a ``CheckpointError``.
"""
from __future__ import annotations

import pickle
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .. import models
from ..core.atomic import replace_atomically
from ..core.errors import CheckpointError, PicaffectError
from ..models.efficientnet_lite import NORMALIZATIONS
from ..models.kernel_head import keeps_full_precision
from .spec import CENTRED, RAW, ModelSpec

FORMAT = "picaffect.model"
VERSION = 2
__all__ = ["CENTRED", "FORMAT", "RAW", "VERSION", "ModelSpec", "build_model", "export", "load_model",
           "model_record", "read", "save_atomic"]


def model_record(model: torch.nn.Module, spec: ModelSpec, *, half: bool = False,
                 metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint's model part; ``half`` stores floating weights as fp16 (half the size)."""
    weights = {k: (_halved(k, v.detach()) if half else v.detach()).cpu().clone() for k, v in model.state_dict().items()}
    return {"format": FORMAT, "version": VERSION, "spec": asdict(spec), "weights": weights,
            "metadata": dict(metadata or {})}


def _halved(name: str, value: torch.Tensor) -> torch.Tensor:
    """fp16 for floating weights, except those a model keeps in full precision (a kernel head's)."""
    return value.half() if value.is_floating_point() and not keeps_full_precision(name) else value


def save_atomic(record: dict[str, Any], path: str | Path) -> Path:
    """Write ``record`` so that ``path`` is either the old file or the whole new one."""
    return replace_atomically(path, lambda temp: torch.save(record, temp))


def read(path: str | Path) -> dict[str, Any]:
    """A checkpoint as a record of the current format; ``CheckpointError`` says why not."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a readable picaffect checkpoint (truncated, or not written by "
                              f"torch.save): {str(e).splitlines()[0][:200]}") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a picaffect checkpoint (holds a {type(raw).__name__})")
    if raw.get("format") == FORMAT:
        if raw.get("version") != VERSION:
            raise CheckpointError(f"{path}: checkpoint format version {raw.get('version')}; this picaffect reads "
                                  f"version {VERSION}: upgrade picaffect")
        return raw
    if {"model", "config", "recipe", "size"} <= set(raw):
        return _from_version_1(raw, path)
    raise CheckpointError(f"{path}: not a picaffect checkpoint (keys: {', '.join(map(str, list(raw)[:6]))}); "
                          f"a bare state dict can be loaded with --model-option pretrained=PATH instead")


def build_model(record: dict[str, Any], source: str | Path = "checkpoint") -> tuple[torch.nn.Module, ModelSpec]:
    """The network of a checkpoint record in eval mode, with its spec."""
    spec = ModelSpec.from_dict(record["spec"])
    try:
        # The checkpoint holds every weight: nothing pretrained needs reading first.
        model = models.create(spec.architecture, **{**spec.arguments, "pretrained": None})
    except PicaffectError as e:
        raise CheckpointError(f"{source}: {e}") from None
    weights = {k: v.float() if v.is_floating_point() else v for k, v in record["weights"].items()}
    result = model.load_state_dict(weights, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{source}: weights do not fit {spec.architecture} (missing "
                              f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]})")
    return model.eval(), spec


def load_model(path: str | Path) -> tuple[torch.nn.Module, ModelSpec]:
    """Read a checkpoint file and build its network (eval mode)."""
    return build_model(read(path), path)


def export(source: str | Path, out: str | Path, *, half: bool = True,
           metadata: dict[str, Any] | None = None) -> Path:
    """A slim copy for shipping: the model part only (no optimiser or training state), fp16 by default."""
    record = read(source)
    slim = {k: record[k] for k in ("format", "version", "spec", "metadata", "calibration") if k in record}
    slim["weights"] = {k: _halved(k, v) if half else v for k, v in record["weights"].items()}
    slim["metadata"] = {**record.get("metadata", {}), **(metadata or {})}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_atomic(slim, out)


# -- picaffect 0.1 checkpoints ------------------------------------------------------------------------------------
# Format 1 stored the training config, the recipe as a dict and the input size. The
# recipe dict's ``normalize_targets`` gives the output mapping as it was when the
# model was trained; module names that changed since are renamed here.

def _from_version_1(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    config, recipe = raw["config"], raw["recipe"]
    architecture = config["model"]
    arguments = {k: v for k, v in dict(config.get("model_options") or {}).items() if k != "pretrained"}
    weights = dict(raw["model"])
    if architecture == "efficientnet_lite0":
        weights = {k: v for k, v in weights.items() if not k.startswith("_fc.")}
        for part in ("weight", "bias"):
            if f"head.{part}" in weights:
                weights[f"head.fc.{part}"] = weights.pop(f"head.{part}")
        mean, std = NORMALIZATIONS[arguments.get("normalization", "inception")]
        weights["normalize.mean"] = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        weights["normalize.std"] = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    elif architecture == "emosepar":
        weights = {("body." + k[len("features."):] if k.startswith("features.") else k): v
                   for k, v in weights.items()}
    scale, offset = CENTRED if recipe.get("normalize_targets") else RAW
    spec = ModelSpec(architecture=architecture, size=int(raw["size"]), arguments=arguments,
                     output_scale=scale, output_offset=offset)
    metadata = {**dict(raw.get("metadata") or {}), "converted_from": "picaffect 0.1 checkpoint (format 1)",
                "trained_with": {"config": config, "recipe": recipe, "epoch": raw.get("epoch")}}
    record = {"format": FORMAT, "version": VERSION, "spec": asdict(spec), "weights": weights, "metadata": metadata}
    if "optimizer" in raw:
        record["legacy_training_state"] = True
    return record
