"""What ``picaffect select`` writes: the chosen pictures, each set's summary, the tests, a figure.

    OUT/sets.csv         set, picture, valence, arousal, the constrained columns, then the pool's other columns
    OUT/summary.csv      per set and numeric column (valence, arousal, every constrained one): n, mean, SD, min, max
    OUT/statistics.json  the request, every constraint, per pair of sets Welch t, df, p, TOST for matched columns,
                         the SDs' comparison where they are matched, counts per set of each categorical column,
                         warnings, the methods paragraph
    OUT/report.md        the same as tables, the constraints, warnings, and a methods paragraph ready to adapt
    OUT/sets.png         the sets on the valence-arousal plane over the pool, a panel per matched feature and
                         per balanced column

The five files are one unit: they are written into a temporary folder beside OUT, which
then takes OUT's place (two renames, interrupts held back between them), so an
interrupted run leaves OUT as it was and never some of the files. An OUT that is not
empty is refused unless ``overwrite`` is given (as ``build`` refuses one), and even then
when it holds files a selection does not write: a user's own files are never replaced.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..core.atomic import file_in_the_way, folder_problem, staged_folder
from ..core.errors import UsageError
from ..core.jsonsafe import jsonable
from .choose import Result
from .request import DIMENSIONS, Request

FILES = ("sets.csv", "summary.csv", "statistics.json", "report.md", "sets.png")


def check_out(out: str | Path, overwrite: bool = False) -> Path:
    """``out`` as a folder the five files may go to, checked before any work: nothing in the way, its parent
    writable, and empty (or, with ``overwrite``, holding only a previous selection's files)."""
    out = Path(out)
    blocker = file_in_the_way(out)
    if blocker is not None:
        raise UsageError(f"--out {out}: {blocker} is a file, not a folder")
    problem = folder_problem(out.absolute().parent, must_exist=False)
    if problem is not None:
        raise UsageError(f"--out {out}: {problem}")
    if out.is_dir():
        held = sorted(p.name for p in out.iterdir())
        shown = ", ".join(held[:5]) + (", ..." if len(held) > 5 else "")
        if held and not overwrite:
            raise UsageError(f"--out {out} is not empty (it holds {shown}): give --overwrite to replace a previous "
                             f"selection there, or choose a new folder")
        foreign = [name for name in held if name not in FILES]
        if foreign:
            raise UsageError(f"--out {out} holds files a selection does not write ({', '.join(foreign[:5])}); "
                             f"--overwrite replaces only a previous selection: choose a new folder")
    return out


def sets_table(result: Result) -> pd.DataFrame:
    frames = [result.set_rows(k).assign(set=k + 1) for k in range(result.request.sets)]
    table = pd.concat(frames, ignore_index=True)
    first = list(dict.fromkeys(["set", "picture", *result.columns, *result.request.balance]))
    return table[first + [c for c in table.columns if c not in first]]


def summary_table(result: Result) -> pd.DataFrame:
    rows = []
    for s in result.statistics["sets"]:
        for dim in result.columns:
            rows.append({"set": s["set"], "dimension": dim, **s[dim]})
    return pd.DataFrame(rows)


def _p(p: float) -> str:
    return "< .001" if p < 0.001 else f"= {p:.3f}".replace("0.", ".", 1)


def _unit(column: str) -> str:
    return " points" if column in DIMENSIONS else ""


def constraints(request: Request, pool_notes: list[str] = ()) -> list[str]:
    """Every constraint of the request in words, as the methods paragraph and the report name them."""
    r = request
    out = []
    if r.differ is not None:
        dim, delta = r.differ
        out.append(f"each set's mean {dim} at least {delta:g}{_unit(dim)} above the previous set's")
    for dim, bound in r.match:
        text = (f"{dim} equivalent between every pair of sets within ±{bound:g}{_unit(dim)} (two one-sided Welch "
                f"tests, TOST, alpha = {r.alpha:g})")
        if dim in r.match_sd:
            text += (", with the sets' SDs matched as well (each set's spread about the common centre within a "
                     "quarter of the bound of a common value, drawn towards the pool's SD or the widest at which the "
                     "TOST can pass, the smaller)")
        out.append(text)
    for column in r.balance:
        out.append(f"the same number of pictures of each {column} in every set (within one)")
    out += [str(range_) for range_ in r.ranges]
    if r.max_width is not None:
        out.append(f"pictures whose prediction intervals are wider than {r.max_width:g} points on average left out")
    if r.prefer_sure:
        out.append(f"pictures with narrow prediction intervals preferred (weight {r.prefer_sure:g})")
    out += [n for n in pool_notes if n.startswith("excluded ")]
    return out


def _welch_text(d: dict) -> str:
    if d["welch_t"] is None:
        return f"Welch t undefined (no spread in either set; means differ by {d['difference']:+.2f}), p {_p(d['p'])}"
    return f"Welch t({d['df']:.1f}) = {d['welch_t']:.2f}, p {_p(d['p'])}"


def _solver(result: Result) -> str:
    return "a sorted selection" if result.selection.solver.startswith("greedy") else "mixed-integer optimisation"


def methods_text(result: Result) -> str:
    """One paragraph in the form methods sections use, from the figures computed."""
    r, stats = result.request, result.statistics
    lines = [f"From a pool of {len(result.pool.table)} pictures ({result.pool.origin}), {r.sets} sets of {r.size} "
             f"pictures were selected with picaffect select ({_solver(result)})."]
    named = constraints(r, result.pool.notes)
    if named:
        lines.append("Constraints: " + "; ".join(named) + ".")
    for s in stats["sets"]:
        lines.append(f"Set {s['set']}: " + ", ".join(f"{dim} M = {s[dim]['mean']:.2f} (SD = {s[dim]['sd']:.2f})"
                                                     for dim in result.columns) + ".")
    for column, c in stats.get("counts", {}).items():
        per_set = "; ".join(f"set {k + 1} " + ", ".join(f"{n} {level}" for level, n in zip(c["levels"], row) if n)
                            for k, row in enumerate(c["per_set"]))
        lines.append(f"Pictures per {column}: {per_set}.")
    for pair in stats["pairs"]:
        a, b = pair["sets"]
        for dim in result.columns:
            d = pair[dim]
            text = f"Sets {a} and {b}, {dim}: {_welch_text(d)}"
            if "tost" in d:
                t = d["tost"]
                text += (f"; equivalent within ±{t['bound']:g} (TOST, alpha = {r.alpha:g}: p {_p(t['p'])}, "
                         f"difference {t['difference']:+.2f})")
            if "spread" in d:
                text += f"; SDs differ by {d['spread']['sd_difference']:+.2f} (Brown-Forsythe p " \
                        f"{_p(d['spread']['brown_forsythe_p'])})"
            lines.append(text + ".")
    lines += [_all_pairs(dim, w, r.sets) for dim, w in stats.get("worst_tost", {}).items()]
    return " ".join(lines)


def _all_pairs(dim: str, w: dict, sets: int) -> str:
    a, b = w["sets"]
    return (f"Over all {sets * (sets - 1) // 2} pairs of sets, {dim}: the least equivalent pair (sets {a} and {b}, "
            f"difference {w['difference']:+.2f}) has TOST p {_p(w['p'])} within ±{w['bound']:g}.")


def _f(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(result: Result) -> str:
    from ..evaluation.markdown import markdown_table

    r = result.request
    out = ["# Selected sets\n", methods_text(result) + "\n"]
    named = constraints(r, result.pool.notes)
    if named:
        out.append("## Constraints\n")
        out.append("\n".join(f"- {c}" for c in named) + "\n")
    if result.warnings:
        out.append("## Warnings\n")
        out.append("\n".join(f"- {w}" for w in result.warnings) + "\n")
    out.append("## Sets\n")
    rows = []
    for dim in result.columns:
        p = result.statistics["pool"][dim]
        rows.append(["pool", dim, str(p["n"]), _f(p["mean"]), _f(p["sd"]), _f(p["min"]), _f(p["max"])])
        rows += [[str(s["set"]), dim, str(s[dim]["n"]), _f(s[dim]["mean"]), _f(s[dim]["sd"]), _f(s[dim]["min"]),
                  _f(s[dim]["max"])] for s in result.statistics["sets"]]
    out.append(markdown_table(["set", "column", "n", "mean", "SD", "min", "max"], rows))
    for column, c in result.statistics.get("counts", {}).items():
        balanced = " (balanced)" if column in r.balance else ""
        out.append(f"\n## Pictures per {column}{balanced}\n")
        rows = [[f"set {k + 1}", *map(str, row)] for k, row in enumerate(c["per_set"])]
        out.append(markdown_table(["set", *c["levels"]], rows))
        if c["chi2"] is not None:
            out.append(f"chi-squared test of independence of {column} and set: chi2({c['chi2']['df']}) = "
                       f"{c['chi2']['statistic']:.2f}, p {_p(c['chi2']['p'])}\n")
    out.append("\n## Tests between sets\n")
    rows = []
    for pair in result.statistics["pairs"]:
        for dim in result.columns:
            d = pair[dim]
            t, spread = d.get("tost"), d.get("spread")
            rows.append([f"{pair['sets'][0]} vs {pair['sets'][1]}", dim, f"{d['difference']:+.3f}",
                         _f(d["welch_t"]), f"{d['df']:.1f}", f"{d['p']:.3g}",
                         f"±{t['bound']:g}: p {t['p']:.3g}" if t else "–",
                         f"±{t['equivalent_from']:.3f}" if t else "–",
                         f"{spread['sd_difference']:+.3f} (p {spread['brown_forsythe_p']:.3g})" if spread else "–"])
    out.append(markdown_table(["sets", "column", "difference (2nd - 1st)", "Welch t", "df", "p", "TOST",
                               "equivalent from", "SD difference (Brown-Forsythe)"], rows))
    if "worst_tost" in result.statistics:
        out.append("The table lists consecutive sets. " + " ".join(
            _all_pairs(dim, w, r.sets) for dim, w in result.statistics["worst_tost"].items()) + "\n")
    notes = [n for n in result.notes if n not in result.warnings] + \
        [f"chosen by {result.selection.solver}; {result.seconds:.1f} s"]
    out.append("\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    return "\n".join(out)


def payload(result: Result) -> dict:
    """statistics.json's content: strict JSON (a t that does not exist is null)."""
    statistics = {k: v for k, v in result.statistics.items() if k != "pool"}
    return jsonable({"request": asdict(result.request), "constraints": constraints(result.request, result.pool.notes),
                     "pool": {"rows": len(result.pool.table), "origin": result.pool.origin,
                              "columns": result.statistics["pool"]},
                     "centre": result.selection.centre, "seconds": round(result.seconds, 2),
                     "solver": result.selection.solver, **statistics, "warnings": result.warnings,
                     "notes": result.notes, "methods": methods_text(result)})


def write_result(result: Result, out: str | Path, overwrite: bool = False) -> list[Path]:
    """Write the five files as one unit into ``out``; returns their paths."""
    from .figure import selection_figure

    out = check_out(out, overwrite).absolute()
    with staged_folder(out, "selecting") as temp:
        sets_table(result).to_csv(temp / "sets.csv", index=False, float_format="%.4f")
        summary_table(result).to_csv(temp / "summary.csv", index=False, float_format="%.4f")
        (temp / "statistics.json").write_text(json.dumps(payload(result), indent=1, allow_nan=False) + "\n")
        (temp / "report.md").write_text(markdown(result))
        selection_figure(result, temp / "sets.png")
        for name in FILES:
            with open(temp / name, "rb") as f:
                os.fsync(f.fileno())
    return [out / name for name in FILES]
