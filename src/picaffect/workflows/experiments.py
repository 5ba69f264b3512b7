"""``picaffect experiment``: the thesis's chapter 8 and a cross-dataset test, end to end.

``thesis`` trains runs (a model, a recipe, an augmentation, a precision, a weight
average, a picture side, a seed: each in the run's folder name), each until its test loss
stops improving (``patience``), its epochs run out, or its wall-clock budget would
be passed, and says which happened. Then it evaluates
every run found under ``OUT/runs`` (also those of earlier invocations, and
interrupted ones from their ``best.pt``) on train, test and validation, and
writes ``results.json``, ``report.md`` (tables 8.1, 8.2 and 8.3 beside the
thesis's published figures, baselines, bootstrap intervals, per-source r with
noise ceilings) and one learning curve per run (the thesis's figure 1). Several
invocations with different options can fill one folder: the report covers them
all. A run folder with a ``summary.json`` is finished and is not trained again;
one with only ``last.pt`` is continued (``stages.run_stages``).

``cross-dataset`` leaves one source out at a time: it writes a re-split view of
the dataset (the held-out source becomes ``validation``, the others keep train and
test), trains on it (one stage, or the stages of a retrain configuration such as
``configs/default.yaml``: ridge probe, then fine-tuning), and evaluates on the
held-out source, with its noise ceiling where the source publishes SD and N.

Both take one base ``TrainConfig``, the command's training options: every run
starts from it, and a stage of a configuration overrides what it names.
"""
from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from ..data.layout import CACHE, MANIFEST
from ..data.dataset import RatedImages, load_manifest
from ..core.atomic import write_bytes_atomically
from ..core.errors import UsageError
from ..evaluation.conformal import leave_one_source_out_check, summary_rows
from ..evaluation.evaluate import evaluate
from ..evaluation.reliability import noise_ceilings
from ..core.jsonsafe import jsonable
from ..core.metrics import summarize
from ..core.names import THESIS_MODELS
from ..core.plots import loss_curves
from ..training.config import EXPERIMENT_DEFAULTS, TrainConfig
from .experiment_reports import SPLIT_ORDER, cross_dataset_markdown, thesis_markdown
from .run_names import RunIdentity
from .stages import run_stages, stages_from_config


def thesis_runs(models: tuple[str, ...], augment: str | None = None) -> list[tuple[str, str]]:
    """(model, augmentation) of each run to train: each model without augmentation, plus Emosepar with the
    thesis's (table 8.2); ``augment`` given: every model with that augmentation only."""
    runs = [(m, augment or "none") for m in models]
    if augment is None and "emosepar" in models:
        runs.append(("emosepar", "thesis"))
    return runs


def experiment_base(data: str | Path, out: str | Path, model: str, **options) -> TrainConfig:
    """The configuration an experiment's runs start from when the caller gives none: ``TrainConfig``'s
    defaults, but ``EXPERIMENT_DEFAULTS`` (30 epochs), and ``options``."""
    return TrainConfig(data=str(data), model=model, out=str(out), **{**EXPERIMENT_DEFAULTS, **options})


def run_thesis(data: str | Path, out: str | Path, base: TrainConfig | None = None, *,
               models: tuple[str, ...] = THESIS_MODELS, augment: str | None = None, n_boot: int = 1000,
               train_runs: bool = True) -> dict:
    """Train the requested runs (unless ``train_runs`` is False), then report on every run under ``out``.

    Each run is ``base`` (its recipe, precision, epochs, budget, ...) with one of ``models``
    and the augmentation ``thesis_runs`` gives it, in ``out/runs/<its name>``
    (``run_names``: ``<model>-<recipe>[-augment-X][-bf16][-emaD][-SIDEpx][-seedN]``).
    """
    out = Path(out)
    base = base or experiment_base(data, out, models[0])
    if train_runs:
        size = base.size or RatedImages(data, "all").image_size
        stages = [{"name": RunIdentity.of(replace(base, model=model, augment=augmented), size).name,
                   "model": model, "augment": augmented} for model, augmented in thesis_runs(models, augment)]
        run_stages(stages, data, out / "runs", base)
    return write_thesis_report(out, device=base.device, n_boot=n_boot)


