"""The Python API and `picaffect predict`: inputs of every kind, broken files, formats, scales."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import write_image
from picaffect import Predictor
from picaffect.app.cli import main
from picaffect.data.images import ImageProblem
from picaffect.data.pictures import collect_pictures
from picaffect.core.errors import CheckpointError
from picaffect.inference import export, quadrant


@pytest.fixture()
def run(emosepar_run):
    return emosepar_run


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    write_image(folder / "b.jpg", size=(120, 90), color=(250, 240, 200))
    write_image(folder / "a.png", size=(64, 64), color=(10, 10, 60))
    write_image(folder / "sub" / "c.gif", size=(50, 50), color=(0, 200, 0), mode="RGB")
    (folder / "notes.txt").write_text("not a picture")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


def test_api_accepts_paths_pil_and_arrays(run, photos):
    p = Predictor.from_pretrained(run, device="cpu")
    one = p.predict(photos / "a.png")
    assert set(one) == {"path", "valence", "arousal", "quadrant", "error"}
    assert 1 <= one["valence"] <= 9 and 1 <= one["arousal"] <= 9
    json.dumps(one, allow_nan=False)
    pil = Image.open(photos / "a.png")
    arr = np.asarray(pil.convert("RGB"))
    many = p.predict([photos / "a.png", pil, arr, arr.astype(np.float32) / 255])
    assert len(many) == 4
    # the same picture given four ways scores the same
    assert max(abs(r["valence"] - many[0]["valence"]) for r in many) < 0.05
    assert "path" not in many[1]


def test_api_scale_and_errors(run, photos):
    p = Predictor.from_pretrained(run, device="cpu")
    from picaffect.core.scale import Scale
    row = p.predict(photos / "b.jpg", scale=Scale(1, 7))
    assert row["valence_scaled"] == pytest.approx((row["valence"] - 1) * 6 / 8 + 1, abs=1e-3)
    with pytest.raises(ImageProblem, match="broken.jpg"):
        p.predict(photos / "broken.jpg")
    with pytest.raises(ImageProblem, match="uint8"):
        p.predict(np.full((8, 8, 3), 300.0))
    with pytest.raises(CheckpointError, match="neither"):
        Predictor.from_pretrained("no-such-model")


def test_quadrants():
    assert quadrant(7, 8) == "pleasant-activated"
    assert quadrant(2, 3) == "unpleasant-calm"
    assert quadrant(5, 5) == "pleasant-activated"


def test_collect_pictures(photos):
    found, notes = collect_pictures([str(photos)])
    assert [p.name for p in found] == ["a.png", "b.jpg", "broken.jpg"]
    assert any("notes.txt" in str(n) for n in notes) and any("--recursive" in str(n) for n in notes)
    found, _ = collect_pictures([str(photos)], recursive=True)
    assert "c.gif" in [p.name for p in found]
    found, notes = collect_pictures([str(photos / "*.png"), str(photos / "missing.jpg")])
    assert [p.name for p in found] == ["a.png"] and any("no such file" in str(n) for n in notes)


@pytest.mark.parametrize("ending", [".csv", ".json", ".jsonl", ".parquet"])
def test_cli_outputs(run, photos, tmp_path, ending, capsys):
    out = tmp_path / f"pred{ending}"
    code = main(["predict", str(photos), "--recursive", "--model", str(run), "--out", str(out), "--scale", "1,7",
                 "--device", "cpu"])
    assert code == 0  # a broken picture is a row with an error, not a failed run
    err = capsys.readouterr().err
    assert "notes.txt: skipped" in err and "broken.jpg" in err and "scored 3 of 4" in err
    if ending == ".csv":
        assert out.read_text().startswith("path,valence,arousal")
        frame = pd.read_csv(out)
        assert len(frame) == 4 and json.loads((tmp_path / "pred.csv.meta.json").read_text())["scaled"] == "1..7"
    elif ending == ".json":
        payload = json.loads(out.read_text())
        assert payload["meta"]["scale"] == "1..9" and payload["meta"]["scaled"] == "1..7"
        frame = pd.DataFrame(payload["predictions"])
    elif ending == ".jsonl":
        frame = pd.read_json(out, lines=True)
        assert (frame["scale"] == "1..9").all()
    else:
        frame = pd.read_parquet(out)
    assert list(frame["path"].map(lambda p: p.split("/")[-1])) == ["a.png", "b.jpg", "broken.jpg", "c.gif"]
    assert {"valence", "arousal", "valence_scaled", "arousal_scaled", "quadrant", "error"} <= set(frame.columns)
    broken = frame[frame["path"].str.endswith("broken.jpg")].iloc[0]
    assert isinstance(broken["error"], str) and ("truncated" in broken["error"] or "not an image" in broken["error"])
    ok = frame[frame["error"].isna()]
    assert ok["valence"].between(1, 9).all() and ok["valence_scaled"].between(1, 7).all()


def test_cli_table_strict_and_bad_arguments(run, photos, capsys):
    assert main(["predict", str(photos / "a.png"), "--model", str(run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["path", "valence", "arousal", "quadrant", "error"]
    assert "1..9" in out
    assert main(["predict", str(photos), "--model", str(run), "--strict", "--device", "cpu"]) == 1
    capsys.readouterr()
    assert main(["predict", str(photos / "a.png"), "--model", str(run), "--scale", "seven"]) == 2
    assert "--scale" in capsys.readouterr().err
    assert main(["predict", str(photos / "nothing*.jpg"), "--model", str(run)]) == 2
    assert "no pictures" in capsys.readouterr().err


def test_export_is_slim_and_predicts_the_same(run, photos, tmp_path):
    path = export(run / "best.pt", tmp_path / "slim.pt")
    assert path.stat().st_size < (run / "best.pt").stat().st_size / 2
    a = Predictor.from_pretrained(run, device="cpu").predict(photos / "b.jpg")
    b = Predictor.from_pretrained(path, device="cpu").predict(photos / "b.jpg")
    # fp16 weights: since BN's running statistics are the batches' own (issue 10) the network responds to its
    # input in eval mode, and fp16 rounding through seven BN layers moves outputs by a few hundredths on 1..9
    assert abs(a["valence"] - b["valence"]) < 0.05 and abs(a["arousal"] - b["arousal"]) < 0.05
    full = Predictor.from_pretrained(export(run / "best.pt", tmp_path / "full.pt", half=False), device="cpu").predict(
        photos / "b.jpg")
    assert (full["valence"], full["arousal"]) == (a["valence"], a["arousal"])  # fp32 export: the same numbers


def test_one_bad_item_never_ends_a_stream(run, photos):
    p = Predictor.from_pretrained(run, device="cpu")
    closed = Image.open(photos / "a.png")
    closed.close()
    rows = list(p.predict_stream([photos / "a.png", None, object(), photos / "broken.jpg", closed, photos / "b.jpg"]))
    assert [r["error"] is None for r in rows] == [True, False, False, False, False, True]
    assert "None" in rows[1]["error"] and "object" in rows[2]["error"] and "closed" in rows[4]["error"]
    with pytest.raises(ImageProblem, match="None"):
        p.predict(None)


def test_predict_files_accounts_for_every_input(run, photos):
    p = Predictor.from_pretrained(run, device="cpu")
    result = p.predict_files([photos, photos / "missing.jpg"])
    assert [r["path"].split("/")[-1] for r in result.rows] == ["a.png", "b.jpg", "broken.jpg"]
    assert len(result.failed) == 1
    assert [str(n) for n in result.problems] == [f"{photos / 'missing.jpg'}: no such file or folder"]
    assert any("notes.txt" in str(n) and not n.problem for n in result.notes)
    # notes: missing.jpg, notes.txt, and the folder's sub-folder (not entered without --recursive)
    assert sorted(Path(n.path).name for n in result.notes) == ["missing.jpg", "notes.txt", "photos"]
    assert result.summary() == "scored 2 of 3 pictures, 1 unreadable; 3 notes above"
    single = p.predict_files([photos / "a.png", photos / "missing.jpg"])
    assert single.summary() == "scored 1 of 1 pictures; 1 note above"


def test_strict_fails_on_a_named_path_that_does_not_exist(run, photos, capsys):
    args = ["predict", str(photos / "a.png"), str(photos / "missing.jpg"), "--model", str(run), "--device", "cpu"]
    assert main(args) == 0
    assert main(args + ["--strict"]) == 1
    assert "missing.jpg: no such file" in capsys.readouterr().err


def exit_code(args: list[str]) -> int:
    """``main``'s status, also when argparse itself refuses an option (it exits with 2)."""
    try:
        return main(args)
    except SystemExit as e:
        return int(e.code)


