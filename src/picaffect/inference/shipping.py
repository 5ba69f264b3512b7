"""``picaffect export``: a trained model as the file that ships, its format chosen by the file's ending.

``.onnx``: an ONNX file with the input size, input scaling, output mapping and model
name in its metadata, enough to score with onnxruntime alone. Anything else: a slim
checkpoint without optimiser and training state, fp16 unless ``fp32``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import UsageError
from .checkpoint import export
from .locate import resolve_model
from .onnx_export import export_onnx


def export_model(model_ref: str | Path, out: str | Path, *, fp32: bool = False,
                 metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model_ref`` (a run folder, checkpoint file or shipped model's name) to the file ``out``."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give the file to write, e.g. {out / 'model.pt'}")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: {out.parent} is not an existing folder")
    source = resolve_model(model_ref)
    if out.suffix.lower() == ".onnx":
        return export_onnx(source, out, name=Path(str(model_ref)).stem, metadata=metadata)
    return export(source, out, half=not fp32, metadata=metadata)
