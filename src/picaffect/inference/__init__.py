"""Checkpoint -> model -> pictures -> valence and arousal: the inference core.

It needs only ``models`` and the picture-decoding part of ``data``: no training,
evaluation, dataset building, pandas or yaml (a test checks ``sys.modules``), so
that a service, an exporter or a batch job can score pictures with the least.
Torch itself is imported only where a torch model is read or run: the names from
``checkpoint`` are loaded on first use, so ``from picaffect.inference import
Predictor`` with an ONNX model never imports torch.
"""
from __future__ import annotations

from .backends import OnnxBackend, TorchBackend
from .locate import resolve_model, shipped_onnx_path, shipped_path
from .predictor import PredictionRun, Predictor, add_scaled, failed_row, quadrant
from .spec import CENTRED, RAW, ModelSpec

_FROM_CHECKPOINT = ("build_model", "export", "load_model", "model_record", "read", "save_atomic")

__all__ = ["CENTRED", "RAW", "ModelSpec", "OnnxBackend", "PredictionRun", "Predictor", "TorchBackend", "add_scaled",
           "build_model", "export", "export_onnx", "failed_row", "load_model", "model_record", "quadrant", "read",
           "resolve_model", "save_atomic", "shipped_onnx_path", "shipped_path"]


def __getattr__(name: str):
    if name in _FROM_CHECKPOINT:
        from . import checkpoint
        return getattr(checkpoint, name)
    if name == "export_onnx":
        from .onnx_export import export_onnx
        return export_onnx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
