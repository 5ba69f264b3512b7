"""The OASIS, Emotion6 and BASS readers on the publishers' real files in ../shared/data."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from picaffect.data.sources import read_source
from picaffect.core.scale import Scale

pytestmark = pytest.mark.realdata

DATA = Path(os.environ.get("PICAFFECT_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

EXPECTED = {"oasis": (900, Scale(1, 7)), "emotion6": (1980, Scale(1, 9)), "bass": (583, Scale(1, 9))}


def _folder(name: str) -> Path:
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"real rated set {name!r} not found at {folder} (set PICAFFECT_DATA to the folder of the sets)")
    return folder


@pytest.fixture(scope="module")
def records():
    """Each present set read once for the whole module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = read_source(name, _folder(name))
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_row_read_and_usable(name, records):
    rows = records(name)
    count, scale = EXPECTED[name]
    assert len(rows) == count
    assert [r.problem for r in rows if r.problem] == []
    assert all(r.path is not None and r.path.is_file() for r in rows)
    assert len({r.id for r in rows}) == count
    for r in rows:
        assert r.scale == scale and r.source == name
        assert scale.contains(r.valence_raw) and scale.contains(r.arousal_raw)
        assert 1 <= r.valence <= 9 and 1 <= r.arousal <= 9
    assert rows[0].row.endswith("line 2")


def test_oasis_groups_and_trailing_space_themes(records):
    rows = {r.id: r for r in records("oasis")}
    assert rows["Acorns 1"].group == "Acorns"
    assert rows["Alcohol 8"].group == "Alcohol"
    for theme, group in (("Crosswalk 1", "Crosswalk"), ("War 2", "War")):
        assert rows[theme].group == group
        assert rows[theme].path.name == f"{theme}.jpg" and rows[theme].path.is_file()
    first = rows["Acorns 1"]
    assert first.extra["column_1"] == "I1" and first.extra["category"] == "Object"
    assert first.valence_n == 102 and first.arousal_sd == pytest.approx(1.602720459)
    # 1..7 onto 1..9: (v - 1) * 8 / 6 + 1
    assert first.valence == pytest.approx((4.68627451 - 1) * 8 / 6 + 1)
    assert len({r.group for r in rows.values()}) < len(rows) / 2


def test_emotion6_probabilities(records):
    rows = records("emotion6")
    keys = {f"prob_{e}" for e in ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")}
    for r in rows:
        assert set(r.extra) == keys
        assert math.isclose(sum(r.extra.values()), 1.0, abs_tol=0.01)
    first = rows[0]
    assert first.id == "disgust/1.jpg" and first.group is None
    assert (first.valence_raw, first.arousal_raw) == (2.5, 3.8)


def test_bass_keeps_us_means_and_the_rest(records):
    first = records("bass")[0]
    assert first.id == "abuse.png"
    assert first.valence_raw == pytest.approx(1.729166667) and first.valence_n == 96
    assert first.extra["val_mean_ch"] == pytest.approx(2.98019802)
    assert first.extra["keywords"].startswith("fight, aggression")
    assert first.extra["source"] == "Anna Lumaca"
