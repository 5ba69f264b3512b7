"""research/pilot_study.py on synthetic features: it runs, its record holds what the README states, and rerunning
the report from the record gives the same README."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from research import pilot_study


def synthetic_features(path: Path, n: int = 90, width: int = 15) -> Path:
    """Three sources whose ratings follow the features, each with its own bias (what a pilot must correct)."""
    g = np.random.default_rng(0)
    beta = g.normal(size=(width, 2)) * 0.4
    blocks = []
    for k, (name, bias) in enumerate((("alpha", 0.0), ("beta", 0.8), ("gamma", -0.6))):
        x = g.normal(size=(n, width)) + 0.3 * k
        y = np.clip(5 + bias + x @ beta + g.normal(size=(n, 2)) * 0.5, 1, 9)
        blocks.append((x, y, np.full(n, name), np.where(np.arange(n) % 5 == 0, "validation", "train")))
    x, y, source, split = (np.concatenate([b[i] for b in blocks]) for i in range(4))
    ids = np.array([f"{s}-{i}" for i, s in enumerate(source)])
    np.savez(path, features=x.astype(np.float32), ratings=y.astype(np.float32), id=ids, source=source, split=split,
             group=ids, meta=np.array(json.dumps({"model": "synthetic", "arguments": {}, "size": 0, "tta": True})))
    return path


@pytest.mark.parametrize("readout", ["linear", "rbf"])
def test_the_study_runs_and_its_readme_comes_from_its_record(tmp_path, readout, capsys):
    features = synthetic_features(tmp_path / "f.npz")
    out = tmp_path / "pilot"
    extra = ["--components", "8"] if readout == "rbf" else []
    assert pilot_study.main(["--features", str(features), "--readout", readout, "--draws", "4", "--ks", "10,20",
                             "--fit-splits", "train", "--out", str(out), *extra]) == 0
    record = json.loads((out / "study.json").read_text())
    assert record["draws"] == 4 and record["readout"] == readout and set(record["sources"]) == {"alpha", "beta",
                                                                                                 "gamma"}
    for block in record["sources"].values():
        assert block["n"] == 90 and set(block["by_k"]) == {"10", "20"}
        for cells in block["by_k"].values():
            for d in ("valence", "arousal"):
                c = cells[d]
                assert c["coverage"]["p5"] <= c["coverage"]["mean"] <= c["coverage"]["p95"] <= 1
                assert c["width"]["mean"] > 0 and c["oracle"]["mean"] > 0 and 0 <= c["refit_kept"]["mean"] <= 1
                assert 0 <= c["no_pilot_coverage"]["mean"] <= 1 and c["rmse_shipped"]["mean"] > 0
    assert f"figures:pilot-study/{out.name}:start" in (out / "README.md").read_text()  # make figures fills it
    report = pilot_study.markdown(record)
    assert "## Goals (issue 33)" in report and "### beta held out (90 pictures" in report
    beta = record["sources"]["beta"]["by_k"]["20"]["valence"]
    assert f"| 20 | valence | {beta['coverage']['mean']:.2f} [" in report
    capsys.readouterr()
    assert pilot_study.main(["--report-only", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == report.strip()


def test_a_pilot_removes_a_new_sources_bias_in_the_study(tmp_path):
    """The held-out sources carry biases the others lack: with a pilot of 20, RMSE on the rest falls below the
    model's without one, on average over draws, for the biased sources."""
    features = synthetic_features(tmp_path / "f.npz")
    args = pilot_study.parse(["--features", str(features), "--readout", "linear", "--draws", "6", "--ks", "20",
                              "--fit-splits", "train"])
    record = pilot_study.run(args)
    for source in ("beta", "gamma"):
        cell = record["sources"][source]["by_k"]["20"]["valence"]
        assert cell["rmse_kept"]["mean"] < cell["rmse_shipped"]["mean"]
