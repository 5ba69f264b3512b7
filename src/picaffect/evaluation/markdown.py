"""Markdown tables in the form of the thesis's chapter 8, with its published figures."""
from __future__ import annotations

import math

from .reliability import r_with_ceiling

# Table 8.1: model -> split -> (RMSE, CC, SAGR), overall (both dimensions pooled).
THESIS_8_1 = {
    "emosepar": {"train": (1.65, 0.86, 0.61), "test": (1.63, 0.83, 0.62), "validation": (1.66, 0.84, 0.61)},
    "vgg16": {"train": (1.75, 0.90, 0.58), "test": (1.75, 0.91, 0.56), "validation": (1.78, 0.92, 0.57)},
    "inception_v3": {"train": (1.72, 0.91, 0.58), "test": (1.76, 0.93, 0.58), "validation": (1.80, 0.95, 0.56)},
    "xception": {"train": (1.64, 0.84, 0.62), "test": (1.67, 0.87, 0.60), "validation": (1.68, 0.87, 0.59)},
}
# Table 8.2: Emosepar with and without augmentation, train and validation.
THESIS_8_2 = {
    "emosepar": {"train": (1.65, 0.86, 0.61), "validation": (1.66, 0.84, 0.61)},
    "emosepar + augmentation": {"train": (1.63, 0.83, 0.62), "validation": (1.69, 0.84, 0.60)},
}
# Table 8.3: Emosepar per dimension.
THESIS_8_3 = {
    "valence": {"train": (1.69, 0.81, 0.65), "test": (1.69, 0.83, 0.67), "validation": (1.72, 0.82, 0.65)},
    "arousal": {"train": (1.55, 0.83, 0.67), "test": (1.51, 0.88, 0.61), "validation": (1.55, 0.89, 0.60)},
}


def fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def triple(block: dict) -> tuple[str, str, str]:
    return fmt(block["rmse"]), fmt(block["pcc"]), fmt(block["sagr"])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def metrics_markdown(result: dict) -> str:
    """``report.md`` of one evaluation: overall (8.1 form), per dimension (8.3 form), by source."""
    splits = result["splits"]
    out = [f"# Evaluation of `{result['model']}`\n", f"Dataset: `{result['dataset']}`. Values on 1..9; "
           "CC is Pearson r; CCC Lin's concordance; slope the calibration slope (ratings regressed on predictions: "
           "1 is calibrated, below 1 the predictions spread too wide); SAGR counts sign agreement about 5. "
           "Baselines: the RMSE of predicting the training "
           "mean, and the SAGR of predicting the commoner training sign. Brackets: bootstrap 95 % intervals.\n",
           "## Overall (both dimensions pooled, as table 8.1)\n"]
    rows = []
    for name, s in splits.items():
        o = s["overall"]
        rows.append([name, str(s["n"]), *_with_ci(o), fmt(o.get("ccc")), fmt(o.get("mae")),
                     fmt(o.get("rmse_mean_baseline")), fmt(o.get("sagr_majority"))])
    out.append(markdown_table(["split", "n", "RMSE", "CC", "SAGR", "CCC", "MAE", "RMSE of mean", "SAGR of majority"], rows))
    out.append("\n## Per dimension (as table 8.3)\n")
    rows = []
    for dim in ("valence", "arousal"):
        for name, s in splits.items():
            d = s[dim]
            rows.append([dim, name, *_with_ci(d), fmt(d.get("ccc")), _cell(d, "slope"), fmt(d.get("rmse_mean_baseline")),
                         fmt(d.get("sagr_majority"))])
    out.append(markdown_table(["dimension", "split", "RMSE", "CC", "SAGR", "CCC", "slope", "RMSE of mean", "SAGR of majority"],
                     rows))
    if result.get("by_source"):
        out.append("\n## By source\n")
        out.append("r (≤ c): c is the noise ceiling of r, sqrt of the reliability of the source's mean ratings "
                   "(1 - mean(SD²/N) / var(means)), where the source publishes SD and N.\n")
        rows = []
        for source, s in result["by_source"].items():
            v, a = s["valence"], s["arousal"]
            ceil = s.get("noise_ceiling", {})
            rows.append([source, str(s["n"]), *triple(s["overall"]), r_with_ceiling(v["pcc"], ceil.get("valence")),
                         r_with_ceiling(a["pcc"], ceil.get("arousal")), fmt(v.get("ccc")), fmt(a.get("ccc")),
                         fmt(v.get("slope")), fmt(a.get("slope")), fmt(v.get("rmse")), fmt(a.get("rmse")),
                         fmt(s["overall"].get("rmse_mean_baseline"))])
        out.append(markdown_table(["source", "n", "RMSE", "CC", "SAGR", "valence r (≤ c)", "arousal r (≤ c)", "valence CCC",
                          "arousal CCC", "valence slope", "arousal slope", "valence RMSE", "arousal RMSE",
                          "RMSE of mean"], rows))
    if result.get("intervals"):
        out.append(intervals_markdown(result["intervals"]))
    return "\n".join(out)


