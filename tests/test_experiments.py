"""A run's name and label (``workflows/run_names.py``) and the reports written from the records alone.

The names are folder names under results/ and in earlier sittings' run folders: a change
of spelling would make a finished run look new (trained again) and split its report.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from picaffect.training.config import TrainConfig
from picaffect.workflows.experiment_reports import thesis_markdown
from picaffect.workflows.experiments import thesis_runs, write_thesis_report
from picaffect.workflows.run_names import RunIdentity, run_label

ROOT = Path(__file__).resolve().parents[1]
THESIS_RESULTS = ROOT / "results" / "thesis" / "results.json"


def config(**choices) -> TrainConfig:
    return TrainConfig(data="d", out="o", **{"model": "emosepar", **choices})


def test_a_run_is_named_and_labelled_from_its_config():
    every = config(recipe="modern", augment="thesis", precision="bf16", ema=0.995, seed=1)
    assert RunIdentity.of(every, size=224).name == "emosepar-modern-augment-thesis-bf16-ema0.995-224px-seed1"
    assert RunIdentity.of(every, size=224).label == "emosepar (modern, augment thesis, bf16, ema 0.995, 224 px, seed 1)"
    # the thesis's side, seed 0, fp32 and no weight average are left out; the config's own size wins
    assert RunIdentity.of(config(recipe="thesis"), size=150).name == "emosepar-thesis"
    assert RunIdentity.of(config(model="vgg16", precision="bf16", size=150), size=224).name == "vgg16-thesis-bf16"
    assert RunIdentity.of(config(model="vgg16"), size=150).label == "vgg16 (thesis)"


def test_the_committed_runs_keep_their_names():
    """Known folders of results/thesis/ and results/cross-dataset/, spelled from their choices."""
    assert RunIdentity("emosepar", "modern", "light", "bf16", ema=0.995, size=224, seed=1).name == \
        "emosepar-modern-augment-light-bf16-ema0.995-224px-seed1"
    assert RunIdentity("inception_v3", "modern", "thesis", "bf16").name == "inception_v3-modern-augment-thesis-bf16"
    # leave-one-source-out folders name model, recipe and augmentation only (results/cross-dataset/*/)
    assert RunIdentity("emosepar", "thesis", "thesis").name == "emosepar-thesis-augment-thesis"
    assert RunIdentity("emosepar", "modern", "light").name == "emosepar-modern-augment-light"
    # every run of the thesis record: its name is what its recorded choices spell, and its label reads them
    runs = json.loads(THESIS_RESULTS.read_text())["runs"]
    assert len(runs) >= 17
    assert [RunIdentity.of_record(r).name for r in runs] == [r["name"] for r in runs]
    best = next(r for r in runs if r["name"] == "emosepar-modern-augment-light-bf16-ema0.995-224px")
    assert run_label(best) == "emosepar (modern, augment light, bf16, ema 0.995, 224 px)"


def test_records_written_before_size_and_seed_were_recorded_read_as_the_defaults():
    old = {"model": "xception", "recipe": "thesis", "augment": "none", "precision": "bf16"}
    assert RunIdentity.of_record(old) == RunIdentity("xception", "thesis", "none", "bf16", ema=None, seed=0, size=150)
    assert run_label(old) == "xception (thesis, bf16)"


def test_which_runs_the_thesis_experiment_trains():
    assert thesis_runs(("emosepar", "vgg16")) == [("emosepar", "none"), ("vgg16", "none"), ("emosepar", "thesis")]
    assert thesis_runs(("vgg16",)) == [("vgg16", "none")]
    assert thesis_runs(("emosepar", "vgg16"), augment="light") == [("emosepar", "light"), ("vgg16", "light")]


def test_the_thesis_report_is_written_again_from_its_record_alone(tmp_path):
    """No run folder and no dataset on this machine: every run is carried from results.json, under the same
    name, and the report reads them (without the paragraph on the dataset, which it cannot open)."""
    shutil.copy(THESIS_RESULTS, tmp_path / "results.json")
    before = json.loads(THESIS_RESULTS.read_text())["runs"]
    results = write_thesis_report(tmp_path)
    assert [r["name"] for r in results["runs"]] == [r["name"] for r in before]
    assert all(r["carried"] for r in results["runs"])
    report = (tmp_path / "report.md").read_text()
    assert report == thesis_markdown(results["runs"])
    assert all(f"| {run_label(r)} |" in report for r in before)
    assert "Carried from an earlier report" in report and "How our data differ" not in report
