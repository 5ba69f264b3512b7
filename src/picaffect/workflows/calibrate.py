"""``picaffect calibrate MODEL --data DATASET``: prediction intervals written into any model file.

Conformal intervals are only as honest as the residuals they are calibrated on:
they must be errors on pictures the model was not fitted on, and, since a user's
new pictures are in effect a new source, errors on *sources* it was not fitted on.
Two ways to get them:

- ``--predictions TABLE`` (any protocol): a CSV or Parquet table of held-out
  predictions, one row per picture: ``id``, ``source``, the ratings
  (``valence_true``/``arousal_true`` or ``valence``/``arousal``) and the predictions
  (``valence_pred``/``arousal_pred``). ``picaffect experiment cross-dataset`` writes
  exactly that per held-out source (``runs/<source>/<stage>/evaluation/predictions.csv``;
  give the experiment's folder and ``--stage``): models retrained without each
  source, the honest protocol for a fine-tuned network.
- the default, **refit-head** leave one source out: the model's own pooled
  features of every dataset picture, and for each source a ridge readout (the same
  linear head the model ends in) fitted on the other sources only, its penalty
  chosen leaving one of those out. For a ridge probe on a frozen backbone (the
  backbone never saw any rating) these *are* the leave-one-source-out predictions of
  the model's own recipe, retrained; for a fine-tuned network the backbone has seen
  every source, so the residuals, and the intervals, are somewhat optimistic: use
  ``--predictions`` there.

Either way the error head (``evaluation/conformal.py``) is fitted on the same
model's features, so it is the shipped model's own difficulty signal, and the
whole procedure is checked leaving one source out (coverage on each).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..data.dataset import RatedImages, row_groups
from ..core.errors import UsageError
from ..core.jsonsafe import jsonable
from ..core.metrics import calibration_slope, pcc, rmse
from ..core.names import DEFAULT_INTERVAL_SCHEME, INTERVAL_SCHEMES, check as check_choice
from ..evaluation.evaluate import picture_size_note
from ..evaluation.conformal import ALPHAS, ridge_path, fit_calibration, leave_one_source_out_check, summary_rows
from ..inference.checkpoint import build_model, read, save_atomic
from ..inference.intervals import DIMENSIONS
from ..inference.predictor import resolve_model
from ..core.runtime import pick_device
from ..training.kernel_probe import fit_kernel_ridge
from ..training.probe import dataset_features
from .provenance import calibrated_metadata

TRUE_COLUMNS = (("valence_true", "arousal_true"), ("valence", "arousal"))
PRED_COLUMNS = ("valence_pred", "arousal_pred")


def refit_head_predictions(features: np.ndarray, ratings: np.ndarray, sources: np.ndarray,
                           alphas: np.ndarray = ALPHAS) -> np.ndarray:
    """(N, 2) predictions of each source by a ridge readout fitted on the other sources' rows.

    The penalty is chosen leaving one of the training sources out (the RMSE of the
    sources it did not fit), so the held-out source plays no part in any choice.
    """
    sources = np.asarray(sources)
    names = list(dict.fromkeys(sources.tolist()))
    if len(names) < 2:
        raise UsageError("leave-one-source-out calibration needs a dataset of at least two sources; "
                         f"this one has {len(names)} ({', '.join(names)})")
    x, y = np.asarray(features, np.float64), np.asarray(ratings, np.float64)
    out = np.zeros_like(y)
    for name in names:
        held = sources == name
        inner = [n for n in names if n != name]
        best = []
        for j in range(2):
            if len(inner) < 2:  # one training source: no source to choose on, take the middle of the grid
                best.append(float(np.median(alphas)))
                continue
            errors = np.zeros(len(alphas))
            for other in inner:
                fit = ~held & (sources != other)
                test = sources == other
                w, b, _ = ridge_path(x[fit], y[fit, j], alphas)
                errors += ((x[test] @ w.T + b - y[test, j][:, None]) ** 2).mean(0)
            best.append(float(alphas[int(np.argmin(errors))]))
        for j in range(2):
            w, b, _ = ridge_path(x[~held], y[~held, j], np.array([best[j]]))
            out[held, j] = x[held] @ w[0] + b[0]
    return out


def refit_kernel_predictions(features: np.ndarray, ratings: np.ndarray, sources: np.ndarray, groups: np.ndarray,
                             components: int) -> np.ndarray:
    """(N, 2) predictions of each source by an RBF kernel ridge fitted on the other sources' rows, its bandwidth
    and penalties chosen by group cross-validation there: what ``ridge_readout: rbf`` fits, held out."""
    sources = np.asarray(sources)
    out = np.zeros_like(ratings, dtype=np.float64)
    for name in dict.fromkeys(sources.tolist()):
        held = sources == name
        fitted, alphas, _ = fit_kernel_ridge(features[~held], ratings[~held], groups[~held], components)
        out[held] = fitted.predict(features[held], alphas)
    return out


def held_out_accuracy(y: np.ndarray, yhat: np.ndarray, sources: np.ndarray) -> list[dict[str, Any]]:
    """Accuracy of the held-out predictions on each source and on all rows: what a new picture set can expect.

    The same residuals the intervals are made of, read as r, RMSE (both dimensions) and
    calibration slopes, so a user sees how well the model's recipe transfers to a set it
    was not fitted on beside how wide its intervals must be there. The ``all`` row pools
    predictions made by different fits, each with its own offset, so its r can be far below
    every source's own (each source's row is the figure to read).
    """
    blocks = [(s, sources == s) for s in dict.fromkeys(sources.tolist())] + [("all", np.ones(len(y), bool))]
    out = []
    for name, rows in blocks:
        row: dict[str, Any] = {"source": name, "n": int(rows.sum()), "rmse": rmse(y[rows], yhat[rows])}
        for j, d in enumerate(DIMENSIONS):
            row[f"{d}_r"] = pcc(y[rows, j], yhat[rows, j])
            row[f"{d}_slope"] = calibration_slope(y[rows, j], yhat[rows, j])
        out.append(row)
    return out


def read_predictions(paths: list[str | Path], stage: str | None = None) -> pd.DataFrame:
    """Held-out predictions from tables, or from a cross-dataset experiment's folder with ``stage``.

    Columns out: id, source, valence_true, arousal_true, valence_pred, arousal_pred. A
    table without them is refused naming the file and the missing columns.
    """
    files: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            if stage is None:
                raise UsageError(f"{given} is a folder: give --stage NAME to read its cross-dataset runs "
                                 f"(runs/<source>/NAME/evaluation/predictions.csv)")
            found = sorted(given.glob(f"runs/*/{stage}/evaluation/predictions.csv"))
            if not found:
                raise UsageError(f"{given}: no runs/<source>/{stage}/evaluation/predictions.csv (run `picaffect "
                                 f"experiment cross-dataset` first, or check --stage)")
            files += found
        elif given.is_file():
            files.append(given)
        else:
            raise UsageError(f"{given}: no such file or folder")
    frames = []
    for path in files:
        try:
            table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
        except Exception as e:  # pandas raises many types for unreadable files
            raise UsageError(f"{path}: cannot read it as a table ({str(e).splitlines()[0][:160]})") from None
        true = next((c for c in TRUE_COLUMNS if set(c) <= set(table.columns)), None)
        missing = [c for c in ("id", "source", *PRED_COLUMNS) if c not in table.columns]
        if true is None or missing:
            need = missing + ([] if true else ["valence_true/arousal_true (or valence/arousal)"])
            raise UsageError(f"{path}: held-out predictions need the columns {', '.join(need)}; it has "
                             f"{', '.join(map(str, table.columns[:12]))}")
        if "split" in table.columns and path.name == "predictions.csv" and path.parent.name == "evaluation":
            table = table[table["split"] == "validation"]  # a cross-dataset run: its held-out source
        table = table.rename(columns=dict(zip(true, ("valence_true", "arousal_true"))))
        frames.append(table[["id", "source", "valence_true", "arousal_true", *PRED_COLUMNS]])
    table = pd.concat(frames, ignore_index=True)
    table["id"], table["source"] = table["id"].astype(str), table["source"].astype(str)
    values = table[["valence_true", "arousal_true", *PRED_COLUMNS]]
    bad = ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan)).all(1)
    if bad.any():
        row = table[bad].iloc[0]
        raise UsageError(f"{len(files) == 1 and files[0] or 'the predictions'}: {int(bad.sum())} rows without a "
                         f"finite rating or prediction (first: source {row['source']}, id {row['id']})")
    duplicated = table.duplicated(["source", "id"])
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise UsageError(f"held-out predictions name picture {row['source']}/{row['id']} more than once: give each "
                         f"picture's prediction from the one model that did not see its source")
    return table


def _features(record: dict[str, Any], source: str, data: Path, device: str, batch_size: int
              ) -> tuple[np.ndarray, pd.DataFrame]:
    """The model's pooled features (no mirror: what predict computes by default) of every dataset row."""
    model, spec = build_model(record, source)
    dev = pick_device(device)
    model = model.to(dev).to(memory_format=torch.channels_last)
    dataset = RatedImages(data, "all")
    feats = dataset_features(model, dataset, spec, dev, batch_size=batch_size, tta=False).astype(np.float64)
    return feats, dataset.rows.reset_index(drop=True)


