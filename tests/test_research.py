"""research/: the accuracy studies run on the library's parts, on made-up feature files.

The searches themselves take hours on the real sets; these tests check that each
script still answers ``--help`` with the options it had in benchmarks/, that its ridge
is the library's (``training/probe.py``), and that the probe and readout steps run
and resume on small feature files shaped as ``picaffect features`` writes them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from picaffect.data.rated_sets import RATED_SETS
from picaffect.training.probe import ALPHAS, Ridge, fit_linear_readout
from research import accuracy_probes, accuracy_readouts

ROOT = Path(__file__).resolve().parents[1]

# The options each script listed in --help when it lived in benchmarks/ (issue 35 keeps them).
OPTIONS = {
    "accuracy_search": ["--data", "--work", "--out", "--steps", "--finetune", "--backbones"],
    "accuracy_probes": ["--no-tta", "--out"],
    "interval_search": ["--data", "--features", "--out"],
    "int8_onnx": ["--model", "--data", "--out", "--calibration-rows", "--batch", "--rounds"],
    "bn_diagnostic": ["--data", "--bn", "--recipe", "--steps", "--every", "--batch-size"],
}


def research(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", f"research.{module}", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("module", sorted(OPTIONS))
def test_each_script_keeps_its_options(module):
    shown = research(module, "--help")
    assert shown.returncode == 0, shown.stderr
    listed = [word.rstrip(",") for line in shown.stdout.splitlines() if line.lstrip().startswith("-")
              for word in line.split() if word.startswith("--") and word != "--help"]
    assert listed == OPTIONS[module]


def learnable(n: int = 150, width: int = 40, seed: int = 0) -> dict:
    """Rows of the three rated sets with a group split, whose ratings are a noisy line of the features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, width)).astype(np.float32)
    ratings = 5 + x[:, :2] @ np.array([[1.0, 0.3], [-0.4, 0.8]]) + rng.normal(0, 0.3, (n, 2))
    split = np.array(["train", "train", "train", "test", "validation"] * (n // 5))
    return {"features": x, "ratings": ratings.astype(np.float32), "id": np.array([f"r{i}" for i in range(n)]),
            "source": np.array([RATED_SETS[i % 3] for i in range(n)]), "split": split,
            "group": np.array([f"g{i // 2}" for i in range(n)])}


def write_features(path: Path, rows: dict, tta: bool, shift: float = 0.0) -> Path:
    np.savez(path, **{**rows, "features": rows["features"] + np.float32(shift)}, meta=np.array(json.dumps({"tta": tta})))
    return path


def test_the_probes_predict_with_the_librarys_ridge():
    rows = learnable()
    x, y = rows["features"].astype(np.float64), rows["ratings"].astype(np.float64)
    tr, te = rows["split"] == "train", rows["split"] == "test"
    ridge, alphas = accuracy_probes.select_on(x[tr], y[tr], x[te], y[te])
    assert isinstance(ridge, Ridge) and set(alphas) <= set(ALPHAS.tolist())
    # the penalty chosen per dimension is the one with the lowest error on the selection rows
    for j in range(2):
        errors = [((accuracy_probes.predict(ridge, [a, a], x[te]) - y[te])[:, j] ** 2).mean() for a in ALPHAS]
        assert alphas[j] == ALPHAS[int(np.argmin(errors))]
    fitted, cv_alphas = accuracy_probes.cv_readout(x, y, rows["group"])
    shipped = fit_linear_readout(x, y, rows["group"])
    assert cv_alphas == shipped.info["alpha"] and np.array_equal(fitted(x), shipped.predict(x))
    assert np.array_equal(accuracy_readouts.fit_ridge(x, y, rows["group"])(x), shipped.predict(x))


def test_probes_on_feature_files(tmp_path):
    rows = learnable()
    a = write_features(tmp_path / "a.npz", rows, tta=True)
    b = write_features(tmp_path / "b.npz", rows, tta=True, shift=0.5)
    plain = write_features(tmp_path / "a-plain.npz", rows, tta=False)
    out = tmp_path / "probes.json"
    done = research("accuracy_probes", f"a={a}", f"b={b}", "--no-tta", f"a={plain}", "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    val = result["validation"]
    assert {"training mean", "a last", "a stages +mirror", "b stages +mirror, fit on train+test",
            "ensemble (mean) of a + b, stages"} <= set(val)
    assert val["a stages +mirror"]["pooled"]["valence_r"] > 0.9
    assert val["a stages +mirror"]["pooled"]["rmse"] < val["training mean"]["pooled"]["rmse"] / 2
    assert set(result["leave_one_source_out"]["a stages +mirror"]) == set(RATED_SETS)


def test_search_probes_and_readouts_resume(tmp_path):
    """The search's probe and readout steps on the four backbones the readouts read, then the same command
    again: everything finished is kept, nothing is fitted twice (the state file does not change)."""
    features = tmp_path / "work" / "features"
    features.mkdir(parents=True)
    rows = learnable()
    labels = ["lite0-224", "lite1-240", "lite1-280", "lite2-300"]
    for k, label in enumerate(labels):
        write_features(features / f"{label}.npz", rows, tta=False, shift=k)
        write_features(features / f"{label}+mirror.npz", rows, tta=True, shift=k + 0.25)
    args = ["--steps", "probes,readouts", "--backbones", ",".join(labels), "--work", str(tmp_path / "work"),
            "--out", str(tmp_path / "out")]
    first = research("accuracy_search", *args)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    state = json.loads((tmp_path / "out" / "search.json").read_text())
    assert f"{labels[0]} stages +mirror, CV on train+test" in state["validation"]
    assert any(k.startswith("ensemble (stacked) of best 3") for k in state["validation"])
    assert set(state["readouts"]["validation"]) == {*accuracy_readouts.CANDIDATES, *accuracy_readouts.MEANS}
    assert set(state["readouts"]["leave_one_source_out"][accuracy_readouts.RIDGE]) == set(RATED_SETS)
    table = (tmp_path / "out" / "search.md").read_text()
    assert "python -m research.accuracy_search --steps probes,readouts" in table and accuracy_readouts.KERNEL in table
    again = research("accuracy_search", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "probe " not in again.stdout and "readout " not in again.stdout  # nothing fitted again
    assert json.loads((tmp_path / "out" / "search.json").read_text()) == state


def test_readouts_refuse_without_their_features(tmp_path):
    done = research("accuracy_search", "--steps", "readouts", "--backbones", "lite0-224", "--work",
                    str(tmp_path / "w"), "--out", str(tmp_path / "o"))
    assert done.returncode == 1 and "readouts need the features of lite0-224, lite1-240" in done.stderr
