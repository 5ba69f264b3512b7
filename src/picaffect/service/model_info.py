"""What ``GET /v1/model`` says about the model being served, and where its model card is.

Everything comes from the loaded file itself (``inference.provenance``): the
configuration it was made from, the dataset manifest's SHA-256, the picaffect
version and commit that made it, its evaluation record (leave one source out first:
what a new set of pictures should expect; then the validation rows) and its
calibration. No figure is written here, so the answer changes with the file and
never with the code; a file made before these were recorded names what it lacks
in ``missing``.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.errors import PicaffectError
from ..core.names import SHIPPED
from ..inference.provenance import KEYS, from_onnx_metadata, missing, read_provenance


def model_card_path() -> Path | None:
    """MODEL_CARD.md of the source tree picaffect runs from, if there is one (a checkout or editable install)."""
    package = Path(str(resources.files("picaffect")))
    for candidate in (package / "MODEL_CARD.md", package.parents[1] / "MODEL_CARD.md"):
        if candidate.is_file():
            return candidate
    return None


def is_shipped(name: str) -> bool:
    """A model shipped inside the package (``default``, ``accurate``): MODEL_CARD.md describes it."""
    return name in SHIPPED


def file_metadata(predictor: Any) -> dict[str, Any]:
    """The metadata of the file behind ``predictor``: an ONNX backend's own ``metadata_props``, else the file its
    name resolves to; empty when there is none to read (a stand-in, or a file moved away since it was loaded)."""
    onnx_meta = getattr(getattr(predictor, "backend", None), "metadata", None)
    try:
        if isinstance(onnx_meta, dict) and "picaffect.format" in onnx_meta:
            return from_onnx_metadata(onnx_meta, str(predictor.name))
        metadata = read_provenance(predictor.name)
    except (PicaffectError, OSError):
        return {}
    metadata.pop("file", None)  # a path on the server: not the client's business
    return metadata


def describe(predictor: Any, *, tta: bool) -> dict[str, Any]:
    """Name, input and scale, then the file's provenance, evaluation and calibration, and the intervals served."""
    spec = predictor.spec
    shipped = is_shipped(str(predictor.name))
    metadata = file_metadata(predictor)
    info: dict[str, Any] = {
        "name": str(predictor.name) if shipped else Path(str(predictor.name)).name,
        "architecture": spec.architecture,
        "input_size": [spec.size, spec.size],
        "input": "RGB picture squashed (not cropped) to a square",
        "scale": "1..9",
        "meaning": "Self-Assessment Manikin: valence 1 unpleasant .. 9 pleasant, arousal 1 calm .. 9 excited; "
                   "5 is neutral",
        "tta": tta,
        "picaffect": __version__,
        "model_card": "/model-card" if shipped else None,
        **{k: metadata.get(k) for k in KEYS},
        "made_by": metadata.get("made_by"),
        "missing": missing(metadata),
    }
    calibration = getattr(predictor, "calibration", None)
    info["intervals"] = None if calibration is None else {
        "level": predictor.level, "adaptive": calibration.adaptive, "scheme": calibration.scheme,
        "calibration_rows": calibration.n,
        "protocol": (calibration.info.get("protocol") or {}).get("name"),
        "coverage_by_held_out_source": calibration.info.get("leave_one_source_out")}
    return info