def features_from_file(path: Path, data: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Features written by ``picaffect features MODEL --data DATA --no-tta`` (split all), checked against ``data``."""
    with np.load(path) as f:
        meta = json.loads(str(f["meta"]))
        feats, ids, sources = f["features"].astype(np.float64), f["id"].astype(str), f["source"].astype(str)
    rows = RatedImages(data, "all").rows.reset_index(drop=True)
    if meta.get("tta"):
        raise UsageError(f"--features {path}: made with mirror averaging; predict does not mirror by default, so "
                         f"the error head would read other features: extract them again with --no-tta")
    same = len(ids) == len(rows) and (ids == rows["id"].astype(str).to_numpy()).all() and \
        (sources == rows["source"].astype(str).to_numpy()).all()
    if not same:
        raise UsageError(f"--features {path}: its rows are not those of {data} (extract them with "
                         f"`picaffect features MODEL --data {data} --split all --no-tta`)")
    return feats, rows


def model_to_calibrate(model_ref: str | Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint ``calibrate`` copies with a calibration written in, and its record.

    ``calibrate`` rewrites a checkpoint (its weights, calibration and metadata), so an ONNX file or a table
    given as MODEL is refused by what it is and what the command needs, before torch tries to unpickle it.
    """
    given = Path(str(model_ref))
    needs = ("calibrate writes into a model checkpoint: give a .pt file, a training run folder or a shipped "
             "model's name (default, accurate), and --onnx OUT.onnx for a calibrated ONNX twin")
    if given.suffix.lower() == ".onnx":
        raise UsageError(f"{model_ref} is an ONNX file: {needs} (calibrate the checkpoint it was exported from)")
    source = resolve_model(model_ref)
    if source.is_file():
        with open(source, "rb") as f:
            head = f.read(4)
        if not head.startswith((b"PK", b"\x80")):  # torch.save's zip, or an old pickle
            what = "an ONNX file" if head[:1] == b"\x08" else \
                "a text file (a table?)" if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head) \
                else "not a checkpoint"
            raise UsageError(f"{model_ref} is {what}: {needs}")
    return source, read(source)


