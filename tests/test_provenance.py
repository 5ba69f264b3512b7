"""A model file knows where it came from: figures from arrays, what calibrate writes, `picaffect info`."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import write_learnable_set
from picaffect.app.cli import main
from picaffect.core.metrics import pcc, rmse
from picaffect.evaluation import record
from picaffect.inference.provenance import KEYS, missing, read_provenance
from picaffect.workflows.provenance import dataset_sha256, source_commit

FIG_KEYS = {"n", "valence_r", "valence_r_ci", "arousal_r", "arousal_r_ci", "rmse", "rmse_ci", "valence_rmse",
            "arousal_rmse", "valence_bias", "arousal_bias"}


def _predictions(n: int, seed: int, noise: float = 0.6, shift=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    y = g.uniform(2, 8, (n, 2))
    return y, y + g.normal(0, noise, (n, 2)) + np.asarray(shift)


def test_a_figure_is_r_rmse_and_bias_with_intervals():
    y, yhat = _predictions(200, 0, shift=(0.5, -0.25))
    fig = record.figures(y, yhat)
    assert set(fig) == FIG_KEYS and fig["n"] == 200
    assert fig["valence_r"] == pytest.approx(pcc(y[:, 0], yhat[:, 0]))
    assert fig["arousal_r"] == pytest.approx(pcc(y[:, 1], yhat[:, 1]))
    assert fig["rmse"] == pytest.approx(rmse(y, yhat)) and fig["valence_rmse"] == pytest.approx(rmse(y[:, 0], yhat[:, 0]))
    assert fig["valence_bias"] == pytest.approx(0.5, abs=0.1) and fig["arousal_bias"] == pytest.approx(-0.25, abs=0.1)
    for key in ("valence_r", "arousal_r", "rmse"):
        low, high = fig[f"{key}_ci"]
        assert low < fig[key] < high and high - low < 0.5
    assert record.figures(y, yhat) == fig  # a fixed seed: the same intervals every time
    json.dumps(fig, allow_nan=False)


def test_leave_one_source_out_block_has_a_figure_per_source_and_their_mean():
    parts = [_predictions(120, 1, 0.3), _predictions(80, 2, 1.0)]
    y, yhat = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    sources = np.array(["a"] * 120 + ["b"] * 80)
    block = record.leave_one_source_out(y, yhat, sources, "each source predicted without it")
    assert list(block) == ["protocol", "sources", "mean"] and list(block["sources"]) == ["a", "b"]
    assert block["sources"]["b"]["n"] == 80 and set(block["sources"]["a"]) == FIG_KEYS
    assert set(block["mean"]) == FIG_KEYS - {"n", "valence_r_ci", "arousal_r_ci", "rmse_ci"}
    a, b = block["sources"]["a"], block["sources"]["b"]
    assert block["mean"]["rmse"] == pytest.approx((a["rmse"] + b["rmse"]) / 2)  # each source weighs the same
    assert a["rmse"] < b["rmse"]
    valid = record.validation(y, yhat, sources, "the validation rows")
    assert valid["n"] == 200 and valid["by_source"]["a"] == a and valid["protocol"] == "the validation rows"
    text = record.evaluation_markdown(record.evaluation_record(block, valid))
    assert text.index("Leave one source out") < text.index("Validation rows") and "mean of sources" in text


def test_dataset_sha256_is_the_manifest_and_a_rebuild_gives_the_same(tmp_path):
    from picaffect.data.build import SourceSpec, build

    ratings = write_learnable_set(tmp_path / "files", n=12, size=16)
    spec = SourceSpec("csv", ratings, "synthetic", {"path": "file", "valence": "valence", "arousal": "arousal",
                                                    "scale": "1,9", "group": "group"})
    for name in ("one", "two"):
        build(tmp_path / name, [spec], size=16, split="group", progress=False, plots=False)
    first = dataset_sha256(tmp_path / "one")
    assert first == dataset_sha256(tmp_path / "two") and len(first) == 64  # the same rows, another build id
    build(tmp_path / "three", [spec], size=16, split="thesis", progress=False, plots=False)
    assert dataset_sha256(tmp_path / "three") != first  # another split of the same pictures
    assert dataset_sha256(tmp_path / "nothing") is None


def test_source_commit_names_head_and_a_dirty_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    assert source_commit(tmp_path) == "unknown"  # not a checkout
    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert source_commit(tmp_path) == head.strip()
    (tmp_path / "untracked.txt").write_text("not part of the tree")
    assert source_commit(tmp_path) == head.strip()
    (tmp_path / "a.txt").write_text("2")
    assert source_commit(tmp_path) == head.strip() + "-dirty"
    assert source_commit() != "unknown"  # these tests run from a checkout


# -- what calibrate writes -----------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def calibrated(tiny_emosepar, three_sources, tmp_path_factory) -> tuple[Path, Path, dict]:
    pytest.importorskip("onnx")
    from picaffect.workflows.calibrate import calibrate

    folder = tmp_path_factory.mktemp("calibrated")
    summary = calibrate(tiny_emosepar, three_sources, folder / "tiny.pt", onnx=folder / "tiny.onnx", device="cpu",
                        adaptive=False, scheme="pooled")
    return folder / "tiny.pt", folder / "tiny.onnx", summary


def test_calibrate_writes_the_evaluation_record_and_the_onnx_twin_carries_it(calibrated, three_sources):
    from picaffect.data.dataset import RatedImages
    from picaffect.evaluation.evaluate import evaluate

    pt, onnx_file, summary = calibrated
    meta = read_provenance(pt)
    assert missing(meta) == [] and all(meta[k] for k in KEYS)
    assert (meta["config"], meta["version"], meta["commit"]) == ({"stages": [{"name": "probe"}]}, "0.1.0", "c0ffee")
    evaluation = meta["evaluation"]
    assert list(evaluation) == ["leave_one_source_out", "validation"]
    loso = evaluation["leave_one_source_out"]
    assert {s: f["n"] for s, f in loso["sources"].items()} == {"alpha": 48, "beta": 48, "gamma": 48}
    assert "refitted on the other sources' rows" in loso["protocol"]
    # the same held-out predictions as the calibration's own accuracy table: computed once
    held = {r["source"]: r for r in summary["info"]["held_out_accuracy"]}
    for source, fig in loso["sources"].items():
        assert fig["valence_r"] == pytest.approx(held[source]["valence_r"])
        assert fig["rmse"] == pytest.approx(held[source]["rmse"])
    # the validation rows, scored by the written file: what `picaffect evaluate` gives for it
    valid = evaluation["validation"]
    assert valid["n"] == len(RatedImages(three_sources, "validation").rows) > 0
    scored = evaluate(pt, three_sources, split="validation", by_source=True, device="cpu")
    assert valid["valence_r"] == pytest.approx(scored["splits"]["validation"]["valence"]["pcc"], abs=1e-6)
    assert valid["rmse"] == pytest.approx(scored["splits"]["validation"]["overall"]["rmse"], abs=1e-6)
    assert valid["rmse_ci"] == pytest.approx(scored["splits"]["validation"]["overall"]["ci95"]["rmse"], abs=1e-6)
    assert set(valid["by_source"]) == set(scored["by_source"])
    calibration = meta["calibration"]
    assert (calibration["scheme"], calibration["adaptive"], calibration["rows"]) == ("pooled", False, 144)
    assert set(calibration["half_widths"]) == {"0.8", "0.9", "0.95"}
    assert calibration["half_widths"]["0.8"]["valence"] < calibration["half_widths"]["0.95"]["valence"]
    assert meta["calibrated_by"]["dataset_sha256"] == dataset_sha256(three_sources)
    assert "--scheme pooled --constant" in meta["calibrated_by"]["command"]
    twin = read_provenance(onnx_file)
    assert {k: v for k, v in twin.items() if k != "file"} == {k: v for k, v in meta.items() if k != "file"}


def test_info_prints_the_tables_and_json_and_names_what_an_older_file_lacks(calibrated, tiny_emosepar, capsys):
    pt, onnx_file, _ = calibrated
    assert main(["info", str(pt), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert list(info)[:6] == list(KEYS) and info["missing"] == [] and info["file"] == str(pt)
    assert set(info["evaluation"]["leave_one_source_out"]["sources"]["beta"]) == FIG_KEYS
    assert main(["info", str(onnx_file)]) == 0
    text = capsys.readouterr().out
    assert text.index("Leave one source out") < text.index("Validation rows") < text.index("Calibration: scheme pooled")
    assert "| gamma | 48 |" in text and "commit c0ffee" in text and "| 90% |" in text and "lacks" not in text
    assert main(["info", str(tiny_emosepar)]) == 0  # made before calibration: no evaluation, no calibration
    assert "This file lacks evaluation, calibration" in capsys.readouterr().out
    assert main(["info", str(tiny_emosepar), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["missing"] == ["evaluation", "calibration"]
    assert main(["info", str(tiny_emosepar.parent / "nothing.pt")]) == 2
    assert "nothing.pt is neither a training run folder" in capsys.readouterr().err


def test_info_reads_the_shipped_models(capsys):
    for name in ("default", "accurate"):
        assert main(["info", name, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["file"].endswith(f"weights/{name}.pt") and info["config"]["export"].endswith(f"{name}.pt")
        assert info["calibration"]["scheme"] == "pooled"
        assert set(info["missing"]) <= set(KEYS) | {"evaluation.leave_one_source_out", "evaluation.validation"}
