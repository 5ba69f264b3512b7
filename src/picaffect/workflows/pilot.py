"""``picaffect calibrate MODEL --pilot FILE --out OUT.pt``: a model file calibrated on the user's own rated pilot.

A lab norming a new stimulus set can rate a few dozen of its pictures. A random pilot
from the set is exchangeable with the rest of it, so its errors give intervals that hold
on that set (``evaluation/pilot_conformal.py``: the method, the choice between a shrunk
bias and scale correction and a readout refitted with the pilot, and the guarantee).
This module reads the pilot table, scores its pictures with the model, runs that
choice, folds the chosen adjustment into the model's head, and writes the calibrated
checkpoint (and its ONNX twin), whose predictions and intervals every command then
reads like any other (``predict``, ``serve``, ``Predictor``, ``select``, ``info``,
``evaluate``), with a report (``OUT.report.md``) ending in a methods paragraph.

The pilot table: CSV, TSV or XLSX; a picture column (``path`` or ``picture``, relative
to the table's folder or absolute) and ``valence`` and ``arousal`` on 1..9, or on the
scale ``--pilot-scale MIN,MAX`` gives; optional ``valence_sd``, ``arousal_sd`` (the
raters' SD) and ``n`` (raters per picture). Anything wrong with it is refused, one line
naming the rows, before anything is written.

Refitting the readout needs the rows it was fitted on: ``data`` (the built dataset of
the model's training sets, whose features the model then extracts, mirror-averaged as
the recipe fits them) or ``features`` (those features already extracted, as ``picaffect
features MODEL --data DATA --split all`` writes them). The recipe is refitted on them and
must reproduce the model's own head on the pilot pictures, else the refit is not tried
(the model is then not that recipe's readout on these rows) and the report says why.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..core.atomic import write_bytes_atomically
from ..core.errors import UsageError
from ..core.jsonsafe import jsonable
from ..core.metrics import pcc
from ..core.scale import SAM, Scale, rescale
from ..data.images import ImageProblem, prepare_picture
from ..data.sources.tables import MISSING, read_rows, to_float
from ..evaluation.markdown import fmt, markdown_table
from ..evaluation.pilot_conformal import (LEVEL, DimensionFit, choose, dimension_bounds, fit_refit, guarantee,
                                          minimum_pilot, pilot_calibration, use_error_head)
from ..inference.checkpoint import build_model, save_atomic
from ..inference.forward import outputs, pooled_features, to_input
from ..inference.intervals import DIMENSIONS, percent
from ..inference.provenance import calibration_summary
from ..core.runtime import pick_device
from ..training.pilot_refit import ReadoutPrior, kernel_head_solution, kernel_prior, linear_prior
from .calibrate import model_to_calibrate
from .provenance import sha256_of, source_commit

PICTURE_COLUMNS = ("path", "picture")
ADJUSTMENTS = ("auto", "none", "correction", "refit")
REPRODUCED = 0.02   # points: the refitted recipe must give the model's own predictions within this
LISTED = 5          # rows a message names before "and N more"


# -- the pilot table ------------------------------------------------------------------------------------------------
@dataclass
class Pilot:
    """A pilot table read and checked: pictures (resolved paths), ratings on 1..9, where each row was."""
    file: Path
    paths: list[Path]
    where: list[str]
    ratings: np.ndarray                 # (k, 2) on 1..9
    scale: Scale
    sd: np.ndarray | None = None        # (k, 2) in points on 1..9, NaN where not given
    raters: np.ndarray | None = None    # (k,)
    skipped: list[str] = field(default_factory=list)   # "where path: reason" of pictures left out

    def keep(self, mask: np.ndarray) -> "Pilot":
        idx = np.nonzero(mask)[0]
        return Pilot(self.file, [self.paths[i] for i in idx], [self.where[i] for i in idx], self.ratings[idx],
                     self.scale, None if self.sd is None else self.sd[idx],
                     None if self.raters is None else self.raters[idx], list(self.skipped))


def _listed(items: list[str]) -> str:
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return "; ".join(items[:LISTED]) + more


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def read_pilot(path: str | Path, scale: Scale | str | None = None, skip_missing: bool = False) -> Pilot:
    """The pilot table at ``path``, checked: ``UsageError`` (one line naming the rows) for a missing column, an
    empty or non-numeric rating, a rating outside ``scale`` (default 1..9), a picture named twice, and (unless
    ``skip_missing``: then they are left out and counted) pictures that do not exist."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--pilot {file}: no such file")
    if isinstance(scale, str):
        try:
            scale = Scale.parse(scale)
        except ValueError as e:
            raise UsageError(f"--pilot-scale: {e}") from None
    scale = scale or SAM
    rows = read_rows(file)
    if len(rows) < 2:
        raise UsageError(f"--pilot {file}: no rows under a header (a header with path or picture, valence, arousal)")
    header, body = rows[0].cells, rows[1:]
    picture = _column(header, PICTURE_COLUMNS)
    columns = {d: _column(header, (d,)) for d in DIMENSIONS}
    missing = ([] if picture is not None else ["path (or picture)"]) + [d for d, i in columns.items() if i is None]
    if missing:
        raise UsageError(f"--pilot {file}: no column {', '.join(missing)} (its header: "
                         f"{', '.join(h for h in header if h.strip())[:200]})")
    problems: list[str] = []
    ratings = np.full((len(body), 2), np.nan)
    for r, row in enumerate(body):
        for j, d in enumerate(DIMENSIONS):
            text = row.cell(columns[d]).strip()
            try:
                value = to_float(text)
            except ValueError:
                problems.append(f"{row.where}: {d} {text!r} is not a number")
                continue
            if math.isnan(value):
                problems.append(f"{row.where}: no {d} rating")
            elif not scale.contains(value):
                problems.append(f"{row.where}: {d} {value:g} is outside {scale}")
            ratings[r, j] = value
    if problems:
        hint = "" if scale != SAM else " (give --pilot-scale MIN,MAX when the ratings are on another scale)"
        raise UsageError(f"--pilot {file}: {len(problems)} bad rating{'s' if len(problems) > 1 else ''}: "
                         f"{_listed(problems)}{hint if any('outside' in p for p in problems) else ''}")
    paths, where, seen, duplicated, empty = [], [], {}, [], []
    for row in body:
        text = row.cell(picture).strip()
        if not text or text.lower() in MISSING:
            empty.append(row.where)
        resolved = Path(text).expanduser()
        resolved = (resolved if resolved.is_absolute() else file.parent / resolved).resolve()
        if text and resolved in seen:
            duplicated.append(f"{row.where} repeats {seen[resolved]} ({text})")
        seen.setdefault(resolved, row.where)
        paths.append(resolved)
        where.append(row.where)
    if empty:
        raise UsageError(f"--pilot {file}: no picture named on {_listed(empty)}")
    if duplicated:
        raise UsageError(f"--pilot {file}: {len(duplicated)} picture{'s' if len(duplicated) > 1 else ''} named "
                         f"twice: {_listed(duplicated)} (each pilot picture counts once: average its ratings)")
    sd = raters = None
    sd_columns = {d: _column(header, (f"{d}_sd",)) for d in DIMENSIONS}
    if any(i is not None for i in sd_columns.values()):
        sd = np.array([[_optional(row, sd_columns[d], f"{d}_sd", problems, minimum=0.0) for d in DIMENSIONS]
                       for row in body]) * (SAM.max - SAM.min) / (scale.max - scale.min)
    n_column = _column(header, ("n",))
    if n_column is not None:
        raters = np.array([_optional(row, n_column, "n", problems, minimum=1.0) for row in body])
    if problems:
        raise UsageError(f"--pilot {file}: {_listed(problems)}")
    pilot = Pilot(file, paths, where, np.asarray(rescale(ratings, scale, SAM), np.float64), scale, sd, raters)
    absent = np.array([not p.is_file() for p in paths])
    if absent.any():
        named = [f"{where[i]} {paths[i]}" for i in np.nonzero(absent)[0]]
        if not skip_missing:
            raise UsageError(f"--pilot {file}: {len(named)} picture{'s' if len(named) > 1 else ''} not found: "
                             f"{_listed(named)} (paths are relative to the table's folder; --skip-missing goes on "
                             f"without them)")
        pilot = pilot.keep(~absent)
        pilot.skipped += [f"{n}: not found" for n in named]
    return pilot