def calibrate(model_ref: str | Path, data: str | Path, out: str | Path, *, predictions: list[str | Path] | None = None,
              stage: str | None = None, device: str = "auto", batch_size: int = 64, onnx: str | Path | None = None,
              adaptive: bool = True, features: str | Path | None = None,
              scheme: str = DEFAULT_INTERVAL_SCHEME) -> dict[str, Any]:
    """Calibrate ``model_ref`` on held-out residuals of ``data``'s pictures; write ``out`` (and ``onnx``).

    Returns the calibration's summary (protocol, rows, error head, coverage on each
    held-out source). ``out`` is a checkpoint with the calibration (and error head)
    inside; with ``onnx`` also an ONNX file whose metadata and ``difficulty`` output carry it.
    ``features``: the model's pooled features already extracted (``picaffect features
    MODEL --no-tta``), which saves extracting them again; the caller vouches that they
    are this model's. ``scheme``: how the sources' errors become one width
    (``inference/intervals.py``; the default is plain split conformal over all rows).
    """
    check_choice("interval scheme", scheme, INTERVAL_SCHEMES)
    start = time.perf_counter()
    if onnx is not None and Path(onnx).suffix.lower() != ".onnx":
        raise UsageError(f"--onnx {onnx}: give a file ending in .onnx")
    source, record = model_to_calibrate(model_ref)
    out = Path(out)
    if out.suffix.lower() != ".pt":
        raise UsageError(f"--out {out}: give a checkpoint file ending in .pt (the ONNX twin with --onnx)")
    if not out.absolute().parent.is_dir():
        raise UsageError(f"--out {out}: {out.absolute().parent} is not an existing folder")
    notes = [f"--data {problem}" for problem in [picture_size_note(data, int(record["spec"]["size"]), model_ref)]
             if problem]
    if features is not None:
        feats, rows = features_from_file(Path(features), Path(data))
        weights = record["weights"]
        head = weights.get("head.fc.weight", weights.get("head.kernel_projection"))
        width = None if head is None else head.shape[1] if "head.fc.weight" in weights else head.shape[0]
        if width is not None and feats.shape[1] != width:
            raise UsageError(f"--features {features}: {feats.shape[1]} features a row, but {model_ref}'s head reads "
                             f"{width}: they are another model's")
    else:
        feats, rows = _features(record, str(source), Path(data), device, batch_size)
    if predictions:
        table = read_predictions(list(predictions), stage)
        keyed = rows.assign(_row=np.arange(len(rows)), id=rows["id"].astype(str), source=rows["source"].astype(str))
        merged = table.merge(keyed[["source", "id", "_row"]], on=["source", "id"], how="left")
        unmatched = merged["_row"].isna()
        if unmatched.any():
            first = merged[unmatched].iloc[0]
            raise UsageError(f"{int(unmatched.sum())} held-out predictions name pictures that {data} does not hold "
                             f"(first: {first['source']}/{first['id']}): calibrate with the dataset they were made on")
        index = merged["_row"].to_numpy(int)
        y = merged[["valence_true", "arousal_true"]].to_numpy(float)
        yhat = merged[list(PRED_COLUMNS)].to_numpy(float)
        sources = merged["source"].to_numpy(str)
        x = feats[index]
        protocol = {"name": "predictions", "files": [str(p) for p in predictions], "stage": stage,
                    "description": "held-out predictions given by the user (e.g. leave-one-source-out retraining)"}
    else:
        y = rows[["valence", "arousal"]].to_numpy(float)
        sources = rows["source"].astype(str).to_numpy()
        x = feats
        arguments = record["spec"].get("arguments") or {}
        if arguments.get("readout") == "rbf":  # refit the model's own kind of readout, so the residuals are its kind
            yhat = refit_kernel_predictions(x, y, sources, row_groups(rows), int(arguments["components"]))
            readout = "an RBF kernel ridge readout (as the model's own head)"
        else:
            yhat = refit_head_predictions(x, y, sources)
            readout = "a ridge readout"
        protocol = {"name": "refit-head", "description": f"leave one source out: {readout} on the model's "
                    "frozen pooled features, fitted on the other sources, predicts each source"}
    counts = {s: int((sources == s).sum()) for s in dict.fromkeys(sources.tolist())}
    if len(counts) < 2:
        raise UsageError(f"calibration needs held-out predictions of at least two sources, not {len(counts)}")
    check = leave_one_source_out_check(y, yhat, sources, x if adaptive else None, scheme=scheme)
    info = {"protocol": protocol, "scheme": scheme, "dataset": str(data), "rows": int(len(y)), "sources": counts,
            "residual_rmse": {d: float(np.sqrt(np.mean((y[:, j] - yhat[:, j]) ** 2))) for j, d in enumerate(DIMENSIONS)},
            "held_out_accuracy": jsonable(held_out_accuracy(y, yhat, sources)),  # r is NaN where a block is constant
            "leave_one_source_out": summary_rows(check, 0.9), "check_levels": check,
            "made_by": f"picaffect {__version__}: picaffect calibrate", "made_at": time.strftime("%Y-%m-%d %H:%M")}
    calibration, head, _ = fit_calibration(x if adaptive else None, y - yhat, sources, info, scheme=scheme)
    record = dict(record)
    record.pop("training", None)  # a calibrated file is for predicting, not for resuming training
    record["calibration"] = calibration.to_dict()
    if head is not None:
        record["calibration"]["error_head"] = {"weight": torch.from_numpy(head.weight).float(),
                                               "bias": torch.from_numpy(head.bias).float()}
    # The file's evaluation record: these held-out predictions (leave one source out) and its validation rows.
    command = f"picaffect calibrate {model_ref} --data {data} --scheme {scheme}{'' if adaptive else ' --constant'}"
    record["metadata"] = calibrated_metadata(record, data, y, yhat, sources, protocol, calibration, command,
                                             device=device, batch_size=batch_size)
    save_atomic(record, out)
    written = [str(out)]
    if onnx is not None:
        from ..inference.onnx_export import export_onnx

        written.append(str(export_onnx(out, onnx, name=Path(str(model_ref)).stem)))
    return {"written": written, "adaptive": calibration.adaptive, "scheme": scheme, "n": calibration.n, "info": info,
            "seconds": round(time.perf_counter() - start, 1), "notes": notes}


