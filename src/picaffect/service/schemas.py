"""The answers of the REST API as pydantic models, so that the OpenAPI document describes every field a client
receives (and a client generated from it gets typed objects, not untyped maps).

A prediction row allows more keys than it names: a new key of the Predictor's rows
reaches the answer (``routes.py``) and is described here when it is added.
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

Interval = Optional[list[Optional[float]]]


class PredictionRow(BaseModel):
    """One picture's answer, in upload order."""
    model_config = ConfigDict(extra="allow")

    name: str = Field(description="the uploaded file's name (or 'picture N')")
    valence: Optional[float] = Field(description="1 unpleasant .. 9 pleasant; null when the picture could not be read")
    arousal: Optional[float] = Field(description="1 calm .. 9 excited; null when the picture could not be read")
    valence_low: Optional[float] = Field(None, description="a calibrated model: the prediction interval's bounds "
                                                           "at interval_level, on 1..9")
    valence_high: Optional[float] = None
    arousal_low: Optional[float] = None
    arousal_high: Optional[float] = None
    valence_scaled: Optional[float] = Field(None, description="with ?scale=MIN,MAX: the values on that scale")
    arousal_scaled: Optional[float] = None
    valence_low_scaled: Optional[float] = None
    valence_high_scaled: Optional[float] = None
    arousal_low_scaled: Optional[float] = None
    arousal_high_scaled: Optional[float] = None
    quadrant: Optional[str] = Field(description="circumplex quadrant, e.g. pleasant-calm (5 counts as pleasant or "
                                                "activated)")
    error: Optional[str] = Field(description="why the picture could not be scored; null when it was")


class PredictAnswer(BaseModel):
    model: str = Field(description="the model being served")
    scale: str = Field(description="the scale of valence and arousal: 1..9")
    scaled: Optional[str] = Field(description="the scale of the *_scaled values (?scale=), or null")
    interval_level: Optional[float] = Field(description="coverage of the intervals (0.9: 90 %), or null for a model "
                                                        "without calibration")
    predictions: list[PredictionRow]


class ErrorAnswer(BaseModel):
    """Every refusal: words for people and a code for programs."""
    model_config = ConfigDict(extra="allow")

    error: str = Field(description="what went wrong, for people")
    code: str = Field(description="what went wrong, for programs: e.g. file_too_large, not_found, unauthorized")


class Limits(BaseModel):
    model_config = ConfigDict(extra="allow")

    max_file_bytes: int
    max_request_bytes: int
    max_files: int
    max_pixels: int
    max_requests: int
    max_queue: int
    max_memory_bytes: int
    timeout_s: float
    header_timeout_s: float
    keep_alive_s: float
    max_connections: int
    shutdown_timeout_s: float
    retry_after_s: int
    batch_size: int
    batch_wait_ms: float
    decode_workers: Optional[int]
    tta: bool
    auth: bool = Field(description="whether requests need the bearer token")


class HealthAnswer(BaseModel):
    """``status`` for anyone; the rest only with the token, or on a server without one."""
    status: str = Field(description="ok while the service runs")
    model: Optional[str] = None
    queue: Optional[int] = Field(None, description="pictures admitted and not yet answered")
    batches: Optional[int] = Field(None, description="batches scored since the start")
    scored: Optional[int] = Field(None, description="pictures scored since the start")
    requests_in_progress: Optional[int] = None
    abandoned: Optional[int] = Field(None, description="requests whose client left before the answer")
    upload_bytes_held: Optional[int] = None
    limits: Optional[Limits] = None


class MeanFigure(BaseModel):
    """Accuracy figures: Pearson r per dimension, RMSE (pooled over both dimensions, and per dimension) and bias
    (mean of prediction minus rating) per dimension, on 1..9."""
    valence_r: Optional[float]
    arousal_r: Optional[float]
    rmse: Optional[float]
    valence_rmse: Optional[float]
    arousal_rmse: Optional[float]
    valence_bias: Optional[float]
    arousal_bias: Optional[float]


class Figure(MeanFigure):
    """Figures of ``n`` pictures with bootstrap 95 % intervals (over pictures, fixed seed) for r and RMSE."""
    n: int
    valence_r_ci: Interval
    arousal_r_ci: Interval
    rmse_ci: Interval


class LeaveOneSourceOut(BaseModel):
    protocol: str = Field(description="how each source was predicted without its own rows")
    sources: dict[str, Figure] = Field(description="per held-out source")
    mean: MeanFigure = Field(description="the mean over sources (each source weighs the same)")


class Validation(Figure):
    protocol: str = Field(description="which rows these are")
    by_source: dict[str, Figure]


class Evaluation(BaseModel):
    leave_one_source_out: Optional[LeaveOneSourceOut] = Field(
        None, description="what a new set of pictures should expect: each source predicted by the model's recipe "
                          "refitted without it")
    validation: Optional[Validation] = Field(None, description="held-out validation rows of the training sources")


class CalibrationSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    scheme: str
    adaptive: bool
    protocol: Optional[str]
    rows: int
    sources: dict[str, int]
    half_widths: dict[str, dict[str, float]] = Field(description="per level ('0.9'), per dimension: the interval's "
                                                                 "half-width (see width_unit)")
    width_unit: str


class CoverageRow(BaseModel):
    source: str
    n: int
    dimension: str
    coverage: Optional[float]
    mean_width: Optional[float]
    constant_same_coverage: Optional[float]
    width_vs_constant: Optional[float]
    plain_conformal_coverage: Optional[float]
    plain_conformal_width: Optional[float]


class Intervals(BaseModel):
    level: float = Field(description="coverage of the intervals the answers carry")
    adaptive: bool
    scheme: str
    calibration_rows: int
    protocol: Optional[str]
    coverage_by_held_out_source: Optional[list[CoverageRow]] = Field(
        None, description="the calibration checked leaving one source out, at 90 %")


class ModelAnswer(BaseModel):
    """The model being served, as its file describes itself: no figure here is written into picaffect's code."""
    name: str
    architecture: str
    input_size: list[int]
    input: str
    scale: str
    meaning: str
    tta: bool = Field(description="whether answers average each picture with its mirror image")
    picaffect: str = Field(description="the picaffect version serving")
    model_card: Optional[str] = Field(description="where the model card is (shipped models only)")
    config: Optional[dict[str, Any]] = Field(description="the retrain configuration the file was made from")
    dataset_sha256: Optional[str] = Field(description="SHA-256 of the built dataset's manifest rows")
    version: Optional[str] = Field(description="the picaffect version that made the file")
    commit: Optional[str] = Field(description="the git commit that made the file ('-dirty': with changes)")
    evaluation: Optional[Evaluation]
    calibration: Optional[CalibrationSummary]
    made_by: Optional[str] = Field(description="the command that made the weights")
    missing: list[str] = Field(description="what the file does not record (made before picaffect recorded it)")
    intervals: Optional[Intervals]


def checked_model_answer(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` as ``ModelAnswer`` takes it: a block of a file's metadata that does not fit (a file written by
    another picaffect) is left out and named in ``missing``, rather than failing every ``/v1/model`` request."""
    from pydantic import ValidationError

    try:
        ModelAnswer.model_validate(info)
        return info
    except ValidationError as e:
        bad = sorted({str(err["loc"][0]) for err in e.errors()} & {"config", "evaluation", "calibration"})
    fixed = {**info, **dict.fromkeys(bad), "missing": [*info["missing"], *(f"{k} (not readable)" for k in bad)]}
    ModelAnswer.model_validate(fixed)
    return fixed
