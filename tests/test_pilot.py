"""`picaffect calibrate MODEL --pilot FILE`: the method's algebra, the workflow end to end, and bad pilots refused."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_learnable_set
from picaffect.app.cli import main
from picaffect.core.errors import UsageError
from picaffect.evaluation.pilot_conformal import (PENALTIES, WEIGHTS, choose, correction_line, dimension_bounds,
                                                  fit_correction, fit_refit, minimum_pilot, penalty_grid,
                                                  pilot_calibration)
from picaffect.inference.intervals import Calibration, conformal_quantile, jackknife_plus_bounds
from picaffect.training.pilot_refit import kernel_prior, linear_prior

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


# -- the algebra ----------------------------------------------------------------------------------------------------
def _toy(seed: int = 0, n: int = 150, d: int = 12, k: int = 14):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, d))
    beta = g.normal(size=(d, 2)) * 0.3
    y = 5 + x @ beta + g.normal(size=(n, 2)) * 0.5
    xp = g.normal(size=(k, d)) + 0.4
    yp = 5.6 + xp @ beta * 1.3 + g.normal(size=(k, 2)) * 0.5
    return x, y, xp, yp


@pytest.mark.parametrize("recalibrate", [False, True])
def test_the_refit_is_the_ridge_refitted_with_the_pilot_rows_at_their_weight(recalibrate):
    """The Gaussian-process update equals the ridge solved afresh on training plus weighted pilot rows (same
    penalty and standardisation, unpenalised intercept, the recalibration line kept), and its head change too."""
    x, y, xp, yp = _toy()
    prior = linear_prior(x, y, np.arange(len(x)) // 2, recalibrate)
    query = np.random.default_rng(9).normal(size=(6, x.shape[1]))
    weight = 20.0
    r, _ = prior.residuals(xp, yp)
    for j in range(2):
        z, zp, zq = (prior.coordinates(a) for a in (x, xp, query))
        design = np.vstack([np.c_[z, np.ones(len(z))], np.c_[zp, np.ones(len(zp))]])
        w = np.r_[np.ones(len(z)), np.full(len(zp), weight)]
        penalty = np.diag(np.r_[np.full(z.shape[1], prior.alphas[j]), 0.0])
        target = np.r_[y[:, j], yp[:, j]]
        solved = np.linalg.solve(design.T @ (w[:, None] * design) + penalty, design.T @ (w * target))
        explicit = prior.line[j, 0] + prior.line[j, 1] * (np.c_[zq, np.ones(len(zq))] @ solved)
        dual = np.linalg.solve(prior.covariance(zp, zp, j) + np.eye(len(zp)) / weight, r[:, j])
        update = prior.predict(query)[:, j] + prior.line[j, 1] * prior.covariance(zq, zp, j) @ dual
        dw, db = prior.linear_update(xp, dual, j)
        assert np.abs(explicit - update).max() < 1e-8
        assert np.abs(prior.predict(query)[:, j] + query @ dw + db - update).max() < 1e-8


def test_the_kernel_refit_is_the_kernel_ridge_refitted_with_the_pilot_rows():
    g = np.random.default_rng(1)
    x = g.normal(size=(90, 10))
    y = 5 + np.c_[np.sin(x[:, 0]), x[:, 1] ** 2 / 3] + g.normal(size=(90, 2)) * 0.3
    prior = kernel_prior(x, y, np.arange(90), components=6)
    xp, query = g.normal(size=(8, 10)), g.normal(size=(5, 10))
    yp = 5.5 + np.c_[np.sin(xp[:, 0]), xp[:, 1] ** 2 / 3]
    r, _ = prior.residuals(xp, yp)
    k = prior.kernel
    for j in range(2):
        support = np.vstack([k.z, prior.coordinates(xp)])
        gram = prior.rbf(support, support)
        noise = prior.alphas[j] * np.diag(np.r_[np.ones(90), np.full(8, 1 / 10.0)])
        dual = np.linalg.solve(gram + noise, np.r_[y[:, j], yp[:, j]] - k.ym[j])
        explicit = prior.rbf(prior.coordinates(query), support) @ dual + k.ym[j]
        zp, zq = prior.coordinates(xp), prior.coordinates(query)
        update = prior.predict(query)[:, j] + prior.covariance(zq, zp, j) @ np.linalg.solve(
            prior.covariance(zp, zp, j) + np.eye(8) / 10.0, r[:, j])
        assert np.abs(explicit - update).max() < 1e-8


def test_nested_leave_one_out_errors_are_those_of_refitting_without_each_picture():
    """Brute force: for each pilot picture, its weight chosen by leave-one-out on the others, then the refit on the
    others predicts it; the closed form (rank-one downdates) gives the same errors."""
    x, y, xp, yp = _toy(2, k=9)
    prior = linear_prior(x, y, np.arange(len(x)), False)
    zp = prior.coordinates(xp)
    r, u = prior.residuals(xp, yp)
    cov = prior.covariance(zp, zp, 0)
    fit = fit_refit(cov, r[:, 0], u[:, 0], 1.0)

    def predict(fit_rows, at, weight):
        if weight == 0:
            return 0.0
        return cov[at, fit_rows] @ np.linalg.solve(cov[np.ix_(fit_rows, fit_rows)] + np.eye(len(fit_rows)) / weight,
                                                   r[fit_rows, 0])

    brute = []
    for i in range(len(r)):
        others = [t for t in range(len(r)) if t != i]
        scores = [sum((u[j, 0] + r[j, 0] - predict([t for t in others if t != j], j, w)) ** 2 for j in others)
                  for w in WEIGHTS]
        brute.append(u[i, 0] + r[i, 0] - predict(others, i, WEIGHTS[int(np.argmin(scores))]))
    assert np.abs(np.array(brute) - fit.errors).max() < 1e-9
    assert fit.weight in WEIGHTS and fit.loo_rmse[fit.weight] == min(fit.loo_rmse.values())


def test_nested_leave_one_out_of_the_correction_matches_brute_force():
    g = np.random.default_rng(3)
    p = g.uniform(3, 7, 12)
    y = 0.5 + 1.2 * p + g.normal(0, 0.4, 12)
    fit = fit_correction(p, y)
    l0, l1 = penalty_grid()

    def line(rows, a, b):
        q, res = p[rows], y[rows] - p[rows]
        return correction_line(len(rows), q.sum(), res.sum(), (q * q).sum(), (q * res).sum(), a, b)

    for i in range(12):
        others = [t for t in range(12) if t != i]
        scores = []
        for a, b in zip(l0, l1):
            total = 0.0
            for j in others:
                offset, slope = line([t for t in others if t != j], a, b)
                total += (y[j] - offset - slope * p[j]) ** 2
            scores.append(total)
        best = int(np.argmin(scores))
        offset, slope = line(others, l0[best], l1[best])
        assert abs(fit.errors[i] - (y[i] - offset - slope * p[i])) < 1e-9
        assert abs(fit.loo_offset[i] - offset) < 1e-12 and abs(fit.loo_slope[i] - slope) < 1e-12


def test_a_pilot_that_says_nothing_changes_nothing_and_a_biased_one_is_corrected():
    g = np.random.default_rng(4)
    p = g.uniform(2, 8, 40)
    unbiased = choose(p, p + g.normal(0, 0.01, 40))
    assert unbiased.correction.slope == pytest.approx(1, abs=0.01) and abs(unbiased.correction.offset) < 0.05
    biased = choose(p, p + 1.5 + g.normal(0, 0.3, 40))
    assert biased.corrected and biased.correction(np.array([5.0]))[0] == pytest.approx(6.5, abs=0.2)
    assert math.isinf(PENALTIES[0]) and 0.0 in PENALTIES


def test_jackknife_plus_intervals_cover_a_new_set_at_their_level():
    """Many random pilots of 20 from a set whose ratings are a biased, stretched version of the predictions: the
    90 % intervals around the corrected predictions cover the rest at about 90 % on average."""
    g = np.random.default_rng(5)
    n = 400
    p = g.uniform(2, 8, n)
    y = np.clip(-1.0 + 1.3 * p + g.normal(0, 0.6, n), 1, 9)
    coverage = []
    for draw in range(150):
        pilot = g.choice(n, 20, replace=False)
        rest = np.setdiff1d(np.arange(n), pilot)
        fit = choose(p[pilot], y[pilot])
        low, high = dimension_bounds(fit, fit.correction(p[rest]))
        coverage.append(np.mean((y[rest] >= low) & (y[rest] <= high)))
    assert 0.86 <= np.mean(coverage) <= 0.95


def test_a_pilot_calibration_round_trips_and_gives_the_jackknife_plus_interval():
    g = np.random.default_rng(6)
    p, y = g.uniform(3, 7, 15), g.uniform(2, 8, 15)
    fits = {"valence": choose(p, y), "arousal": choose(p, y, None, "none")}
    calibration = pilot_calibration(fits, None, {"protocol": {"name": "pilot"}})
    again = Calibration.from_json(calibration.to_json())
    assert again.scheme == "jackknife+" and again.sources == {"pilot": 15}
    ratings = np.c_[g.uniform(3, 7, 5), g.uniform(3, 7, 5)]
    bounds = again.bounds(ratings, None, 0.9)
    low, high = jackknife_plus_bounds(ratings[:, 0], fits["valence"].loo_offset, fits["valence"].loo_slope,
                                      fits["valence"].errors, np.ones(5), 0.9)
    assert np.abs(bounds[:, 0] - np.clip(low, 1, 9)).max() < 1e-4
    assert np.abs(bounds[:, 1] - np.clip(high, 1, 9)).max() < 1e-4
    # no adjustment: lines of slope 1 through 0, so the interval is split conformal on the pilot's errors
    q = conformal_quantile(np.abs(y - p), 0.9)
    assert np.abs(bounds[:, 2] - np.clip(ratings[:, 1] - q, 1, 9)).max() < 1e-4
    assert (bounds[:, 0] <= ratings[:, 0] + 1e-9).all() and (bounds[:, 1] >= ratings[:, 0] - 1e-9).all()
    with pytest.raises(UsageError, match="a 95 % interval needs at least 19 calibration rows"):
        again.bounds(ratings, None, 0.95)
    assert minimum_pilot(0.9) == 10


# -- the workflow ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def readout_model(three_sources, tmp_path_factory) -> Path:
    """A ridge readout on a frozen random Emosepar, fitted by the linear recipe on the train and test rows of
    ``three_sources`` (what `retrain` ships for a probe), with the metadata that says so. Its batch norms hold
    the statistics of these pictures, as a trained network's would, so that its features vary between them."""
    from picaffect import models
    from picaffect.data.dataset import RatedImages, make_loader
    from picaffect.inference import ModelSpec, model_record, save_atomic
    from picaffect.inference.forward import to_input
    from picaffect.training.probe import dataset_features, fit_linear_readout

    torch.manual_seed(0)
    model = models.create("emosepar")
    spec = ModelSpec(architecture="emosepar", size=80, output_scale=4.0, output_offset=5.0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # the mean over every batch seen
    model.train()
    with torch.no_grad():
        for images, _ in make_loader(RatedImages(three_sources, "all"), 200, shuffle=False):
            model(to_input(images, spec, torch.device("cpu")))
    model.eval()
    parts = [RatedImages(three_sources, s) for s in ("train", "test")]
    x = np.concatenate([dataset_features(model, p, spec, torch.device("cpu")) for p in parts]).astype(np.float64)
    y = np.concatenate([spec.encode(p.targets).numpy() for p in parts]).astype(np.float64)
    readout = fit_linear_readout(x, y, np.concatenate([p.groups for p in parts]))
    with torch.no_grad():
        model.head.fc.weight.copy_(torch.from_numpy(readout.weight.T))
        model.head.fc.bias.copy_(torch.from_numpy(readout.bias))
    metadata = {"trained_with": {"recipe": "ridge", "ridge_fit": "train+test", "ridge_recalibrate": False}}
    return save_atomic(model_record(model, spec, metadata=metadata), tmp_path_factory.mktemp("m") / "readout.pt")


def new_set(root: Path, n: int, seed: int = 7) -> pd.DataFrame:
    """A new picture set, rated with a bias the training sets did not have: (path, valence, arousal) rows."""
    table = pd.read_csv(write_learnable_set(root, n=n, size=24, seed=seed))
    return pd.DataFrame({"path": table["file"], "valence": np.clip(0.8 * table["valence"] + 2.0, 1, 9).round(3),
                         "arousal": np.clip(table["arousal"] * 0.9 + 1.0, 1, 9).round(3)})


@pytest.fixture(scope="module")
def pilot_csv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mine") / "pictures"
    table = new_set(root, 30)
    table.to_csv(root / "pilot.csv", index=False)
    return root / "pilot.csv"


def _read(path: Path):
    from picaffect.inference import Predictor

    return Predictor.from_pretrained(path, device="cpu", backend="torch")


def test_calibrate_with_a_pilot_writes_a_file_every_command_reads(readout_model, pilot_csv, tmp_path, capsys):
    out, onnx_path = tmp_path / "mine.pt", tmp_path / "mine.onnx"
    assert main(["calibrate", str(readout_model), "--pilot", str(pilot_csv), "--out", str(out), "--onnx",
                 str(onnx_path), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "Pilot: 30 pictures" in printed and "Methods paragraph" in printed and "jackknife+" in printed
    assert "not tried: it needs the rows the readout was fitted on" in printed
    report = out.with_suffix(".report.md").read_text()
    assert "random pilot of 30 of the set's pictures" in report and report in printed
    table = pd.read_csv(pilot_csv)
    paths = [str(pilot_csv.parent / p) for p in table["path"]]
    base, mine = _read(readout_model), _read(out)
    assert mine.calibration.scheme == "jackknife+" and mine.calibration.info["protocol"]["name"] == "pilot"
    summary = mine.calibration.info["pilot"]
    # the file predicts the kept correction of the model's own predictions
    before = np.array([[r["valence"], r["arousal"]] for r in base.predict(paths)])
    after = mine.predict(paths)
    for j, d in enumerate(("valence", "arousal")):
        c = summary["dimensions"][d]["correction"]
        expected = np.clip(c["offset"] + c["slope"] * before[:, j], 1, 9) if c["applied"] else before[:, j]
        assert np.abs(np.array([r[d] for r in after]) - expected).max() < 2e-3
    # the bias the pilot carried (ratings well above the model's) is taken out
    valence = summary["dimensions"]["valence"]
    assert valence["kept"] == "correction" and valence["correction"]["applied"]
    assert abs(valence["after"]["bias"]) < abs(valence["before"]["bias"])
    # torch and ONNX give the same ratings and intervals; info shows the pilot
    onnx_model = __import__("picaffect").Predictor.from_pretrained(onnx_path, backend="onnx")
    assert onnx_model.calibration == mine.calibration
    a, b = mine.predict(paths[:4]), onnx_model.predict(paths[:4])
    assert max(abs(r[c] - s[c]) for r, s in zip(a, b) for c in ("valence", "valence_low", "arousal_high")) < 1e-3
    assert main(["info", str(onnx_path)]) == 0
    shown = capsys.readouterr().out
    assert "Pilot calibration: 30 pictures" in shown and "scheme jackknife+" in shown
    # predict writes the intervals, and says where they come from
    scores = tmp_path / "norms.csv"
    assert main(["predict", str(pilot_csv.parent), "--model", str(out), "--out", str(scores)]) == 0
    meta = json.loads(scores.with_name("norms.csv.meta.json").read_text())
    assert "jackknife+ on a rated pilot of 30 pictures" in meta["description"]
    assert {"valence_low", "arousal_high"} <= set(pd.read_csv(scores).columns)
    # select reads those intervals like any others
    assert main(["select", str(scores), "--out", str(tmp_path / "sets"), "--sets", "2", "--size", "4",
                 "--prefer-sure", "0.1", "--max-width", "9"]) == 0
    assert len(pd.read_csv(tmp_path / "sets" / "sets.csv")) == 8


def test_the_readout_is_refitted_with_the_pilot_where_its_training_rows_are_given(readout_model, pilot_csv,
                                                                                   three_sources, tmp_path, capsys):
    out = tmp_path / "refit.pt"
    assert main(["calibrate", str(readout_model), "--pilot", str(pilot_csv), "--out", str(out), "--data",
                 str(three_sources), "--pilot-adjust", "refit", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "linear ridge readout refitted on" in printed and "reproduces the model" in printed
    summary = _read(out).calibration.info["pilot"]
    assert all(summary["dimensions"][d]["kept"] == "refit" for d in ("valence", "arousal"))
    assert "leave-one-out runs refitted the readout" in summary["guarantee"]
    # the refitted file predicts its pilot better than the model did (it was fitted on them)
    table = pd.read_csv(pilot_csv)
    paths = [str(pilot_csv.parent / p) for p in table["path"]]
    y = table[["valence", "arousal"]].to_numpy()
    before = np.array([[r["valence"], r["arousal"]] for r in _read(readout_model).predict(paths)])
    after = np.array([[r["valence"], r["arousal"]] for r in _read(out).predict(paths)])
    assert np.sqrt(((after - y) ** 2).mean()) < np.sqrt(((before - y) ** 2).mean())
    # a model the recipe does not reproduce (its head changed by hand) is not refitted, and auto says why
    from picaffect.inference import read, save_atomic

    record = read(readout_model)
    record["weights"]["head.fc.bias"] = record["weights"]["head.fc.bias"] + 0.5
    other = save_atomic(record, tmp_path / "other.pt")
    assert main(["calibrate", str(other), "--pilot", str(pilot_csv), "--out", str(tmp_path / "o.pt"), "--data",
                 str(three_sources), "--device", "cpu"]) == 0
    assert "the model is not that readout on these rows" in capsys.readouterr().out


def test_evaluate_reports_coverage_against_the_pilots_promise(readout_model, pilot_csv, tmp_path, capsys):
    from picaffect.data.build import SourceSpec, build

    out = tmp_path / "mine.pt"
    assert main(["calibrate", str(readout_model), "--pilot", str(pilot_csv), "--out", str(out), "--device",
                 "cpu"]) == 0
    rest = tmp_path / "rest"
    new_set(rest, 60, seed=8).to_csv(rest / "ratings.csv", index=False)
    data = tmp_path / "rest-data"
    build(data, [SourceSpec("csv", rest / "ratings.csv", "mine", {"path": "path", "valence": "valence",
                                                                  "arousal": "arousal", "scale": "1,9"})],
          size=80, split="thesis", progress=False, plots=False)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(data), "--split", "all", "--out", str(tmp_path / "ev"),
                 "--device", "cpu"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    intervals = metrics["intervals"]
    assert intervals["calibration"]["protocol"] == "pilot"
    assert "30 pilot pictures" in intervals["calibration"]["promise"]
    for d in ("valence", "arousal"):
        block = intervals["pooled"][d]
        low, high = block["coverage_ci95"]
        assert low <= block["coverage"] <= high
        assert block["versus_level"] == ("below" if high < 0.9 else "above" if low > 0.9 else "consistent")
    assert "The file's promise" in (tmp_path / "ev" / "report.md").read_text()


# -- bad pilots, refused before anything is written -------------------------------------------------------------
def _refused(args: list[str], out: Path, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not out.with_suffix(".report.md").exists()
    return err


def test_bad_pilots_are_refused_with_one_line_and_nothing_written(readout_model, pilot_csv, tmp_path, capsys):
    from PIL import Image

    table = pd.read_csv(pilot_csv)
    root = pilot_csv.parent
    out = tmp_path / "x.pt"

    def run(frame: pd.DataFrame, name: str = "bad.csv", *extra: str) -> str:
        path = root / name
        if name.endswith(".xlsx"):
            frame.to_excel(path, index=False)
        else:
            frame.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
        return _refused(["calibrate", str(readout_model), "--pilot", str(path), "--out", str(out), "--device", "cpu",
                         *extra], out, capsys)

    err = run(table.head(7))
    assert "7 pictures are too few" in err and "at least 10" in err and "k >= 9" in err
    missing = table.copy()
    missing.loc[3, "path"] = "gone.png"
    err = run(missing)
    assert "1 picture not found" in err and "gone.png" in err and "--skip-missing" in err
    Image.new("RGB", (4, 4)).save(root / "ok.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    broken = table.copy()
    broken.loc[2, "path"] = "broken.png"
    err = run(broken)
    assert "cannot be read" in err and "broken.png" in err
    twice = table.copy()
    twice.loc[5, "path"] = twice.loc[1, "path"]
    err = run(twice, "bad.tsv")
    assert "named twice" in err and "line 7 repeats" in err
    outside = table.copy()
    outside.loc[4, "valence"] = 9.5
    err = run(outside, "bad.xlsx")
    assert "outside 1..9" in err and "row 6" in err and "--pilot-scale" in err
    words = table.copy().astype({"arousal": object})
    words.loc[0, "arousal"] = "high"
    err = run(words)
    assert "arousal 'high' is not a number" in err and "line 2" in err
    err = run(table.rename(columns={"arousal": "aro"}))
    assert "no column arousal" in err
    err = run(table, "ok.csv", "--pilot-scale", "7,1")
    assert "--pilot-scale" in err
    # a model that cannot score a picture (its head gives NaN) is refused, naming the pictures
    from picaffect.inference import read, save_atomic

    record = read(readout_model)
    record["weights"]["head.fc.weight"] = record["weights"]["head.fc.weight"] * float("nan")
    nan_model = save_atomic(record, tmp_path / "nan.pt")
    err = _refused(["calibrate", str(nan_model), "--pilot", str(pilot_csv), "--out", str(out), "--device", "cpu"],
                   out, capsys)
    assert "cannot score 30 picture(s)" in err


def test_skip_missing_goes_on_and_counts_them(readout_model, pilot_csv, tmp_path, capsys):
    table = pd.read_csv(pilot_csv).rename(columns={"path": "picture"})
    table["valence"] = (table["valence"] - 1) * 6 / 8 + 1          # on 1..7
    table["arousal"] = (table["arousal"] - 1) * 6 / 8 + 1
    table.loc[0, "picture"] = "gone.png"
    table.loc[1, "picture"] = str((pilot_csv.parent / table.loc[1, "picture"]).resolve())   # absolute works too
    path = pilot_csv.parent / "seven.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "skip.pt"
    assert main(["calibrate", str(readout_model), "--pilot", str(path), "--out", str(out), "--pilot-scale", "1,7",
                 "--skip-missing", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "Pilot: 29 pictures" in printed and "1 left out (--skip-missing)" in printed and "gone.png" in printed
    summary = _read(out).calibration.info["pilot"]
    assert summary["pictures"] == 29 and summary["scale"] == "1,7" and len(summary["skipped"]) == 1


@pytest.mark.slow  # trains a two-member Lite ensemble on the CPU
def test_an_rbf_readout_is_refitted_with_the_pilot_as_more_support_rows(three_sources, pilot_csv, tmp_path, capsys):
    """The `accurate` kind of model (a kernel ridge readout on frozen features): the refit's pilot rows join the
    head's support, the ONNX twin scores as torch, and the file predicts the refit (the workflow checks the fold)."""
    from picaffect.inference import Predictor
    from picaffect.training.engine import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(data=str(three_sources), model="lite_ensemble", out=str(run), recipe="ridge", size=64,
                      device="cpu", ridge_fit="train+test", ridge_readout="rbf",
                      model_options={"members": "lite0@64,lite0@48"}), progress=False)
    out, onnx_path = tmp_path / "rbf.pt", tmp_path / "rbf.onnx"
    assert main(["calibrate", str(run), "--pilot", str(pilot_csv), "--out", str(out), "--onnx", str(onnx_path),
                 "--data", str(three_sources), "--pilot-adjust", "refit", "--device", "cpu"]) == 0
    assert "rbf ridge readout refitted on" in capsys.readouterr().out
    from picaffect.data.dataset import RatedImages
    from picaffect.inference import read

    record = read(out)
    fitting_rows = len(RatedImages(three_sources, "train")) + len(RatedImages(three_sources, "test"))
    assert record["spec"]["arguments"]["support"] == record["weights"]["head.kernel_support"].shape[0] == \
        fitting_rows + 30
    paths = [str(pilot_csv.parent / p) for p in pd.read_csv(pilot_csv)["path"]][:5]
    a = Predictor.from_pretrained(out, device="cpu", backend="torch").predict(paths)
    b = Predictor.from_pretrained(onnx_path).predict(paths)
    assert max(abs(r[c] - s[c]) for r, s in zip(a, b) for c in ("valence", "arousal", "valence_high")) < 1e-3


def test_the_error_head_is_kept_only_where_it_narrows_the_pilots_intervals():
    from picaffect.evaluation.pilot_conformal import use_error_head

    g = np.random.default_rng(8)
    difficulty = np.exp(g.normal(0, 0.6, 60))
    assert use_error_head(difficulty * g.normal(size=60), difficulty)          # errors that follow it
    assert not use_error_head(g.normal(size=60), difficulty)                   # errors that ignore it
    assert not use_error_head((difficulty * g.normal(size=60))[:15], difficulty[:15])   # too few to tell
    p = g.uniform(3, 7, 60)
    y = p + difficulty * g.normal(0, 0.5, 60)
    fits = {"valence": choose(p, y), "arousal": choose(p, y)}
    scale = np.c_[difficulty, np.ones(60)]
    calibration = pilot_calibration(fits, scale, {})
    assert calibration.adaptive
    assert np.allclose(calibration.errors["pilot"]["valence"], fits["valence"].errors / difficulty)
    hard, easy = np.array([[5.0, 5.0], [5.0, 5.0]]), np.array([[3.0, 1.0], [0.3, 1.0]])
    bounds = calibration.bounds(hard, easy, 0.9)
    assert bounds[0, 1] - bounds[0, 0] > bounds[1, 1] - bounds[1, 0]              # wider where it is harder
    assert bounds[0, 3] - bounds[0, 2] == pytest.approx(bounds[1, 3] - bounds[1, 2])  # arousal: difficulty 1


def test_a_model_with_an_error_head_keeps_it_or_drops_it_by_the_pilot(readout_model, pilot_csv, tmp_path):
    """A calibrated model whose error head says nothing about the pilot's errors: the pilot file has constant
    widths and no error head; the ONNX twin agrees."""
    from picaffect.inference import read, save_atomic

    record = read(readout_model)
    width = record["weights"]["head.fc.weight"].shape[1]
    errors = {"s": {"valence": tuple(np.linspace(0.1, 2, 50)), "arousal": tuple(np.linspace(0.1, 1.5, 50))}}
    record["calibration"] = {**Calibration(errors=errors, adaptive=True, scheme="pooled").to_dict(),
                             "error_head": {"weight": torch.randn(2, width, generator=torch.Generator().manual_seed(2))
                                            * 1e-3, "bias": torch.tensor([0.1, -0.2])}}
    headed = save_atomic(record, tmp_path / "headed.pt")
    out = tmp_path / "mine.pt"
    assert main(["calibrate", str(headed), "--pilot", str(pilot_csv), "--out", str(out), "--device", "cpu"]) == 0
    mine = read(out)
    assert mine["calibration"]["adaptive"] is False and "error_head" not in mine["calibration"]
    assert mine["metadata"]["pilot"]["adaptive"] is False
