"""A generated corpus of bad input on the data side: rating files, rows, pictures, paths, outputs.

For every kind: the message names the file or row and the reason; the exit code is the
documented one (0 done, bad rows reported; 1 some items failed under --strict; 2 usage
or input error); and the counts reconcile (rows read = kept + skipped; one row or note
per input). Fixtures are a few tiny pictures, so the whole corpus runs in seconds.
"""
from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from conftest import write_image
from picaffect.app.cli import main
from picaffect.data.pictures import collect_pictures

OPTIONS = ["--option", "s.path=file", "--option", "s.id=code", "--option", "s.scale=1,7"]


def _build(tmp_path: Path, ratings: Path, *extra: str) -> int:
    return main(["build", str(tmp_path / "out"), "--source", f"csv:s={ratings}", *OPTIONS, "--size", "8",
                 "--no-plots", "--workers", "2", *extra])


# --- one bad row beside a good one: skipped with its row and reason, exit 0; --strict exits 1 -----------------

def _good(root: Path) -> str:
    write_image(root / "good.png", size=(12, 12))
    return "g,good.png,4,4"


def _picture(make: Callable[[Path], None], name: str = "bad.jpg") -> Callable[[Path], str]:
    def row(root: Path) -> str:
        make(root / name)
        return f"b,{name},4,4"
    return row


