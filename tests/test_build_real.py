"""`picaffect build` on the real OASIS, Emotion6 and BASS copies in ../shared/data."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import require_sets
from picaffect.app.cli import main
from picaffect.data.cache import open_cache

pytestmark = pytest.mark.realdata
COUNTS = {"oasis": 900, "emotion6": 1980, "bass": 583}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    data = require_sets(*COUNTS)
    out = tmp_path_factory.mktemp("real") / "jn"
    args = ["build", str(out), "--size", "64", "--split", "group"]
    for name in COUNTS:
        args += ["--source", f"{name}={data / name}"]
    assert main(args) == 0
    return out


def test_every_row_kept_with_the_right_counts(built):
    report = json.loads((built / "report.json").read_text())
    assert report["read"] == report["kept"] == 3463 and report["skipped"] == 0
    assert {k: v["kept"] for k, v in report["sources"].items()} == COUNTS
    assert report["sources"]["oasis"]["scale"] == "1..7"


def test_values_on_one_to_nine_and_three_splits(built):
    manifest = pd.read_parquet(built / "manifest.parquet")
    assert manifest["valence"].between(1, 9).all() and manifest["arousal"].between(1, 9).all()
    # OASIS's 1..7 stretched onto 1..9: (v - 1) * 8 / 6 + 1
    oasis = manifest[manifest.source == "oasis"]
    assert ((oasis.valence_raw - 1) * 8 / 6 + 1 - oasis.valence).abs().max() < 1e-9
    counts = manifest["split"].value_counts()
    assert set(counts.index) == {"train", "test", "validation"}
    assert abs(counts["validation"] - 347) < 15 and abs(counts["test"] - 779) < 20


def test_group_split_keeps_oasis_themes_together(built):
    manifest = pd.read_parquet(built / "manifest.parquet")
    oasis = manifest[manifest.source == "oasis"]
    assert oasis["group"].nunique() < 900
    assert (oasis.groupby("group")["split"].nunique() == 1).all()


def test_cache_and_plots(built):
    assert open_cache(built / "images.npy").shape == (3463, 64, 64, 3)
    for name in ("valence_arousal.png", "histograms.png"):
        assert (built / "plots" / name).stat().st_size > 10_000
