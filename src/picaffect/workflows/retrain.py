"""``picaffect retrain CONFIG``: a whole model from rated sets to shipped weights, in one command.

The configuration (``configs/default.yaml`` for the shipped default) names the
sets, the build, the training stages in order (a stage may start from an earlier
one with ``init``), and where the exported weights go. Every step resumes: a
built dataset is reused and a finished stage is not trained again.

The dataset is built where every other step looks for the same pictures
(``data/rated_sets.py``: ``runs/data/<sets>-<size>px-<split>``), so that the calibration
and the experiments reuse it; a configuration's ``dataset`` key names another folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from ..data.build import SourceSpec, build
from ..data.rated_sets import dataset_folder
from ..core.errors import ConfigError, PicaffectError
from ..evaluation.evaluate import evaluate
from ..evaluation.record import evaluation_record
from ..inference.checkpoint import export
from ..training.config import TrainConfig
from ..training.engine import check_picture_size
from .stages import check_keys, check_stages, read_yaml_mapping, run_stages
from .provenance import making_metadata, validation_block


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
    dataset: str | None = None  # where the build goes; default: rated_sets' folder scheme

    @classmethod
    def load(cls, path: str | Path) -> "RetrainConfig":
        path = Path(path)
        raw = read_yaml_mapping(path)
        keys = {f.name for f in fields(cls)}
        check_keys(path, "the file", raw, keys, keys - {"dataset"})
        build_keys = {f.name for f in fields(BuildSettings)}
        check_keys(path, "build", raw["build"], build_keys, build_keys - {"seed"})
        return cls(data=str(raw["data"]), out=str(raw["out"]), build=BuildSettings(**raw["build"]),
                   stages=check_stages(path, raw["stages"]), export=str(raw["export"]),
                   dataset=str(raw["dataset"]) if raw.get("dataset") is not None else None)

    def dataset_folder(self) -> Path:
        """The built dataset's folder: ``dataset`` when given, else ``runs/data/<sets>-<size>px-<split>``
        (``rated_sets.dataset_folder``; relative to the working directory, as ``out`` is), whatever folder
        the rated sets are read from."""
        if self.dataset is not None:
            return Path(self.dataset)
        return dataset_folder(self.build.size, self.build.split, self.build.sources, self.build.seed)

    def sources(self) -> list[SourceSpec]:
        """The rated sets to build from, each in its folder under ``data``."""
        return [SourceSpec(name, Path(self.data) / name, name) for name in self.build.sources]


def built_dataset(config: RetrainConfig) -> Path:
    """The configuration's dataset: reused where it is already built from the same rated-set folders, built
    there otherwise. A build of the same sets from other folders is not silently taken for this one."""
    data = config.dataset_folder()
    report = data / "report.json"
    if not report.is_file():
        build(data, config.sources(), size=config.build.size, split=config.build.split, seed=config.build.seed,
              plots=True)
        return data
    made = json.loads(report.read_text())
    wanted = {"size": config.build.size, "split": config.build.split, "seed": config.build.seed}
    differs = [f"{key} {made.get(key)}, not {value}" for key, value in wanted.items() if made.get(key) != value]
    for spec in config.sources():
        was = made.get("sources", {}).get(spec.name, {}).get("path")
        if was is None or Path(was).resolve() != spec.path.resolve():
            differs.append(f"{spec.name} from {was or 'nowhere'}, not {spec.path}")
    if differs:
        raise ConfigError(f"{data}: that dataset was built with {'; '.join(differs)}; remove it, or give the "
                          f"configuration a 'dataset' folder of its own")
    return data


def retrain(config_path: str | Path, device: str = "auto", force: bool = False) -> dict:
    """Build, train the stages, evaluate on the validation rows, and export.

    The export replaces an existing file only when the new model is better on the
    validation rows (lower pooled RMSE) than the file it would replace, scored on
    the same rows in the same run, or with ``force``; otherwise the new weights go
    beside it (``<out>/candidate.pt``) and the summary says why. The file carries where it
    came from (``provenance.making_metadata``: config, dataset manifest SHA-256, version,
    commit) and its validation figures; ``calibrate`` adds the leave-one-source-out ones.
    """
    config = RetrainConfig.load(config_path)
    for stage in config.stages:  # before the build and the first stage: every stage's pictures are big enough
        try:
            check_picture_size(stage["model"], stage.get("size") or config.build.size, stage.get("model_options"))
        except PicaffectError as e:
            raise ConfigError(f"{config_path}: stage {stage['name']!r}: {e}") from None
    out = Path(config.out)
    data = built_dataset(config)
    base = TrainConfig(data=str(data), model=config.stages[0]["model"], out=str(out), device=device)
    runs = run_stages(config.stages, data, out, base, origin=config_path)
    final = runs[config.stages[-1]["name"]]
    metrics = evaluate(final, data, split="validation", by_source=True, out=out / "evaluation", device=device)
    reference = evaluate(runs[config.stages[0]["name"]], data, split="validation", by_source=True,
                         out=out / "evaluation-first-stage", device=device)
    summary = {"dataset": str(data), "final": metrics, "first_stage": reference}
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
    made = making_metadata(yaml.safe_load(Path(config_path).read_text()), data, f"picaffect retrain {config_path}")
    made["evaluation"] = evaluation_record(None, validation_from_table(out / "evaluation" / "predictions.csv"))
    export(final / "best.pt", target, metadata={**made, "trained_from": str(final)})
    return summary


def validation_from_table(path: Path) -> dict | None:
    """The validation figures of the predictions ``evaluate`` wrote (``predictions.csv``): not scored twice.
    ``calibrate`` replaces them with the shipped file's own, beside the leave-one-source-out figures."""
    import pandas as pd

    table = pd.read_csv(path)
    table = table[table["split"] == "validation"]
    return validation_block(table[["valence_true", "arousal_true"]].to_numpy(float),
                            table[["valence_pred", "arousal_pred"]].to_numpy(float),
                            table["source"].astype(str).to_numpy())
