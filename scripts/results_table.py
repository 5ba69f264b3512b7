"""Print the README's summary table from an experiment's results.json (so the README never drifts from it).

    .venv/bin/python scripts/results_table.py results/thesis/results.json
    .venv/bin/python scripts/results_table.py results/cross-dataset/default/results.json --cross
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from picaffect.evaluation.markdown import THESIS_8_1
from picaffect.workflows.run_names import run_label  # the report's own names, so the two tables agree


def f(x, d: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def thesis_table(results: dict) -> str:
    lines = ["| run | epochs | stopped | val. RMSE (mean baseline) | val. CC | val. SAGR (majority) | "
             "valence r | arousal r |", "|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        v, b = r["validation"], r["baselines"]
        lines.append(f"| {run_label(r)} | {r['epochs_run']} | {r['stopped']} | {f(v['pooled']['rmse'])} "
                     f"({f(b['rmse_mean']['pooled'])}) | {f(v['pooled']['pcc'])} | {f(v['pooled']['sagr'])} "
                     f"({f(b['sagr_majority']['pooled'])}) | {f(v['valence']['pcc'])} | {f(v['arousal']['pcc'])} |")
    return "\n".join(lines)


def thesis_recipe_runs(results: dict) -> dict[str, dict]:
    """Each thesis model's run under the thesis's recipe as written (no augmentation, 150 px, seed 0), by model:
    the rows of table 8.1 as the thesis defines it."""
    return {model: r for model in THESIS_8_1 for r in results["runs"] if r["name"] == f"{model}-thesis-bf16"}


def _order(values: dict[str, float]) -> str:
    return ", ".join(sorted(values, key=values.get))


def thesis_recipe_table(results: dict) -> str:
    """Table 8.1 under the thesis's recipe: our four runs beside the thesis's published figures, pooled, with each
    run's epochs and minutes of training (the cost of SGD at lr 1e-5 is part of what the table tells)."""
    lines = ["| model | epochs | stopped | training (min) | train RMSE | val. RMSE [95 % CI] | "
             "val. valence r [95 % CI] | val. arousal r [95 % CI] | thesis: train / val. RMSE |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model, r in thesis_recipe_runs(results).items():
        v, train, published = r["validation"], r["splits"]["train"]["overall"], THESIS_8_1[model]

        def ci(block: dict, key: str) -> str:
            lo, hi = block["ci95"][key]
            return f"{f(block[key])} [{f(lo)}, {f(hi)}]"
        minutes = r.get("train_seconds") and r["train_seconds"] / 60  # wall time of training, all sittings
        lines.append(f"| {model} | {r['epochs_run']} | {r['stopped']} | {f(minutes, 0)} | {f(train['rmse'])} "
                     f"| {ci(v['pooled'], 'rmse')} "
                     f"| {ci(v['valence'], 'pcc')} | {ci(v['arousal'], 'pcc')} | "
                     f"{f(published['train'][0])} / {f(published['validation'][0])} |")
    return "\n".join(lines)


def thesis_recipe_reading(results: dict) -> str:
    """Whether the thesis's ranking of its four CNNs (table 8.1, by pooled RMSE) holds under its recipe on our
    data, judged by whether the best run's bootstrap interval of validation RMSE overlaps the others'; then the
    thesis's other two readings of that table, over-fitting (the gap from training to validation RMSE) and, which
    it did not check, whether a run beats predicting the training mean at all."""
    runs = thesis_recipe_runs(results)
    if len(runs) < len(THESIS_8_1):
        return f"Only {', '.join(runs)} of the four models have a run under the thesis's recipe: no ranking yet."
    val = {m: r["validation"]["pooled"]["rmse"] for m, r in runs.items()}
    train = {m: r["splits"]["train"]["overall"]["rmse"] for m, r in runs.items()}
    interval = {m: r["validation"]["pooled"]["ci95"]["rmse"] for m, r in runs.items()}
    best = min(val, key=val.get)
    tied = [m for m in val if m != best and interval[m][0] <= interval[best][1]]
    thesis_val = {m: t["validation"][0] for m, t in THESIS_8_1.items()}
    thesis_train = {m: t["train"][0] for m, t in THESIS_8_1.items()}
    unconverged = [m for m, r in runs.items() if r["stopped"] not in ("patience", "epochs")]
    ours, theirs = _order(val), _order(thesis_val)
    text = [f"By pooled validation RMSE the thesis ranks {theirs} (best first, its table 8.1); under "
            f"its recipe on our data the order is {'the same' if ours == theirs else ours}."]
    if tied:
        text.append(f"The best here, {best}, has an interval that overlaps those of {', '.join(tied)}: within the "
                    f"bootstrap intervals {'these models are' if len(tied) > 1 else 'the two are'} not told apart.")
    else:
        text.append(f"The best here, {best}, has an interval that overlaps no other model's.")
    # The figures go beside the names: two runs level at two decimals must not read as a clear highest.
    def ends(rmse: dict[str, float]) -> tuple[str, str]:
        lo, hi = min(rmse, key=rmse.get), max(rmse, key=rmse.get)
        return f"{lo}'s ({f(rmse[lo])})", f"{hi}'s ({f(rmse[hi])})"
    (t_lo, t_hi), (lo, hi) = ends(thesis_train), ends(train)
    text.append(f"On the training rows the thesis's lowest RMSE is {t_lo} and its highest {t_hi}; here they are "
                f"{lo} and {hi}.")
    gap = {m: val[m] - train[m] for m in runs}
    thesis_gap = {m: thesis_val[m] - thesis_train[m] for m in THESIS_8_1}
    widest, thesis_widest = max(gap, key=gap.get), max(thesis_gap, key=thesis_gap.get)
    text.append(f"The widest gap from training to validation RMSE, the over-fitting the thesis saw in xception, is "
                f"{widest}'s here ({gap[widest]:+.2f}) and {thesis_widest}'s in the thesis "
                f"({thesis_gap[thesis_widest]:+.2f}).")
    # Beating the training mean needs the whole interval below its RMSE; a run whose whole interval lies above it
    # is worse than that constant, which says more than "not better" and is kept apart.
    mean_rmse = {m: r["baselines"]["rmse_mean"]["pooled"] for m, r in runs.items()}
    worse = [m for m in runs if interval[m][0] > mean_rmse[m]]
    level = [m for m in runs if interval[m][0] <= mean_rmse[m] <= interval[m][1]]
    if worse:
        text.append(f"Worse than predicting the training mean (validation interval wholly above its RMSE, "
                    f"{f(mean_rmse[worse[0]])}): {', '.join(worse)}.")
    if level:
        text.append(f"Not told apart from predicting the training mean (validation interval holding its RMSE, "
                    f"{f(mean_rmse[level[0]])}): {', '.join(level)}.")
    if unconverged:
        text.append(f"Not converged yet (stopped on a wall-clock budget): {', '.join(unconverged)}; "
                    f"{'their places' if len(unconverged) > 1 else 'its place'} may change.")
    # The epoch limit is a stop the issue accepts, but a run that hit it within its patience of its best epoch was
    # still improving: the reader should know its figure is an upper bound on what the recipe reaches.
    at_limit = [f"{m} (best epoch {r['best_epoch']} of {r['epochs_run']})" for m, r in runs.items()
                if r["stopped"] == "epochs" and r["epochs_run"] - r["best_epoch"] < r["patience"]]
    if at_limit:
        several = len(at_limit) > 1
        text.append(f"Stopped at the epoch limit while {'their test losses' if several else 'its test loss'} still "
                    f"improved: {', '.join(at_limit)}; more epochs might lower {'their' if several else 'its'} RMSE.")
    return " ".join(text)


def cross_table(results: dict) -> str:
    lines = ["| held out | run | valence r (≤ ceiling) | arousal r (≤ ceiling) | RMSE v / a | RMSE of mean v / a |",
             "|---|---|---|---|---|---|"]
    for source, runs in results.items():
        for name, r in runs.items():
            s, c = r["validation"], r["validation"]["noise_ceiling"]

            def rc(dim: str) -> str:
                text = f(s[dim]["pcc"])
                return text + (f" (≤ {f(c[dim]['r_ceiling'], 3)})" if c[dim]["r_ceiling"] is not None else "")
            lines.append(f"| {source} | {name} | {rc('valence')} | {rc('arousal')} | {f(s['valence']['rmse'])} / "
                         f"{f(s['arousal']['rmse'])} | {f(s['valence']['rmse_mean_baseline'])} / "
                         f"{f(s['arousal']['rmse_mean_baseline'])} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    p.add_argument("--cross", action="store_true")
    args = p.parse_args()
    results = json.loads(args.results.read_text())
    print(cross_table(results) if args.cross else thesis_table(results))


if __name__ == "__main__":
    main()
