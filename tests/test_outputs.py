"""Prediction files that pandas, R and Excel open as they are; paths checked before any scoring."""
from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from picaffect.core.errors import PicaffectError
from picaffect.app.outputs import OutputError, check_output_path, output_meta, render, write_predictions

ROWS = [
    {"path": "a, b.jpg", "valence": 6.25, "arousal": 3.5, "quadrant": "pleasant-calm", "error": None,
     "valence_scaled": 4.9375, "arousal_scaled": 2.875},
    {"path": 'say "cheese".png', "valence": None, "arousal": None, "quadrant": None, "error": "truncated or corrupt",
     "valence_scaled": None, "arousal_scaled": None},
    {"path": "nan.jpg", "valence": float("nan"), "arousal": float("inf"), "quadrant": None, "error": "odd",
     "valence_scaled": None, "arousal_scaled": None},
]
META = output_meta("runs/x", "1..7")


def test_csv_is_plain_with_a_sidecar(tmp_path):
    out = tmp_path / "x.csv"
    written = write_predictions(ROWS, out, META)
    assert written == [out, tmp_path / "x.csv.meta.json"]
    raw = out.read_bytes()
    assert raw.startswith(b"path,valence,arousal,valence_scaled,arousal_scaled,quadrant,error\r\n")
    frame = pd.read_csv(out)
    assert len(frame) == 3 and list(frame.columns) == ["path", "valence", "arousal", "valence_scaled",
                                                         "arousal_scaled", "quadrant", "error"]
    assert frame["path"].tolist() == ["a, b.jpg", 'say "cheese".png', "nan.jpg"]
    assert frame.loc[0, "valence"] == 6.25 and pd.isna(frame.loc[1, "valence"]) and pd.isna(frame.loc[2, "arousal"])
    meta = json.loads((tmp_path / "x.csv.meta.json").read_text())
    assert meta["model"] == "runs/x" and meta["scale"] == "1..9" and meta["scaled"] == "1..7"
    assert meta["columns"] == list(frame.columns)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_json_jsonl_parquet_keep_meta_and_hold_no_nan(tmp_path):
    write_predictions(ROWS, tmp_path / "x.json", META)
    payload = json.loads((tmp_path / "x.json").read_text(), parse_constant=lambda c: pytest.fail(f"JSON holds {c}"))
    assert payload["meta"] == META and len(payload["predictions"]) == 3
    assert payload["predictions"][2]["valence"] is None and payload["predictions"][2]["arousal"] is None
    json.dumps(payload, allow_nan=False)

    write_predictions(ROWS, tmp_path / "x.jsonl", META)
    lines = (tmp_path / "x.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        row = json.loads(line, parse_constant=lambda c: pytest.fail(f"JSONL holds {c}"))
        assert row["scale"] == "1..9"

    write_predictions(ROWS, tmp_path / "x.parquet", META)
    table = pq.read_table(tmp_path / "x.parquet")
    assert json.loads(table.schema.metadata[b"picaffect"]) == META and table.num_rows == 3


def test_stdout_csv_is_plain_too():
    text = render(ROWS, "csv", META)
    assert text.splitlines()[0] == "path,valence,arousal,valence_scaled,arousal_scaled,quadrant,error"
    assert "nan" not in text.lower().replace("nan.jpg", "")


@pytest.mark.parametrize("make, name, reason", [
    (lambda t: None, "x.txt", "unknown ending '.txt'"),
    (lambda t: None, "x", r"unknown ending '\(none\)'"),
    (lambda t: (t / "x.csv").mkdir(), "x.csv", "is a folder"),
    (lambda t: (t / "f").write_text(""), "f/x.csv", "f is a file, not a folder"),
    (lambda t: (t / "f").write_text(""), "f/deeper/x.csv", "f is a file, not a folder"),
    (lambda t: None, "no/such/x.csv", "does not exist"),
])
def test_output_paths_checked_up_front(tmp_path, make, name, reason):
    make(tmp_path)
    with pytest.raises(OutputError, match=reason):
        check_output_path(tmp_path / name)
    assert issubclass(OutputError, PicaffectError)


def _no_write_access(monkeypatch, target) -> None:
    """``os.access`` says ``target`` is not writable, as it says for a read-only folder or file to a normal user;
    patched, because root may write anywhere and CI runs the tests as root."""
    real = os.access

    def access(path, mode, *args, **kwargs):
        if os.fspath(path) == os.fspath(target) and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_read_only_folder(tmp_path, monkeypatch):
    (tmp_path / "ro").mkdir()
    _no_write_access(monkeypatch, tmp_path / "ro")
    with pytest.raises(OutputError, match=r"the folder .*ro is not writable \(permission denied\)"):
        check_output_path(tmp_path / "ro" / "x.csv")
    check_output_path(tmp_path / "x.csv")  # its writable neighbour passes


def test_read_only_file(tmp_path, monkeypatch):
    (tmp_path / "x.csv").write_text("old")
    _no_write_access(monkeypatch, tmp_path / "x.csv")
    with pytest.raises(OutputError, match="the file is read-only"):
        check_output_path(tmp_path / "x.csv")


def test_an_existing_file_is_replaced_whole(tmp_path):
    out = tmp_path / "x.jsonl"
    out.write_text("old\n" * 100)
    write_predictions(ROWS[:1], out, META)
    assert len(out.read_text().splitlines()) == 1
