"""The default model that ships inside the package: offline, small, sane."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from picaffect import Predictor
from picaffect.app.cli import main
from picaffect.inference import checkpoint, shipped_path


def test_default_ships_small_and_loads_offline():
    path = shipped_path("default")
    assert path.stat().st_size < 25e6
    p = Predictor.from_pretrained()
    assert p.size == 224


def test_default_predicts_the_sample_photographs(tmp_path):
    pytest.importorskip("sklearn")
    from picaffect.app.demo import sample_photographs

    photos = sample_photographs(tmp_path / "photos")
    assert len(photos) >= 8
    rows = Predictor.from_pretrained().predict(photos)
    values = np.array([[r["valence"], r["arousal"]] for r in rows])
    assert ((values >= 1) & (values <= 9)).all()
    assert values[:, 0].std() > 0.2  # it tells photographs apart rather than answering a constant


def test_demo_command(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "sklearn_china.jpg" in out and "skimage_astronaut.png" in out
    assert (tmp_path / "demo" / "circumplex.png").stat().st_size > 10_000
    import pandas as pd

    table = pd.read_csv(tmp_path / "demo" / "predictions.csv")  # plain CSV: the header comes first
    # the shipped default is calibrated (make default-calibration): every row carries its 90 % interval
    assert list(table.columns) == ["path", "valence", "arousal", "valence_low", "valence_high", "arousal_low",
                                   "arousal_high", "quadrant", "error"] and len(table) >= 8
    assert ((table["valence_low"] <= table["valence"]) & (table["valence"] <= table["valence_high"])).all()
    meta = json.loads((tmp_path / "demo" / "predictions.csv.meta.json").read_text())
    assert meta["model"] == "default" and meta["interval_level"] == 0.9
    assert "90% prediction intervals" in meta["description"] and "not calibrated" not in out


def _recorded() -> dict[str, list[float]]:
    return json.loads((Path(__file__).parent / "fixtures" / "default_v1_predictions.json").read_text())["predictions"]


def _scores(predictor: Predictor, photos: list[Path]) -> dict[str, np.ndarray]:
    from picaffect.data.images import load_square

    arrays = np.stack([load_square(p, predictor.size) for p in photos])
    return dict(zip([p.name for p in photos], predictor.score_images(torch.from_numpy(arrays).permute(0, 3, 1, 2))))


# The default shipped until 2026-12 (fine-tuned Lite0, last-stage features): its predictions were recorded
# before the inference redesign, so that no later change of the code can move them unnoticed.
V1_WEIGHTS = Path(__file__).parent / "fixtures" / "default_v1_weights.pt"


def test_the_earlier_default_gives_the_predictions_recorded_before_the_redesign(tmp_path):
    pytest.importorskip("sklearn")
    from picaffect.app.demo import sample_photographs

    photos = sample_photographs(tmp_path / "photos")
    recorded = _recorded()
    scores = _scores(Predictor.from_pretrained(V1_WEIGHTS), [p for p in photos if p.name in recorded])
    assert set(scores) == set(recorded)
    for name, values in scores.items():
        assert np.abs(values - np.array(recorded[name])).max() < 1e-4, name


def test_a_version_1_checkpoint_loads_with_the_same_predictions(tmp_path):
    """Write the shipped weights in picaffect 0.1's layout (format 1) and read them back."""
    pytest.importorskip("sklearn")
    from picaffect.app.demo import sample_photographs

    record = checkpoint.read(V1_WEIGHTS)
    weights = {("head." + k[len("head.fc."):] if k.startswith("head.fc.") else k): v
               for k, v in record["weights"].items() if not k.startswith("normalize.")}
    weights["_fc.weight"], weights["_fc.bias"] = torch.zeros(1000, 1280), torch.zeros(1000)  # as 0.1 shipped it
    old = {"model": weights, "size": 224, "epoch": 5, "metadata": {},
           "config": {"model": "efficientnet_lite0", "recipe": "modern", "model_options": {}},
           "recipe": {"name": "modern", "lr": 1e-4, "normalize_targets": True}}
    torch.save(old, tmp_path / "old.pt")
    converted = checkpoint.read(tmp_path / "old.pt")
    assert converted["spec"]["output_scale"] == 4.0 and converted["spec"]["output_offset"] == 5.0
    assert not any(k.startswith("_fc.") for k in converted["weights"])
    photos = [p for p in sample_photographs(tmp_path / "photos") if p.name in _recorded()]
    scores = _scores(Predictor.from_pretrained(tmp_path / "old.pt"), photos)
    for name, values in scores.items():
        assert np.abs(values - np.array(_recorded()[name])).max() < 1e-4, name


# Written by the command that makes the shipped weights (make default-model: scripts/record_predictions.py).
RECORDED = Path(__file__).parent / "fixtures" / "default-predictions.json"


def test_the_shipped_default_gives_its_own_recorded_predictions():
    """The shipped file is the one `make default-model` recorded (its SHA-256), and it and its ONNX twin still
    give the predictions recorded from it, on generated pictures that need no licensed data."""
    from picaffect.inference import shipped_onnx_path
    from picaffect.workflows.shipped import predictions_of, sha256_of, synthetic_pictures

    recorded = json.loads(RECORDED.read_text())
    shipped, twin = shipped_path("default"), shipped_onnx_path("default")
    again = "the shipped weights changed after their record: `make default-model` (or `python " \
            "scripts/record_predictions.py default`) writes both"
    assert sha256_of(shipped) == recorded["sha256"], again
    assert twin is not None and sha256_of(twin) == recorded["onnx_sha256"], again
    pictures = synthetic_pictures(recorded["pictures"]["side"], recorded["pictures"]["count"],
                                  recorded["pictures"]["seed"])
    expected = np.array(recorded["predictions"])
    assert expected.shape == (8, 2) and expected[:, 0].std() > 0.1  # pictures the model tells apart
    assert np.abs(predictions_of(shipped, pictures) - expected).max() < 1e-3
    assert np.abs(predictions_of(twin, pictures, backend="onnx") - expected).max() < 2e-3


def test_shipped_weights_carry_no_imagenet_classifier():
    record = checkpoint.read(shipped_path("default"))
    assert record["format"] == checkpoint.FORMAT and record["version"] == checkpoint.VERSION
    assert not any(k.startswith("_fc.") for k in record["weights"])
    assert record["metadata"]["made_by"]


@pytest.mark.parametrize("name", ["default", "accurate"])
def test_the_shipped_files_say_where_they_came_from(name):
    from picaffect.inference import shipped_onnx_path
    from picaffect.inference.provenance import KEYS, missing, read_provenance
    meta = read_provenance(shipped_path(name))
    assert missing(meta) == [] and all(meta[k] for k in KEYS)
    loso = meta["evaluation"]["leave_one_source_out"]
    assert set(loso["sources"]) == {"oasis", "emotion6", "bass"}
    twin = read_provenance(shipped_onnx_path(name))
    assert {k: v for k, v in twin.items() if k != "file"} == {k: v for k, v in meta.items() if k != "file"}
