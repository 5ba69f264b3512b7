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

New pictures rarely come from one of the calibration's sources: a user's stimuli are
in effect a new source, with its own bias and spread. How q is taken from the
held-out errors of several sources is the calibration's ``scheme``:

- ``pooled`` (the default): the plain split-conformal quantile of every row's score;
  its guarantee holds for pictures drawn like the calibration rows, which the largest
  source dominates. Held out one source at a time, it came as close to the level as
  any other scheme, with the narrowest intervals (``results/intervals/search.md``).
- ``equal-sources``: each source weighs the same (the mean of the sources' conformal
  distribution functions), so one large set does not set the width alone.
- ``worst-source``: the largest of the sources' own quantiles: every calibration
  source would be covered at ``level``; the widest.
- ``standardised``: a new source as one more draw of a random source
  effect. Each source's errors are centred on their mean (its bias) and scaled by
  their SD; q is the equal-sources quantile of those standardised scores times
  ``sqrt(mean SD^2 + sum bias^2 / (k - 1))``: the spread within a source plus a
  (deliberately conservative, k sources) estimate of how far a new source's bias may be.

A calibration made from a rated pilot of the user's own pictures (``picaffect calibrate
MODEL --pilot FILE``, ``workflows/pilot.py``) has the scheme ``jackknife+`` (Barber,
Candès, Ramdas & Tibshirani 2021): the pilot's k pictures are exchangeable with the rest
of the user's set, and the model file's prediction was fitted on them (a bias and scale
correction, or a readout refitted with them), so each pilot picture's score is its
leave-one-out error, and each leave-one-out fit is kept as a line in the file's
prediction (``jackknife``: its offset and slope per pilot picture). The interval is

    [ q_lo{ centre_i - |e_i| d },  q_hi{ centre_i + |e_i| d } ],  centre_i = offset_i + slope_i * prediction,

q_lo the floor((1 - level)(k + 1))-th smallest, q_hi the ceil(level (k + 1))-th
smallest, widened where needed to hold the prediction itself. With lines of slope 1 and
offset 0 (a readout refitted on the pilot, whose leave-one-out fits are not lines in the
prediction) it is the jackknife interval, prediction +- q_hi{|e_i|} d.

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
from ..core.names import DEFAULT_INTERVAL_SCHEME, INTERVAL_SCHEMES, check
from ..core.scale import SAM

DIMENSIONS = ("valence", "arousal")
INTERVAL_COLUMNS = ("valence_low", "valence_high", "arousal_low", "arousal_high")
DEFAULT_LEVEL = 0.9
FORMAT = "picaffect.calibration"
VERSION = 2   # 2: signed errors per source and a scheme; version 1 (pooled scores) is still read
PILOT_SCHEME = "jackknife+"   # a calibration on the user's own rated pilot (workflows/pilot.py)
PILOT_SOURCE = "pilot"        # the one block of errors such a calibration holds
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
        # 90 or 95 is a percentage; 1.5 or 5 is no coverage anyone means, so no guess for those
        hint = f" (did you mean {value / 100:g}?)" if 50 <= value < 100 else ""
        raise UsageError(f"interval level {level!r} must lie strictly between 0 and 1, e.g. 0.9 for 90 %{hint}")
    return value


def percent(level: float) -> str:
    """A level as a percentage with the digits it needs: 90 %, 99.9 % (never 0.999 shown as "100 %")."""
    return f"{round(100 * float(level), 6):g} %"


def pilot_minimum(level: float) -> int:
    """The fewest leave-one-out scores that give a jackknife+ (or split-conformal) interval at ``level``: the
    ceil(level (k + 1))-th of k scores must exist, so k >= level / (1 - level) (9 for 90 %, 19 for 95 %)."""
    return math.ceil(level / (1 - level) - 1e-9)


def _ranks(k: int, level: float) -> tuple[int, int]:
    """The 1-based ranks of jackknife+'s lower and upper quantiles among k values (rounding-safe)."""
    return math.floor((1 - level) * (k + 1) + 1e-9), math.ceil(level * (k + 1) - 1e-9)


