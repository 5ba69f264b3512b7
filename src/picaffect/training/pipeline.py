"""``picaffect retrain CONFIG``: a whole model from rated sets to shipped weights, in one command.

The configuration (``configs/default.yaml`` for the shipped default) names the
sets, the build, the training stages in order (a stage may start from an earlier
one with ``init``), and where the exported weights go. Every step resumes: a
built dataset is reused and a finished stage is not trained again.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..data.build import SourceSpec, build
from ..evaluation.evaluate import evaluate
from .engine import TrainConfig, export, train

STAGE_KEYS = set(TrainConfig.__dataclass_fields__) - {"data", "out"}


def retrain(config_path: str | Path, device: str = "auto") -> dict:
    config = yaml.safe_load(Path(config_path).read_text())
    out = Path(config["out"])
    data = out / "data"
    if not (data / "report.json").is_file():
        b = config["build"]
        specs = [SourceSpec(name, Path(config["data"]) / name, name) for name in b["sources"]]
        build(data, specs, size=b["size"], split=b["split"], seed=b["seed"], plots=True)
    runs: dict[str, Path] = {}
    for stage in config["stages"]:
        stage = dict(stage)
        name = stage.pop("name")
        unknown = set(stage) - STAGE_KEYS
        if unknown:
            raise ValueError(f"{config_path}: stage {name!r} has unknown keys {', '.join(sorted(unknown))}")
        if stage.get("init") in runs:
            stage["init"] = str(runs[stage["init"]])
        run = runs[name] = out / name
        if not (run / "summary.json").is_file():
            train(TrainConfig(data=str(data), out=str(run), device=device, **stage), resume=(run / "last.pt").is_file())
    final = runs[config["stages"][-1]["name"]]
    metrics = evaluate(final, data, split="validation", by_source=True, out=out / "evaluation", device=device)
    reference = evaluate(runs[config["stages"][0]["name"]], data, split="validation", by_source=True,
                         out=out / "evaluation-first-stage", device=device)
    summary = {"final": metrics, "first_stage": reference}
    (out / "retrain.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    export(final, config["export"], metadata={"config": config, "trained_from": str(final)})
    return summary
