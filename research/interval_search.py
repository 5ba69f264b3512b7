"""Which interval scheme, constant or adaptive, covers a new picture set best: every choice of
``picaffect calibrate`` measured leaving one source out, on one set of features.

Inputs are what ``picaffect calibrate``'s default protocol reads: a group-split dataset of
the three shared sets and the model's own pooled features of every row (no mirror, as
``predict`` computes them):

    D=runs/data/oasis+emotion6+bass-224px-group    # data/rated_sets.py's folder scheme
    picaffect build $D $(python -m picaffect.data.rated_sets sources ../shared/data) --size 224 --split group
    picaffect features default --data $D --out runs/f224-default.npz --split all --no-tta
    python -m research.interval_search --data $D --features runs/f224-default.npz --out results/intervals/search

Protocol (exactly ``calibrate``'s check, ``leave_one_source_out_check``): each source's
held-out predictions come from a ridge readout on the features fitted on the other two
(``refit_head_predictions``); then for each source in turn, the calibration is fitted on
the other two sources' residuals and its 90 % intervals are measured on the held-out
source. The figures to read: coverage on every held-out source (the issue's goal is 0.85-0.95 on each), its spread over the sources, and
the mean width; "ratio" compares the adaptive widths with a constant interval of the same
coverage chosen on the held-out rows themselves (an oracle).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from picaffect.core.atomic import write_bytes_atomically
from picaffect.core.names import INTERVAL_SCHEMES
from picaffect.evaluation.conformal import coverage_block, held_out_calibrations
from picaffect.evaluation.markdown import fmt, markdown_table
from picaffect.inference.intervals import DIMENSIONS
from picaffect.workflows.calibrate import features_from_file, refit_head_predictions

LEVEL = 0.9


def held_out_blocks(y: np.ndarray, yhat: np.ndarray, sources: np.ndarray, features: np.ndarray | None
                    ) -> dict[str, dict[str, dict]]:
    """{scheme: {held-out source: coverage block at LEVEL}}: ``leave_one_source_out_check`` for every scheme
    at once (the error head does not depend on the scheme, so it is fitted once per held-out source)."""
    out: dict = {scheme: {} for scheme in INTERVAL_SCHEMES}
    for name, held, calibration, difficulty in held_out_calibrations(y, yhat, sources, features):
        for scheme in INTERVAL_SCHEMES:
            bounds = replace(calibration, scheme=scheme).bounds(yhat[held], difficulty, LEVEL)
            out[scheme][name] = coverage_block(y[held], yhat[held], bounds)
    return out


def search(data: Path, features: Path) -> dict:
    """Every scheme, constant and adaptive: coverage and width on each held-out source at 90 %."""
    x, rows = features_from_file(features, data)
    y = rows[["valence", "arousal"]].to_numpy(float)
    sources = rows["source"].astype(str).to_numpy()
    start = time.perf_counter()
    yhat = refit_head_predictions(x, y, sources)
    residual = y - yhat
    bias = {s: [float(residual[sources == s, j].mean()) for j in range(2)] for s in dict.fromkeys(sources.tolist())}
    candidates = []
    for adaptive in (False, True):
        blocks = held_out_blocks(y, yhat, sources, x if adaptive else None)
        for scheme in INTERVAL_SCHEMES:
            cells = {s: {d: blocks[scheme][s][d] for d in DIMENSIONS} for s in blocks[scheme]}
            coverages = [c[d]["coverage"] for c in cells.values() for d in DIMENSIONS]
            candidates.append({"scheme": scheme, "adaptive": adaptive, "by_source": cells,
                               "min_coverage": min(coverages), "max_coverage": max(coverages),
                               "mean_abs_gap": float(np.mean([abs(c - LEVEL) for c in coverages])),
                               "mean_width": float(np.mean([c[d]["mean_width"] for c in cells.values()
                                                            for d in DIMENSIONS]))})
    return {"data": str(data), "features": str(features), "rows": int(len(y)), "level": LEVEL,
            "source_bias": bias, "seconds": round(time.perf_counter() - start, 1), "candidates": candidates}


def markdown(result: dict) -> str:
    head = ["scheme", "widths", "held out", "valence coverage", "valence width", "valence ratio",
            "arousal coverage", "arousal width", "arousal ratio"]
    rows = []
    for c in result["candidates"]:
        for source, cell in c["by_source"].items():
            v, a = cell["valence"], cell["arousal"]
            rows.append([c["scheme"], "adaptive" if c["adaptive"] else "constant", source, fmt(v["coverage"]),
                         fmt(v["mean_width"]), fmt(v["width_vs_constant"]), fmt(a["coverage"]), fmt(a["mean_width"]),
                         fmt(a["width_vs_constant"])])
    summary = [[c["scheme"], "adaptive" if c["adaptive"] else "constant", fmt(c["min_coverage"]),
                fmt(c["max_coverage"]), fmt(c["mean_abs_gap"]), fmt(c["mean_width"])] for c in result["candidates"]]
    bias = [[s, fmt(b[0]), fmt(b[1])] for s, b in result["source_bias"].items()]
    return "\n".join([
        f"# Interval schemes, leave one source out ({result['level']:.0%} intervals)\n",
        f"{result['rows']} pictures; features `{result['features']}`, dataset `{result['data']}`; "
        f"{result['seconds']} s. Made by `python -m research.interval_search --data {result['data']} "
        f"--features {result['features']} --out results/intervals/search`.\n",
        "## Summary (the six coverages: three held-out sources, two dimensions)\n",
        markdown_table(["scheme", "widths", "lowest coverage", "highest coverage", "mean |coverage - level|",
                        "mean width"], summary), "",
        "## Each source's mean error when held out (rating - prediction)\n",
        markdown_table(["source", "valence", "arousal"], bias), "",
        "## Every cell\n", markdown_table(head, rows), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    result = search(args.data, args.features)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(args.out.with_suffix(".json"), (json.dumps(result, indent=2) + "\n").encode())
    text = markdown(result)
    write_bytes_atomically(args.out.with_suffix(".md"), text.encode())
    print(text)


if __name__ == "__main__":
    main()
