"""``picaffect features``: pooled features of any backbone for a rated dataset, in one file.

What Conwell et al. (PNAS 2025) did over 180 models: the frozen network's pooled
features of every picture, beside its ratings, ready for a ridge regression (or any
other readout) in seconds. The backbone is a registered architecture with its
pretrained weights (``efficientnet_lite2``, ``efficientnet_lite0`` with
``--model-option features=stages``), a Hugging Face model (``hub:ORG/NAME``), or a
trained picaffect model (a run folder, checkpoint file or shipped name).

The ``.npz`` holds ``features`` (rows, width) float32, ``ratings`` (rows, 2)
(valence, arousal on 1..9), ``id``, ``source``, ``split``, ``group`` (strings, one
per row) and ``meta`` (a JSON string: model, arguments, input side, mirror TTA).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import models
from ..data.dataset import RatedImages
from ..core.errors import UsageError
from ..inference.checkpoint import ModelSpec, load_model
from ..inference.predictor import resolve_model
from ..core.names import SPLITS_OR_ALL, check, is_hub
from ..core.runtime import pick_device
from ..training.probe import dataset_features


def backbone(model_ref: str, options: dict[str, Any] | None = None, size: int | None = None,
             default_size: int = 224) -> tuple[torch.nn.Module, ModelSpec]:
    """A model and the spec that feeds it: a registered name or ``hub:X`` (pretrained), else a checkpoint."""
    options = dict(options or {})
    if is_hub(model_ref) or model_ref in models.names():
        architecture, options = models.resolve(model_ref, options)
        model = models.create(architecture, **options)
        side = size or getattr(model, "input_size", None) or default_size
        spec = ModelSpec(architecture=architecture, size=side, arguments=models.checkpoint_arguments(model, options))
        return model.eval(), spec
    if options:
        raise UsageError("--model-option applies to a model name, not to a trained checkpoint")
    model, spec = load_model(resolve_model(model_ref))
    if size:
        spec = ModelSpec(**{**spec.__dict__, "size": size})
    return model, spec


def extract_features(model_ref: str, data: str | Path, out: str | Path, *, split: str = "all",
                     options: dict[str, Any] | None = None, size: int | None = None, tta: bool = True,
                     batch_size: int = 64, device: str = "auto", limit: int | None = None) -> dict[str, Any]:
    """Write the pooled features of ``split`` of the built dataset ``data`` to ``out`` (.npz); returns the meta."""
    check("split", split, SPLITS_OR_ALL)
    out = Path(out)
    if out.suffix != ".npz":
        raise UsageError(f"--out {out}: give a file ending in .npz")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: {out.parent} is not an existing folder")
    dataset = RatedImages(data, split, limit=limit)
    if len(dataset) == 0:
        raise UsageError(f"{data} has no rows in split {split!r}")
    dev = pick_device(device)
    model, spec = backbone(model_ref, options, size, default_size=dataset.image_size)
    model = model.to(dev).to(memory_format=torch.channels_last)
    start = time.perf_counter()
    feats = dataset_features(model, dataset, spec, dev, batch_size=batch_size, tta=tta).astype(np.float32)
    seconds = time.perf_counter() - start
    rows = dataset.rows
    meta = {"model": str(model_ref), "architecture": spec.architecture,
            "arguments": {k: v for k, v in spec.arguments.items() if k != "config"}, "size": spec.size,
            "tta": tta, "dataset": str(data), "split": split, "rows": int(len(rows)), "width": int(feats.shape[1]),
            "seconds": round(seconds, 1)}
    def text(column) -> np.ndarray:  # fixed-width unicode, so that np.load needs no pickle
        return np.asarray(column.astype(str).tolist(), dtype=str)

    np.savez(out, features=feats, ratings=dataset.targets.numpy(), id=text(rows["id"]), source=text(rows["source"]),
             split=text(rows["split"]), group=np.asarray(dataset.groups.tolist(), dtype=str), meta=np.array(json.dumps(meta)))
    return meta