def _optional(row, index: int | None, name: str, problems: list[str], minimum: float) -> float:
    """An optional SD or N cell: NaN when empty, a problem when not a number or below ``minimum``."""
    text = row.cell(index).strip()
    try:
        value = to_float(text)
    except ValueError:
        problems.append(f"{row.where}: {name} {text!r} is not a number")
        return math.nan
    if not math.isnan(value) and value < minimum:
        problems.append(f"{row.where}: {name} {value:g} is below {minimum:g}")
    return value


# -- scoring the pilot ----------------------------------------------------------------------------------------------
@dataclass
class Scored:
    """The model on the pilot pictures: predictions (k, 2) on 1..9, pooled features, the error head's difficulty."""
    predictions: np.ndarray
    features: np.ndarray
    difficulty: np.ndarray | None


def decode_pilot(pilot: Pilot, size: int, skip_missing: bool) -> tuple[Pilot, np.ndarray]:
    """The pilot's pictures as uint8 (k, 3, size, size), prepared as ``predict`` prepares them; pictures that cannot
    be read are refused (listed), or left out and counted with ``skip_missing``."""
    arrays, bad = [], []
    for path, where in zip(pilot.paths, pilot.where):
        try:
            arrays.append(prepare_picture(path, size))
        except ImageProblem as e:
            arrays.append(None)
            bad.append(f"{where} {path}: {e}")
    if bad and not skip_missing:
        raise UsageError(f"--pilot {pilot.file}: {len(bad)} picture{'s' if len(bad) > 1 else ''} cannot be read: "
                         f"{_listed(bad)} (--skip-missing goes on without them)")
    keep = np.array([a is not None for a in arrays])
    kept = pilot.keep(keep)
    kept.skipped += [f"{b}" for b in bad]
    images = np.stack([a for a in arrays if a is not None]) if keep.any() else np.empty((0, size, size, 3), np.uint8)
    return kept, np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def score_pilot(model: torch.nn.Module, spec, images: np.ndarray, error_head: dict | None, device: torch.device,
                batch_size: int) -> Scored:
    """The model's predictions (as ``predict`` computes them: no mirror), pooled features and difficulty."""
    preds, feats = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(images[start:start + batch_size])
        x = to_input(batch, spec, device)
        preds.append(spec.decode(outputs(model, x)).cpu().numpy().astype(np.float64))
        feats.append(pooled_features(model, batch, spec, device, tta=False).numpy().astype(np.float64))
    predictions, features = np.concatenate(preds), np.concatenate(feats)
    difficulty = None
    if error_head is not None:
        w, b = (np.asarray(error_head[k].float().numpy() if hasattr(error_head[k], "numpy") else error_head[k],
                           np.float64) for k in ("weight", "bias"))
        difficulty = np.exp(features @ w.T + b)
    return Scored(predictions, features, difficulty)