def _cell(block: dict, key: str) -> str:
    """A figure with its bootstrap interval when there is one."""
    cell = fmt(block.get(key))
    ci = block.get("ci95", {}).get(key)
    if ci and None not in ci and not any(math.isnan(v) for v in ci):
        cell += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return cell


def _with_ci(block: dict) -> list[str]:
    ci = block.get("ci95", {})
    cells = []
    for key in ("rmse", "pcc", "sagr"):
        cell = fmt(block[key])
        if key in ci and None not in ci[key] and not any(math.isnan(v) for v in ci[key]):
            cell += f" [{fmt(ci[key][0])}, {fmt(ci[key][1])}]"
        cells.append(cell)
    return cells


def intervals_markdown(intervals: dict) -> str:
    """The prediction intervals' coverage and widths, per split, per source and pooled."""
    level = intervals["level"]
    note = intervals.get("calibration") or {}
    out = [f"\n## Prediction intervals ({level:.0%})\n",
           f"Calibration: protocol `{note.get('protocol')}`, {note.get('rows')} held-out rows "
           f"({', '.join(f'{k} {v}' for k, v in (note.get('sources') or {}).items())}), "
           f"{'adaptive widths (error head)' if note.get('adaptive') else 'constant width'}, scheme "
           f"`{note.get('scheme')}`. *coverage*: the share of "
           f"ratings inside their interval; *constant*: the mean width of prediction ± c with c chosen on these rows "
           f"to reach the same coverage (an oracle); *ratio* below 1: the adaptive intervals are narrower on average. "
           f"Rows whose source the calibration saw are not a test of coverage on new pictures: "
           f"`picaffect calibrate` reports coverage on each held-out source.\n"]
    if note.get("promise"):  # a pilot calibration: what it promised, for rows drawn like its pilot
        out.append(f"The file's promise (its pilot, {note.get('pilot')}): {note['promise']} *95 % CI*: Wilson "
                   f"interval of the coverage on these rows; *vs level*: below where the whole interval lies under "
                   f"{level:.0%} (the promise is broken on rows drawn like the pilot), consistent where it holds "
                   f"{level:.0%}. Pilot pictures among the rows are not a fair test: leave them out.\n")
    rows = []
    blocks = [(f"split {k}", v) for k, v in intervals.get("splits", {}).items()]
    blocks += [(f"source {k}", v) for k, v in intervals.get("by_source", {}).items()]
    if "pooled" in intervals:
        blocks.append(("pooled", intervals["pooled"]))
    checked = any("versus_level" in block.get(dim, {}) for _, block in blocks for dim in ("valence", "arousal"))
    for name, block in blocks:
        for dim in ("valence", "arousal"):
            d = block[dim]
            rows.append([name, str(block["n"]), dim, fmt(d["coverage"]), fmt(d["mean_width"]),
                         fmt(d["constant_width_same_coverage"]), fmt(d.get("width_vs_constant"))]
                        + ([f"{fmt(d['coverage_ci95'][0])}-{fmt(d['coverage_ci95'][1])}" if "coverage_ci95" in d
                            else "", d.get("versus_level", "")] if checked else []))
    out.append(markdown_table(["rows", "n", "dimension", "coverage", "mean width", "constant, same coverage",
                               "ratio"] + (["95 % CI", "vs level"] if checked else []), rows))
    return "\n".join(out)
