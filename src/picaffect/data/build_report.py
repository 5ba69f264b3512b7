"""What a build tells its user: counts that reconcile, per-source statistics,
every skipped row with its reason, and the thesis's figures 6.1 and 6.2."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd

from ..core.scale import SAM


def _stats(values: pd.Series) -> dict:
    if values.empty:
        return {"mean": None, "sd": None, "min": None, "max": None}
    return {"mean": round(float(values.mean()), 4), "sd": round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0,
            "min": round(float(values.min()), 4), "max": round(float(values.max()), 4)}


def _text(value: object) -> str | None:
    """A text cell for JSON: pandas reads a missing one back as NaN, which JSON cannot hold."""
    return None if value is None or pd.isna(value) else str(value)


def _reason_kind(status: str) -> str:
    """Collapse a row's reason into a countable kind ("image ...: truncated" -> "truncated")."""
    if status.startswith("image "):
        status = status.split(": ", 1)[-1]
    status = re.sub(r"'[^']*'", "'...'", status)  # "duplicate id '1710'" and "'2040'" are one kind
    return status.split(":")[0].split(" (")[0]


def make_report(manifest: pd.DataFrame, sources, *, size: int, split: str, seed: int) -> dict:
    ok = manifest["status"] == "ok"
    per_source = {}
    for spec in sources:
        rows = manifest[manifest["source"] == spec.name]
        kept = rows[rows["status"] == "ok"]
        skipped = rows[rows["status"] != "ok"]
        per_source[spec.name] = {
            "preset": spec.preset,
            "path": str(spec.path),
            "options": dict(spec.options),
            "scale": f"{rows['scale_min'].iloc[0]:g}..{rows['scale_max'].iloc[0]:g}" if len(rows) else None,
            "read": int(len(rows)),
            "kept": int(len(kept)),
            "skipped": int(len(skipped)),
            "skip_reasons": dict(Counter(_reason_kind(s) for s in skipped["status"])),
            "valence": _stats(kept["valence"]),
            "arousal": _stats(kept["arousal"]),
            "splits": {k: int(v) for k, v in kept["split"].value_counts().items()},
        }
    skipped = manifest[~ok]
    return {
        "size": size,
        "split": split,
        "seed": seed,
        "scale": str(SAM),
        "read": int(len(manifest)),
        "kept": int(ok.sum()),
        "skipped": int((~ok).sum()),
        "splits": {k: int(v) for k, v in manifest.loc[ok, "split"].value_counts().items()},
        "sources": per_source,
        "skipped_rows": [{"source": r.source, "row": r.row, "id": _text(r.id), "path": _text(r.path),
                          "reason": r.status} for r in skipped.itertuples()],
    }


def _describe(d: dict) -> str:
    if d["mean"] is None:
        return "-"
    return f"{d['mean']:.2f}±{d['sd']:.2f} [{d['min']:.2f}, {d['max']:.2f}]"


def format_report(report: dict, max_skipped: int = 20) -> str:
    """The printed summary of a build."""
    lines = [f"{'source':<14}{'read':>7}{'kept':>7}{'skipped':>9}   valence mean±sd [min, max]   arousal mean±sd [min, max]"]
    for name, s in report["sources"].items():
        v, a = s["valence"], s["arousal"]
        lines.append(f"{name:<14}{s['read']:>7}{s['kept']:>7}{s['skipped']:>9}   {_describe(v):<28} {_describe(a)}")
    lines.append(f"{'total':<14}{report['read']:>7}{report['kept']:>7}{report['skipped']:>9}")
    sp = report["splits"]
    lines.append(f"splits ({report['split']}, seed {report['seed']}): train {sp.get('train', 0)}, "
                 f"test {sp.get('test', 0)}, validation {sp.get('validation', 0)}; images {report['size']}x{report['size']}, "
                 f"values on {report['scale']}")
    skipped = report["skipped_rows"]
    if skipped:
        lines.append(f"skipped rows ({len(skipped)}):")
        lines += [f"  {r['source']} {r['row']}: {r['reason']}" for r in skipped[:max_skipped]]
        if len(skipped) > max_skipped:
            lines.append(f"  ... and {len(skipped) - max_skipped} more, all listed in report.json")
    return "\n".join(lines)


def plot_dataset(kept: pd.DataFrame, folder: Path) -> list[Path]:
    """Figure 6.1 (valence-arousal scatter by source) and 6.2 (histograms)."""
    from ..core.plots import rating_histograms, ratings_by_source  # here: matplotlib only when figures are asked for

    valence, arousal = kept["valence"].to_numpy(), kept["arousal"].to_numpy()
    return [ratings_by_source(valence, arousal, kept["source"].to_numpy(), Path(folder) / "valence_arousal.png"),
            rating_histograms(valence, arousal, Path(folder) / "histograms.png")]
