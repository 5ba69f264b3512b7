"""Issue 19.8: a model given pictures smaller than it takes is refused in one line, before any work."""
from __future__ import annotations

import pytest
import torch
import yaml

from picaffect import models
from picaffect.app.cli import main
from picaffect.models.input_size import smallest_input
from test_retrain import write_bass_layout


@pytest.mark.parametrize("name", ["emosepar", "inception_v3", "xception", "vgg16"])
def test_the_smallest_side_is_where_a_real_forward_pass_starts_to_work(name):
    need = smallest_input(name)
    assert need is not None and need > 1
    model = models.create(name, pretrained=None).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, need, need)).shape == (1, 2)
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 3, need - 1, need - 1))
    assert smallest_input(name, side=need) is None and smallest_input(name, side=need - 1) == need


def test_train_on_pictures_too_small_for_the_model_says_so_and_exits_2(learnable_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(learnable_dataset), "--model", "emosepar", "--out", str(out),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "emosepar needs pictures of at least 73 x 73 pixels" in err and "24 x 24" in err
    assert "--size" in err and "picaffect build" in err
    assert not out.exists()  # nothing was started
    assert main(["train", "--data", str(learnable_dataset), "--model", "emosepar", "--out", str(out),
                 "--device", "cpu", "--size", "16", "--epochs", "1"]) == 2
    assert "16 x 16" in capsys.readouterr().err


def test_experiment_checks_every_model_before_training_the_first(learnable_dataset, tmp_path, capsys):
    out = tmp_path / "thesis"
    assert main(["experiment", "thesis", "--data", str(learnable_dataset), "--out", str(out),
                 "--models", "efficientnet_lite0,inception_v3", "--epochs", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "inception_v3 needs pictures of at least 75 x 75 pixels" in err
    assert not (out / "runs" / "efficientnet_lite0-thesis-24px").exists() and not list(out.rglob("*.pt"))


def test_retrain_checks_every_stage_before_building(tmp_path, capsys):
    write_bass_layout(tmp_path / "data" / "bass")
    config = {"data": str(tmp_path / "data"), "out": str(tmp_path / "runs"),
              "build": {"sources": ["bass"], "size": 64, "split": "group"},
              "stages": [{"name": "first", "model": "emosepar", "recipe": "thesis", "epochs": 1}],
              "export": str(tmp_path / "model.pt")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["retrain", str(path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "stage 'first'" in err and "at least 73 x 73" in err and "64 x 64" in err
    assert not (tmp_path / "runs").exists()  # not even the build started
