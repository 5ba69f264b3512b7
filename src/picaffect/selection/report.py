"""What ``picaffect select`` writes: the chosen pictures, each set's summary, the tests, a figure.

    OUT/sets.csv         set, picture, valence, arousal (and interval widths, source where known)
    OUT/summary.csv      per set and dimension: n, mean, SD, min, max
    OUT/statistics.json  per pair of sets: Welch t, df, p, and TOST for matched dimensions; the request
    OUT/report.md        the same as tables and a methods-section sentence, ready to adapt
    OUT/sets.png         the sets on the valence-arousal plane over the pool

Every file is written whole or not at all (``core/atomic.py``).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..core.atomic import file_in_the_way, write_bytes_atomically
from ..core.errors import UsageError
from .choose import Result
from .request import DIMENSIONS

FILES = ("sets.csv", "summary.csv", "statistics.json", "report.md", "sets.png")


def check_out(out: str | Path) -> Path:
    """``out`` as a folder that can be written (created if missing), checked before any work."""
    out = Path(out)
    blocker = file_in_the_way(out)
    if blocker is not None:
        raise UsageError(f"--out {out}: {blocker} is a file, not a folder")
    return out


def sets_table(result: Result) -> pd.DataFrame:
    frames = [result.set_rows(k).assign(set=k + 1) for k in range(result.request.sets)]
    table = pd.concat(frames, ignore_index=True)
    first = ["set", "picture", "valence", "arousal"]
    return table[first + [c for c in table.columns if c not in first]]


def summary_table(result: Result) -> pd.DataFrame:
    rows = []
    for s in result.statistics["sets"]:
        for dim in DIMENSIONS:
            rows.append({"set": s["set"], "dimension": dim, **s[dim]})
    return pd.DataFrame(rows)


def _p(p: float) -> str:
    return "< .001" if p < 0.001 else f"= {p:.3f}".replace("0.", ".", 1)


def methods_text(result: Result) -> str:
    """One paragraph in the form methods sections use, from the figures computed."""
    r, stats = result.request, result.statistics
    lines = [f"From a pool of {len(result.pool.table)} pictures ({result.pool.origin}), {r.sets} sets of {r.size} "
             f"pictures were selected with picaffect select (mixed-integer optimisation)."]
    for s in stats["sets"]:
        lines.append(f"Set {s['set']}: valence M = {s['valence']['mean']:.2f} (SD = {s['valence']['sd']:.2f}), "
                     f"arousal M = {s['arousal']['mean']:.2f} (SD = {s['arousal']['sd']:.2f}).")
    for pair in stats["pairs"]:
        a, b = pair["sets"]
        for dim in DIMENSIONS:
            d = pair[dim]
            text = f"Sets {a} and {b}, {dim}: Welch t({d['df']:.1f}) = {d['welch_t']:.2f}, p {_p(d['p'])}"
            if "tost" in d:
                t = d["tost"]
                text += (f"; equivalent within ±{t['bound']:g} (TOST, alpha = {r.alpha:g}: p {_p(t['p'])}, "
                         f"difference {t['difference']:+.2f})")
            lines.append(text + ".")
    return " ".join(lines)


def markdown(result: Result) -> str:
    from ..evaluation.markdown import markdown_table

    out = ["# Selected sets\n", methods_text(result) + "\n", "## Sets\n"]
    rows = [[str(s["set"]), dim, str(s[dim]["n"]), f"{s[dim]['mean']:.2f}", f"{s[dim]['sd']:.2f}",
             f"{s[dim]['min']:.2f}", f"{s[dim]['max']:.2f}"] for s in result.statistics["sets"] for dim in DIMENSIONS]
    out.append(markdown_table(["set", "dimension", "n", "mean", "SD", "min", "max"], rows))
    out.append("\n## Tests between sets\n")
    rows = []
    for pair in result.statistics["pairs"]:
        for dim in DIMENSIONS:
            d = pair[dim]
            t = d.get("tost")
            rows.append([f"{pair['sets'][0]} vs {pair['sets'][1]}", dim, f"{d['difference']:+.3f}",
                         f"{d['welch_t']:.2f}", f"{d['df']:.1f}", f"{d['p']:.3g}",
                         f"±{t['bound']:g}: p {t['p']:.3g}" if t else "–",
                         f"±{t['equivalent_from']:.3f}" if t else "–"])
    out.append(markdown_table(["sets", "dimension", "difference (2nd - 1st)", "Welch t", "df", "p",
                               "TOST", "equivalent from"], rows))
    notes = result.notes + [f"solver: {result.selection.solver}; {result.seconds:.1f} s"]
    out.append("\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    return "\n".join(out)


def write_result(result: Result, out: str | Path) -> list[Path]:
    """Write the five files into ``out`` (created if missing); returns their paths."""
    from ..core.plots import selected_sets

    out = check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in (("sets.csv", sets_table(result)), ("summary.csv", summary_table(result))):
        written.append(write_bytes_atomically(out / name, table.to_csv(index=False, float_format="%.4f").encode()))
    payload = {"request": asdict(result.request), "pool": {"rows": len(result.pool.table), "origin": result.pool.origin},
               "centre": result.selection.centre, "seconds": round(result.seconds, 2),
               "solver": result.selection.solver, **result.statistics, "methods": methods_text(result)}
    written.append(write_bytes_atomically(out / "statistics.json",
                                          (json.dumps(payload, indent=1, allow_nan=False) + "\n").encode()))
    written.append(write_bytes_atomically(out / "report.md", markdown(result).encode()))
    values = result.pool.table[["valence", "arousal"]].to_numpy(float)
    written.append(selected_sets(values, [values[m] for m in result.selection.members], out / "sets.png",
                                 title=f"{result.request.sets} sets of {result.request.size}"))
    return written