def jackknife_plus_bounds(predictions: np.ndarray, offset: np.ndarray, slope: np.ndarray, errors: np.ndarray,
                          scale: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(N,) low and high of one dimension's jackknife+ intervals (module docstring), unclipped.

    ``predictions`` and ``scale`` (the difficulty, or ones): (N,); ``offset``, ``slope``, ``errors``: one per
    pilot picture. Infinite bounds when there are too few pictures for ``level``.
    """
    p, d = np.asarray(predictions, np.float64).reshape(-1), np.asarray(scale, np.float64).reshape(-1)
    k = len(errors)
    lo, hi = _ranks(k, level)
    if lo < 1 or hi > k:
        return np.full(len(p), -math.inf), np.full(len(p), math.inf)
    centres = np.asarray(offset, np.float64)[None, :] + np.asarray(slope, np.float64)[None, :] * p[:, None]
    reach = np.abs(np.asarray(errors, np.float64))[None, :] * d[:, None]
    low = np.partition(centres - reach, lo - 1, axis=1)[:, lo - 1]
    high = np.partition(centres + reach, hi - 1, axis=1)[:, hi - 1]
    return np.minimum(low, p), np.maximum(high, p)


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) * level)-th smallest score: the split-conformal quantile (infinite when n is too small)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    k = math.ceil((len(s) + 1) * level)
    return float(s[k - 1]) if 1 <= k <= len(s) else math.inf


def equal_sources_quantile(scores_by_source: list[np.ndarray], level: float) -> float:
    """The smallest score v at which the mean over sources of #{scores <= v} / (n + 1) reaches ``level``.

    With one source this is ``conformal_quantile``; with several, each source counts the
    same however many rows it has. Infinite when the sources are too small for ``level``.
    """
    groups = [np.sort(np.asarray(g, dtype=np.float64)) for g in scores_by_source if len(g)]
    if not groups:
        return math.inf
    values = np.unique(np.concatenate(groups))
    cdf = np.mean([np.searchsorted(g, values, side="right") / (len(g) + 1) for g in groups], axis=0)
    reached = np.nonzero(cdf >= level - 1e-12)[0]
    return float(values[reached[0]]) if len(reached) else math.inf


def scheme_quantile(errors_by_source: list[np.ndarray], level: float, scheme: str) -> float:
    """The multiplier q for signed (normalised) held-out errors, one array per source, under ``scheme``."""
    groups = [np.asarray(e, dtype=np.float64) for e in errors_by_source if len(e)]
    if scheme in ("pooled", PILOT_SCHEME):  # jackknife+: the half-width around lines of slope 1, offset 0
        return conformal_quantile(np.abs(np.concatenate(groups)), level)
    if scheme == "equal-sources":
        return equal_sources_quantile([np.abs(g) for g in groups], level)
    if scheme == "worst-source":
        return max(conformal_quantile(np.abs(g), level) for g in groups)
    if scheme == "standardised":
        if any(len(g) < 2 for g in groups):
            return math.inf
        bias = np.array([g.mean() for g in groups])
        sd = np.array([max(g.std(ddof=1), 1e-12) for g in groups])
        z = [np.abs(g - b) / s for g, b, s in zip(groups, bias, sd)]
        between = float((bias ** 2).sum() / (len(groups) - 1)) if len(groups) > 1 else 0.0
        return equal_sources_quantile(z, level) * math.sqrt(float((sd ** 2).mean()) + between)
    raise UsageError(f"unknown interval scheme {scheme!r}; choose one of {', '.join(INTERVAL_SCHEMES)}")


def clip_to_scale(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on 1..9: a rating cannot lie outside the scale, so clipping never loses coverage."""
    return np.clip(low, SAM.min, SAM.max), np.clip(high, SAM.min, SAM.max)


@dataclass(frozen=True)
class Calibration:
    """What a model file needs to give intervals: held-out errors and how to turn them into a width.

    ``errors``: per source, per dimension, the signed held-out errors ``(rating -
    prediction) / difficulty``; ``scheme``: how q is taken from them (module docstring);
    ``adaptive``: whether they are normalised by the model's error head (its
    ``difficulty`` output), else by 1; ``info``: the protocol, sources, row counts and
    the coverage measured leave one source out, as ``picaffect calibrate`` wrote them
    (shown, never used to compute). A version-1 file has only pooled absolute scores:
    it is read as one source under the ``pooled`` scheme, which is what it computed.
    ``jackknife`` (scheme ``jackknife+`` only): per dimension, the ``offset`` and
    ``slope`` of each pilot picture's leave-one-out fit as a line in the file's
    prediction, in the order of the errors of the one source ``pilot``.
    """
    errors: dict[str, dict[str, tuple[float, ...]]]
    adaptive: bool
    info: dict[str, Any] = field(default_factory=dict)
    scheme: str = DEFAULT_INTERVAL_SCHEME
    jackknife: dict[str, dict[str, tuple[float, ...]]] | None = None

    def __post_init__(self) -> None:
        check("interval scheme", self.scheme, (*INTERVAL_SCHEMES, PILOT_SCHEME))
        if not self.errors:
            raise CheckpointError("calibration without held-out errors")
        for source, block in self.errors.items():
            missing = [d for d in DIMENSIONS if not block.get(d)]
            if missing:
                raise CheckpointError(f"calibration without errors of source {source!r} for {', '.join(missing)}")
        if (self.scheme == PILOT_SCHEME) != (self.jackknife is not None):
            raise CheckpointError(f"a {PILOT_SCHEME} calibration needs its leave-one-out lines, and only it has them")
        if self.jackknife is not None:
            if set(self.errors) != {PILOT_SOURCE}:
                raise CheckpointError(f"a {PILOT_SCHEME} calibration holds the errors of its pilot only")
            for d in DIMENSIONS:
                lines = self.jackknife.get(d) or {}
                k = len(self.errors[PILOT_SOURCE][d])
                if len(lines.get("offset", ())) != k or len(lines.get("slope", ())) != k:
                    raise CheckpointError(f"{PILOT_SCHEME} calibration: {d} needs an offset and a slope for each of "
                                          f"its {k} pilot pictures")

    @property
    def n(self) -> int:
        return min(sum(len(b[d]) for b in self.errors.values()) for d in DIMENSIONS)

    @property
    def sources(self) -> dict[str, int]:
        return {s: min(len(b[d]) for d in DIMENSIONS) for s, b in self.errors.items()}

    def quantiles(self, level: float = DEFAULT_LEVEL) -> np.ndarray:
        """(2,) the multiplier q per dimension at ``level``; ``UsageError`` when the calibration is too small."""
        level = check_level(level)
        q = np.array([scheme_quantile([np.asarray(b[d]) for b in self.errors.values()], level, self.scheme)
                      for d in DIMENSIONS])
        if not np.isfinite(q).all():
            raise UsageError(f"a {percent(level)} interval needs at least {pilot_minimum(level)} calibration "
                             f"rows{' in every source' if len(self.errors) > 1 else ''}; this model's calibration "
                             f"has {min(self.sources.values())}: choose a lower level")
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
        if self.jackknife is not None:
            pairs = [jackknife_plus_bounds(ratings[:, j], self.jackknife[d]["offset"], self.jackknife[d]["slope"],
                                           self.errors[PILOT_SOURCE][d], scale[:, j], level)
                     for j, d in enumerate(DIMENSIONS)]
            low, high = clip_to_scale(np.stack([p[0] for p in pairs], 1), np.stack([p[1] for p in pairs], 1))
        else:
            low, high = clip_to_scale(ratings - half, ratings + half)
        return np.stack([low[:, 0], high[:, 0], low[:, 1], high[:, 1]], axis=1)

    # -- storage ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {"format": FORMAT, "version": VERSION, "adaptive": self.adaptive, "scheme": self.scheme,
               "errors": {s: {d: [round(float(e), 5) for e in b[d]] for d in DIMENSIONS}
                          for s, b in self.errors.items()}, "info": self.info}
        if self.jackknife is not None:
            out["jackknife"] = {d: {k: [round(float(v), 6) for v in self.jackknife[d][k]] for k in ("offset", "slope")}
                                for d in DIMENSIONS}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model") -> "Calibration":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise CheckpointError(f"{where}: its calibration is not a picaffect calibration")
        version = d.get("version")
        if version == 1:  # pooled absolute scores, one block: exactly what version 1 computed
            scores = d.get("scores", {})
            errors = {"pooled": {k: tuple(sorted(float(s) for s in scores[k])) for k in DIMENSIONS if k in scores}}
            return cls(errors=errors, adaptive=bool(d.get("adaptive")),
                       info={**dict(d.get("info") or {}), "version": 1}, scheme="pooled")
        if version != VERSION:
            raise CheckpointError(f"{where}: calibration version {version}; this picaffect reads versions 1 and "
                                  f"{VERSION}: upgrade picaffect or calibrate the model again")
        if d.get("scheme") not in (*INTERVAL_SCHEMES, PILOT_SCHEME):
            raise CheckpointError(f"{where}: unknown interval scheme {d.get('scheme')!r} (this picaffect knows "
                                  f"{', '.join((*INTERVAL_SCHEMES, PILOT_SCHEME))}): upgrade picaffect")
        errors = {str(s): {k: tuple(float(e) for e in b[k]) for k in DIMENSIONS if k in b}
                  for s, b in (d.get("errors") or {}).items()}
        lines = d.get("jackknife")
        jackknife = None if lines is None else {
            k: {part: tuple(float(v) for v in (lines.get(k) or {}).get(part, ())) for part in ("offset", "slope")}
            for k in DIMENSIONS}
        return cls(errors=errors, adaptive=bool(d.get("adaptive")), info=dict(d.get("info") or {}),
                   scheme=d["scheme"], jackknife=jackknife)

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
