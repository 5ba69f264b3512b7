"""The default model that ships inside the package: offline, small, sane."""
from __future__ import annotations

import numpy as np
import pytest

from picaffect import Predictor
from picaffect.cli import main
from picaffect.predictor import shipped_path


def test_default_ships_small_and_loads_offline():
    path = shipped_path("default")
    assert path.stat().st_size < 25e6
    p = Predictor.from_pretrained()
    assert p.size == 224


def test_default_predicts_the_sample_photographs(tmp_path):
    pytest.importorskip("sklearn")
    from picaffect.demo import sample_photographs

    photos = sample_photographs(tmp_path / "photos")
    assert len(photos) >= 8
    rows = Predictor.from_pretrained().predict(photos)
    values = np.array([[r["valence"], r["arousal"]] for r in rows])
    assert ((values >= 1) & (values <= 9)).all()
    assert values[:, 0].std() > 0.2  # it tells photographs apart rather than answering a constant


def test_demo_command(tmp_path, capsys):
    pytest.importorskip("sklearn")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "sklearn_china.jpg" in out and "skimage_astronaut.png" in out
    assert (tmp_path / "demo" / "circumplex.png").stat().st_size > 10_000
    assert (tmp_path / "demo" / "predictions.csv").read_text().startswith("path,valence,arousal")  # plain CSV