@pytest.mark.parametrize("bad,says", [(["--batch-size", "0"], "must be at least 1"),
                                      (["--out", "{tmp}/x.txt"], "unknown ending"),
                                      (["--out", "{tmp}/dir.csv"], "is a folder"),
                                      (["--out", "{tmp}/file.csv/x.csv"], "is a file, not a folder"),
                                      (["--device", "tpu"], "invalid choice")])
def test_predict_refuses_bad_options_before_scoring(run, photos, tmp_path, capsys, bad, says):
    (tmp_path / "file.csv").write_text("")
    (tmp_path / "dir.csv").mkdir()
    bad = [b.replace("{tmp}", str(tmp_path)) for b in bad]
    assert exit_code(["predict", str(photos / "a.png"), "--model", str(run), *bad]) == 2
    err = capsys.readouterr().err
    assert says in err
    assert "scored" not in err  # refused before any picture was scored


def test_the_pipelined_stream_keeps_order_and_gives_one_row_per_input(tmp_path):
    """Decoding runs two batches ahead of the network: whatever the batch size and the threads, every
    input gives one row, in input order, with the ratings of scoring it alone."""
    gen = np.random.default_rng(3)
    items: list = []
    for i in range(23):
        if i % 7 == 3:
            items.append(tmp_path / f"missing{i}.jpg")
            continue
        pixels = gen.integers(0, 256, (40 + i, 60, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"p{i}.png")
        items.append(tmp_path / f"p{i}.png")
    alone = Predictor.from_pretrained("default", device="cpu", workers=1)
    expected = [alone.predict_stream([item], batch_size=1).__next__() for item in items]
    for batch_size, workers in ((4, 2), (32, 3), (1, 1)):
        p = Predictor.from_pretrained("default", device="cpu", workers=workers)
        rows = list(p.predict_stream(items, batch_size=batch_size))
        assert [r["path"] for r in rows] == [str(i) for i in items]
        assert [r["error"] is None for r in rows] == [e["error"] is None for e in expected]
        for row, want in zip(rows, expected):
            if want["error"] is None:
                assert row["valence"] == pytest.approx(want["valence"], abs=1e-3)
                assert row["arousal"] == pytest.approx(want["arousal"], abs=1e-3)


def test_predict_paths_is_the_command_as_one_call(run, photos, tmp_path):
    """The Python form of `picaffect predict`: the same checks first, the same notes, the same file."""
    from picaffect.app.predict import predict_paths
    from picaffect.core.errors import UsageError

    with pytest.raises(UsageError, match="--scale seven"):  # checked before the (missing) model is loaded
        predict_paths([photos], model=tmp_path / "no-such-model", scale="seven")
    heard: list[str] = []
    out = tmp_path / "scores.jsonl"
    run_, text = predict_paths([photos], model=run, out=out, scale="1,7", device="cpu", note=heard.append)
    assert text == "" and [r["path"].split("/")[-1] for r in run_.rows] == ["a.png", "b.jpg", "broken.jpg"]
    assert heard[0].startswith(f"model {run} has no calibration") and any("notes.txt" in n for n in heard)
    written = pd.read_json(out, lines=True)
    assert len(written) == 3 and written["valence_scaled"].dropna().between(1, 7).all()
    _, table = predict_paths([photos / "a.png"], model=run, fmt="csv", device="cpu")
    assert table.splitlines()[0] == "path,valence,arousal,quadrant,error" and "a.png" in table
    with pytest.raises(UsageError, match="no pictures to score"):
        predict_paths([photos / "nothing*.jpg"], model=run, device="cpu")
