"""`picaffect evaluate` and `picaffect experiment` on a tiny learnable dataset."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import build_learnable_dataset
from picaffect.app.cli import main
from picaffect.data.dataset import RatedImages
from picaffect.evaluation.evaluate import evaluate, predict_dataset
from picaffect.inference import Predictor
from picaffect.core.metrics import rmse
from picaffect.workflows.experiment_reports import thesis_reading
from picaffect.workflows.experiments import leave_one_out_view
from picaffect.training.config import TrainConfig




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


def test_predict_dataset_mirrored_averages_each_picture_with_its_mirror(run, learnable_dataset):
    predictor = Predictor.from_pretrained(run, device="cpu", backend="torch")
    dataset = RatedImages(learnable_dataset, "validation")
    plain = predict_dataset(predictor, dataset, batch_size=4)
    mirrored = predict_dataset(predictor, dataset, batch_size=4, tta=True)
    # row by row, in dataset order, across batch boundaries
    images = np.stack([dataset[i][0].numpy() for i in range(len(dataset))])
    flipped = predictor.score_images(np.ascontiguousarray(images[..., ::-1]))
    assert mirrored.shape == plain.shape == (10, 2)
    np.testing.assert_allclose(mirrored, (plain + flipped) / 2, atol=1e-4)
    assert not np.allclose(mirrored, plain, atol=1e-4)


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
            "--limit", "16", "--batch-size", "8", "--size", "80", "--device", "cpu", "--n-boot", "50",
            "--models", "emosepar,vgg16,inception_v3,xception"]
    assert main(args) == 0
    report = (tmp_path / "exp" / "report.md").read_text()
    for needle in ("Table 8.1", "Table 8.2", "Table 8.3", "emosepar (thesis, augment thesis, 80 px)", "inception_v3",
                   "/ 1.66", "noise ceiling", "stopped"):
        assert needle in report, needle
    # evaluations show the network's own outputs: after a few steps at lr 1e-5 they are still near 0, not clipped to 1
    early = pd.read_csv(tmp_path / "exp" / "runs" / "emosepar-thesis-80px" / "evaluation" / "predictions.csv")
    assert early["valence_pred"].min() < 1
    results = json.loads((tmp_path / "exp" / "results.json").read_text())
    names = {r["name"] for r in results["runs"]}
    # at 80 px, not the thesis's 150, every run says its side
    assert names == {"emosepar-thesis-80px", "vgg16-thesis-80px", "inception_v3-thesis-80px", "xception-thesis-80px",
                     "emosepar-thesis-augment-thesis-80px"}
    for run in results["runs"]:
        assert {"model", "recipe", "augment", "epochs_run", "stopped", "validation", "baselines"} <= set(run)
        assert run["stopped"] == "epochs" and run["epochs_run"] == 1 and run["size"] == 80
        assert set(run["validation"]) >= {"valence", "arousal", "pooled"}
        assert {"pcc", "rmse", "sagr"} <= set(run["validation"]["pooled"])
        assert set(run["baselines"]) == {"rmse_mean", "sagr_majority"}
        assert (tmp_path / "exp" / run["curve"]).stat().st_size > 5000
    capsys.readouterr()
    assert main(args) == 0  # everything finished: nothing is trained again
    assert capsys.readouterr().out.count("not trained again") == 5


def test_experiment_thesis_budget_stop_and_report_only(tmp_path, capsys):
    data = build_learnable_dataset(tmp_path / "data", n=48)
    args = ["experiment", "thesis", "--data", str(data), "--out", str(tmp_path / "exp"), "--epochs", "50",
            "--limit", "16", "--batch-size", "8", "--size", "80", "--device", "cpu", "--n-boot", "20",
            "--models", "emosepar", "--recipe", "modern", "--augment", "none", "--budget-minutes", "0.0001",
            "--precision", "bf16", "--ema", "0.9"]
    assert main(args) == 0
    run = json.loads((tmp_path / "exp" / "results.json").read_text())["runs"][0]
    assert run["name"] == "emosepar-modern-bf16-ema0.9-80px" and run["precision"] == "bf16" and run["ema"] == 0.9
    assert run["stopped"] == "budget" and run["epochs_run"] == 1  # at least one epoch, then the budget stops it
    # a larger budget continues the run where it stopped
    longer = [{"0.0001": "10", "50": "2"}.get(a, a) for a in args]
    assert main(longer) == 0
    run = json.loads((tmp_path / "exp" / "results.json").read_text())["runs"][0]
    assert run["epochs_run"] == 2 and run["stopped"] == "epochs"
    (tmp_path / "exp" / "report.md").unlink()
    capsys.readouterr()
    assert main(args + ["--report-only"]) == 0
    assert ": training" not in capsys.readouterr().out and (tmp_path / "exp" / "report.md").is_file()
    # on a machine without the run's folder (a later sitting), the report keeps the run, marked as carried
    (tmp_path / "exp" / "runs" / "emosepar-modern-bf16-ema0.9-80px").rename(tmp_path / "elsewhere")
    assert main(args + ["--report-only"]) == 0
    carried = json.loads((tmp_path / "exp" / "results.json").read_text())["runs"]
    assert [r["name"] for r in carried] == ["emosepar-modern-bf16-ema0.9-80px"] and carried[0]["epochs_run"] == 2
    assert "earlier results.json" in carried[0]["carried"]
    report = (tmp_path / "exp" / "report.md").read_text()
    assert "Carried from an earlier report" in report and "emosepar-modern-bf16-ema0.9-80px" in report
    assert "emosepar (modern, bf16, ema 0.9, 80 px)" in report


def test_experiment_thesis_refuses_a_finished_run_of_another_dataset(tmp_path, capsys):
    """One --out, two datasets: the second must not skip the first's finished run as done and report it."""
    first = build_learnable_dataset(tmp_path / "first", n=48)
    second = build_learnable_dataset(tmp_path / "second", n=48)
    args = ["experiment", "thesis", "--data", str(first), "--out", str(tmp_path / "exp"), "--epochs", "1",
            "--limit", "16", "--batch-size", "8", "--size", "80", "--device", "cpu", "--n-boot", "20",
            "--models", "emosepar", "--recipe", "modern", "--augment", "none"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([str(second) if a == str(first) else a for a in args]) != 0
    err = capsys.readouterr().err
    assert "emosepar-modern-80px holds a run trained with dataset" in err and str(first) in err
    # the same dataset by another spelling of its path is the same run: nothing is trained again
    assert main([str(tmp_path / "first" / ".." / "first") if a == str(first) else a for a in args]) == 0
    assert "not trained again" in capsys.readouterr().out
    # another seed is a replicate beside the first run, not the first run again
    assert main(args + ["--seed", "1"]) == 0
    runs = json.loads((tmp_path / "exp" / "results.json").read_text())["runs"]
    assert [(r["name"], r["seed"]) for r in runs] == [("emosepar-modern-80px", 0), ("emosepar-modern-80px-seed1", 1)]
    assert "emosepar (modern, 80 px, seed 1)" in (tmp_path / "exp" / "report.md").read_text()


def test_experiment_cross_dataset_smoke(tmp_path):
    data = build_learnable_dataset(tmp_path / "data", n=40)
    manifest = pd.read_parquet(data / "manifest.parquet")
    manifest.loc[manifest.index[:15], "source"] = "second"
    manifest.to_parquet(data / "manifest.parquet", index=False)
    assert main(["experiment", "cross-dataset", "--data", str(data), "--out", str(tmp_path / "x"), "--epochs", "1",
                 "--batch-size", "8", "--size", "80", "--device", "cpu", "--models", "emosepar", "--n-boot",
                 "50", "--augment", "thesis"]) == 0
    report = (tmp_path / "x" / "report.md").read_text()
    assert "Held out: second (15 pictures)" in report and "Held out: synthetic (25 pictures)" in report
    results = json.loads((tmp_path / "x" / "results.json").read_text())
    run = results["second"]["emosepar-thesis-augment-thesis"]  # --augment reaches every held-out run
    assert TrainConfig.load(tmp_path / "x" / "runs" / "second" / "emosepar-thesis-augment-thesis" / "config.yaml"
                            ).augment == "thesis"
    assert run["epochs_run"] == 1 and run["validation"]["n"] == 15 and "noise_ceiling" in run["validation"]


def test_experiment_cross_dataset_stages_from_config(tmp_path):
    """A probe-then-fine-tune configuration like configs/default.yaml, chained per held-out source."""
    data = build_learnable_dataset(tmp_path / "data", n=40)
    manifest = pd.read_parquet(data / "manifest.parquet")
    manifest.loc[manifest.index[:15], "source"] = "second"
    manifest.to_parquet(data / "manifest.parquet", index=False)
    config = tmp_path / "stages.yaml"
    config.write_text("stages:\n"
                      "  - {name: first, model: emosepar, recipe: modern, epochs: 1, batch_size: 8}\n"
                      "  - {name: second, model: emosepar, recipe: modern, init: first, epochs: 1, batch_size: 8}\n")
    assert main(["experiment", "cross-dataset", "--data", str(data), "--out", str(tmp_path / "x"), "--size", "80",
                 "--device", "cpu", "--stages-from", str(config), "--n-boot", "20"]) == 0
    results = json.loads((tmp_path / "x" / "results.json").read_text())
    assert set(results["synthetic"]) == {"first", "second"}
    assert results["synthetic"]["second"]["init"].endswith("first")


def _run_figures(model: str, rmse: float, ci: tuple[float, float], valence_r: float, arousal_r: float) -> dict:
    """The parts of a results.json run that the report's reading uses."""
    block = lambda r: {"pcc": r, "rmse": rmse, "ci95": {"pcc": [r - 0.1, r + 0.1], "rmse": list(ci)}}
    return {"model": model, "recipe": "modern", "augment": "none", "precision": "bf16",
            "validation": {"valence": block(valence_r), "arousal": block(arousal_r), "pooled": block(0.3), "n": 347},
            "baselines": {"rmse_mean": {"pooled": 1.33}},
            "splits": {"validation": {"overall": {"rmse": rmse, "pcc": 0.3}}}}


def test_the_reading_follows_the_figures():
    runs = [_run_figures("emosepar", 1.25, (1.20, 1.30), 0.39, 0.10),
            _run_figures("vgg16", 1.28, (1.22, 1.34), 0.30, 0.25),    # its interval reaches the best one's
            _run_figures("xception", 1.40, (1.35, 1.45), 0.20, 0.05)]  # above the baseline, apart from the best
    reading = thesis_reading(runs)
    assert "2 of 3 runs predict better than the training mean" in reading
    assert "not: xception (modern, bf16)" in reading
    assert "Lowest pooled RMSE: emosepar (modern, bf16), 1.25 [1.20, 1.30]" in reading
    assert "The interval of 1 other run reaches it (vgg16 (modern, bf16))" in reading and "347 validation" in reading
    assert "Highest valence r: emosepar" in reading and "highest arousal r: vgg16" in reading
    assert "our RMSE 1.25-1.40 against the thesis's 1.66-1.78" in reading
    runs[1]["validation"]["pooled"]["ci95"]["rmse"] = [1.31, 1.34]  # now clear of the best run's interval
    assert "No other run's interval reaches it" in thesis_reading(runs)