def _truncated(path: Path) -> None:
    write_image(path.with_name("full.jpg"), size=(200, 200))
    data = path.with_name("full.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _huge(path: Path) -> None:
    Image.new("L", (3000, 3000)).save(path)


ROW_KINDS = {
    "empty id cell": (lambda root: ",bad.jpg,4,4", "empty id cell"),
    "empty picture cell": (lambda root: "b,,4,4", "no picture path in this row"),
    "rating not a number": (lambda root: "b,good.png,four,4", "valence 'four' is not a number"),
    "rating missing": (lambda root: "b,good.png,4,NA", "missing arousal rating"),
    "rating outside the scale": (lambda root: "b,good.png,8,4", "valence 8 outside the scale 1..7"),
    "repeated id": (lambda root: "g,good.png,5,5", "duplicate id 'g'"),
    "picture missing": (lambda root: "b,nowhere.jpg,4,4", "image file not found"),
    "symlink loop": (_picture(lambda p: p.symlink_to(p)), "symlink loop"),
    "broken link": (_picture(lambda p: p.symlink_to(p.with_name("gone.jpg"))), "broken link"),
    "FIFO": (_picture(lambda p: os.mkfifo(p)), "not a regular file (FIFO)"),
    "folder named like a picture": (_picture(lambda p: p.mkdir()), "is a folder"),
    "empty file": (_picture(lambda p: p.write_bytes(b"")), "empty file (0 bytes)"),
    "text file named .jpg": (_picture(lambda p: p.write_text("hello")), "not an image in an accepted format"),
    "truncated JPEG": (_picture(_truncated), "truncated or corrupt image"),
    "decompression bomb": (_picture(_huge, "bomb.png"), "decompression-bomb"),
}


@pytest.mark.parametrize("kind", ROW_KINDS)
def test_bad_row_is_one_skipped_row(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000 * 1000)
    make, reason = ROW_KINDS[kind]
    root = tmp_path / "set"
    root.mkdir()
    ratings = root / "r.csv"
    ratings.write_text(f"code,file,val,aro\n{_good(root)}\n{make(root)}\n".replace("val,aro", "valence,arousal"))
    assert _build(tmp_path, ratings) == 0
    out = capsys.readouterr().out
    assert "s r.csv line 3: " in out and reason in out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (report["read"], report["kept"], report["skipped"]) == (2, 1, 1)
    (skipped,) = report["skipped_rows"]
    assert skipped["row"] == "r.csv line 3" and reason in skipped["reason"]

    assert _build(tmp_path / "strict", ratings, "--strict") == 1
    err = capsys.readouterr().err
    assert "r.csv line 3" in err and reason in err
    assert not (tmp_path / "strict" / "out").exists()


# --- rating files and arguments that stop a build: exit 2, the file and the reason named ----------------------

def _csv(text: str, name: str = "r.csv") -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        (root / name).write_bytes(text.encode() if isinstance(text, str) else text)
        write_image(root / "good.png", size=(12, 12))
        return root / name
    return make


FILE_KINDS = {
    "rating file missing": (lambda root: root / "none.csv", [], "none.csv: does not exist"),
    "empty rating file": (_csv(""), [], "r.csv: holds no rows"),
    "header only": (_csv("code,file,valence,arousal\n"), [], "r.csv: has a header (r.csv line 1) but no data rows"),
    "column missing": (_csv("code,file,valence\ng,good.png,4\n"), [], "r.csv: no header row found: no column 'arousal' (option arousal)"),
    "no header, read by position": (
        _csv("g,good.png,4,4\n"), ["--option", "s.path=2", "--option", "s.valence=3", "--option", "s.arousal=4",
                                   "--option", "s.id=1"], "r.csv: r.csv line 1 looks like data, not a header"),
    "spreadsheet that is not one": (_csv(b"PK\x03\x04 not really a zip", "r.xlsx"), [],
                                    "r.xlsx: cannot read the spreadsheet"),
    "OpenDocument sheet, broken or without odfpy": (
        _csv(b"PK\x03\x04 an .ods", "r.ods"), [],
        "r.ods: reading .ods files needs odfpy" if importlib.util.find_spec("odf") is None
        else "r.ods: cannot read the spreadsheet"),
    "every row skipped": (_csv("code,file,valence,arousal\na,none.png,4,4\n"), [],
                          "no row kept: all 1 rows read were skipped (1 x image file not found)"),
    "infinite scale": (_csv("code,file,valence,arousal\ng,good.png,4,4\n"), ["--option", "s.scale=1,inf"],
                       "scale needs finite ends"),
    "scale upside down": (_csv("code,file,valence,arousal\ng,good.png,4,4\n"), ["--option", "s.scale=7,1"],
                          "maximum must exceed its minimum"),
    "unknown option": (_csv("code,file,valence,arousal\ng,good.png,4,4\n"), ["--option", "s.valance=x"],
                       "unknown option 'valance'"),
    "option for no source": (_csv("code,file,valence,arousal\ng,good.png,4,4\n"), ["--option", "t.path=x"],
                             "no source named 't'"),
}


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_bad_rating_file_or_option_stops_the_build(tmp_path, capsys, kind):
    make, extra, message = FILE_KINDS[kind]
    root = tmp_path / "set"
    root.mkdir()
    ratings = make(root)
    assert _build(tmp_path, ratings, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("picaffect build: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def _headerless_cgna(root: Path) -> None:
    (root / "valence_avg_10766_v2.txt").write_text("valence\n5\n")
    (root / "arousal_avg_10766_v2.txt").write_text("arousal\n5\n")


def _uneven_cgna(root: Path) -> None:
    (root / "valence_avg_10766_v2.txt").write_text("5\n5\n")
    (root / "arousal_avg_10766_v2.txt").write_text("5\n")


def _naps_other_layout(root: Path) -> None:
    (root / "NAPS.csv").write_text("a;b\nc;d\nID;Category;M;SD;M;SD\nAnimals_001_h;Animals;5;1;5;1\n")


PRESET_KINDS = {
    "IED file with a header": ("cgna", _headerless_cgna, "valence_avg_10766_v2.txt: line 1 is 'valence'"),
    "IED files of different lengths": ("cgna", _uneven_cgna, "2 values, but arousal_avg_10766_v2.txt has 1"),
    "NAPS in another layout": ("naps", _naps_other_layout, "NAPS.csv: no column 'M#7' (option valence)"),
    "IAPS without its rating file": ("iaps", lambda root: None, "AllSubjects_1-20.txt: rating file not found"),
}


@pytest.mark.parametrize("kind", PRESET_KINDS)
def test_preset_file_problems_stop_the_build(tmp_path, capsys, kind):
    preset, make, message = PRESET_KINDS[kind]
    root = tmp_path / "set"
    root.mkdir()
    make(root)
    assert main(["build", str(tmp_path / "out"), "--source", f"{preset}={root}", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("target, message", [
    ("file", "is a file, not a folder"),
    ("file/below", "file is a file, not a folder"),
    ("busy", "holds files that are not part of a dataset (photo.jpg)"),
])
def test_build_targets_that_cannot_be_used(tmp_path, capsys, target, message):
    root = tmp_path / "set"
    root.mkdir()
    ratings = _csv("code,file,valence,arousal\ng,good.png,4,4\n")(root)
    (tmp_path / "file").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "photo.jpg").write_text("x")
    assert main(["build", str(tmp_path / target), "--source", f"csv:s={ratings}", *OPTIONS]) == 2
    err = capsys.readouterr().err
    assert message in err and "File exists" not in err


def test_no_plots_says_so(tmp_path, capsys):
    root = tmp_path / "set"
    root.mkdir()
    ratings = _csv("code,file,valence,arousal\ng,good.png,4,4\n")(root)
    assert _build(tmp_path, ratings) == 0
    assert "plots/" not in capsys.readouterr().out and not (tmp_path / "out" / "plots").exists()


# --- what predict collects: one picture or one note per input, the true reason -------------------------------

def test_every_input_is_a_picture_or_a_note(tmp_path):
    root = tmp_path / "in"
    write_image(root / "ok.jpg")
    (root / "loop.jpg").symlink_to(root / "loop.jpg")
    (root / "dangling.png").symlink_to(root / "gone.png")
    os.mkfifo(root / "pipe.gif")
    (root / "readme.txt").write_text("x")
    (root / "dir.jpg").mkdir()
    write_image(root / "dir.jpg" / "inner.png")
    (root / "dir.jpg" / "up").symlink_to(root)
    named = [root, root / "ok.jpg", tmp_path / "missing.jpg", str(root / "nothing-*.jpg"), str(root / "**" / "*.png"),
             root / "ok.jpg" / "child.jpg"]
    pictures, notes = collect_pictures(named, recursive=True)
    names = [p.name for p in pictures]
    # the folder: ok.jpg, the three unreadable pictures (their rows say why), inner.png once despite the loop
    assert names == ["dangling.png", "inner.png", "loop.jpg", "ok.jpg", "pipe.gif", "ok.jpg", "dangling.png",
                     "inner.png"]
    reasons = {Path(n.path).name: (n.reason, n.missing) for n in notes}
    assert reasons["readme.txt"] == ("skipped, not a picture file", False)
    assert reasons["missing.jpg"] == ("no such file or folder", True)
    assert reasons["nothing-*.jpg"] == ("matches no file", True)
    assert reasons["child.jpg"] == ("no such file (a part of the path is a file, not a folder)", True)
    assert "already searched" in reasons["up"][0]


# --- outputs: checked before any scoring, one line each ----------------------------------------------------------

@pytest.mark.parametrize("out, message", [
    ("x.xlsx", "unknown ending '.xlsx'"),
    ("folder", "is a folder"),
    ("file/x.csv", "file is a file, not a folder"),
    ("missing/x.csv", "does not exist"),
])
def test_predict_output_paths_refused_before_scoring(tmp_path, capsys, out, message):
    write_image(tmp_path / "a.jpg")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    if out == "folder":
        out = "folder.csv"
        (tmp_path / "folder.csv").mkdir()
    code = main(["predict", str(tmp_path / "a.jpg"), "--out", str(tmp_path / out), "--model", "no-such-model"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "no-such-model" not in err  # refused before the model was looked up


def test_output_write_that_fails_is_one_line(tmp_path):
    from picaffect.app.outputs import OutputError, write_predictions

    with pytest.raises(OutputError, match="cannot write /proc/x.csv"):
        write_predictions([{"path": "a", "valence": 5.0, "arousal": 5.0, "quadrant": "q", "error": None}],
                          Path("/proc/x.csv"), {"model": "m", "scale": "1..9"})


# --- an empty id or picture-name cell, in every preset: one skipped row, a report JSON can hold ------------------

def _naps_empty_id(root: Path) -> None:
    from test_sources_layouts import _naps_grid, _naps_rows

    rows = _naps_rows(2)
    rows[0][0] = ""
    (root / "NAPS.csv").write_text("\n".join(";".join(str(v) for v in cells) for cells in _naps_grid(rows)) + "\n")
    write_image(root / "images" / f"{rows[1][0]}.jpg")


EMPTY_ID = {
    "oasis": lambda root: ((root / "OASIS.csv").write_text(
        ",Theme,Category,Source,Valence_mean,Valence_SD,Valence_N,Arousal_mean,Arousal_SD,Arousal_N\n"
        "I1, ,Object,P,4,1,9,4,1,9\nI2,a,Object,P,4,1,9,4,1,9\n"), write_image(root / "images" / "a.jpg")),
    "emotion6": lambda root: ((root / "ground_truth.txt").write_text(
        "[image_filename]\t[valence]\t[arousal]\n\t5\t5\njoy/1.jpg\t5\t5\n"), write_image(root / "images/joy/1.jpg")),
    "bass": lambda root: ((root / "BASS_data.csv").write_text(
        "file_name,val_mean_us,aro_mean_us\n,5,5\na.png,5,5\n"), write_image(root / "images" / "a.png")),
    "gaped": lambda root: ([(root / f"{c}.txt").write_text(f"\tValence\tArousal\n\t50\t50\n{c}1.jpg\t50\t50\n")
                            for c in ("A", "H", "N", "P", "Sn", "Sp")],
                           [write_image(root / c / f"{c}1.bmp", fmt="BMP") for c in ("A", "H", "N", "P", "Sn", "Sp")]),
    "iaps": lambda root: ((root / "AllSubjects_1-20.txt").write_text(
        "desc\tIAPS\tvalmn\taromn\nx\t\t5\t5\ny\t1710\t5\t5\n"), write_image(root / "images" / "1710.jpg")),
    "smid": lambda root: ((root / "SMID_norms.csv").write_text(
        '"","valence_mean","arousal_mean"\n"",3,3\n"a",3,3\n'), write_image(root / "img" / "a.png")),
    "emomadrid": lambda root: ((root / "EMindex.csv").write_text(
        "EmoMadrid\nEM CODE;Thumbnail;Mean Valence;Mean Arousal\n ;;0;0\nEM1;;0;0\n"),
        write_image(root / "images" / "EM1.jpg")),
    "naps": _naps_empty_id,
}


@pytest.mark.parametrize("preset", EMPTY_ID)
def test_empty_id_cell_in_every_preset(tmp_path, capsys, preset):
    root = tmp_path / "set"
    root.mkdir()
    EMPTY_ID[preset](root)
    assert main(["build", str(tmp_path / "out"), "--source", f"{preset}={root}", "--size", "8", "--no-plots"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    skipped = [r for r in report["skipped_rows"] if r["id"] in ("", None)]
    assert len(skipped) == report["skipped"] >= 1 and report["kept"] >= 1
    assert report["read"] == report["kept"] + report["skipped"]
    assert all(r["row"] and ("no " in r["reason"] or "empty id" in r["reason"]) for r in skipped), skipped