def accuracy_table(summary: dict[str, Any]) -> str:
    """The held-out predictions' accuracy per source as a markdown table (what `picaffect calibrate` prints)."""
    from ..evaluation.markdown import fmt, markdown_table

    rows = [[r["source"], str(r["n"]), fmt(r["valence_r"]), fmt(r["arousal_r"]), fmt(r["rmse"]),
             fmt(r["valence_slope"]), fmt(r["arousal_slope"])] for r in summary["info"]["held_out_accuracy"]]
    return markdown_table(["held out", "n", "valence r", "arousal r", "RMSE (both)", "valence slope",
                           "arousal slope"], rows)


def coverage_table(summary: dict[str, Any]) -> str:
    """The leave-one-source-out check as a markdown table (what `picaffect calibrate` prints)."""
    from ..evaluation.markdown import fmt, markdown_table

    rows = [[r["source"], str(r["n"]), r["dimension"], fmt(r["coverage"]), fmt(r["mean_width"]),
             fmt(r["constant_same_coverage"]), fmt(r["width_vs_constant"]), fmt(r["plain_conformal_coverage"]),
             fmt(r["plain_conformal_width"])] for r in summary["info"]["leave_one_source_out"]]
    return markdown_table(["held out", "n", "dimension", "90 % coverage", "mean width", "constant width, same "
                           "coverage", "ratio", "plain conformal coverage", "plain width"], rows)

