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
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..data.layout import CACHE, MANIFEST
from ..data.dataset import RatedImages, load_manifest
from ..core.atomic import write_bytes_atomically
from ..core.errors import UsageError
from ..evaluation.conformal import leave_one_source_out_check, summary_rows
from ..evaluation.evaluate import evaluate
from ..evaluation.markdown import THESIS_8_1, THESIS_8_2, THESIS_8_3, fmt, markdown_table, triple
from ..evaluation.reliability import noise_ceilings, r_with_ceiling
from ..core.jsonsafe import jsonable
from ..core.metrics import summarize
from ..core.names import THESIS_MODELS
from ..core.plots import loss_curves
from ..training.config import EXPERIMENT_DEFAULTS, TrainConfig
from .stages import run_stages, stages_from_config
SPLIT_ORDER = ("train", "test", "validation")
DIMENSIONS = ("valence", "arousal")
# The thesis's jndataset (table 6.1, table 7.1): what our data are compared with in the report.
THESIS_SETS = ("cgna", "dirti", "emomadrid", "gaped", "smid", "oasis", "naps")  # IED = cgna, our preset name
THESIS_PICTURES = 17_810
THESIS_SPLITS = {"train": 12_021, "test": 4_008, "validation": 1_781}
THESIS_SIZE = 150  # the thesis's input side (section 6.2); a run at another side says so in its name


@dataclass(frozen=True)
class RunSpec:
    """One training run of the experiment; its folder name says every choice (the side only when it is not
    the thesis's 150 px, the seed only when it is not 0), so that runs at two sides of one split, or
    replicates of one run, can share a report."""

    model: str
    recipe: str = "thesis"
    augment: str = "none"
    precision: str = "fp32"
    ema: float | None = None
    size: int = THESIS_SIZE
    seed: int = 0

    @property
    def name(self) -> str:
        parts = [self.model, self.recipe]
        if self.augment != "none":
            parts.append(f"augment-{self.augment}")
        if self.precision != "fp32":
            parts.append(self.precision)
        if self.ema is not None:
            parts.append(f"ema{self.ema:g}")
        if self.size != THESIS_SIZE:
            parts.append(f"{self.size}px")
        if self.seed:
            parts.append(f"seed{self.seed}")
        return "-".join(parts)


def thesis_specs(models: tuple[str, ...], recipe: str = "thesis", augment: str | None = None,
                 precision: str = "fp32", ema: float | None = None, size: int = THESIS_SIZE,
                 seed: int = 0) -> list[RunSpec]:
    """The runs to train: each model without augmentation, plus Emosepar with the thesis's (table 8.2).

    ``augment`` given: every model with that augmentation only.
    """
    specs = [RunSpec(m, recipe, augment or "none", precision, ema, size, seed) for m in models]
    if augment is None and "emosepar" in models:
        specs.append(RunSpec("emosepar", recipe, "thesis", precision, ema, size, seed))
    return specs


def experiment_base(data: str | Path, out: str | Path, model: str, **options) -> TrainConfig:
    """The configuration an experiment's runs start from when the caller gives none: ``TrainConfig``'s
    defaults, but ``EXPERIMENT_DEFAULTS`` (30 epochs), and ``options``."""
    return TrainConfig(data=str(data), model=model, out=str(out), **{**EXPERIMENT_DEFAULTS, **options})


def run_thesis(data: str | Path, out: str | Path, base: TrainConfig | None = None, *,
               models: tuple[str, ...] = THESIS_MODELS, augment: str | None = None, n_boot: int = 1000,
               train_runs: bool = True) -> dict:
    """Train the requested runs (unless ``train_runs`` is False), then report on every run under ``out``.

    Each run is ``base`` (its recipe, precision, epochs, budget, ...) with one of ``models``
    and the augmentation ``thesis_specs`` gives it, in
    ``out/runs/<model>-<recipe>[-augment-X][-bf16][-emaD][-SIDEpx][-seedN]``.
    """
    out = Path(out)
    base = base or experiment_base(data, out, models[0])
    if train_runs:
        size = base.size or RatedImages(data, "all").image_size
        stages = [{"name": spec.name, "model": spec.model, "augment": spec.augment}
                  for spec in thesis_specs(models, base.recipe, augment, base.precision, base.ema, size,
                                           base.seed)]
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


