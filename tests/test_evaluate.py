"""`picaffect evaluate` and `picaffect experiment` on a tiny learnable dataset."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import build_learnable_dataset
from picaffect.cli import main
from picaffect.evaluation.evaluate import evaluate
from picaffect.evaluation.experiment import leave_one_out_view
from picaffect.metrics import rmse



@pytest.fixture()
def run(emosepar_run):
    return emosepar_run


def test_evaluate_writes_every_output(run, learnable_dataset, tmp_path):
    result = evaluate(run, learnable_dataset, split="validation", out=tmp_path / "ev", by_source=True, n_boot=200)
    block = result["splits"]["validation"]
    assert block["n"] == 10
    for dim in ("valence", "arousal", "overall"):
        assert {"rmse", "mae", "pcc", "ccc", "sagr", "sagr_majority", "rmse_mean_baseline", "ci95"} <= set(block[dim])
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["splits"]["validation"]["n"] == 10 and "synthetic" in saved["by_source"]
    predictions = pd.read_csv(tmp_path / "ev" / "predictions.csv")
    assert list(predictions.columns) == ["id", "source", "split", "valence_true", "arousal_true", "valence_pred",
                                         "arousal_pred"]
    assert len(predictions) == 10 and (predictions["split"] == "validation").all()
    # the report's figures are recomputable from the predictions file
    y = predictions[["valence_true", "arousal_true"]].to_numpy()
    yhat = predictions[["valence_pred", "arousal_pred"]].to_numpy()
    assert rmse(y, yhat) == pytest.approx(block["overall"]["rmse"], abs=1e-3)
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "| validation | 10 |" in report and "By source" in report
    for name in ("predicted_vs_true.png", "circumplex.png"):
        assert (tmp_path / "ev" / name).stat().st_size > 5000


def test_evaluate_all_split_and_cli(run, learnable_dataset, tmp_path, capsys):
    assert main(["evaluate", str(run), "--data", str(learnable_dataset), "--split", "all", "--out",
                 str(tmp_path / "ev"), "--device", "cpu"]) == 0
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["splits"]["all"]["n"] == 96
    assert "Overall" in capsys.readouterr().out


def test_evaluate_names_what_is_wrong(learnable_dataset, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing"), "--data", str(learnable_dataset)]) != 0
    assert "nothing" in capsys.readouterr().err


def test_leave_one_out_view(tmp_path):
    data = build_learnable_dataset(tmp_path / "a", n=30)
    manifest = pd.read_parquet(data / "manifest.parquet")
    manifest.loc[manifest.index[:12], "source"] = "other"
    manifest.to_parquet(data / "manifest.parquet", index=False)
    view = leave_one_out_view(data, "other", tmp_path / "view")
    out = pd.read_parquet(view / "manifest.parquet")
    assert (out.loc[out.source == "other", "split"] == "validation").all()
    assert set(out.loc[out.source != "other", "split"]) <= {"train", "test"}
    assert np.array_equal(np.load(view / "images.npy"), np.load(data / "images.npy"))


def test_experiment_thesis_smoke_and_resume(tmp_path, capsys):
    data = build_learnable_dataset(tmp_path / "data", n=48)
    args = ["experiment", "thesis", "--data", str(data), "--out", str(tmp_path / "exp"), "--epochs", "1",
            "--limit", "16", "--batch-size", "8", "--size", "80", "--device", "cpu",
            "--models", "emosepar,vgg16,inception_v3,xception"]
    assert main(args) == 0
    report = (tmp_path / "exp" / "report.md").read_text()
    for needle in ("Table 8.1", "Table 8.2", "Table 8.3", "emosepar + augmentation", "inception_v3", "/ 1.66"):
        assert needle in report, needle
    # evaluations show the network's own outputs: after a few steps at lr 1e-5 they are still near 0, not clipped to 1
    early = pd.read_csv(tmp_path / "exp" / "runs" / "emosepar" / "evaluation" / "predictions.csv")
    assert early["valence_pred"].min() < 1
    results = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert set(results) == {"emosepar", "vgg16", "inception_v3", "xception", "emosepar + augmentation"}
    capsys.readouterr()
    assert main(args) == 0  # everything finished: nothing is trained again
    assert capsys.readouterr().out.count("not trained again") == 5


def test_experiment_cross_dataset_smoke(tmp_path):
    data = build_learnable_dataset(tmp_path / "data", n=40)
    manifest = pd.read_parquet(data / "manifest.parquet")
    manifest.loc[manifest.index[:15], "source"] = "second"
    manifest.to_parquet(data / "manifest.parquet", index=False)
    assert main(["experiment", "cross-dataset", "--data", str(data), "--out", str(tmp_path / "x"), "--epochs", "1",
                 "--batch-size", "8", "--size", "80", "--device", "cpu", "--models", "emosepar"]) == 0
    report = (tmp_path / "x" / "report.md").read_text()
    assert "| second | 15 |" in report and "| synthetic | 25 |" in report
