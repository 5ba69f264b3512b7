"""What a model file says about where it came from, read from a checkpoint or its ONNX twin.

``picaffect retrain`` and ``picaffect calibrate`` write into a model file's metadata
the configuration it was made from, the SHA-256 of the built dataset's manifest, the
picaffect version and git commit that made it, its evaluation record
(``evaluation/record.py``: leave one source out, then the validation rows) and a
summary of its calibration; the ONNX twin carries the same metadata as JSON in
``metadata_props``. ``picaffect info``, ``GET /v1/model`` and ``scripts/check_shipped.py``
read it from here, so that no figure about a model is ever written into the code.

A file made before these keys existed still reads: what it lacks is named in
``missing``, never an error. Reading a checkpoint needs torch; an ONNX file needs onnx
or onnxruntime (the base install), so a torch-free install reads the shipped ONNX twin.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import CheckpointError, UsageError
from .backends import installed
from .intervals import ONNX_KEY, Calibration

# The keys every model file picaffect ships carries (``picaffect info --json`` has at least these).
KEYS = ("config", "dataset_sha256", "version", "commit", "evaluation", "calibration")
# The blocks of an evaluation record, in the order a reader should meet them.
EVALUATION_BLOCKS = ("leave_one_source_out", "validation")
# Interval levels whose widths a calibration summary states.
LEVELS = (0.8, 0.9, 0.95)
METADATA_KEY = "picaffect.metadata"  # the ONNX metadata_props entry that holds the checkpoint's metadata (JSON)


def calibration_summary(calibration: Calibration, levels: tuple[float, ...] = LEVELS) -> dict[str, Any]:
    """What a reader needs to know of a calibration: scheme, protocol, rows per source, and the widths.

    ``half_widths``: per level, the interval's half-width per dimension in points on 1..9
    (a constant calibration), or the multiplier of each picture's difficulty (an adaptive one,
    ``adaptive`` true). A level the calibration is too small for is left out.
    """
    info = calibration.info or {}
    widths: dict[str, dict[str, float]] = {}
    for level in levels:
        try:
            q = calibration.quantiles(level)
        except UsageError:
            continue
        widths[f"{level:g}"] = {"valence": round(float(q[0]), 4), "arousal": round(float(q[1]), 4)}
    return {"scheme": calibration.scheme, "adaptive": calibration.adaptive,
            "protocol": (info.get("protocol") or {}).get("name"), "rows": calibration.n,
            "sources": calibration.sources, "half_widths": widths,
            "width_unit": "multiplier of the picture's difficulty" if calibration.adaptive else "points on 1..9"}


def from_record(record: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint record's metadata, with its calibration's summary when the metadata has none."""
    metadata = dict(record.get("metadata") or {})
    metadata.pop("trained_with", None)  # a training run's whole config: the retrain config says what matters
    raw = record.get("calibration")
    if "calibration" not in metadata and isinstance(raw, dict):
        metadata["calibration"] = calibration_summary(
            Calibration.from_dict({k: v for k, v in raw.items() if k != "error_head"}))
    return metadata


def from_onnx_metadata(meta: dict[str, str], where: str = "ONNX model") -> dict[str, Any]:
    """An ONNX file's metadata (``metadata_props``), with its calibration's summary when the metadata has none."""
    try:
        metadata = json.loads(meta.get(METADATA_KEY) or "{}")
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{where}: its {METADATA_KEY} is not valid JSON ({e})") from None
    if "calibration" not in metadata and ONNX_KEY in meta:
        metadata["calibration"] = calibration_summary(Calibration.from_json(meta[ONNX_KEY], where))
    return metadata


def onnx_properties(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file, read with onnx when installed, else with onnxruntime."""
    if installed("onnx"):
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as e:  # onnx raises DecodeError and others for files that are not ONNX
            raise CheckpointError(f"{path}: not a readable ONNX file ({str(e).splitlines()[0][:160]})") from None
        return {p.key: p.value for p in proto.metadata_props}
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own error types
        raise CheckpointError(f"{path}: not a readable ONNX file ({str(e).splitlines()[0][:160]})") from None
    return dict(session.get_modelmeta().custom_metadata_map)


def model_file(ref: str | Path) -> Path:
    """The file ``picaffect info`` reads for ``ref``: an ONNX file, a checkpoint, a run folder's best.pt, or a
    shipped model's checkpoint (its ONNX twin when torch is not installed)."""
    from .locate import resolve_model, shipped_onnx_path

    path = Path(ref)
    if path.suffix.lower() == ".onnx" and path.is_file():
        return path
    if not path.exists() and not installed("torch"):
        twin = shipped_onnx_path(str(ref))
        if twin is not None:
            return twin
    return resolve_model(ref)


def read_provenance(ref: str | Path) -> dict[str, Any]:
    """The metadata of the model file ``ref`` names (``model_file``), with ``file`` (its path)."""
    path = model_file(ref)
    if path.suffix.lower() == ".onnx":
        metadata = from_onnx_metadata(onnx_properties(path), str(path))
    else:
        from .checkpoint import read

        metadata = from_record(read(path))
    return {**metadata, "file": str(path)}


def missing(metadata: dict[str, Any]) -> list[str]:
    """The keys of ``KEYS`` (and evaluation blocks) a file's metadata lacks, in words: ``evaluation.validation``."""
    gone = [k for k in KEYS if metadata.get(k) in (None, {}, "")]
    evaluation = metadata.get("evaluation")
    if isinstance(evaluation, dict) and evaluation:
        gone += [f"evaluation.{b}" for b in EVALUATION_BLOCKS if not evaluation.get(b)]
    return gone
