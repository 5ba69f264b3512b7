"""Training stages in order, one run folder each: the one place that chains them.

A stage is a mapping of its ``name`` (its run folder under ``out``) and any
``TrainConfig`` fields; what it does not say comes from a ``base`` configuration.
``init`` naming an earlier stage starts from that stage's weights. A stage whose run
finished is not trained again; one with a ``last.pt`` continues from it, as does one
that stopped on its budget or epoch limit when the new configuration allows more.
So ``picaffect retrain`` and both experiments can be run again, in a later session,
with the same command, and pick up where they stopped.
"""
from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError, PicaffectError, UsageError
from ..training.config import check_value
from ..data.dataset import RatedImages
from ..training.engine import TrainConfig, check_picture_size, train

# The keys a stage of a configuration file may set: the run's place and device come from the command.
STAGE_KEYS = {f.name for f in fields(TrainConfig)} - {"data", "out", "device"}


def run_stages(stages: list[dict[str, Any]], data: str | Path, out: str | Path, base: TrainConfig, *,
               origin: str | Path | None = None) -> dict[str, Path]:
    """Train ``stages`` in order on the dataset ``data``, into ``out/<name>``; returns the run folders by name.

    Every stage is checked before the first one trains. ``origin`` (the configuration
    file the stages come from) leads any message about a bad stage.
    """
    configs = stage_configs(stages, data, out, base, origin=origin)
    side = None
    for config in configs.values():  # every run checked before the first trains
        side = config.size or side or RatedImages(data, "all").image_size
        check_picture_size(config.model, config.size or side, config.model_options)
        check_same_run(config)
    for config in configs.values():
        train_unless_finished(config)
    return {name: Path(config.out) for name, config in configs.items()}


def stage_configs(stages: list[dict[str, Any]], data: str | Path, out: str | Path, base: TrainConfig, *,
                  origin: str | Path | None = None) -> dict[str, TrainConfig]:
    """Each stage's whole configuration: ``base``, then the stage's own keys, ``init`` resolved to a run folder."""
    known = {f.name for f in fields(TrainConfig)} - {"data", "out"}
    configs: dict[str, TrainConfig] = {}
    for stage in stages:
        stage = dict(stage)
        name = str(stage.pop("name"))
        where = f"{origin}: stage {name!r}" if origin else f"stage {name!r}"
        unknown = sorted(set(stage) - known)
        if unknown:
            raise ConfigError(f"{where} has unknown keys {', '.join(unknown)}")
        if stage.get("init") in configs:
            stage["init"] = configs[stage["init"]].out
        try:
            configs[name] = replace(base, data=str(data), out=str(Path(out) / name), **stage)
        except PicaffectError as e:
            raise ConfigError(f"{where}: {e}") from None
    return configs


def check_same_run(config: TrainConfig) -> None:
    """Refuse a stage whose run folder holds a run of another model, recipe, size or dataset. A finished one
    would otherwise be skipped as done and reported as the run asked for: another dataset's figures under
    this one's name."""
    saved_path = Path(config.out) / "config.yaml"
    if not saved_path.is_file():
        return
    difference = config.differs_from(TrainConfig.load(saved_path))
    if difference:
        raise UsageError(f"{config.out} holds a run trained with {difference}; give another --out for this "
                         f"one, or move that run away")


def train_unless_finished(config: TrainConfig) -> None:
    """Train unless the run finished already; continue it if it was interrupted, or if it stopped on its
    budget or epoch limit and ``config`` allows more (a long run can be continued in later sessions)."""
    run = Path(config.out)
    summary_path = run / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if not (_extends(summary, config) and (run / "last.pt").is_file()):
            print(f"{run}: finished earlier, not trained again", flush=True)
            return
        print(f"{run}: stopped on its {summary['stopped']} earlier; continuing with the larger limit", flush=True)
        summary_path.unlink()
    print(f"{run}: training" + (" (resumed)" if (run / "last.pt").is_file() else ""), flush=True)
    train(config, resume=(run / "last.pt").is_file())


def _extends(summary: dict, config: TrainConfig) -> bool:
    """Whether ``config`` gives a run that stopped on its budget or epoch limit more of it to use."""
    if summary.get("stopped") == "budget":
        old = summary.get("budget_minutes")
        return config.budget_minutes is None or (old is not None and config.budget_minutes > old)
    if summary.get("stopped") == "epochs":
        return config.epochs > summary.get("epochs_run", config.epochs)
    return False


# -- stages in a configuration file ---------------------------------------------------------------------------------
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
    """Training stages in order: known keys with possible values only, a name and a model each, ``init``
    naming an earlier one. Checked when the file is read, so a bad last stage stops nothing half-way."""
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{path}: stages must be a non-empty list")
    names: list[str] = []
    for stage in stages:
        check_keys(Path(path), f"stage {stage.get('name', '?') if isinstance(stage, dict) else stage!r}", stage,
                   STAGE_KEYS | {"name"}, {"name", "model"})
        if stage.get("init") is not None and stage["init"] not in names:
            raise ConfigError(f"{path}: stage {stage['name']!r} starts from {stage['init']!r}, which is not an "
                              f"earlier stage ({', '.join(names) or 'none'})")
        for key, value in stage.items():
            if key != "name":
                try:
                    check_value(TrainConfig, key, value)
                except UsageError as e:
                    raise ConfigError(f"{path}: stage {stage['name']!r}: {e}") from None
        names.append(stage["name"])
    return [dict(s) for s in stages]


def stages_from_config(path: str | Path) -> list[dict[str, Any]]:
    """The training stages of a retrain configuration (``configs/default.yaml``, or a file with only
    ``stages``), in order, checked."""
    return check_stages(path, read_yaml_mapping(path).get("stages"))


def check_keys(path: Path, where: str, value: Any, allowed: set[str], required: set[str]) -> None:
    """``ConfigError`` unless ``value`` is a mapping with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a mapping")
    unknown, missing = sorted(set(value) - allowed), sorted(required - set(value))
    if unknown:
        raise ConfigError(f"{path}: {where} has unknown keys {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")
    if missing:
        raise ConfigError(f"{path}: {where} lacks {', '.join(missing)}")