# -- the readout's training rows ------------------------------------------------------------------------------------
def recipe_of(record: dict[str, Any]) -> dict[str, Any]:
    """How the model's readout was fitted, from what ``retrain`` wrote: readout kind, fitting splits, recalibration."""
    arguments = record["spec"].get("arguments") or {}
    metadata = record.get("metadata") or {}
    trained = metadata.get("trained_with") or {}
    stages = ((metadata.get("config") or {}).get("stages") or [{}])
    stage = stages[-1] if isinstance(stages[-1], dict) else {}
    fit = trained.get("ridge_fit") or stage.get("ridge_fit") or "train+test"
    return {"readout": "rbf" if arguments.get("readout") == "rbf" else "linear",
            "components": int(arguments.get("components") or 256),
            "splits": ("train",) if fit == "train" else ("train", "test"),
            "recalibrate": bool(trained.get("ridge_recalibrate", stage.get("ridge_recalibrate", False))),
            "recipe": trained.get("recipe") or stage.get("recipe"), "stages": len(stages)}


def training_rows(record: dict[str, Any], source: str, data: str | Path | None, features: str | Path | None,
                  recipe: dict[str, Any], device: str, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, ratings, groups) of the rows the readout was fitted on: from ``features`` (an .npz of ``picaffect
    features``, mirror-averaged as the recipe fits) or extracted from the built dataset ``data``."""
    if features is not None:
        path = Path(features)
        try:
            with np.load(path) as f:
                meta = json.loads(str(f["meta"]))
                x, y = f["features"].astype(np.float64), f["ratings"].astype(np.float64)
                split, groups, ids = f["split"].astype(str), f["group"].astype(str), f["id"].astype(str)
        except (OSError, KeyError, ValueError) as e:
            raise UsageError(f"--features {path}: not a features file of `picaffect features` ({e})") from None
        if not meta.get("tta", False):
            raise UsageError(f"--features {path}: made without mirror averaging, but the readout was fitted on "
                             f"mirror-averaged features: extract them again without --no-tta")
        if data is not None:
            from ..data.dataset import RatedImages

            rows = RatedImages(data, "all").rows
            if len(rows) != len(ids) or (rows["id"].astype(str).to_numpy() != ids).any():
                raise UsageError(f"--features {path}: its rows are not those of {data}")
        keep = np.isin(split, recipe["splits"])
        return x[keep], y[keep], groups[keep]
    from ..data.dataset import RatedImages
    from ..training.probe import dataset_features

    model, spec = build_model(record, source)
    dev = pick_device(device)
    model = model.to(dev)
    parts = [RatedImages(data, s) for s in recipe["splits"]]
    x = np.concatenate([dataset_features(model, p, spec, dev, batch_size=batch_size, tta=True) for p in parts])
    y = np.concatenate([p.targets.numpy() for p in parts])
    return x.astype(np.float64), y.astype(np.float64), np.concatenate([p.groups for p in parts])


def readout_prior(record: dict[str, Any], source: str, scored: Scored, recipe: dict[str, Any], *,
                  data: str | Path | None, features: str | Path | None, device: str, batch_size: int
                  ) -> tuple[ReadoutPrior | None, str]:
    """The model's readout refitted by its recipe on its training rows, or None, and why (for the report)."""
    if data is None and features is None:
        return None, ("not tried: it needs the rows the readout was fitted on (give --data, the built dataset of the "
                      "model's training sets, or --features, their features)")
    x, y, groups = training_rows(record, source, data, features, recipe, device, batch_size)
    if len(x) == 0:
        return None, f"not tried: the training rows hold no {'+'.join(recipe['splits'])} rows"
    if x.shape[1] != scored.features.shape[1]:
        raise UsageError(f"--features: {x.shape[1]} features a row, but the model's head reads "
                         f"{scored.features.shape[1]}: they are another model's")
    prior = kernel_prior(x, y, groups, recipe["components"]) if recipe["readout"] == "rbf" else \
        linear_prior(x, y, groups, recipe["recalibrate"])
    gap = float(np.abs(prior.predict(scored.features) - scored.predictions).max())
    if gap > REPRODUCED:
        return None, (f"not tried: the {recipe['readout']} ridge recipe refitted on these rows predicts the pilot "
                      f"up to {gap:.2f} points away from the model (more than {REPRODUCED}): the model is not that readout "
                      f"on these rows (a fine-tuned network, or other training rows)")
    return prior, (f"{recipe['readout']} ridge readout refitted on {len(x)} training rows (reproduces the model "
                   f"within {gap:.3f} points)")