# -- collecting runs ------------------------------------------------------------------------------------------------
def _stop_reason(run: Path, history: list[dict]) -> str:
    """Why a run stopped: its summary says (epochs, patience, budget); no summary means it was interrupted."""
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        return "interrupted" if history else "not started"
    summary = json.loads(summary_path.read_text())
    if summary.get("stopped"):
        return summary["stopped"]
    return "patience" if summary.get("stopped_early") else "epochs"  # runs written before `stopped` existed


def _history(run: Path) -> list[dict]:
    path = run / "history.csv"
    if not path.is_file():
        return []
    return pd.read_csv(path).to_dict("records")


def _evaluate_run(run: Path, data: str, device: str, n_boot: int, split: str | tuple[str, ...] = SPLIT_ORDER
                  ) -> dict:
    """The run's best checkpoint on ``split`` (every split), into ``run/evaluation/``; evaluated again only when
    best.pt is newer than the metrics there."""
    metrics = run / "evaluation" / "metrics.json"
    best = run / "best.pt"
    if metrics.is_file() and metrics.stat().st_mtime >= best.stat().st_mtime:
        return json.loads(metrics.read_text())
    return evaluate(run, data, split=split if isinstance(split, str) else list(split), out=run / "evaluation",
                    device=device, n_boot=n_boot)


def _by_source(run: Path, data: str, split: str, n_boot: int) -> dict:
    """Per-source metrics on one split from the run's predictions.csv, each with its noise ceiling."""
    predictions = pd.read_csv(run / "evaluation" / "predictions.csv")
    manifest = load_manifest(data)
    train_y = manifest.loc[(manifest["status"] == "ok") & (manifest["split"] == "train"),
                           ["valence", "arousal"]].to_numpy()
    rows = predictions[predictions["split"] == split].merge(
        manifest.drop(columns=["valence", "arousal", "split"]), on=["source", "id"], how="left")
    out = {}
    for source, group in rows.groupby("source", sort=False):
        y = group[["valence_true", "arousal_true"]].to_numpy()
        yhat = group[["valence_pred", "arousal_pred"]].to_numpy()
        block = summarize(y, yhat, train_y=train_y, n_boot=n_boot)
        block["noise_ceiling"] = noise_ceilings(group)
        out[source] = block
    return out


def _small(block: dict) -> dict:
    keep = {k: block.get(k) for k in ("rmse", "pcc", "sagr", "ccc", "mae")}
    if "ci95" in block:
        keep["ci95"] = block["ci95"]
    return keep


def collect_run(run: Path, *, device: str = "cpu", n_boot: int = 1000) -> dict | None:
    """One run's object for results.json, or None when it has no checkpoint to evaluate yet."""
    if not (run / "config.yaml").is_file() or not (run / "best.pt").is_file():
        return None
    config = TrainConfig.load(run / "config.yaml")
    history = _history(run)
    result = _evaluate_run(run, config.data, device, n_boot)
    validation = result["splits"]["validation"]
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    best = min(history, key=lambda r: r["test_loss"]) if history else {}
    rates = [r["images_per_s"] for r in history if isinstance(r.get("images_per_s"), (int, float))]
    seconds = summary.get("seconds") or sum(r.get("seconds", 0.0) for r in history)
    return {
        "name": run.name, **asdict(RunIdentity.of(config, config.size or RatedImages(config.data, "all").image_size)),
        "epochs_run": len(history), "max_epochs": config.epochs,
        "patience": config.patience, "budget_minutes": config.budget_minutes, "best_epoch": best.get("epoch"),
        "stopped": _stop_reason(run, history), "train_seconds": round(float(seconds), 1),
        "images_per_s_median": round(statistics.median(rates), 1) if rates else None,
        "train_rows": summary.get("train_rows"), "dataset": config.data, "curve": f"curves/{run.name}.png",
        "validation": {"valence": _small(validation["valence"]), "arousal": _small(validation["arousal"]),
                       "pooled": _small(validation["overall"]), "n": validation["n"]},
        "baselines": {"rmse_mean": {d: validation[k].get("rmse_mean_baseline")
                                    for d, k in (("valence", "valence"), ("arousal", "arousal"),
                                                 ("pooled", "overall"))},
                      "sagr_majority": {d: validation[k].get("sagr_majority")
                                        for d, k in (("valence", "valence"), ("arousal", "arousal"),
                                                     ("pooled", "overall"))}},
        "splits": result["splits"],
        "validation_by_source": _by_source(run, config.data, "validation", n_boot),
        "history": history,
    }


