"""Checkpoints that survive a kill at any moment: written to a temporary file
in the same folder, then renamed over the old one (atomic on POSIX)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def float_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A checkpoint's model weights in float32 (shipped checkpoints store them as fp16)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by picaffect (plain tensors and Python values)."""
    return torch.load(path, map_location="cpu", weights_only=True)
