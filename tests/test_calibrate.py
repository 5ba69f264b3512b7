"""`picaffect calibrate` end to end, and calibrated models in every output: torch, ONNX, files, REST, evaluate."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from picaffect.app.cli import main
from picaffect.inference import Predictor
from picaffect.inference.intervals import INTERVAL_COLUMNS, Calibration, conformal_quantile
from picaffect.core.scale import SAM, Scale, rescale

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def adaptive(tiny_emosepar, tmp_path_factory) -> Path:
    """The tiny Emosepar with an adaptive calibration written in by hand: known scores and a random error head."""
    from picaffect.inference import read, save_atomic

    record = read(tiny_emosepar)
    width = record["weights"]["head.fc.weight"].shape[1]
    g = torch.Generator().manual_seed(1)
    calibration = Calibration(errors={"by hand": {"valence": tuple(np.linspace(0.05, 2.0, 199)),
                                                  "arousal": tuple(np.linspace(0.02, 1.5, 199))}}, adaptive=True,
                              info={"protocol": {"name": "by hand"}}, scheme="pooled")
    record["calibration"] = {**calibration.to_dict(),
                             "error_head": {"weight": torch.randn(2, width, generator=g) * 2.0,
                                            "bias": torch.tensor([0.1, -0.2])}}
    return save_atomic(record, tmp_path_factory.mktemp("adaptive") / "adaptive.pt")


def pictures(n: int = 6, side: int = 80) -> np.ndarray:
    """Pictures of different colours and brightness (noise alone pools to nearly the same features)."""
    g = np.random.default_rng(0)
    base = g.integers(0, 256, (n, 1, 1, 3))
    ramp = np.linspace(0, 1, side)[None, :, None, None] * g.integers(0, 128, (n, 1, 1, 1))
    return np.clip(base + ramp + g.normal(0, 8, (n, side, side, 3)), 0, 255).astype(np.uint8)


def test_intervals_survive_export_to_onnx_unchanged(adaptive, tmp_path, capsys):
    onnx_path = tmp_path / "adaptive.onnx"
    assert main(["export", str(adaptive), str(onnx_path)]) == 0
    via_torch = Predictor.from_pretrained(adaptive, device="cpu", backend="torch")
    via_onnx = Predictor.from_pretrained(onnx_path, backend="onnx")
    assert via_onnx.calibration == via_torch.calibration and via_onnx.calibration.adaptive
    x = pictures()
    a, b = via_torch.predict_arrays_with_intervals(x), via_onnx.predict_arrays_with_intervals(x)
    assert np.isfinite(a).all() and np.abs(a - b).max() < 1e-4
    # the difficulty differs between pictures, so do the widths; the ONNX file gives the same ones
    _, d_torch = via_torch.backend.run_with_difficulty(x.transpose(0, 3, 1, 2))
    _, d_onnx = via_onnx.backend.run_with_difficulty(x.transpose(0, 3, 1, 2))
    assert d_torch.std(0).min() > 0 and np.abs(d_torch - d_onnx).max() < 1e-4 * d_torch.max()
    # bounds: prediction -/+ q * difficulty, clipped to 1..9, the value inside
    q = via_torch.calibration.quantiles(0.9)
    raw = via_torch.score_images(x.transpose(0, 3, 1, 2))
    expected_low = np.clip(raw[:, 0] - q[0] * d_torch[:, 0], SAM.min, SAM.max)
    assert np.abs(a[:, 2] - expected_low).max() < 1e-4
    assert (a[:, 2] <= a[:, 0]).all() and (a[:, 0] <= a[:, 3]).all() and (a[:, 4] <= a[:, 1]).all()
    # a slim copy keeps the calibration too
    slim = tmp_path / "slim.pt"
    assert main(["export", str(adaptive), str(slim)]) == 0
    assert Predictor.from_pretrained(slim, device="cpu", backend="torch").calibration == via_torch.calibration
    # and the level changes the widths the way the scores say
    via_onnx.level = 0.5
    c = via_onnx.predict_arrays_with_intervals(x)
    assert ((c[:, 3] - c[:, 2]) <= (b[:, 3] - b[:, 2]) + 1e-9).all()


def test_files_and_rows_carry_intervals_and_scale_them(adaptive, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "pics"
    folder.mkdir()
    for k, array in enumerate(pictures(3, 40)):
        Image.fromarray(array).save(folder / f"p{k}.png")
    for ending in (".csv", ".json", ".jsonl", ".parquet"):
        out = tmp_path / f"scores{ending}"
        assert main(["predict", str(folder), "--model", str(adaptive), "--backend", "torch", "--out", str(out),
                     "--scale", "1,7", "--level", "0.8"]) == 0
        if ending == ".csv":
            frame = pd.read_csv(out)
            meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
            assert meta["interval_level"] == 0.8 and "80% prediction intervals" in meta["description"]
        elif ending == ".json":
            frame = pd.DataFrame(json.loads(out.read_text())["predictions"])
        elif ending == ".jsonl":
            frame = pd.read_json(out, lines=True)
        else:
            frame = pd.read_parquet(out)
        assert list(frame.columns[:7]) == ["path", "valence", "arousal", *INTERVAL_COLUMNS], ending
        assert len(frame) == 3 and (frame["valence_low"] <= frame["valence"]).all()
        assert (frame["arousal_high"] >= frame["arousal"]).all()
        expected = rescale(frame["valence_low"], SAM, Scale(1, 7))
        assert np.abs(frame["valence_low_scaled"] - expected).max() < 1e-3
    err = capsys.readouterr().err
    assert "no calibration" not in err


def test_an_uncalibrated_model_predicts_without_intervals_and_says_so(tiny_emosepar, tmp_path, capsys):
    onnx_path = tmp_path / "plain.onnx"
    assert main(["export", str(tiny_emosepar), str(onnx_path)]) == 0
    capsys.readouterr()
    plain = Predictor.from_pretrained(onnx_path, backend="onnx")
    assert plain.calibration is None and plain.backend.run_with_difficulty(
        pictures(2).transpose(0, 3, 1, 2))[1] is None
    from PIL import Image

    Image.fromarray(pictures(1, 40)[0]).save(tmp_path / "one.png")
    assert main(["predict", str(tmp_path / "one.png"), "--model", str(onnx_path), "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    row = json.loads(out.splitlines()[0])
    assert "valence_low" not in row and row["valence"] is not None
    assert "has no calibration" in err and "picaffect calibrate" in err


def test_calibrate_end_to_end_with_coverage_on_each_held_out_source(tiny_emosepar, three_sources, tmp_path, capsys):
    out, onnx_path = tmp_path / "calibrated.pt", tmp_path / "calibrated.onnx"
    assert main(["calibrate", str(tiny_emosepar), "--data", str(three_sources), "--out", str(out), "--onnx",
                 str(onnx_path), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "protocol refit-head: 144 held-out rows (alpha 48, beta 48, gamma 48)" in printed
    for source in ("alpha", "beta", "gamma"):
        assert f"| {source} | 48 | valence |" in printed
    model = Predictor.from_pretrained(out, device="cpu", backend="torch")
    info = model.calibration.info
    assert model.calibration.n == 144 and info["protocol"]["name"] == "refit-head"
    assert {r["source"] for r in info["leave_one_source_out"]} == {"alpha", "beta", "gamma"}
    assert all(0 <= r["coverage"] <= 1 and r["mean_width"] > 0 for r in info["leave_one_source_out"])
    onnx_model = Predictor.from_pretrained(onnx_path, backend="onnx")
    assert onnx_model.calibration == model.calibration
    # features extracted beforehand (picaffect features --no-tta) give the same calibration; mirrored ones are refused
    feats = tmp_path / "feats.npz"
    assert main(["features", str(tiny_emosepar), "--data", str(three_sources), "--out", str(feats), "--no-tta",
                 "--device", "cpu"]) == 0
    again = tmp_path / "again.pt"
    assert main(["calibrate", str(tiny_emosepar), "--data", str(three_sources), "--out", str(again), "--features",
                 str(feats)]) == 0
    assert Predictor.from_pretrained(again, device="cpu", backend="torch").calibration.errors == \
        model.calibration.errors
    capsys.readouterr()
    assert main(["features", str(tiny_emosepar), "--data", str(three_sources), "--out", str(feats), "--device",
                 "cpu"]) == 0
    assert main(["calibrate", str(tiny_emosepar), "--data", str(three_sources), "--out", str(again), "--features",
                 str(feats)]) == 2
    assert "made with mirror averaging" in capsys.readouterr().err
    x = pictures(4)
    assert np.abs(model.predict_arrays_with_intervals(x) - onnx_model.predict_arrays_with_intervals(x)).max() < 1e-4

    # evaluate reports coverage and width per source and pooled, beside a constant interval
    result_dir = tmp_path / "eval"
    assert main(["evaluate", str(out), "--data", str(three_sources), "--split", "all", "--by", "source", "--out",
                 str(result_dir), "--device", "cpu"]) == 0
    metrics = json.loads((result_dir / "metrics.json").read_text())
    intervals = metrics["intervals"]
    assert intervals["level"] == 0.9 and set(intervals["by_source"]) == {"alpha", "beta", "gamma"}
    pooled = intervals["pooled"]
    assert pooled["n"] == 144
    for dim in ("valence", "arousal"):
        assert 0.5 < pooled[dim]["coverage"] <= 1 and pooled[dim]["mean_width"] > 0
        assert pooled[dim]["constant_width_same_coverage"] > 0
    table = pd.read_csv(result_dir / "predictions.csv")
    inside = (table["valence_true"] >= table["valence_low"]) & (table["valence_true"] <= table["valence_high"])
    assert abs(inside.mean() - pooled["valence"]["coverage"]) < 1e-9
    assert "Prediction intervals (90%)" in (result_dir / "report.md").read_text()


def test_calibrate_from_held_out_predictions_of_any_protocol(tiny_emosepar, three_sources, tmp_path, capsys):
    rows = pd.read_parquet(three_sources / "manifest.parquet")
    rows = rows[rows["status"] == "ok"]
    g = np.random.default_rng(0)
    noise = np.where(rows["source"].to_numpy() == "gamma", 1.0, 0.3)[:, None] * g.normal(size=(len(rows), 2))
    table = pd.DataFrame({"id": rows["id"], "source": rows["source"], "valence_true": rows["valence"],
                          "arousal_true": rows["arousal"],
                          "valence_pred": rows["valence"] + noise[:, 0], "arousal_pred": rows["arousal"] + noise[:, 1]})
    held_out = tmp_path / "held_out.csv"
    table.to_csv(held_out, index=False)
    out = tmp_path / "from_table.pt"
    assert main(["calibrate", str(tiny_emosepar), "--data", str(three_sources), "--out", str(out), "--predictions",
                 str(held_out), "--device", "cpu", "--constant"]) == 0
    calibration = Predictor.from_pretrained(out, device="cpu", backend="torch").calibration
    assert calibration.info["protocol"]["name"] == "predictions" and not calibration.adaptive
    assert calibration.scheme == "pooled" and set(calibration.errors) == {"alpha", "beta", "gamma"}
    residuals = table[["valence_true", "arousal_true"]].to_numpy() - table[["valence_pred", "arousal_pred"]].to_numpy()
    for source, block in calibration.errors.items():  # each source keeps its own signed errors, in table order
        mine = (table["source"] == source).to_numpy()
        assert np.allclose(block["valence"], residuals[mine, 0], atol=1e-4)
        assert np.allclose(block["arousal"], residuals[mine, 1], atol=1e-4)
    # the held-out accuracy, per source and pooled, is that of the table's predictions (and is printed)
    accuracy = {r["source"]: r for r in calibration.info["held_out_accuracy"]}
    assert list(accuracy) == ["alpha", "beta", "gamma", "all"] and accuracy["all"]["n"] == len(table)
    for source, block in accuracy.items():
        mine = table if source == "all" else table[table["source"] == source]
        assert block["valence_r"] == pytest.approx(np.corrcoef(mine["valence_true"], mine["valence_pred"])[0, 1])
        assert block["arousal_r"] == pytest.approx(np.corrcoef(mine["arousal_true"], mine["arousal_pred"])[0, 1])
        errors = mine[["valence_true", "arousal_true"]].to_numpy() - mine[["valence_pred", "arousal_pred"]].to_numpy()
        assert block["rmse"] == pytest.approx(np.sqrt(np.mean(errors ** 2)))
    assert accuracy["gamma"]["rmse"] > 2 * accuracy["alpha"]["rmse"]
    assert f"| gamma | 48 | {accuracy['gamma']['valence_r']:.2f} |" in capsys.readouterr().out
    # gamma's errors are three times the others': calibrated without it, its intervals cover too little
    gamma = [r for r in calibration.info["leave_one_source_out"] if r["source"] == "gamma"]
    assert all(r["coverage"] < 0.8 for r in gamma)
    # the default, pooled: the plain split-conformal quantile of every row's |error|, whatever its source
    assert calibration.quantiles(0.9) == pytest.approx(
        [conformal_quantile(np.abs(residuals[:, j]), 0.9) for j in (0, 1)], abs=1e-4)
    # --scheme worst-source: the largest source's own quantile, here gamma's (errors three times the others')
    worst = tmp_path / "worst.pt"
    assert main(["calibrate", str(tiny_emosepar), "--data", str(three_sources), "--out", str(worst), "--predictions",
                 str(held_out), "--device", "cpu", "--constant", "--scheme", "worst-source"]) == 0
    widest = Predictor.from_pretrained(worst, device="cpu", backend="torch").calibration
    assert widest.scheme == "worst-source" and widest.info["scheme"] == "worst-source"
    gamma_rows = (table["source"] == "gamma").to_numpy()
    assert widest.quantiles(0.9) == pytest.approx(
        [conformal_quantile(np.abs(residuals[gamma_rows, j]), 0.9) for j in (0, 1)], abs=1e-4)
    capsys.readouterr()

    # bad tables: one line naming the file and the reason, exit 2
    broken = tmp_path / "broken.csv"
    table.drop(columns=["valence_pred"]).to_csv(broken, index=False)
    assert main(["calibrate", str(tiny_emosepar), "--data", str(three_sources), "--out", str(out), "--predictions",
                 str(broken), "--device", "cpu"]) == 2
    assert f"{broken}: held-out predictions need the columns valence_pred" in capsys.readouterr().err
    stranger = tmp_path / "stranger.csv"
    table.assign(id="nope").head(3).to_csv(stranger, index=False)
    assert main(["calibrate", str(tiny_emosepar), "--data", str(three_sources), "--out", str(out), "--predictions",
                 str(stranger), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "more than once" in err or "does not hold" in err


def test_the_service_passes_intervals_through(adaptive):
    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    import io
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from picaffect.service import Settings, create_app

    buffer = io.BytesIO()
    Image.fromarray(pictures(1, 40)[0]).save(buffer, format="PNG")
    predictor = Predictor.from_pretrained(adaptive, device="cpu", backend="torch")
    with TestClient(create_app(predictor, Settings())) as c:
        body = c.post("/v1/predict?scale=1,7", files=[("files", ("p.png", buffer.getvalue(), "image/png")),
                                                      ("files", ("bad.png", b"not a picture", "image/png"))]).json()
        model = c.get("/v1/model").json()
    assert model["intervals"]["level"] == 0.9 and model["intervals"]["protocol"] == "by hand"
    good, bad = body["predictions"]
    assert body["interval_level"] == 0.9
    assert good["valence_low"] <= good["valence"] <= good["valence_high"] and "arousal_high_scaled" in good
    assert bad["error"] and bad["valence_low"] is None


def test_the_cross_dataset_experiment_reports_coverage_on_each_held_out_source(tmp_path):
    """Held-out predictions as `experiment cross-dataset` writes them (each source scored by the run that left it
    out; the run's own training rows beside them): equal error levels give about 90 % on every held-out source."""
    from picaffect.workflows.calibrate import read_predictions
    from picaffect.workflows.experiment_reports import intervals_markdown_section
    from picaffect.workflows.experiments import cross_dataset_intervals

    g = np.random.default_rng(0)
    for source in ("alpha", "beta", "gamma"):
        y = g.uniform(2, 8, (400, 2))
        held = pd.DataFrame({"id": [f"{source}{i}" for i in range(400)], "source": source, "split": "validation",
                             "valence_true": y[:, 0], "arousal_true": y[:, 1],
                             "valence_pred": y[:, 0] + g.normal(0, 0.5, 400),
                             "arousal_pred": y[:, 1] + g.normal(0, 0.5, 400)})
        trained = held.assign(source="other", split="train", valence_pred=held["valence_true"])  # no error: ignored
        folder = tmp_path / "runs" / source / "probe" / "evaluation"
        folder.mkdir(parents=True)
        pd.concat([held, trained]).to_csv(folder / "predictions.csv", index=False)
    intervals = cross_dataset_intervals(tmp_path)
    rows = intervals["probe"]
    assert {(r["source"], r["dimension"]) for r in rows} == {(s, d) for s in ("alpha", "beta", "gamma")
                                                            for d in ("valence", "arousal")}
    for r in rows:
        assert r["n"] == 400 and 0.85 <= r["coverage"] <= 0.95 and 1.3 < r["mean_width"] < 2.0  # 2 x 1.645 x 0.5
    assert "| probe | gamma | 400 | arousal |" in intervals_markdown_section(intervals)
    table = read_predictions([tmp_path], stage="probe")
    assert len(table) == 1200 and set(table["source"]) == {"alpha", "beta", "gamma"}


def test_a_bad_onnx_name_is_refused_before_any_work(tmp_path):
    """The API makes the command's check: with a model that does not exist, the --onnx name is still named first."""
    from picaffect.core.errors import UsageError
    from picaffect.workflows.calibrate import calibrate

    with pytest.raises(UsageError, match=r"--onnx .*twin\.pt: give a file ending in \.onnx"):
        calibrate(tmp_path / "no-such-model.pt", tmp_path, tmp_path / "out.pt", onnx=tmp_path / "twin.pt")
    assert list(tmp_path.iterdir()) == []
