"""`picaffect retrain` end to end on a tiny set in BASS's layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from picaffect import Predictor, __version__
from picaffect.app.cli import main
from picaffect.core.errors import ConfigError
from picaffect.data.rated_sets import dataset_folder
from picaffect.inference.provenance import missing, read_provenance
from picaffect.workflows.provenance import dataset_sha256, source_commit
from picaffect.workflows.retrain import RetrainConfig, built_dataset


def write_bass_layout(root, n=40):
    gen = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    lines = ["file_name,val_mean_us,aro_mean_us,val_sd_us,aro_sd_us,val_n_us,aro_n_us"]
    for i in range(n):
        light, red = gen.uniform(0, 1, 2)
        Image.new("RGB", (48, 48), (int(255 * red), int(200 * light), int(200 * light))).save(root / "images" / f"s{i}.png")
        lines.append(f"s{i}.png,{1 + 8 * light:.2f},{1 + 8 * red:.2f},1.0,1.0,90,90")
    (root / "BASS_data.csv").write_text("\n".join(lines) + "\n")


def test_retrain_builds_trains_evaluates_and_exports(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the dataset goes to runs/data/<sets>-<size>px-<split> under the working folder
    write_bass_layout(tmp_path / "data" / "bass")
    config = {
        "data": str(tmp_path / "data"), "out": str(tmp_path / "runs"),
        "build": {"sources": ["bass"], "size": 48, "split": "group", "seed": 0},
        "stages": [
            {"name": "probe", "model": "efficientnet_lite0", "recipe": "ridge", "size": 64},
            {"name": "finetune", "model": "efficientnet_lite0", "recipe": "modern", "init": "probe", "lr": 1e-4,
             "epochs": 1, "batch_size": 16, "size": 64, "augment": "light"},
        ],
        "export": str(tmp_path / "shipped" / "model.pt"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["retrain", str(path), "--device", "cpu"]) == 0
    assert "By source" in capsys.readouterr().out
    summary = json.loads((tmp_path / "runs" / "retrain.json").read_text())
    assert summary["final"]["splits"]["validation"]["n"] == 4
    assert (tmp_path / "runs" / "finetune" / "summary.json").is_file()
    # the dataset is built in the one folder scheme every step shares, not inside the run
    built = tmp_path / "runs" / "data" / "bass-48px-group"
    assert summary["dataset"] == str(dataset_folder(48, "group", ["bass"])) and (built / "report.json").is_file()
    assert not (tmp_path / "runs" / "probe" / "data").exists()
    shipped = tmp_path / "shipped" / "model.pt"
    assert shipped.stat().st_size < 12e6  # fp16, no optimiser state
    row = Predictor.from_pretrained(shipped, device="cpu").predict(tmp_path / "data" / "bass" / "images" / "s0.png")
    assert 1 <= row["valence"] <= 9
    # the file says where it came from, and its validation figures are those of the evaluation above
    meta = read_provenance(shipped)
    assert meta["config"] == config and meta["dataset_sha256"] == dataset_sha256(built)
    assert meta["version"] == __version__ and meta["commit"] == source_commit() and "retrain" in meta["made_by"]
    validation = meta["evaluation"]["validation"]
    assert validation["n"] == 4 and list(validation["by_source"]) == ["bass"]
    assert validation["rmse"] == pytest.approx(summary["final"]["splits"]["validation"]["overall"]["rmse"], abs=1e-3)
    assert missing(meta) == ["calibration", "evaluation.leave_one_source_out"]  # calibrate adds them
    # a second call reuses the dataset and the finished stages
    stamps = [p.stat().st_mtime_ns for p in (built / "images.npy", tmp_path / "runs" / "finetune" / "last.pt")]
    shipped_stamp = shipped.stat().st_mtime_ns
    assert main(["retrain", str(path), "--device", "cpu"]) == 0
    assert stamps == [p.stat().st_mtime_ns for p in (built / "images.npy", tmp_path / "runs" / "finetune" / "last.pt")]
    # the same model is not better than the shipped file: that file stays, the new weights go beside it
    summary = json.loads((tmp_path / "runs" / "retrain.json").read_text())
    assert "not below" in summary["kept"] and shipped.stat().st_mtime_ns == shipped_stamp
    assert (tmp_path / "runs" / "candidate.pt").is_file()
    assert main(["retrain", str(path), "--device", "cpu", "--force"]) == 0
    assert shipped.stat().st_mtime_ns != shipped_stamp


def test_a_dataset_built_from_other_folders_is_not_taken_and_a_dataset_key_builds_elsewhere(tmp_path, monkeypatch):
    """The folder name says what a build holds, not where its pictures came from: a build of the same sets from
    another data folder is refused with the reason, and the configuration's ``dataset`` key puts it elsewhere."""
    monkeypatch.chdir(tmp_path)
    write_bass_layout(tmp_path / "mine" / "bass")
    write_bass_layout(tmp_path / "theirs" / "bass")
    config = {"data": "mine", "out": "runs/mine", "build": {"sources": ["bass"], "size": 32, "split": "group"},
              "stages": [{"name": "probe", "model": "efficientnet_lite0", "recipe": "ridge"}], "export": "m.pt"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    first = built_dataset(RetrainConfig.load(path))
    assert first == dataset_folder(32, "group", ["bass"]) and (first / "report.json").is_file()
    stamp = (first / "images.npy").stat().st_mtime_ns
    assert built_dataset(RetrainConfig.load(path)) == first and (first / "images.npy").stat().st_mtime_ns == stamp
    path.write_text(yaml.safe_dump({**config, "data": "theirs"}))
    with pytest.raises(ConfigError, match=r"bass-32px-group: that dataset was built with bass from mine/bass, "
                                          r"not theirs/bass; remove it, or give the configuration a 'dataset'"):
        built_dataset(RetrainConfig.load(path))
    path.write_text(yaml.safe_dump({**config, "data": "theirs", "dataset": "elsewhere"}))
    assert str(built_dataset(RetrainConfig.load(path))) == "elsewhere"
    assert (tmp_path / "elsewhere" / "report.json").is_file()
    path.write_text(yaml.safe_dump({**config, "dataset": "elsewhere", "build": {**config["build"], "size": 40}}))
    with pytest.raises(ConfigError, match=r"size 32, not 40; bass from theirs/bass, not mine/bass"):
        built_dataset(RetrainConfig.load(path))
