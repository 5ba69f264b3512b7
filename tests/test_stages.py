"""Stage chaining in one place: a base configuration, per-stage overrides, ``init`` by stage name, and the
checks that stop a bad stage before any stage trains."""
from __future__ import annotations

import pytest
import yaml

from picaffect.core.errors import ConfigError
from picaffect.training.config import TrainConfig
from picaffect.workflows.retrain import RetrainConfig
from picaffect.workflows.stages import stage_configs, stages_from_config


def base(**kw) -> TrainConfig:
    return TrainConfig(**{"data": "d", "model": "emosepar", "out": "o", "epochs": 30, "device": "cpu", **kw})


def test_a_stage_overrides_the_base_and_starts_from_an_earlier_stage(tmp_path):
    stages = [{"name": "probe", "model": "efficientnet_lite0", "recipe": "ridge"},
              {"name": "finetune", "model": "efficientnet_lite0", "recipe": "modern", "init": "probe", "lr": 1e-4}]
    configs = stage_configs(stages, tmp_path / "data", tmp_path / "runs", base(batch_size=16))
    probe, finetune = configs["probe"], configs["finetune"]
    assert probe.out == str(tmp_path / "runs" / "probe") and probe.data == str(tmp_path / "data")
    assert finetune.init == probe.out  # a stage's name becomes its run folder
    assert (finetune.recipe, finetune.lr, finetune.epochs, finetune.batch_size, finetune.device) == \
        ("modern", 1e-4, 30, 16, "cpu")  # what the stage does not say comes from the base
    assert stages[1]["init"] == "probe"  # the caller's stages are left as they were


@pytest.mark.parametrize("stage,message", [
    ({"name": "s", "model": "emosepar", "epochs": 0}, "stage 's': epochs must be a whole number of at least 1"),
    ({"name": "s", "model": "emosepar", "lr": "1e-4"}, "stage 's': lr must be a number, not '1e-4'"),
    ({"name": "s", "model": "resnet"}, "stage 's': unknown model 'resnet'"),
    ({"name": "s", "model": "emosepar", "learning_rate": 1}, "stage 's' has unknown keys learning_rate"),
])
def test_a_bad_stage_in_a_file_is_refused_when_the_file_is_read(tmp_path, stage, message):
    path = tmp_path / "stages.yaml"
    path.write_text(yaml.safe_dump({"stages": [{"name": "first", "model": "emosepar"}, stage]}))
    with pytest.raises(ConfigError, match=message) as e:
        stages_from_config(path)
    assert str(path) in str(e.value)


def test_a_retrain_configuration_with_a_bad_stage_stops_before_the_build(tmp_path):
    path = tmp_path / "retrain.yaml"
    path.write_text(yaml.safe_dump({"data": str(tmp_path / "sets"), "out": str(tmp_path / "runs"),
                                    "build": {"sources": ["bass"], "size": 48, "split": "group"},
                                    "stages": [{"name": "probe", "model": "emosepar", "patience": -1}],
                                    "export": str(tmp_path / "model.pt")}))
    with pytest.raises(ConfigError, match="stage 'probe': patience must be"):
        RetrainConfig.load(path)


def test_a_bad_override_in_code_names_its_stage(tmp_path):
    with pytest.raises(ConfigError, match="stage 'x': batch size must be"):
        stage_configs([{"name": "x", "batch_size": 0}], tmp_path, tmp_path, base())
    with pytest.raises(ConfigError, match="stage 'y' has unknown keys colour"):
        stage_configs([{"name": "y", "colour": "red"}], tmp_path, tmp_path, base())


def test_a_run_configuration_written_before_an_option_existed_still_loads(tmp_path):
    """config.yaml of a run trained before backbone_lr_scale (and later options) existed: it resumes."""
    old = {"data": "d", "model": "emosepar", "out": "o", "recipe": "thesis", "epochs": 30, "batch_size": 64,
           "augment": "none", "size": 80, "seed": 0, "limit": None, "device": "cpu", "lr": None,
           "weight_decay": None, "patience": 10, "checkpoint_every": 50, "init": None, "model_options": {},
           "targets": None, "precision": "fp32", "budget_minutes": 600.0}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    config = TrainConfig.load(tmp_path / "config.yaml")
    assert config.backbone_lr_scale == 1.0 and config.budget_minutes == 600.0


def test_the_cross_dataset_experiment_reads_its_stages_from_a_path_before_any_work(tmp_path):
    """`run_cross_dataset(stages=PATH)` is `experiment cross-dataset --stages-from PATH`: a bad stage stops it
    before the dataset (here absent) is read and before anything is written."""
    from picaffect.workflows.experiments import run_cross_dataset

    path = tmp_path / "stages.yaml"
    path.write_text(yaml.safe_dump({"stages": [{"name": "s", "model": "emosepar", "epochs": 0}]}))
    with pytest.raises(ConfigError, match="stage 's': epochs must be a whole number of at least 1"):
        run_cross_dataset(tmp_path / "no-such-dataset", tmp_path / "out", stages=path)
    assert not (tmp_path / "out").exists()
