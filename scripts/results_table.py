"""Print the README's summary table from an experiment's results.json (so the README never drifts from it).

    .venv/bin/python scripts/results_table.py results/thesis/results.json
    .venv/bin/python scripts/results_table.py results/cross-dataset/default/results.json --cross
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

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