def _evaluate_run(run: Path, data: str, device: str, n_boot: int) -> dict:
    """The run's best checkpoint on every split, evaluated again only when best.pt is newer than the metrics."""
    metrics = run / "evaluation" / "metrics.json"
    best = run / "best.pt"
    if metrics.is_file() and metrics.stat().st_mtime >= best.stat().st_mtime:
        return json.loads(metrics.read_text())
    return evaluate(run, data, split=list(SPLIT_ORDER), out=run / "evaluation", device=device, n_boot=n_boot)


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
        "name": run.name, "model": config.model, "recipe": config.recipe, "augment": config.augment,
        "precision": config.precision, "ema": config.ema, "seed": config.seed,
        "size": config.size or RatedImages(config.data, "all").image_size,
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


# -- the report -----------------------------------------------------------------------------------------------------
def run_label(run: dict) -> str:
    """A run's name in words, e.g. "emosepar (modern, augment thesis, bf16, ema 0.995, 224 px)": the report's
    tables and the README's (``scripts/results_table.py``) both use it."""
    text = f"{run['model']} ({run['recipe']}"
    if run["augment"] != "none":
        text += f", augment {run['augment']}"
    if run["precision"] != "fp32":
        text += f", {run['precision']}"
    if run.get("ema") is not None:
        text += f", ema {run['ema']:g}"
    if run.get("size", THESIS_SIZE) != THESIS_SIZE:  # runs reported before sizes were recorded are 150 px
        text += f", {run['size']} px"
    if run.get("seed"):
        text += f", seed {run['seed']}"
    return text + ")"


def _ci(block: dict, key: str) -> str:
    cell = fmt(block.get(key))
    ci = (block.get("ci95") or {}).get(key)
    if ci and None not in ci and not any(isinstance(v, float) and math.isnan(v) for v in ci):
        cell += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return cell


def thesis_reading(runs: list[dict]) -> str:
    """What the validation figures say, computed from them so that the words cannot drift from the numbers:
    which runs beat the training-mean baseline, which is best and which of the others its interval cannot
    tell apart from it, and where the figures stand against the thesis's."""
    def val(run: dict, dim: str, key: str) -> float:
        return run["validation"][dim][key]

    def interval(run: dict, dim: str, key: str) -> tuple[float, float]:
        lo, hi = (run["validation"][dim].get("ci95") or {}).get(key) or (math.nan, math.nan)
        return lo, hi

    lines = ["**Reading** (computed from the validation figures below).\n"]
    above = [r for r in runs if not val(r, "pooled", "rmse") < r["baselines"]["rmse_mean"]["pooled"]]
    lines.append(f"- {len(runs) - len(above)} of {len(runs)} runs predict better than the training mean (pooled "
                 f"RMSE below the mean's {fmt(runs[0]['baselines']['rmse_mean']['pooled'], 3)})"
                 + (f"; not: {', '.join(run_label(r) for r in above)}." if above else "."))
    best = min(runs, key=lambda r: val(r, "pooled", "rmse"))
    hi = interval(best, "pooled", "rmse")[1]
    near = [r for r in runs if r is not best and interval(r, "pooled", "rmse")[0] <= hi]
    reach = ("The interval of 1 other run reaches" if len(near) == 1
             else f"The intervals of {len(near)} other runs reach")
    lines.append(f"- Lowest pooled RMSE: {run_label(best)}, {_ci(best['validation']['pooled'], 'rmse')}. "
                 + (f"{reach} it ({', '.join(run_label(r) for r in near)}): {best['validation'].get('n', 'these')} "
                    f"validation pictures do not rank those runs." if near else "No other run's interval reaches it."))
    top = max(runs, key=lambda r: val(r, "valence", "pcc"))
    lively = max(runs, key=lambda r: val(r, "arousal", "pcc"))
    lines.append(f"- Highest valence r: {run_label(top)}, {_ci(top['validation']['valence'], 'pcc')}; highest "
                 f"arousal r: {run_label(lively)}, {_ci(lively['validation']['arousal'], 'pcc')}.")
    ours = [(r["splits"]["validation"]["overall"], THESIS_8_1[r["model"]]["validation"]) for r in runs
            if r["model"] in THESIS_8_1 and "splits" in r]
    if ours:
        rmse, cc = [o["rmse"] for o, _ in ours], [o["pcc"] for o, _ in ours]
        theirs_rmse, theirs_cc = [t[0] for _, t in ours], [t[1] for _, t in ours]
        lines.append(f"- Against table 8.1's validation column (both dimensions pooled): our RMSE "
                     f"{fmt(min(rmse))}-{fmt(max(rmse))} against the thesis's {fmt(min(theirs_rmse))}-"
                     f"{fmt(max(theirs_rmse))}, our CC {fmt(min(cc))}-{fmt(max(cc))} against "
                     f"{fmt(min(theirs_cc))}-{fmt(max(theirs_cc))}. Other pictures, raters and sizes (the paragraph "
                     f"above): the two columns are not comparable one to one.")
    return "\n".join(lines) + "\n"


