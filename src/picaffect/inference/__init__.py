"""Checkpoint -> model -> pictures -> valence and arousal: the inference core.

It needs only ``models`` and the picture-decoding part of ``data``: no training,
evaluation, dataset building, pandas or yaml (a test checks ``sys.modules``), so
that a service, an exporter or a batch job can score pictures with the least.
"""
from __future__ import annotations

from .checkpoint import CENTRED, RAW, ModelSpec, build_model, export, load_model, model_record, read, save_atomic
from .predictor import PredictionRun, Predictor, add_scaled, quadrant, resolve_model, shipped_path

__all__ = ["CENTRED", "RAW", "ModelSpec", "PredictionRun", "Predictor", "add_scaled", "build_model", "export",
           "load_model", "model_record", "quadrant", "read", "resolve_model", "save_atomic", "shipped_path"]