# -- the calibrated file --------------------------------------------------------------------------------------------
def adjusted_weights(record: dict[str, Any], spec, fits: dict[str, DimensionFit], prior: ReadoutPrior | None,
                     pilot_features: np.ndarray) -> dict[str, torch.Tensor]:
    """The model's weights with each dimension's kept adjustment folded into its head (output space: the head's
    outputs times ``spec.output_scale`` plus ``output_offset`` are the ratings)."""
    weights = dict(record["weights"])
    scale, offset = float(spec.output_scale), float(spec.output_offset)
    if "head.fc.weight" in weights:
        w = weights["head.fc.weight"].double().clone()
        b = weights["head.fc.bias"].double().clone()
        for j, d in enumerate(DIMENSIONS):
            fit = fits[d]
            if fit.kept == "refit":
                dw, db = prior.linear_update(pilot_features, fit.refit.dual, j)
                w[j] += torch.from_numpy(dw) / scale
                b[j] += db / scale
            else:
                a, s = fit.correction.offset, fit.correction.slope
                w[j] *= s
                b[j] = s * b[j] + (a + (s - 1) * offset) / scale
        weights["head.fc.weight"], weights["head.fc.bias"] = w.float(), b.float()
        return weights
    if "head.kernel_dual" in weights and any(fits[d].kept == "refit" for d in DIMENSIONS):
        solution = kernel_head_solution(prior, pilot_features,
                                        [fits[d].refit.dual if fits[d].kept == "refit" else None for d in DIMENSIONS],
                                        [(fits[d].correction.offset, fits[d].correction.slope) for d in DIMENSIONS])
        solution["dual"] = solution["dual"] / scale
        solution["intercept"] = (solution["intercept"] - offset) / scale
        for name, value in solution.items():
            weights[f"head.kernel_{name}"] = torch.as_tensor(np.asarray(value), dtype=torch.float32)
        return weights
    if "head.kernel_dual" in weights:
        dual = weights["head.kernel_dual"].double().clone()
        intercept = weights["head.kernel_intercept"].double().clone()
        for j, d in enumerate(DIMENSIONS):
            a, s = fits[d].correction.offset, fits[d].correction.slope
            dual[:, j] *= s
            intercept[j] = s * intercept[j] + (a + (s - 1) * offset) / scale
        weights["head.kernel_dual"], weights["head.kernel_intercept"] = dual.float(), intercept.float()
        return weights
    raise UsageError("the model's head is neither a linear layer nor a kernel readout: a pilot adjustment cannot "
                     "be written into it (use --pilot-adjust none for intervals alone)")