def _data_paragraph(runs: list[dict]) -> str:
    """How our data differ from the thesis's, from the dataset's own manifest."""
    try:
        manifest = load_manifest(runs[0]["dataset"])
    except (OSError, ValueError):
        return ""
    ok = manifest[manifest["status"] == "ok"]
    counts = ok["source"].value_counts()
    splits = ok["split"].value_counts()
    sources = ", ".join(f"{s} {n:,}" for s, n in counts.items())
    ours = " / ".join(f"{splits.get(s, 0):,}" for s in SPLIT_ORDER)
    theirs = " / ".join(f"{THESIS_SPLITS[s]:,}" for s in SPLIT_ORDER)
    shared = [s for s in counts.index if s in THESIS_SETS]
    extra = [s for s in counts.index if s not in THESIS_SETS]
    return (f"**How our data differ from the thesis's.** The thesis merged {len(THESIS_SETS)} rated sets "
            f"(table 6.1) into {THESIS_PICTURES:,} pictures (train / test / validation {theirs}). Here: "
            f"{len(counts)} sets, {len(ok):,} pictures ({sources}; train / test / validation {ours}), "
            f"{len(ok) / THESIS_PICTURES:.0%} as many pictures and as many steps an epoch. Of the thesis's sets "
            f"{len(shared)} ({', '.join(shared) or 'none'}) {'is' if len(shared) == 1 else 'are'} here; "
            f"{', '.join(extra) or 'none'} {'is' if len(extra) == 1 else 'are'} not among "
            "them." + (" BASS pictures are black-and-white silhouettes." if "bass" in counts.index else "")
            + (" The thesis's largest set, IED (10,766 pictures, 60 % of its data), is not here."
               if "cgna" not in counts.index else "")
            + " The figures side by side are therefore not comparable one to one: other pictures, other raters, "
            "fewer steps an epoch.\n")


