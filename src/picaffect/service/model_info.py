"""What ``GET /v1/model`` says about the model being served, and where its model card is.

For the shipped ``default`` model the training sets and the held-out figures are
those of MODEL_CARD.md (a test checks that they match it); any other model is
described by what its checkpoint states: architecture and input size.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from .. import __version__

# MODEL_CARD.md, "Training data" and "Figures on the held-out validation rows" (the "all" row).
DEFAULT_CARD: dict[str, Any] = {
    "training_sets": [
        {"name": "OASIS", "pictures": 900, "native_scale": "1..7"},
        {"name": "Emotion6", "pictures": 1980, "native_scale": "1..9"},
        {"name": "BASS", "pictures": 583, "native_scale": "1..9"},
    ],
    "figures": {
        "rows": "held-out validation rows of OASIS + Emotion6 + BASS (split group, seed 0)",
        "n": 347,
        "valence_pearson_r": 0.72,
        "arousal_pearson_r": 0.36,
        "rmse_both_1_to_9": 1.11,
        "rmse_of_predicting_the_training_mean": 1.47,
        "valence_calibration_slope": 1.16,
        "arousal_calibration_slope": 0.81,
    },
}


def model_card_path() -> Path | None:
    """MODEL_CARD.md of the source tree picaffect runs from, if there is one (a checkout or editable install)."""
    package = Path(str(resources.files("picaffect")))
    for candidate in (package / "MODEL_CARD.md", package.parents[1] / "MODEL_CARD.md"):
        if candidate.is_file():
            return candidate
    return None


def is_default(name: str) -> bool:
    return name == "default"


def describe(predictor: Any, *, tta: bool) -> dict[str, Any]:
    """Name, input, scale and (for the shipped default) training sets and figures."""
    spec = predictor.spec
    info: dict[str, Any] = {
        "name": Path(predictor.name).name if not is_default(predictor.name) else "default",
        "architecture": spec.architecture,
        "input_size": [spec.size, spec.size],
        "input": "RGB picture squashed (not cropped) to a square",
        "scale": "1..9",
        "meaning": "Self-Assessment Manikin: valence 1 unpleasant .. 9 pleasant, arousal 1 calm .. 9 excited; "
                   "5 is neutral",
        "tta": tta,
        "picaffect": __version__,
    }
    if is_default(predictor.name):
        info.update(DEFAULT_CARD, model_card="/model-card")
    else:
        info.update(training_sets=None, figures=None, model_card=None)
    calibration = getattr(predictor, "calibration", None)
    info["intervals"] = None if calibration is None else {
        "level": predictor.level, "adaptive": calibration.adaptive, "scheme": calibration.scheme,
        "calibration_rows": calibration.n,
        "protocol": (calibration.info.get("protocol") or {}).get("name"),
        "coverage_by_held_out_source": calibration.info.get("leave_one_source_out"),
        "accuracy_by_held_out_source": calibration.info.get("held_out_accuracy")}
    return info
