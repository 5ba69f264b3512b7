"""``picaffect retrain CONFIG``: a whole model from rated sets to shipped weights, in one command.

The configuration (``configs/default.yaml`` for the shipped default) names the
sets, the build, the training stages in order (a stage may start from an earlier
one with ``init``), and where the exported weights go. Every step resumes: a
built dataset is reused and a finished stage is not trained again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ..data.build import SourceSpec, build
from ..errors import ConfigError, PicaffectError
from ..evaluation.evaluate import evaluate
from ..inference.checkpoint import export
from ..training.engine import TrainConfig, check_picture_size, train

STAGE_KEYS = {f.name for f in fields(TrainConfig)} - {"data", "out", "device"}


@dataclass(frozen=True)
class BuildSettings:
    sources: list[str]
    size: int
    split: str
    seed: int = 0


@dataclass(frozen=True)
class RetrainConfig:
    """A retrain configuration file; ``load`` names every unknown, missing or ill-typed key."""
    data: str
    out: str
    build: BuildSettings
    stages: list[dict[str, Any]]
    export: str

    @classmethod
    def load(cls, path: str | Path) -> "RetrainConfig":
        path = Path(path)
        raw = read_yaml_mapping(path)
        _check_keys(path, "the file", raw, {f.name for f in fields(cls)}, {f.name for f in fields(cls)})
        build_keys = {f.name for f in fields(BuildSettings)}
        _check_keys(path, "build", raw["build"], build_keys, build_keys - {"seed"})
        return cls(data=str(raw["data"]), out=str(raw["out"]), build=BuildSettings(**raw["build"]),
                   stages=check_stages(path, raw["stages"]), export=str(raw["export"]))


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping; ``ConfigError`` says why not."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    return raw


def check_stages(path: str | Path, stages: Any) -> list[dict[str, Any]]:
    """Training stages in order: known keys only, a name and a model each, ``init`` naming an earlier one."""
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{path}: stages must be a non-empty list")
    names: list[str] = []
    for stage in stages:
        _check_keys(Path(path), f"stage {stage.get('name', '?') if isinstance(stage, dict) else stage!r}", stage,
                    STAGE_KEYS | {"name"}, {"name", "model"})
        if stage.get("init") is not None and stage["init"] not in names:
            raise ConfigError(f"{path}: stage {stage['name']!r} starts from {stage['init']!r}, which is not an "
                              f"earlier stage ({', '.join(names) or 'none'})")
        names.append(stage["name"])
    return [dict(s) for s in stages]


def _check_keys(path: Path, where: str, value: Any, allowed: set[str], required: set[str]) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a mapping")
    unknown, missing = sorted(set(value) - allowed), sorted(required - set(value))
    if unknown:
        raise ConfigError(f"{path}: {where} has unknown keys {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")
    if missing:
        raise ConfigError(f"{path}: {where} lacks {', '.join(missing)}")


def retrain(config_path: str | Path, device: str = "auto", force: bool = False) -> dict:
    """Build, train the stages, evaluate on the validation rows, and export.

    The export replaces an existing file only when the new model is better on the
    validation rows (lower pooled RMSE) than the file it would replace, scored on
    the same rows in the same run, or with ``force``; otherwise the new weights go
    beside it (``<out>/candidate.pt``) and the summary says why.
    """
    config = RetrainConfig.load(config_path)
    for stage in config.stages:  # before the build and the first stage: every stage's pictures are big enough
        try:
            check_picture_size(stage["model"], stage.get("size") or config.build.size, stage.get("model_options"))
        except PicaffectError as e:
            raise ConfigError(f"{config_path}: stage {stage['name']!r}: {e}") from None
    out = Path(config.out)
    data = out / "data"
    if not (data / "report.json").is_file():
        specs = [SourceSpec(name, Path(config.data) / name, name) for name in config.build.sources]
        build(data, specs, size=config.build.size, split=config.build.split, seed=config.build.seed, plots=True)
    runs: dict[str, Path] = {}
    for stage in config.stages:
        stage = dict(stage)
        name = stage.pop("name")
        if stage.get("init") in runs:
            stage["init"] = str(runs[stage["init"]])
        run = runs[name] = out / name
        if not (run / "summary.json").is_file():
            try:
                train_config = TrainConfig(data=str(data), out=str(run), device=device, **stage)
            except PicaffectError as e:
                raise ConfigError(f"{config_path}: stage {name!r}: {e}") from None
            train(train_config, resume=(run / "last.pt").is_file())
    final = runs[config.stages[-1]["name"]]
    metrics = evaluate(final, data, split="validation", by_source=True, out=out / "evaluation", device=device)
    reference = evaluate(runs[config.stages[0]["name"]], data, split="validation", by_source=True,
                         out=out / "evaluation-first-stage", device=device)
    summary = {"final": metrics, "first_stage": reference}
    target = Path(config.export)
    if target.is_file() and not force:
        current = evaluate(target, data, split="validation", by_source=True, out=out / "evaluation-current",
                           device=device)
        summary["current"] = current
        new_rmse = metrics["splits"]["validation"]["overall"]["rmse"]
        old_rmse = current["splits"]["validation"]["overall"]["rmse"]
        if not new_rmse < old_rmse:
            summary["exported"] = str(out / "candidate.pt")
            summary["kept"] = (f"{target} kept: the new model's validation RMSE {new_rmse:.3f} is not below the "
                               f"current one's {old_rmse:.3f} (use --force to replace it anyway)")
            target = out / "candidate.pt"
    summary.setdefault("exported", str(target))
    (out / "retrain.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    export(final / "best.pt", target,
           metadata={"config": yaml.safe_load(Path(config_path).read_text()), "trained_from": str(final),
                     "made_by": f"picaffect retrain {config_path}"})
    return summary
