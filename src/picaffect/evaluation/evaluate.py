"""``picaffect evaluate``: a trained model against a built dataset.

Writes ``metrics.json`` (shaped for scripts), ``report.md`` (tables in the form of
the thesis's 8.1 and 8.3), ``predictions.csv`` and plots, and returns the metrics.
Every figure comes with the baselines a reader needs to judge it: the RMSE of
predicting the training mean and the SAGR of predicting the commoner sign. A
calibrated model (``picaffect calibrate``) is also judged on its prediction
intervals: per split, per source and pooled, the share of ratings inside their
interval and the mean width, beside the width of a constant interval that reaches
the same coverage on the same rows (``conformal.coverage_block``).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.dataset import RatedImages, make_loader
from ..core.errors import UsageError
from ..inference import Predictor
from ..core.jsonsafe import jsonable
from ..inference.intervals import INTERVAL_COLUMNS
from ..core.metrics import summarize
from ..core.names import SPLITS_OR_ALL, check
from ..core.plots import predicted_vs_true, prediction_errors
from .conformal import coverage_block
from .markdown import metrics_markdown
from .reliability import noise_ceilings


def predict_dataset(predictor: Predictor, dataset: RatedImages, batch_size: int = 64, tta: bool = False
                    ) -> np.ndarray:
    """(rows, 2) unclipped ratings for a built dataset's rows, in order (``tta``: mirror-image averaged).

    Unclipped on purpose: an evaluation describes the network as it is (a model
    early in training predicts below 1, and clipping would hide it).
    """
    return predict_dataset_with_intervals(predictor, dataset, batch_size, tta=tta)[0]


def predict_dataset_with_intervals(predictor: Predictor, dataset: RatedImages, batch_size: int = 64,
                                   level: float | None = None, tta: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 2) unclipped ratings and (rows, 4) interval bounds at ``level`` (NaN without calibration)."""
    ratings, bounds = [], []
    for images, _ in make_loader(dataset, batch_size, shuffle=False):
        r, b = predictor.score_with_intervals(images, tta=tta, level=level)
        ratings.append(r)
        bounds.append(b)
    if not ratings:
        return np.empty((0, 2), np.float32), np.empty((0, 4))
    return np.concatenate(ratings), np.concatenate(bounds)


def picture_size_note(data: str | Path, size: int, model_ref: str | Path) -> str | None:
    """Why ``data``'s pictures do not fit the model (built at another size), or None.

    A dataset built at 150 px and scored by a 224 px model is resized on the fly: it runs, and scores
    worse than pictures built at 224, so its figures say little about the model as users meet it.
    """
    built = RatedImages(data, "all").image_size
    if built == size:
        return None
    return (f"{data} holds pictures built at {built} px, but {model_ref} reads {size} px pictures: they are "
            f"resized to {size} px on the fly, which costs accuracy (build the dataset with --size {size})")


def promise_check(block: dict, level: float) -> dict:
    """A coverage block with, per dimension, the 95 % (Wilson) interval of its coverage and how it stands against
    the promised ``level``: a calibration promises that share of new pictures drawn like its calibration pictures
    (a pilot's: the same set), so coverage on such rows whose interval lies below the level breaks the promise."""
    from scipy.stats import binomtest

    n = int(block.get("n") or 0)
    for dim in ("valence", "arousal"):
        d = block.get(dim)
        if not n or not isinstance(d, dict) or d.get("coverage") is None or not np.isfinite(d["coverage"]):
            continue
        low, high = binomtest(int(round(d["coverage"] * n)), n).proportion_ci(0.95, method="wilson")
        d["coverage_ci95"] = [float(low), float(high)]
        d["versus_level"] = "below" if high < level else "above" if low > level else "consistent"
    return block