def calibrate_with_pilot(model_ref: str | Path, pilot: str | Path, out: str | Path, *, onnx: str | Path | None = None,
                         scale: Scale | str | None = None, skip_missing: bool = False, adjust: str = "auto",
                         data: str | Path | None = None, features: str | Path | None = None, device: str = "auto",
                         batch_size: int = 64) -> dict[str, Any]:
    """Calibrate ``model_ref`` on the rated pilot table ``pilot``; write ``out`` (.pt), ``onnx`` and the report.

    ``adjust``: auto (the correction or the refit, whichever the pilot's leave-one-out prefers, per dimension),
    none (intervals only), correction, or refit. ``data`` / ``features``: the readout's training rows, for the
    refit (module docstring). Everything is checked before anything is written. Returns the summary (the
    report's figures, its text under ``report``, ``written``).
    """
    start = time.perf_counter()
    if adjust not in ADJUSTMENTS:
        raise UsageError(f"--pilot-adjust {adjust!r}: choose one of {', '.join(ADJUSTMENTS)}")
    out = Path(out)
    if out.suffix.lower() != ".pt":
        raise UsageError(f"--out {out}: give a checkpoint file ending in .pt (the ONNX twin with --onnx)")
    if not out.absolute().parent.is_dir():
        raise UsageError(f"--out {out}: {out.absolute().parent} is not an existing folder")
    if onnx is not None and Path(onnx).suffix.lower() != ".onnx":
        raise UsageError(f"--onnx {onnx}: give a file ending in .onnx")
    source, record = model_to_calibrate(model_ref)
    table = read_pilot(pilot, scale, skip_missing)
    least = minimum_pilot(LEVEL)
    too_few = (f"--pilot {table.file}: {{n}} pictures{{left}} are too few: {percent(LEVEL)} jackknife+ intervals need "
               f"at least {least} (the ceil({LEVEL:g} (k + 1))-th of k leave-one-out errors must exist, so k >= 9; "
               f"picaffect asks for {least}, the smallest pilot its simulation study checked)")
    if len(table.paths) < least:
        raise UsageError(too_few.format(n=len(table.paths), left=" left" if table.skipped else ""))
    model, spec = build_model(record, source)
    dev = pick_device(device)
    model = model.to(dev)
    table, images = decode_pilot(table, spec.size, skip_missing)
    if len(table.paths) < least:
        raise UsageError(too_few.format(n=len(table.paths), left=" left"))
    error_head = (record.get("calibration") or {}).get("error_head")
    scored = score_pilot(model, spec, images, error_head, dev, batch_size)
    bad = ~np.isfinite(scored.predictions).all(1) | ~np.isfinite(scored.features).all(1)
    if bad.any():
        raise UsageError(f"--pilot {table.file}: the model cannot score {int(bad.sum())} picture(s): "
                         f"{_listed([f'{table.where[i]} {table.paths[i]}' for i in np.nonzero(bad)[0]])} "
                         f"(its prediction is not a number)")
    recipe = recipe_of(record)
    prior, refit_note = (None, "not tried (--pilot-adjust " + adjust + ")") if adjust in ("none", "correction") else \
        readout_prior(record, str(source), scored, recipe, data=data, features=features, device=device,
                      batch_size=batch_size)
    if adjust == "refit" and prior is None:
        raise UsageError(f"--pilot-adjust refit: the readout cannot be refitted: {refit_note}")
    writable = {"linear": "head.fc.weight", "rbf": "head.kernel_dual"}
    if prior is not None and writable[prior.kind] not in record["weights"]:
        prior, refit_note = None, f"not tried: the model's head is not the {prior.kind} readout its recipe fits"
        if adjust == "refit":
            raise UsageError(f"--pilot-adjust refit: {refit_note}")
    y, p = table.ratings, scored.predictions
    fits: dict[str, DimensionFit] = {}
    for j, d in enumerate(DIMENSIONS):
        refit = None
        if prior is not None:
            z = prior.coordinates(scored.features)
            r, u = prior.residuals(scored.features, y)
            refit = fit_refit(prior.covariance(z, z, j), r[:, j], u[:, j], float(prior.line[j, 1]))
        fits[d] = choose(p[:, j], y[:, j], refit, adjust)
    adaptive = None
    if scored.difficulty is not None:
        use = [use_error_head(fits[d].errors, scored.difficulty[:, j]) for j, d in enumerate(DIMENSIONS)]
        if any(use):
            adaptive = np.where(np.array(use)[None, :], scored.difficulty, 1.0)
    k = len(table.paths)
    summary = pilot_summary(table, fits, p, refit_note, adaptive is not None, k)
    info = {"protocol": {"name": "pilot", "description": f"jackknife+ on a rated pilot of {k} pictures of the "
                         f"user's own set ({table.file.name})"}, "pilot": summary, "level": LEVEL,
            "made_by": f"picaffect {__version__}: picaffect calibrate --pilot",
            "made_at": time.strftime("%Y-%m-%d %H:%M")}
    calibration = pilot_calibration(fits, adaptive, info)
    new = {key: value for key, value in record.items() if key not in ("training", "calibration")}
    new["weights"] = adjusted_weights(record, spec, fits, prior, scored.features)
    if "head.kernel_support" in new["weights"]:  # a refitted kernel head holds the pilot's rows as support too
        new["spec"] = {**record["spec"], "arguments": {**(record["spec"].get("arguments") or {}),
                                                       "support": int(new["weights"]["head.kernel_support"].shape[0])}}
    new["calibration"] = calibration.to_dict()
    if adaptive is not None:
        w = error_head["weight"].float().clone()
        b = error_head["bias"].float().clone()
        for j, keep in enumerate(use):
            if not keep:
                w[j], b[j] = 0.0, 0.0
        new["calibration"]["error_head"] = {"weight": w, "bias": b}
    # the file's own predictions of the pilot pictures, to check the fold and to state the widths
    check_model, _ = build_model(new, source)
    check = score_pilot(check_model.to(dev), spec, images, None, dev, batch_size).predictions
    expected = np.stack([_kept_prediction(fits[d], p[:, j], prior, scored.features, j)
                         for j, d in enumerate(DIMENSIONS)], 1)
    gap = float(np.abs(check - expected).max())
    if gap > 0.01:  # the fold into the head is exact up to float32: anything more is a bug, never a written file
        raise RuntimeError(f"the adjusted head predicts the pilot {gap:.3f} points away from the adjustment")
    bounds = calibration.bounds(check, adaptive, LEVEL)
    summary["mean_width"] = {d: float((bounds[:, 2 * j + 1] - bounds[:, 2 * j]).mean())
                             for j, d in enumerate(DIMENSIONS)}
    summary["half_width"] = {d: float(q) for d, q in zip(DIMENSIONS, calibration.quantiles(LEVEL))}
    command = f"picaffect calibrate {model_ref} --pilot {pilot}" + \
        (f" --pilot-scale {table.scale.min:g},{table.scale.max:g}" if table.scale != SAM else "") + \
        (" --skip-missing" if skip_missing else "") + (f" --pilot-adjust {adjust}" if adjust != "auto" else "") + \
        (f" --data {data}" if data else "") + (f" --features {features}" if features else "")
    metadata = dict(record.get("metadata") or {})
    metadata["calibration"] = calibration_summary(calibration)
    metadata["pilot"] = summary
    metadata["calibrated_by"] = {"command": command, "version": __version__, "commit": source_commit(),
                                 "pilot_sha256": sha256_of(table.file), "made_at": info["made_at"]}
    new["metadata"] = jsonable(metadata)
    name = Path(str(model_ref)).stem
    report = pilot_report(summary, name, out)
    summary["methods"] = methods_paragraph(summary, name)
    new["metadata"]["pilot"]["methods"] = summary["methods"]
    new["calibration"]["info"]["pilot"]["methods"] = summary["methods"]
    save_atomic(new, out)
    written = [str(out)]
    if onnx is not None:
        from ..inference.onnx_export import export_onnx

        written.append(str(export_onnx(out, onnx, name=name)))
    report_path = out.with_suffix(".report.md")
    write_bytes_atomically(report_path, report.encode("utf-8"))
    written.append(str(report_path))
    return {**summary, "report": report, "written": written, "seconds": round(time.perf_counter() - start, 1)}


