"""`picaffect select` against what a hostile first user tried (issue 34, item 5): each finding, as a test.

A perfect match, a NaN time limit, a 20,000-picture pool asked for 1,000 sets or for an easy
difference, an interrupted or repeated run, decimal commas and stray words in the scores,
empty and non-UTF-8 exclusion lists, published ratings called predicted, --size 1 and a
--differ of 1e308.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from picaffect.app.cli import main
from picaffect.core.errors import UsageError
from picaffect.selection import Request, read_pool
from picaffect.selection.statistics import set_statistics, welch
from test_select import synthetic_pool


def strict_json(path):
    def refuse(name):
        raise ValueError(f"{path} holds {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def select(*args: str) -> tuple[int, float]:
    start = time.perf_counter()
    code = main(["select", *map(str, args)])
    return code, time.perf_counter() - start


def large_pool(tmp_path, n: int = 20_000):
    g = np.random.default_rng(7)
    valence = np.clip(g.normal(5, 2.2, n), 1, 9)
    arousal = np.clip(g.normal(4.8, 1.0, n) + 0.35 * np.abs(valence - 5), 1, 9)
    path = tmp_path / "large.csv"
    pd.DataFrame({"picture": [f"p{i:05d}.jpg" for i in range(n)], "valence": valence.round(2),
                  "arousal": arousal.round(2)}).to_csv(path, index=False)
    return path


# -- a perfect match (high) ---------------------------------------------------------------------------------------

def test_sets_matched_perfectly_are_a_success_with_strict_json(tmp_path):
    """Ratings rounded to whole numbers: both sets' arousal has SD 0, Welch t is 0 with p 1 (no difference at all),
    and the TOST passes; all five files are written and statistics.json is strict JSON."""
    table = synthetic_pool(900, seed=5)
    table[["valence", "arousal"]] = table[["valence", "arousal"]].round()
    table.to_csv(tmp_path / "round0.csv", index=False)
    code, _ = select(tmp_path / "round0.csv", "--out", tmp_path / "o", "--sets", "2", "--size", "20",
                     "--differ", "valence:2", "--match", "arousal:0.3")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.md", "sets.csv", "sets.png",
                                                                 "statistics.json", "summary.csv"]
    statistics = strict_json(tmp_path / "o" / "statistics.json")
    arousal = statistics["pairs"][0]["arousal"]
    assert [s["arousal"]["sd"] for s in statistics["sets"]] == [0, 0]
    assert (arousal["welch_t"], arousal["p"], arousal["tost"]["p"]) == (0.0, 1.0, 0.0)


def test_constant_sets_with_different_means_have_no_t_and_say_so(tmp_path):
    """Valence only 1 or 9 and arousal all 5: set 1 must be all 1s and set 2 all 9s; Welch t does not exist."""
    assert welch(np.full(3, 2.0), np.full(3, 8.0)) == (None, 4.0, 0.0, 0.0)
    stats = set_statistics([np.array([[2.0, 5], [2.0, 5]]), np.array([[8.0, 5], [8.0, 5]])], {"arousal": 0.3}, 0.05)
    assert stats["pairs"][0]["valence"]["welch_t"] is None and stats["pairs"][0]["arousal"]["welch_t"] == 0.0
    table = pd.DataFrame({"picture": [f"p{i}.jpg" for i in range(40)], "valence": [1.0] * 20 + [9.0] * 20,
                          "arousal": 5.0})
    table.to_csv(tmp_path / "two.csv", index=False)
    code, _ = select(tmp_path / "two.csv", "--out", tmp_path / "o", "--size", "20", "--differ", "valence:8",
                     "--match", "arousal")
    assert code == 0
    statistics = strict_json(tmp_path / "o" / "statistics.json")
    assert statistics["pairs"][0]["valence"]["welch_t"] is None and statistics["pairs"][0]["valence"]["p"] == 0
    assert "Welch t undefined (no spread in either set; means differ by +8.00)" in statistics["methods"]


@pytest.mark.parametrize("limit, says", [("nan", "not nan"), ("-1", "not -1"), ("0", "not 0"), ("inf", "not inf")])
def test_a_time_limit_that_is_not_a_positive_number_is_refused(tmp_path, capsys, limit, says):
    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(SystemExit) as stop:
        main(["select", str(tmp_path / "s.csv"), "--out", str(tmp_path / "o"), "--time-limit", limit])
    assert stop.value.code == 2
    assert f"argument --time-limit: give a positive, finite number of seconds, {says}" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--time-limit nan: give a positive number of seconds"):
        Request(time_limit_s=float("nan"))
    assert not (tmp_path / "o").exists()


# -- memory and time on a large pool (high, medium) -----------------------------------------------------------------

def test_a_thousand_sets_of_two_from_twenty_thousand_pictures_take_a_sort_not_a_programme(tmp_path):
    """Any 2,000 pictures do: the sorted start answers without building 20 million binaries."""
    code, _ = select(large_pool(tmp_path), "--out", tmp_path / "o", "--sets", "1000", "--size", "2",
                     "--time-limit", "30")
    assert code == 0
    sets = pd.read_csv(tmp_path / "o" / "sets.csv")
    assert sets["set"].nunique() == 1000 and len(sets) == 2000 and sets["picture"].is_unique
    statistics = strict_json(tmp_path / "o" / "statistics.json")
    assert statistics["solver"] == "greedy sorted windows"
    assert len(statistics["pairs"]) == 999  # consecutive pairs listed; not half a million


def test_the_programme_s_size_is_estimated_before_it_is_built(tmp_path, monkeypatch, capsys):
    from picaffect.selection import optimise
    from picaffect.selection.optimise import Problem, counts_of, fits, programme_bytes

    request = Request(sets=1000, size=2, match=(("arousal", 0.3),))
    eligible = [np.arange(20_000)] * 1000
    problem = Problem(np.zeros((20_000, 2)), np.zeros(20_000), eligible, request)
    assert counts_of(problem)[0] == 20_000_000 and not fits(problem)
    assert programme_bytes(problem) > 10 * 2 ** 30  # what the hostile run's 19 GB peak came from
    small = Problem(np.zeros((20_000, 2)), np.zeros(20_000), [np.arange(10)] * 1000, request)
    assert counts_of(small)[0] == 10_000 and programme_bytes(small) < programme_bytes(problem) / 1000

    def refuse_to_build(*args, **kwargs):
        raise AssertionError("a programme that does not fit was built")

    monkeypatch.setattr(optimise, "memory_available", lambda: 1 << 20)  # a machine with 1 MB to spare
    monkeypatch.setattr(optimise, "bounded_milp", refuse_to_build)
    code, _ = select(large_pool(tmp_path, 5000), "--out", tmp_path / "o", "--sets", "100", "--size", "5",
                     "--differ", "valence:0.05", "--match", "arousal:0.001")
    err = capsys.readouterr().err
    assert code == 2 and "binary variables" in err and "more than this machine can hold" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("sets, size, differ", [("2", "40", "valence:3"), ("4", "100", "valence:1.5")])
def test_easy_requests_on_a_large_pool_are_found_at_once(tmp_path, sets, size, differ):
    code, seconds = select(large_pool(tmp_path), "--out", tmp_path / "o", "--sets", sets, "--size", size,
                           "--differ", differ, "--time-limit", "20")
    assert code == 0
    chosen = pd.read_csv(tmp_path / "o" / "sets.csv")
    means = chosen.groupby("set")["valence"].mean().to_numpy()
    assert len(means) == int(sets) and (np.diff(means) >= float(differ.split(":")[1]) - 1e-9).all()
    assert strict_json(tmp_path / "o" / "statistics.json")["solver"] == "greedy sorted windows"


@pytest.mark.parametrize("arguments", [
    ["--differ", "valence:3", "--match", "arousal:0.01"],  # the solver runs, never reaches equivalence
    ["--range", "1:arousal=..4.6", "--range", "2:arousal=5.4..", "--differ", "valence:3", "--match", "arousal:0.3"],
])
def test_the_time_limit_holds_for_the_whole_command(tmp_path, arguments):
    """Search and diagnosis together within the limit (the margin covers reading, statistics and a loaded machine;
    the hostile run went minutes past its 30 s)."""
    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    code, seconds = select(tmp_path / "s.csv", "--out", tmp_path / "o", "--size", "40", "--time-limit", "3",
                           *arguments)
    assert code == 2 and seconds < 3 + 6, seconds


# -- one unit (medium) ----------------------------------------------------------------------------------------------

def test_a_folder_that_is_not_empty_is_refused_unless_overwrite(tmp_path, capsys):
    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my own notes")
    code, _ = select(tmp_path / "s.csv", "--out", mine, "--differ", "valence:2")
    assert code == 2 and "is not empty (it holds report.md): give --overwrite" in capsys.readouterr().err
    assert (mine / "report.md").read_text() == "my own notes" and len(list(mine.iterdir())) == 1
    out = tmp_path / "sets"
    assert select(tmp_path / "s.csv", "--out", out, "--size", "10", "--differ", "valence:2")[0] == 0
    assert select(tmp_path / "s.csv", "--out", out, "--size", "12", "--differ", "valence:2")[0] == 2
    assert len(pd.read_csv(out / "sets.csv")) == 20
    assert select(tmp_path / "s.csv", "--out", out, "--size", "12", "--differ", "valence:2", "--overwrite")[0] == 0
    assert len(pd.read_csv(out / "sets.csv")) == 24
    (out / "pilot.txt").write_text("keep me")
    code, _ = select(tmp_path / "s.csv", "--out", out, "--size", "12", "--differ", "valence:2", "--overwrite")
    assert code == 2 and "holds files a selection does not write (pilot.txt)" in capsys.readouterr().err
    assert (out / "pilot.txt").read_text() == "keep me"


@pytest.mark.parametrize("previous", [False, True])
def test_an_interrupted_run_leaves_the_folder_as_it_was(tmp_path, monkeypatch, previous):
    """Interrupted while the last file is drawn: no file of the new selection appears, a previous one stays whole,
    and no temporary folder is left beside it."""
    from picaffect.selection import figure

    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "sets"
    if previous:
        assert select(tmp_path / "s.csv", "--out", out, "--size", "10", "--differ", "valence:2")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()} if previous else None

    def interrupted(result, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(figure, "selection_figure", interrupted)
    code, _ = select(tmp_path / "s.csv", "--out", out, "--size", "12", "--differ", "valence:2", "--overwrite")
    assert code == 130
    if previous:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    else:
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- silent data loss (medium) --------------------------------------------------------------------------------------

def test_decimal_commas_are_refused_naming_the_rows_or_read_with_decimal_comma(tmp_path, capsys):
    table = synthetic_pool(900, seed=6)

    def comma(x: float) -> str:
        return f"{x:.2f}".replace(".", ",")

    rows = list(table[["path", "valence", "arousal"]].itertuples(index=False))
    text = "path,valence,arousal\n" + "".join(f'{p},"{comma(v)}","{comma(a)}"\n' for p, v, a in rows)
    (tmp_path / "comma.csv").write_text(text)
    code, _ = select(tmp_path / "comma.csv", "--out", tmp_path / "o", "--differ", "valence:3")
    err = capsys.readouterr().err
    first = comma(table["valence"][0])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"valence: 900 cells are not a number (line 2 (photos/p0000.jpg): '{first}'" in err
    assert "they look like decimal commas: read the file with --decimal ','" in err
    assert not (tmp_path / "o").exists()
    assert select(tmp_path / "comma.csv", "--out", tmp_path / "o", "--differ", "valence:3", "--decimal", ",")[0] == 0
    assert strict_json(tmp_path / "o" / "statistics.json")["pool"]["rows"] == 900
    (tmp_path / "excel.csv").write_text("path;valence;arousal\n" + "".join(f"{p};{comma(v)};{comma(a)}\n"
                                                                          for p, v, a in rows))
    pool = read_pool(tmp_path / "excel.csv", decimal=",")
    assert len(pool.table) == 900 and pool.table["valence"].to_numpy() == pytest.approx(table["valence"], abs=0.006)


def test_a_word_in_a_rating_column_is_an_input_error_naming_its_row(tmp_path, capsys):
    table = synthetic_pool(300)
    table["arousal"] = table["arousal"].astype(object)
    table.loc[41, "arousal"] = "high"
    table.to_csv(tmp_path / "s.csv", index=False)
    code, _ = select(tmp_path / "s.csv", "--out", tmp_path / "o", "--differ", "valence:2")
    err = capsys.readouterr().err
    assert code == 2 and "arousal: 1 cell is not a number (line 43 (photos/p0041.jpg): 'high')" in err


def test_rows_left_out_are_noted_even_when_the_request_then_fails(tmp_path, capsys):
    table = synthetic_pool(300)
    table.loc[:4, "valence"] = np.nan
    table.to_csv(tmp_path / "s.csv", index=False)
    code, _ = select(tmp_path / "s.csv", "--out", tmp_path / "o", "--differ", "valence:7.5")
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0] == "note: 5 rows without valence or arousal left out (first: line 2, photos/p0000.jpg)"
    assert lines[1].startswith("picaffect select: error: valence: set 2's mean can exceed set 1's by at most")


# -- low --------------------------------------------------------------------------------------------------------------

def test_exclusion_lists_that_are_empty_or_not_utf8(tmp_path, capsys):
    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    for name in ("empty.txt", "empty.csv"):
        (tmp_path / name).write_text("")
        code, _ = select(tmp_path / "s.csv", "--out", tmp_path / name.replace(".", "-"), "--differ", "valence:2",
                         "--exclude", tmp_path / name)
        assert code == 0 and f"--exclude {tmp_path / name} names no pictures" in capsys.readouterr().err
    (tmp_path / "latin1.txt").write_bytes("p0001.jpg\ncaf\xe9.jpg\n".encode("latin-1"))
    code, _ = select(tmp_path / "s.csv", "--out", tmp_path / "o", "--differ", "valence:2", "--exclude",
                     tmp_path / "latin1.txt")
    err = capsys.readouterr().err
    assert code == 2 and "not UTF-8 text (byte 0xe9 at position 13); save it as UTF-8" in err
    assert len(err.strip().splitlines()) == 1


def test_published_ratings_are_not_called_predicted(tmp_path):
    from conftest import build_learnable_dataset
    from picaffect.data.picture_features import FEATURE_COLUMNS

    table = synthetic_pool()
    table.to_csv(tmp_path / "ratings.csv", index=False)
    assert read_pool(tmp_path / "ratings.csv").origin == "values from ratings.csv"
    assert select(tmp_path / "ratings.csv", "--out", tmp_path / "o", "--differ", "valence:2")[0] == 0
    methods = strict_json(tmp_path / "o" / "statistics.json")["methods"]
    assert "(values from ratings.csv)" in methods and "predicted" not in methods
    table.assign(quadrant="x", error="").to_csv(tmp_path / "predictions.csv", index=False)
    assert read_pool(tmp_path / "predictions.csv").origin == "predicted by picaffect"
    dataset = read_pool(build_learnable_dataset(tmp_path / "data", n=24, size=16))
    assert dataset.origin == "published ratings" and set(FEATURE_COLUMNS) <= set(dataset.table.columns)


def test_size_one_is_refused_with_the_limit_the_help_states(tmp_path, capsys):
    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    for size in ("1", "0"):
        with pytest.raises(SystemExit) as stop:
            main(["select", str(tmp_path / "s.csv"), "--out", str(tmp_path / "o"), "--size", size])
        assert stop.value.code == 2
        assert f"argument --size: must be at least 2, not {size}" in capsys.readouterr().err


def test_a_huge_difference_is_refused_in_a_short_line(tmp_path, capsys):
    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    code, _ = select(tmp_path / "s.csv", "--out", tmp_path / "o", "--differ", "valence:1e308")
    err = capsys.readouterr().err
    assert code == 2 and len(err) < 300, err
    assert "--differ valence:1e+308: no two pictures of the pool differ by that much on valence (its values span" in err
    big = pd.DataFrame({"picture": ["a", "b", "c", "d"], "valence": [1, 1, 9, 9], "arousal": 5,
                        "score": [0, 1e200, 2e300, 3e300]})
    big.to_csv(tmp_path / "big.csv", index=False)
    code, _ = select(tmp_path / "big.csv", "--out", tmp_path / "o", "--size", "2", "--differ", "score:1e301")
    err = capsys.readouterr().err
    assert code == 2 and len(err) < 300 and "1e+301" in err, err


def test_a_selection_killed_outright_leaves_a_folder_the_next_one_clears(tmp_path):
    """SIGKILL cannot be caught: its temporary folder stays until the next selection into the same place."""
    synthetic_pool().to_csv(tmp_path / "s.csv", index=False)
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".sets.selecting-{dead}-abcdef12"
    stale.mkdir()
    (stale / "sets.csv").write_text("half")
    alive = tmp_path / ".sets.selecting-1-abcdef12"  # pid 1 lives: another selection may be at work
    alive.mkdir()
    assert select(tmp_path / "s.csv", "--out", tmp_path / "sets", "--size", "10", "--differ", "valence:2")[0] == 0
    assert not stale.exists() and alive.exists()
