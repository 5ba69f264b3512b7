"""Prediction intervals: how far a predicted rating may be off, from a model's calibration.

A calibrated model file carries a ``Calibration`` (written by ``picaffect calibrate``):
the sorted nonconformity scores ``|rating - prediction| / difficulty`` of pictures
the model was not fitted on, per dimension. Normalised split conformal prediction
turns them into an interval for a new picture,

    prediction +- q(level) * difficulty,   q(level) = the ceil((n + 1) * level)-th smallest score,

which holds the true rating with probability at least ``level`` when the new
picture is exchangeable with the calibration pictures (Vovk et al. 2005; Lei et
al. 2018). ``difficulty`` is what makes the width adapt: the exponential of a
linear "error head" on the network's pooled features, which the model computes
beside its ratings (an extra ONNX output, ``difficulty``), at no measurable cost.
A calibration without an error head (``adaptive`` False) has difficulty 1: every
picture gets the same width.

Torch-free and numpy only, so that the ONNX predict path, the service and the
batch job can all apply a calibration; fitting one is ``workflows/calibrate.py``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import CheckpointError, UsageError
from ..core.scale import SAM

DIMENSIONS = ("valence", "arousal")
INTERVAL_COLUMNS = ("valence_low", "valence_high", "arousal_low", "arousal_high")
DEFAULT_LEVEL = 0.9
FORMAT = "picaffect.calibration"
VERSION = 1
# Where an ONNX file keeps the calibration (metadata_props) and the error head's output (a graph output).
ONNX_KEY = "picaffect.calibration"
DIFFICULTY_OUTPUT = "difficulty"


def check_level(level: float) -> float:
    """A coverage level strictly between 0 and 1 (0.9 = 90 %); ``UsageError`` otherwise."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise UsageError(f"interval level {level!r} is not a number; give e.g. 0.9 for 90 %") from None
    if not 0 < value < 1:
        hint = f" (did you mean {value / 100:g}?)" if 1 < value < 100 else ""
        raise UsageError(f"interval level {level!r} must lie strictly between 0 and 1, e.g. 0.9 for 90 %{hint}")
    return value


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest score: the split-conformal quantile (infinite when n is too small)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    k = math.ceil((len(s) + 1) * level)
    return float(s[k - 1]) if 1 <= k <= len(s) else math.inf


def clip_to_scale(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on 1..9: a rating cannot lie outside the scale, so clipping never loses coverage."""
    return np.clip(low, SAM.min, SAM.max), np.clip(high, SAM.min, SAM.max)


@dataclass(frozen=True)
class Calibration:
    """What a model file needs to give intervals: calibration scores per dimension and how they were made.

    ``scores``: sorted nonconformity scores per dimension; ``adaptive``: whether they are
    normalised by the model's error head (its ``difficulty`` output), else by 1;
    ``info``: the protocol, sources, row counts and the coverage measured leave one
    source out, as ``picaffect calibrate`` wrote them (shown, never used to compute).
    """
    scores: dict[str, tuple[float, ...]]
    adaptive: bool
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [d for d in DIMENSIONS if not self.scores.get(d)]
        if missing:
            raise CheckpointError(f"calibration without scores for {', '.join(missing)}")

    @property
    def n(self) -> int:
        return min(len(self.scores[d]) for d in DIMENSIONS)

    def quantiles(self, level: float = DEFAULT_LEVEL) -> np.ndarray:
        """(2,) the multiplier q per dimension at ``level``; ``UsageError`` when the calibration is too small."""
        level = check_level(level)
        q = np.array([conformal_quantile(np.asarray(self.scores[d]), level) for d in DIMENSIONS])
        if not np.isfinite(q).all():
            raise UsageError(f"a {level:.0%} interval needs at least {math.ceil(1 / (1 - level)) - 1} calibration "
                             f"rows; this model's calibration has {self.n}: choose a lower level")
        return q

    def bounds(self, ratings: np.ndarray, difficulty: np.ndarray | None, level: float = DEFAULT_LEVEL) -> np.ndarray:
        """(N, 4) valence_low, valence_high, arousal_low, arousal_high on 1..9 for (N, 2) ratings.

        ``difficulty`` is the model's (N, 2) error-head output; an adaptive calibration
        without it is refused, since a constant in its place would give wrong widths.
        """
        ratings = np.asarray(ratings, dtype=np.float64).reshape(-1, 2)
        if self.adaptive:
            if difficulty is None:
                raise CheckpointError("this calibration scales intervals by the model's difficulty output, which "
                                      "the model did not give (an ONNX file exported without its error head?)")
            scale = np.asarray(difficulty, dtype=np.float64).reshape(-1, 2)
        else:
            scale = np.ones_like(ratings)
        half = scale * self.quantiles(level)
        low, high = clip_to_scale(ratings - half, ratings + half)
        return np.stack([low[:, 0], high[:, 0], low[:, 1], high[:, 1]], axis=1)

    # -- storage ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "adaptive": self.adaptive,
                "scores": {d: [round(float(s), 5) for s in self.scores[d]] for d in DIMENSIONS}, "info": self.info}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model") -> "Calibration":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise CheckpointError(f"{where}: its calibration is not a picaffect calibration")
        if d.get("version") != VERSION:
            raise CheckpointError(f"{where}: calibration version {d.get('version')}; this picaffect reads version "
                                  f"{VERSION}: upgrade picaffect or calibrate the model again")
        scores = {k: tuple(sorted(float(s) for s in d["scores"][k])) for k in DIMENSIONS if k in d.get("scores", {})}
        return cls(scores=scores, adaptive=bool(d.get("adaptive")), info=dict(d.get("info") or {}))

    @classmethod
    def from_json(cls, text: str, where: str = "model") -> "Calibration":
        try:
            return cls.from_dict(json.loads(text), where)
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{where}: its calibration is not valid JSON ({e})") from None


def empty_bounds(n: int) -> np.ndarray:
    """(n, 4) NaN: the bounds of a model without calibration (rows then carry nulls)."""
    return np.full((n, 4), np.nan)


def from_record(record: dict[str, Any], where: str = "checkpoint") -> tuple[Calibration | None, dict | None]:
    """A checkpoint record's calibration and error head (``{"weight", "bias"}`` tensors), or (None, None)
    for a model that was never calibrated (it still predicts; its rows carry no intervals)."""
    raw = record.get("calibration")
    if raw is None:
        return None, None
    head = raw.get("error_head") if isinstance(raw, dict) else None
    calibration = Calibration.from_dict({k: v for k, v in raw.items() if k != "error_head"}, where)
    if calibration.adaptive and head is None:
        raise CheckpointError(f"{where}: its calibration scales by an error head that the file does not hold; "
                              f"calibrate the model again")
    return calibration, head


def from_onnx_metadata(meta: dict[str, str], outputs: list[str], where: str = "ONNX model") -> Calibration | None:
    """An ONNX file's calibration (metadata ``picaffect.calibration``), checked against its graph outputs."""
    text = meta.get(ONNX_KEY)
    if text is None:
        return None
    calibration = Calibration.from_json(text, where)
    if calibration.adaptive and DIFFICULTY_OUTPUT not in outputs:
        raise CheckpointError(f"{where}: its calibration needs the graph output {DIFFICULTY_OUTPUT!r}, which the file "
                              f"lacks; export it again with `picaffect export`")
    return calibration