def write_thesis_report(out: str | Path, *, device: str = "cpu", n_boot: int = 1000) -> dict:
    """Evaluate every run under ``out/runs`` and write results.json, report.md and curves/*.png."""
    out = Path(out)
    runs = []
    for run in sorted(p for p in (out / "runs").glob("*") if p.is_dir()):
        obj = collect_run(run, device=device, n_boot=n_boot)
        if obj is None:
            continue
        loss_curves(obj["history"], out / obj["curve"],
                    f"{obj['name']}: {obj['epochs_run']} epochs, stopped: {obj['stopped']}")
        runs.append(obj)
    runs += carried_runs(out, {run["name"] for run in runs})
    runs.sort(key=lambda run: run["name"])
    results = {"runs": runs}
    _write_json(out / "results.json", results)
    write_bytes_atomically(out / "report.md", thesis_markdown(runs).encode())
    return results


def _write_json(path: Path, obj: dict) -> None:
    """A results file others read (the report, the next sitting's carried runs), written whole or not at all."""
    write_bytes_atomically(path, (json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n").encode())


def carried_runs(out: Path, present: set[str]) -> list[dict]:
    """Runs an earlier ``results.json`` in ``out`` reported whose folders are not here (nor reported again now).

    The long runs of one comparison are trained over several sittings, not always on one machine: a
    report must not lose a finished run because its folder (gigabytes of checkpoints) stayed behind.
    Each carried run says so (``carried``); its figures are the ones measured when it was evaluated."""
    path = out / "results.json"
    if not path.is_file():
        return []
    try:
        earlier = json.loads(path.read_text()).get("runs", [])
    except (ValueError, AttributeError) as e:
        raise UsageError(f"{path}: not a results file of picaffect experiment ({e}); move it away") from None
    carried = []
    for run in earlier:
        if run.get("name") in present or (out / "runs" / str(run.get("name"))).is_dir():
            continue
        carried.append({**run, "carried": run.get("carried") or "from an earlier results.json (its run folder "
                                                                  "is not on this machine)"})
    return carried


# -- leave one source out -------------------------------------------------------------------------------------------
def leave_one_out_view(data: Path, held_out: str, out: Path) -> Path:
    """A dataset folder whose validation split is ``held_out`` and whose train/test come from the rest.

    The image cache is linked, not copied; only the manifest is rewritten.
    """
    manifest = load_manifest(data)
    ok = manifest["status"] == "ok"
    view = manifest.copy()
    others = ok & (view["source"] != held_out)
    view.loc[others & (view["split"] == "validation"), "split"] = "train"
    view.loc[ok & (view["source"] == held_out), "split"] = "validation"
    out.mkdir(parents=True, exist_ok=True)
    view.to_parquet(out / MANIFEST, index=False)
    link = out / CACHE
    if not link.exists():
        try:
            os.link(Path(data) / CACHE, link)
        except OSError:  # another file system: a symbolic link still avoids the copy
            link.symlink_to((Path(data) / CACHE).resolve())
    return out


def run_cross_dataset(data: str | Path, out: str | Path, base: TrainConfig | None = None, *,
                      stages: list[dict] | str | Path | None = None, n_boot: int = 1000,
                      train_runs: bool = True) -> dict:
    """Leave each source out in turn: train ``base`` (its model and recipe), or ``stages`` (a list, or the path
    of a retrain configuration such as configs/default.yaml to read them from; each over ``base``), on the
    others and evaluate on it.

    Runs land in ``out/runs/<held-out source>/<stage>``; the report covers every run found there.
    """
    if isinstance(stages, (str, Path)):  # read and checked before any work
        stages = stages_from_config(stages)
    data, out = Path(data), Path(out)
    base = base or experiment_base(data, out, "emosepar")
    manifest = load_manifest(data)
    sources = list(pd.unique(manifest.loc[manifest["status"] == "ok", "source"]))
    if len(sources) < 2:
        raise UsageError(f"{data} holds {len(sources)} source(s); leaving one out needs at least two")
    # named by model, recipe and augmentation only, as the leave-one-source-out folders always were
    stages = stages or [{"name": RunIdentity(base.model, base.recipe, base.augment).name}]
    if train_runs:
        for source in sources:
            view = leave_one_out_view(data, source, out / "views" / source)
            run_stages(stages, view, out / "runs" / source, base)
    return write_cross_dataset_report(out, device=base.device, n_boot=n_boot)


def write_cross_dataset_report(out: str | Path, *, device: str = "cpu", n_boot: int = 1000) -> dict:
    """Evaluate every run under ``out/runs/<source>/`` on its held-out source; results.json and report.md."""
    out = Path(out)
    results: dict[str, dict] = {}
    for source_dir in sorted(p for p in (out / "runs").glob("*") if p.is_dir()):
        for run in sorted(p for p in source_dir.glob("*") if (p / "best.pt").is_file()):
            config = TrainConfig.load(run / "config.yaml")
            result = _evaluate_run(run, config.data, device, n_boot, split="validation")
            history = _history(run)
            block = result["splits"]["validation"]
            view_rows = load_manifest(config.data)
            held = view_rows[(view_rows["status"] == "ok") & (view_rows["split"] == "validation")]
            block["noise_ceiling"] = noise_ceilings(held)
            results.setdefault(source_dir.name, {})[run.name] = {
                "model": config.model, "recipe": config.recipe, "init": config.init, "epochs_run": len(history),
                "stopped": _stop_reason(run, history), "validation": block}
    intervals = cross_dataset_intervals(out)
    if intervals:
        _write_json(out / "intervals.json", intervals)
    _write_json(out / "results.json", results)
    write_bytes_atomically(out / "report.md", cross_dataset_markdown(results, intervals).encode())
    return results


def cross_dataset_intervals(out: Path, level: float = 0.9) -> dict:
    """Per stage, the coverage of conformal intervals on each held-out source, calibrated on the other held-out
    sources' errors (each made by a model that did not see its source): {stage: [summary rows]}.

    Constant widths: the runs of different folds have different features, so no one error
    head applies; ``picaffect calibrate MODEL --predictions OUT --stage NAME`` fits the
    shipped model's adaptive widths on the same residuals.
    """
    found: dict[str, list[pd.DataFrame]] = {}
    for path in sorted(out.glob("runs/*/*/evaluation/predictions.csv")):
        table = pd.read_csv(path)
        found.setdefault(path.parent.parent.name, []).append(table[table["split"] == "validation"])
    result = {}
    for stage, frames in found.items():
        rows = pd.concat(frames, ignore_index=True)
        if rows["source"].nunique() < 3:  # calibrating on one other source says little; need two at least
            continue
        check = leave_one_source_out_check(rows[["valence_true", "arousal_true"]].to_numpy(),
                                           rows[["valence_pred", "arousal_pred"]].to_numpy(),
                                           rows["source"].astype(str).to_numpy(), None, levels=(level,))
        result[stage] = summary_rows(check, level)
    return result