def thesis_markdown(runs: list[dict]) -> str:
    """report.md: runs, table 8.1 per recipe, 8.2, 8.3, validation with intervals, per source with ceilings."""
    out = ["# The thesis's experiment, rerun\n",
           "Each cell of tables 8.1-8.3: ours / the thesis's. Values on 1..9; CC is Pearson r; SAGR counts sign "
           "agreement about 5; *overall* pools both dimensions as Keras computed the thesis's table 8.1. "
           "Baselines: RMSE of predicting the training mean, SAGR of predicting the commoner training sign. "
           "Every figure is from the run's best epoch (lowest test loss). Recipes: `thesis` = SGD lr 1e-5, "
           "Nesterov momentum 0.9, time decay 1e-6, MSE on raw 1..9 targets (section 7.2, Keras 2 semantics); "
           "`modern` = AdamW lr 1e-3, weight decay 0.05, warm-up then cosine, targets mapped to [-1, 1].\n"]
    if not runs:
        return "\n".join(out + ["No run has a checkpoint yet.\n"])
    out.append(_data_paragraph(runs))
    out.append(thesis_reading(runs))
    out.append("## Runs\n")
    rows = [[run_label(r), str(r["epochs_run"]), f"{r['max_epochs']} / {r['patience']} / "
             + (f"{r['budget_minutes']:g} min" if r["budget_minutes"] else "–"), str(r["best_epoch"]), r["stopped"],
             f"{r['train_seconds'] / 60:.1f}", fmt(r["images_per_s_median"], 1), f"[curve]({r['curve']})"]
            for r in runs]
    out.append(markdown_table(["run", "epochs run", "max epochs / patience / budget", "best epoch", "stopped", "minutes",
                      "img/s", "learning curve"], rows))
    out.append("*stopped*: `patience` = the test loss stopped improving; `epochs` = the epoch limit; `budget` = the "
               "next epoch would have passed the wall-clock budget; `interrupted` = the process was ended (the "
               "figures are those of its best checkpoint).\n")
    carried = [r["name"] for r in runs if r.get("carried")]
    if carried:
        out.append(f"Carried from an earlier report (trained in an earlier sitting; run folders not on this machine, "
                   f"figures as evaluated then): {', '.join(carried)}.\n")

    # one table per recipe and augmentation: models trained alike side by side
    for recipe, augment in dict.fromkeys((r["recipe"], r["augment"]) for r in runs):
        alike = [r for r in runs if r["recipe"] == recipe and r["augment"] == augment]
        augmented = "" if augment == "none" else f", augmentation `{augment}`"
        out.append(f"\n## Table 8.1, recipe `{recipe}`{augmented}: models by split (both dimensions pooled)\n")
        header = ["model"] + [f"{s} {m}" for s in SPLIT_ORDER for m in ("RMSE", "CC", "SAGR")]
        rows = []
        for r in alike:
            cells = [run_label(r)]
            thesis = THESIS_8_1.get(r["model"])
            for split in SPLIT_ORDER:
                ours = triple(r["splits"][split]["overall"])
                cells += [f"{o} / {t:.2f}" for o, t in zip(ours, thesis[split])] if thesis else list(ours)
            rows.append(cells)
        base = [alike[0]["splits"][s]["overall"] for s in SPLIT_ORDER]
        rows.append(["*baseline*"] + sum([[fmt(b.get("rmse_mean_baseline")), "–", fmt(b.get("sagr_majority"))]
                                          for b in base], []))
        out.append(markdown_table(header, rows))

    pairs = [(r, a) for r in runs if r["model"] == "emosepar" and r["augment"] == "none"
             for a in runs if a["model"] == "emosepar" and a["augment"] == "thesis"
             and (a["recipe"], a["precision"], a.get("ema")) == (r["recipe"], r["precision"], r.get("ema"))]
    for plain, augmented in pairs:
        out.append(f"\n## Table 8.2, recipe `{plain['recipe']}`: Emosepar with and without augmentation\n")
        header = ["run"] + [f"{s} {m}" for s in ("train", "validation") for m in ("RMSE", "CC", "SAGR")]
        rows = []
        for r, key in ((plain, "emosepar"), (augmented, "emosepar + augmentation")):
            cells = [run_label(r)]
            for split in ("train", "validation"):
                ours = triple(r["splits"][split]["overall"])
                cells += [f"{o} / {t:.2f}" for o, t in zip(ours, THESIS_8_2[key][split])]
            rows.append(cells)
        out.append(markdown_table(header, rows))

    for r in (r for r in runs if r["model"] == "emosepar" and r["augment"] == "none"):
        out.append(f"\n## Table 8.3, {run_label(r)}: per dimension\n")
        header = ["dimension"] + [f"{s} {m}" for s in SPLIT_ORDER for m in ("RMSE", "CC", "SAGR")] + \
                 ["val. RMSE of mean", "val. SAGR of majority"]
        rows = []
        for dim in DIMENSIONS:
            cells = [dim]
            for split in SPLIT_ORDER:
                ours = triple(r["splits"][split][dim])
                cells += [f"{o} / {t:.2f}" for o, t in zip(ours, THESIS_8_3[dim][split])]
            val = r["splits"]["validation"][dim]
            rows.append(cells + [fmt(val.get("rmse_mean_baseline")), fmt(val.get("sagr_majority"))])
        out.append(markdown_table(header, rows))

    out.append("\n## Validation, with bootstrap 95 % intervals and baselines\n")
    rows = []
    for r in runs:
        v, b = r["validation"], r["baselines"]
        for dim in ("valence", "arousal", "pooled"):
            rows.append([run_label(r), dim, _ci(v[dim], "rmse"), fmt(b["rmse_mean"][dim]), _ci(v[dim], "pcc"),
                         _ci(v[dim], "sagr"), fmt(b["sagr_majority"][dim])])
    out.append(markdown_table(["run", "dimension", "RMSE", "RMSE of mean", "CC", "SAGR", "SAGR of majority"], rows))

    out.append("\n## Validation by source, r beside its noise ceiling\n")
    out.append("r (≤ c): c = sqrt(1 - mean(SD²/N) / var(means)) over the same pictures, the best r any model "
               "could expect against these mean ratings (classical test theory); sources without published SD "
               "and N (Emotion6) have none.\n")
    rows = []
    for r in runs:
        for source, s in r["validation_by_source"].items():
            ceil = s.get("noise_ceiling", {})
            rows.append([run_label(r), source, str(s["n"]), r_with_ceiling(s["valence"]["pcc"], ceil.get("valence")),
                         r_with_ceiling(s["arousal"]["pcc"], ceil.get("arousal")), fmt(s["overall"]["rmse"]),
                         fmt(s["overall"].get("rmse_mean_baseline"))])
    out.append(markdown_table(["run", "source", "n", "valence r (≤ c)", "arousal r (≤ c)", "RMSE", "RMSE of mean"], rows))
    return "\n".join(out)


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
    augmented = "" if base.augment == "none" else f"-augment-{base.augment}"
    stages = stages or [{"name": f"{base.model}-{base.recipe}{augmented}"}]
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
            metrics = run / "evaluation" / "metrics.json"
            if metrics.is_file() and metrics.stat().st_mtime >= (run / "best.pt").stat().st_mtime:
                result = json.loads(metrics.read_text())
            else:
                result = evaluate(run, config.data, split="validation", out=run / "evaluation", device=device,
                                  n_boot=n_boot)
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
    text = ["# Leave one source out\n",
            "Each table: models trained on the other sources (their train split; their test split watched for "
            "early stopping and the ridge penalty), evaluated on every picture of the held-out source. Baselines "
            "use the training sources' mean and commoner sign. r (≤ c): c is the noise ceiling of r on this "
            "source, sqrt(1 - mean(SD²/N) / var(means)), where the source publishes SD and N.\n"]
    header = ["run", "epochs", "stopped", "valence r (≤ c)", "arousal r (≤ c)", "valence RMSE", "arousal RMSE",
              "valence SAGR", "arousal SAGR", "RMSE of mean (v / a)", "SAGR of majority (v / a)"]
    for source, runs in results.items():
        n = next(iter(runs.values()))["validation"]["n"]
        text.append(f"\n## Held out: {source} ({n} pictures)\n")
        rows = []
        for name, r in runs.items():
            s, c = r["validation"], r["validation"]["noise_ceiling"]
            rows.append([name, str(r["epochs_run"]), r["stopped"],
                         r_with_ceiling(s["valence"]["pcc"], c["valence"]),
                         r_with_ceiling(s["arousal"]["pcc"], c["arousal"]),
                         fmt(s["valence"]["rmse"]), fmt(s["arousal"]["rmse"]),
                         fmt(s["valence"]["sagr"]), fmt(s["arousal"]["sagr"]),
                         f"{fmt(s['valence'].get('rmse_mean_baseline'))} / {fmt(s['arousal'].get('rmse_mean_baseline'))}",
                         f"{fmt(s['valence'].get('sagr_majority'))} / {fmt(s['arousal'].get('sagr_majority'))}"])
        text.append(markdown_table(header, rows))
    if intervals:
        text.append(intervals_markdown_section(intervals))
    write_bytes_atomically(out / "report.md", "\n".join(text).encode())
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


def intervals_markdown_section(intervals: dict, level: float = 0.9) -> str:
    text = [f"\n## Prediction intervals ({level:.0%}) on each held-out source\n",
            "Split conformal intervals (constant width) calibrated on the errors the other folds' models made on "
            "their own held-out sources, measured on this one: the coverage a new picture set can expect. "
            "*constant, same coverage*: the width a constant interval needs on this source to cover as much "
            "(chosen on its own rows).\n"]
    rows = [[stage, r["source"], str(r["n"]), r["dimension"], fmt(r["coverage"]), fmt(r["mean_width"]),
             fmt(r["constant_same_coverage"])] for stage, block in intervals.items() for r in block]
    text.append(markdown_table(["stage", "held out", "n", "dimension", "coverage", "mean width",
                                "constant, same coverage"], rows))
    return "\n".join(text)