def _kept_prediction(fit: DimensionFit, p: np.ndarray, prior: ReadoutPrior | None, features: np.ndarray,
                     j: int) -> np.ndarray:
    """What the adjusted file should predict for the pilot pictures (the fold's check)."""
    if fit.kept == "refit":
        z = prior.coordinates(features)
        return p + prior.line[j, 1] * prior.covariance(z, z, j) @ fit.refit.dual
    return fit.correction(p)


# -- the report -----------------------------------------------------------------------------------------------------
def _figures(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    e = y - yhat
    return {"r": float(pcc(y, yhat)), "rmse": float(np.sqrt(np.mean(e ** 2))), "bias": float(np.mean(yhat - y))}


def pilot_summary(table: Pilot, fits: dict[str, DimensionFit], p: np.ndarray, refit_note: str, adaptive: bool,
                  k: int) -> dict[str, Any]:
    """The figures the report states: the pilot, each dimension's candidates and choice, the guarantee."""
    dims = {}
    for j, d in enumerate(DIMENSIONS):
        f = fits[d]
        y = table.ratings[:, j]
        dims[d] = {"kept": f.kept, "adjustment": f.adjustment, "method": f.method,
                   "before": _figures(y, p[:, j]),                      # the model as it was: never fitted on the pilot
                   "after": _figures(y, y - f.errors),                  # nested leave-one-out predictions
                   "loo_rmse": {"as shipped": float(np.sqrt(np.mean(f.shipped_errors ** 2))),
                                "correction": float(np.sqrt(np.mean(f.correction.errors ** 2))),
                                "refit": None if f.refit is None else float(np.sqrt(np.mean(f.refit.errors ** 2)))},
                   "correction": {"offset": float(f.correction.offset), "slope": float(f.correction.slope),
                                  "pseudo_pictures": [None if math.isinf(x) else float(x)
                                                      for x in f.correction.penalties], "applied": f.corrected},
                   "refit_weight": None if f.refit is None else f.refit.weight}
    noise = None
    if table.sd is not None and table.raters is not None:
        se = table.sd / np.sqrt(table.raters[:, None])
        noise = {d: float(np.nanmean(se[:, j])) for j, d in enumerate(DIMENSIONS)}
    return jsonable({"file": str(table.file), "pictures": k, "skipped": table.skipped,
                     "scale": f"{table.scale.min:g},{table.scale.max:g}", "level": LEVEL, "adaptive": adaptive,
                     "refit": refit_note, "dimensions": dims, "rating_standard_error": noise,
                     "guarantee": guarantee(fits, k, LEVEL), "minimum": minimum_pilot(LEVEL)})


def pilot_report(summary: dict[str, Any], name: str, out: Path) -> str:
    """The report, in markdown: what ``calibrate --pilot`` prints and writes beside the file."""
    dims = summary["dimensions"]
    skipped = summary["skipped"]
    lines = [f"# Pilot calibration of {name}\n",
             f"Pilot: {summary['pictures']} pictures from `{summary['file']}` (ratings on "
             f"{summary['scale'].replace(',', '..')}, rescaled to 1..9)" + (f"; {len(skipped)} left out (--skip-missing): {_listed(skipped)}" if skipped
                                     else "") + ".",
             f"Readout refit: {summary['refit']}.\n"]
    rows = []
    for d in DIMENSIONS:
        b, a = dims[d]["before"], dims[d]["after"]
        rows.append([d, fmt(b["r"]), fmt(a["r"]), fmt(b["rmse"]), fmt(a["rmse"]), fmt(b["bias"]), fmt(a["bias"]),
                     fmt(summary["half_width"][d]) if "half_width" in summary else "",
                     fmt(summary["mean_width"][d]) if "mean_width" in summary else ""])
    lines.append("Accuracy on the pilot: *before*, the model as it was (never fitted on the pilot); *after*, each "
                 "picture predicted by the adjustment fitted without it (nested leave-one-out). Bias: mean of "
                 "prediction minus rating. Widths of the 90 % intervals in points on 1..9.\n")
    lines.append(markdown_table(["dimension", "r before", "r after", "RMSE before", "RMSE after", "bias before",
                                 "bias after", "90 % half-width", "mean 90 % width"], rows))
    lines.append("\nWhat the pilot chose (leave-one-out RMSE on the pilot of each candidate):\n")
    rows = [[d, fmt(dims[d]["loo_rmse"]["as shipped"]), fmt(dims[d]["loo_rmse"]["correction"]),
             fmt(dims[d]["loo_rmse"]["refit"]) if dims[d]["loo_rmse"]["refit"] is not None else "not tried",
             dims[d]["adjustment"]] for d in DIMENSIONS]
    lines.append(markdown_table(["dimension", "as shipped", "correction", "refit", "kept"], rows))
    if summary.get("rating_standard_error"):
        se = summary["rating_standard_error"]
        lines.append(f"\nThe pilot's mean ratings have a standard error of {fmt(se['valence'])} (valence) and "
                     f"{fmt(se['arousal'])} (arousal) points (SD / sqrt(n)): part of any error is the raters'.")
    widths = "scaled by the model's error head (a picture's difficulty)" if summary["adaptive"] else \
        "the same for every picture, up to the small differences between the leave-one-out fits"
    lines.append(f"\n**Coverage.** {summary['guarantee']} Widths: {widths}. A pilot needs at least "
                 f"{summary['minimum']} pictures.")
    lines.append(f"\n**Methods paragraph** (fill in the brackets):\n\n> {methods_paragraph(summary, name)}\n")
    lines.append(f"Predict with it: `picaffect predict PICTURES --model {out} --out norms.csv` (the intervals are "
                 f"the columns valence_low ... arousal_high).\n")
    return "\n".join(lines)


def methods_paragraph(summary: dict[str, Any], name: str) -> str:
    """A paragraph a psychologist can paste into a methods section."""
    dims = summary["dimensions"]
    k = summary["pictures"]

    def did(d: str) -> str:
        kept = dims[d]
        if kept["kept"] == "refit":
            return (f"the model's ridge readout was refitted with the pilot pictures added at weight "
                    f"{kept['refit_weight']:g}")
        if not kept["correction"]["applied"]:
            return "the predictions were left as they were"
        return "the predictions were corrected by a bias and scale adjustment shrunk toward none"

    methods = sorted({dims[d]["method"] for d in DIMENSIONS})
    return (f"Valence and arousal norms for the remaining [N] pictures were predicted with picaffect "
            f"{__version__} (model {name}), calibrated on a random pilot of {k} of the set's pictures rated by "
            f"[describe the raters] on a {summary['scale'].replace(',', '-')} scale (rescaled to 1-9). For valence, "
            f"{did('valence')}; for arousal, {did('arousal')}; each choice, and its strength, by leave-one-out "
            f"cross-validation on the pilot. Predicted from the rest of the pilot, the pilot pictures' ratings "
            f"correlated r = {dims['valence']['after']['r']:.2f} (valence) and r = {dims['arousal']['after']['r']:.2f} "
            f"(arousal) with the predictions (RMSE {dims['valence']['after']['rmse']:.2f} and "
            f"{dims['arousal']['after']['rmse']:.2f} points on 1-9). Each norm carries a 90 % prediction interval "
            f"({' and '.join(methods)} over the pilot's {k} leave-one-out errors; Barber, Candès, Ramdas & "
            f"Tibshirani, 2021), which holds a picture's rating with a probability of about 90 % for pictures drawn "
            f"at random from the same set as the pilot.")
