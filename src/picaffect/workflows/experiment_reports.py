"""The Markdown reports of ``picaffect experiment``, written from the records it collects.

``thesis_markdown`` turns the runs of ``results.json`` into the thesis's tables 8.1-8.3
beside its published figures, with baselines, bootstrap intervals, per-source r with noise
ceilings and a reading computed from the figures; ``cross_dataset_markdown`` does the same
for leave one source out. Words and numbers come from the same records, so a report can be
written again from ``results.json`` alone (runs carried from an earlier sitting, on a machine
without the dataset).
"""
from __future__ import annotations

import math

from ..core.errors import PicaffectError
from ..data.dataset import load_manifest
from ..evaluation.markdown import THESIS_8_1, THESIS_8_2, THESIS_8_3, fmt, markdown_table, triple
from ..evaluation.reliability import r_with_ceiling
from .run_names import run_label

SPLIT_ORDER = ("train", "test", "validation")
DIMENSIONS = ("valence", "arousal")
# The thesis's jndataset (table 6.1, table 7.1): what our data are compared with in the report.
THESIS_SETS = ("cgna", "dirti", "emomadrid", "gaped", "smid", "oasis", "naps")  # IED = cgna, our preset name
THESIS_PICTURES = 17_810
THESIS_SPLITS = {"train": 12_021, "test": 4_008, "validation": 1_781}


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
    except (OSError, ValueError, PicaffectError):  # the dataset is not on this machine: a report from the records
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


def cross_dataset_markdown(results: dict[str, dict], intervals: dict) -> str:
    """report.md of a leave-one-source-out experiment: a table per held-out source, then the intervals."""
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
    return "\n".join(text)


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
