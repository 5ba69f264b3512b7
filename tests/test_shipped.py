"""make check-shipped: a rebuilt model compared with the shipped file (predictions, metadata, ONNX twin), and the
recorded predictions that tests/test_default_model.py checks the shipped file against."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import build_three_sources
from picaffect.workflows.shipped import (check_files, check_table, compare_files, compare_metadata,
                                         compare_predictions, predictions_of, record_predictions, sha256_of,
                                         synthetic_pictures)

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

META = {"config": {"data": "../shared/data", "out": "runs/default", "export": "src/picaffect/weights/default.pt",
                   "stages": [{"name": "probe", "ridge_fit": "train+test"}]},
        "dataset_sha256": "a" * 64, "version": "0.1.0", "commit": "1234abcd", "made_by": "picaffect retrain c.yaml",
        "made_at": "2026-12-07 10:00",
        "evaluation": {"leave_one_source_out": {"protocol": "p", "sources": {"oasis": {"n": 900, "valence_r": 0.61,
                                                                                       "rmse_ci": [1.1, 1.3]}},
                                                "mean": {"valence_r": 0.61}},
                       "validation": {"protocol": "v", "n": 347, "valence_r": 0.72, "by_source": {}}},
        "calibration": {"scheme": "pooled", "half_widths": {"0.9": {"valence": 2.65, "arousal": 1.71}}},
        "calibrated_by": {"command": "picaffect calibrate default --data runs/jn224", "commit": "1234abcd",
                          "dataset_sha256": "a" * 64, "made_at": "2026-12-07 10:05"}}


def test_metadata_is_compared_except_dates_and_paths_numbers_within_the_tolerance():
    rebuilt = copy.deepcopy(META)
    rebuilt["config"].update(out="/tmp/check-x/run", export="/tmp/check-x/default.pt")
    rebuilt.update(made_at="2027-01-01 00:00", made_by="picaffect retrain /tmp/check-x/default.yaml",
                   commit="9999ffff-dirty")
    rebuilt["calibrated_by"].update(command="picaffect calibrate /tmp/check-x/default.pt --data /tmp/x", commit="9")
    rebuilt["evaluation"]["validation"]["valence_r"] = 0.725  # within 0.01
    result = compare_metadata(META, rebuilt)
    assert result["ok"] and result["differences"] == []
    assert result["informational"] == {"commit": ["1234abcd", "9999ffff-dirty"], "calibrated_by.commit": ["1234abcd", "9"]}

    rebuilt["evaluation"]["leave_one_source_out"]["sources"]["oasis"]["rmse_ci"][1] = 1.35
    rebuilt["dataset_sha256"] = "b" * 64
    rebuilt["config"]["stages"][0]["ridge_fit"] = "train"
    del rebuilt["calibration"]["half_widths"]["0.9"]["arousal"]
    result = compare_metadata(META, rebuilt)
    assert not result["ok"]
    assert [d["key"] for d in result["differences"]] == [
        "calibration.half_widths.0.9.arousal", "config.stages.0.ridge_fit", "dataset_sha256",
        "evaluation.leave_one_source_out.sources.oasis.rmse_ci.1"]
    assert result["differences"][0] == {"key": "calibration.half_widths.0.9.arousal", "shipped": 1.71,
                                        "rebuilt": "(absent)"}


def test_predictions_agree_within_the_tolerance_everywhere():
    a = np.array([[5.0, 4.0], [6.0, 3.0], [2.0, 7.5]])
    assert compare_predictions(a, a + 0.009)["ok"]
    result = compare_predictions(a, a + np.array([[0, 0], [0.02, 0], [0, 0]]))
    assert not result["ok"] and result["rows_beyond"] == 1 and result["max_abs_diff"] == pytest.approx(0.02)
    assert not compare_predictions(a[:0], a[:0])["ok"]  # no rows compared is no evidence


def test_synthetic_pictures_are_the_same_numbers_every_time():
    first = synthetic_pictures(32)
    assert first.shape == (8, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, synthetic_pictures(32))
    assert len({p.tobytes() for p in first}) == 8 and first.std() > 30


# -- two model files compared -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_sources(tmp_path_factory) -> Path:
    return build_three_sources(tmp_path_factory.mktemp("three"), n=24)


def _tiny(folder: Path, metadata: dict, nudge: float = 0.0) -> tuple[Path, Path]:
    from picaffect import models
    from picaffect.inference import ModelSpec, model_record, save_atomic
    from picaffect.inference.onnx_export import export_onnx

    torch.manual_seed(0)
    model = models.create("emosepar").eval()
    for m in model.modules():  # a trained network's statistics, so that pictures get different predictions
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        model.head.fc.bias += nudge
    spec = ModelSpec(architecture="emosepar", size=80, output_scale=4.0, output_offset=5.0)
    folder.mkdir(parents=True, exist_ok=True)
    pt = save_atomic(model_record(model, spec, metadata=metadata), folder / "tiny.pt")
    return pt, export_onnx(pt, folder / "tiny.onnx")


def test_the_same_file_rebuilt_passes_and_a_moved_one_fails(three_sources, tmp_path):
    shipped, twin = _tiny(tmp_path / "shipped", META)
    rebuilt_meta = {**META, "made_at": "later", "commit": "other"}
    same, _ = _tiny(tmp_path / "same", rebuilt_meta)
    result = compare_files(shipped, same, three_sources, shipped_onnx=twin)
    assert result["ok"] and result["predictions"]["max_abs_diff"] < 1e-6
    from picaffect.data.dataset import RatedImages

    assert result["predictions"]["rows"] == len(RatedImages(three_sources, "validation").rows) > 0
    assert result["onnx_twin"]["predictions"]["ok"] and result["onnx_twin"]["metadata"]["ok"]
    assert result["metadata"]["informational"] == {"commit": ["1234abcd", "other"]}

    moved, _ = _tiny(tmp_path / "moved", META, nudge=0.01)  # outputs * 4: ratings move by 0.04
    result = compare_files(shipped, moved, three_sources)
    assert not result["ok"] and not result["predictions"]["ok"] and result["metadata"]["ok"]
    assert result["predictions"]["max_abs_diff"] == pytest.approx(0.04, abs=1e-3)
    table = check_table({"model": "tiny", "shipped": str(shipped), "config": "c.yaml", **result})
    assert "| validation predictions, rebuilt vs shipped |" in table and "DIFFERS" in table
    assert table.rstrip().endswith("FAIL: tiny")


def test_recorded_predictions_name_the_file_that_made_them(tmp_path):
    pt, twin = _tiny(tmp_path / "m", META)
    record = record_predictions("tiny", tmp_path / "tiny-predictions.json", model=pt, onnx=twin)
    assert json.loads((tmp_path / "tiny-predictions.json").read_text()) == record
    assert record["sha256"] == sha256_of(pt) and record["onnx_sha256"] == sha256_of(twin)
    assert record["pictures"]["side"] == 80 and len(record["predictions"]) == 8
    assert np.abs(predictions_of(pt, synthetic_pictures(80)) - np.array(record["predictions"])).max() < 1e-4
    assert np.abs(predictions_of(twin, synthetic_pictures(80), "onnx") - np.array(record["predictions"])).max() < 1e-3


# -- a whole rebuild, as make check-shipped runs it, of a tiny model ---------------------------------------------

def _write_sets(root: Path, n: int = 24) -> None:
    """Tiny sets in OASIS's and BASS's layouts, their ratings following brightness and redness."""
    g = np.random.default_rng(1)
    (root / "oasis" / "images").mkdir(parents=True)
    (root / "bass" / "images").mkdir(parents=True)
    oasis = [",Theme,Category,Source,Valence_mean,Valence_SD,Valence_N,Arousal_mean,Arousal_SD,Arousal_N"]
    bass = ["file_name,val_mean_us,aro_mean_us,val_sd_us,aro_sd_us,val_n_us,aro_n_us"]
    for i in range(n):
        for name in ("oasis", "bass"):
            light, red = g.uniform(0, 1, 2)
            picture = Image.new("RGB", (48, 48), (int(255 * red), int(200 * light), int(200 * light)))
            if name == "oasis":
                picture.save(root / "oasis" / "images" / f"Thing {i}.jpg")
                oasis.append(f"I{i},Thing {i},Object,Pixabay,{1 + 6 * light:.2f},1,100,{1 + 6 * red:.2f},1,100")
            else:
                picture.save(root / "bass" / "images" / f"s{i}.png")
                bass.append(f"s{i}.png,{1 + 8 * light:.2f},{1 + 8 * red:.2f},1.0,1.0,90,90")
    (root / "oasis" / "OASIS.csv").write_text("\n".join(oasis) + "\n")
    (root / "bass" / "BASS_data.csv").write_text("\n".join(bass) + "\n")


@pytest.mark.slow
def test_a_rebuild_from_the_config_matches_the_file_it_made(tmp_path, monkeypatch):
    """What make <model>-model then make check-shipped do, on a tiny Lite0 probe: the second build equals the first."""
    from picaffect.workflows.shipped import rebuild

    monkeypatch.chdir(tmp_path)  # retrain builds into runs/data/<sets>-<size>px-<split> under the working folder
    _write_sets(tmp_path / "sets")
    config = {"data": str(tmp_path / "sets"), "out": "unused", "export": "unused",
              "build": {"sources": ["oasis", "bass"], "size": 48, "split": "group", "seed": 0},
              "stages": [{"name": "probe", "model": "efficientnet_lite0", "recipe": "ridge", "size": 64,
                          "model_options": {"features": "stages"}, "ridge_fit": "train+test",
                          "ridge_recalibrate": True}]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    shipped, _ = rebuild(path, tmp_path / "first", {"scheme": "pooled", "adaptive": False}, name="tiny")
    result = check_files("tiny", shipped, path, shipped_onnx=shipped.with_suffix(".onnx"), work=tmp_path / "again")
    assert result["ok"], check_table(result)
    assert result["predictions"]["rows"] > 0 and result["predictions"]["max_abs_diff"] < 1e-4
    assert result["metadata"]["differences"] == [] and result["onnx_twin"]["metadata"]["ok"]
    meta = json.loads(json.dumps(result["metadata"]))
    assert "config.out" in meta["ignored"]
    # a changed recipe is a different model: the same check fails and says where
    config["stages"][0]["ridge_recalibrate"] = False
    path.write_text(yaml.safe_dump(config))
    result = check_files("tiny", shipped, path, work=tmp_path / "changed")
    assert not result["ok"] and "config.stages.0.ridge_recalibrate" in [d["key"] for d in result["metadata"]["differences"]]