def evaluate(model_ref: str | Path, data: str | Path, *, split: str | Sequence[str] = "validation",
             out: str | Path | None = None, by_source: bool = False, batch_size: int = 64, device: str = "cpu",
             n_boot: int = 1000, seed: int = 0, level: float = 0.9) -> dict:
    """Evaluate ``model_ref`` (a run folder, or a shipped model's name) on split(s) of ``data``.

    ``split`` is train, test, validation, ``all`` (every kept row as one block), or a
    list of them. ``by_source`` adds one block per source, over the rows evaluated,
    each with the noise ceiling of its r where the source publishes rating SD and N.
    A calibrated model adds ``intervals``: coverage and widths at ``level`` per split,
    per source and pooled.
    """
    names = [split] if isinstance(split, str) else list(split)
    for name in names:
        check("split", name, SPLITS_OR_ALL)
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, not {batch_size}")
    if Path(str(model_ref)).suffix.lower() == ".onnx":
        raise UsageError(f"{model_ref} is an ONNX file; evaluate scores with torch, as training does: give the "
                         f"checkpoint (.pt) or run folder it was exported from (predict reads the ONNX file)")
    # torch, as training scores its test split: the same numerics, and any dataset image size
    scorer = Predictor.from_pretrained(model_ref, device=device, backend="torch", level=level)
    calibrated = scorer.calibration is not None
    train_y = RatedImages(data, "train").targets.numpy()
    result: dict = {"model": str(model_ref), "dataset": str(data), "splits": {}}
    result["notes"] = [n for n in [picture_size_note(data, scorer.size, model_ref)] if n]
    if calibrated:
        result["intervals"] = {"level": level, "calibration": _calibration_note(scorer.calibration), "splits": {},
                               "by_source": {}}
    frames = []
    for name in names:
        dataset = RatedImages(data, name)
        predictions, bounds = predict_dataset_with_intervals(scorer, dataset, batch_size, level)
        result["splits"][name] = summarize(dataset.targets.numpy(), predictions, train_y=train_y, n_boot=n_boot,
                                           seed=seed)
        frame = dataset.rows.assign(valence_pred=predictions[:, 0], arousal_pred=predictions[:, 1])
        if calibrated:
            result["intervals"]["splits"][name] = promise_check(
                coverage_block(dataset.targets.numpy(), predictions, bounds), level)
            frame = frame.assign(**{f"{c}": bounds[:, j] for j, c in enumerate(INTERVAL_COLUMNS)})
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    if calibrated:
        y, yhat = rows[["valence", "arousal"]].to_numpy(), rows[["valence_pred", "arousal_pred"]].to_numpy()
        b = rows[list(INTERVAL_COLUMNS)].to_numpy()
        result["intervals"]["pooled"] = promise_check(coverage_block(y, yhat, b), level)
        for source in rows["source"].unique():
            mask = (rows["source"] == source).to_numpy()
            result["intervals"]["by_source"][source] = promise_check(coverage_block(y[mask], yhat[mask], b[mask]),
                                                                     level)
    if by_source:
        y = rows[["valence", "arousal"]].to_numpy()
        yhat = rows[["valence_pred", "arousal_pred"]].to_numpy()
        result["by_source"] = {}
        for source in rows["source"].unique():
            mask = (rows["source"] == source).to_numpy()
            result["by_source"][source] = summarize(y[mask], yhat[mask], train_y=train_y, n_boot=n_boot, seed=seed)
            # the best r any model could reach against these pictures' mean ratings (OASIS, BASS publish SD and N)
            result["by_source"][source]["noise_ceiling"] = noise_ceilings(rows[mask])
    if out is not None:
        write_outputs(Path(out), result, rows)
    return result


def write_outputs(out: Path, result: dict, rows: pd.DataFrame) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(jsonable(result), indent=2) + "\n")
    (out / "report.md").write_text(metrics_markdown(result))
    table = rows[["id", "source", "split", "valence", "arousal", "valence_pred", "arousal_pred",
                  *(c for c in INTERVAL_COLUMNS if c in rows.columns)]]
    table = table.rename(columns={"valence": "valence_true", "arousal": "arousal_true"})
    table.to_csv(out / "predictions.csv", index=False, float_format="%.4f")
    y = rows[["valence", "arousal"]].to_numpy()
    yhat = rows[["valence_pred", "arousal_pred"]].to_numpy()
    predicted_vs_true(y, yhat, out / "predicted_vs_true.png")
    prediction_errors(y, yhat, out / "circumplex.png")


def _calibration_note(calibration) -> dict:
    """What the report says about where the intervals come from (never the scores themselves)."""
    info = calibration.info
    note = {"adaptive": calibration.adaptive, "scheme": calibration.scheme, "rows": calibration.n,
            "protocol": (info.get("protocol") or {}).get("name"), "dataset": info.get("dataset"),
            "sources": info.get("sources")}
    pilot = info.get("pilot")
    if isinstance(pilot, dict):  # a pilot calibration promises coverage on pictures drawn like its pilot
        note.update(sources={"pilot": calibration.n}, pilot=pilot.get("file"), promise=pilot.get("guarantee"))
    return note
