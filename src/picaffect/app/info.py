"""``picaffect info MODEL``: where a model file came from and the figures it carries, for people or (``--json``)
for programs. The metadata is read by ``inference.provenance``; this module only lays it out."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.jsonsafe import jsonable
from ..inference.provenance import KEYS, missing, read_provenance


def model_info(ref: str | Path) -> dict[str, Any]:
    """The model file's metadata with ``file`` and ``missing`` (the keys it lacks); ``KEYS`` first, each present
    (None where the file lacks it)."""
    metadata = read_provenance(ref)
    ordered = {k: metadata.get(k) for k in KEYS}
    rest = {k: v for k, v in metadata.items() if k not in ordered}
    return jsonable({**ordered, **rest, "missing": missing(metadata)})


def as_json(info: dict[str, Any]) -> str:
    return json.dumps(info, indent=2, allow_nan=False) + "\n"


def as_text(info: dict[str, Any]) -> str:
    """The metadata for people: who made the file, the evaluation tables, the calibration, the config."""
    import yaml

    from ..evaluation.markdown import fmt, markdown_table
    from ..evaluation.record import evaluation_markdown

    lines = [f"model file: {info['file']}",
             f"version {info.get('version') or '?'}, commit {info.get('commit') or '?'}",
             f"dataset manifest SHA-256: {info.get('dataset_sha256') or '?'}"]
    for key in ("made_by", "made_at"):
        if info.get(key):
            lines.append(f"{key.replace('_', ' ')}: {info[key]}")
    if isinstance(info.get("calibrated_by"), dict):
        c = info["calibrated_by"]
        lines.append(f"calibrated by: {c.get('command')} (picaffect {c.get('version')}, commit {c.get('commit')}, "
                     f"{c.get('made_at')})")
    out = "\n".join(lines) + "\n\n"
    if info.get("evaluation"):
        out += evaluation_markdown(info["evaluation"]) + "\n"
    calibration = info.get("calibration")
    if calibration:
        sources = ", ".join(f"{s} {n}" for s, n in (calibration.get("sources") or {}).items())
        widths = "adaptive widths (a picture's difficulty times these)" if calibration.get("adaptive") \
            else "constant widths"
        out += (f"Calibration: scheme {calibration.get('scheme')}, {widths}, protocol {calibration.get('protocol')}, "
                f"{calibration.get('rows')} rows ({sources})\n\n")
        rows = [[f"{float(level):.0%}", fmt(w["valence"]), fmt(w["arousal"])]
                for level, w in (calibration.get("half_widths") or {}).items()]
        out += markdown_table(["interval level", "valence ±", "arousal ±"], rows) + "\n"
    pilot = info.get("pilot")
    if isinstance(pilot, dict):  # calibrate --pilot: the user's own rated pictures
        out += f"Pilot calibration: {pilot.get('pictures')} pictures of {pilot.get('file')}\n\n"
        rows = [[d, str((b.get("adjustment"))), fmt((b.get("after") or {}).get("r")),
                 fmt((b.get("after") or {}).get("rmse")), str(b.get("method"))]
                for d, b in (pilot.get("dimensions") or {}).items()]
        out += markdown_table(["dimension", "adjustment", "pilot r (leave-one-out)", "pilot RMSE", "intervals"],
                              rows) + "\n"
        out += f"{pilot.get('guarantee')}\n\n"
    if info.get("config"):
        out += "Config:\n\n" + yaml.safe_dump(info["config"], sort_keys=False) + "\n"
    if info["missing"]:
        out += (f"This file lacks {', '.join(info['missing'])}: it was made before picaffect recorded them, or not "
                f"by `picaffect retrain` and `picaffect calibrate`.\n")
    return out
