"""The build end to end on a small generic-CSV set full of bad rows."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import write_image
from picaffect.app.cli import main
from picaffect.data.build import BuildError, SourceSpec, apply_options, build
from picaffect.data.cache import open_cache
from picaffect.data.dataset import DatasetError, RatedImages, make_loader


def _messy_set(root):
    """24 good pictures and one of every kind of bad row, as a CSV with a BOM and CRLF endings."""
    img = root / "img"
    rows = []
    for i in range(24):
        write_image(img / f"good{i}.jpg", size=(60, 45), color=(i * 10, 100, 200 - i * 5))
        rows.append((f"img/good{i}.jpg", 1 + (i % 7), 7 - (i % 7), f"g{i // 4}"))
    write_image(img / "cmyk.jpg", mode="CMYK", color=(0, 0, 0, 0))
    rows.append(("img/cmyk.jpg", 4, 4, ""))
    (img / "empty.jpg").write_bytes(b"")
    rows.append(("img/empty.jpg", 4, 4, ""))
    (img / "notes.jpg").write_text("not a picture")
    rows.append(("img/notes.jpg", 4, 4, ""))
    good = (img / "good0.jpg").read_bytes()
    (img / "cut.jpg").write_bytes(good[: len(good) // 2])
    rows.append(("img/cut.jpg", 4, 4, ""))
    rows.append(("img/missing.jpg", 4, 4, ""))
    rows.append(("img/good1.jpg", "", 4, ""))          # missing rating
    rows.append(("img/good2.jpg", 12, 4, ""))          # out of range on 1..7
    rows.append(("img/good3.jpg", 4, 4, ""))           # duplicate path = duplicate id
    text = "file,val,aro,grp\r\n" + "".join(f"{p},{v},{a},{g}\r\n" for p, v, a, g in rows)
    (root / "ratings.csv").write_bytes("\ufeff".encode() + text.encode())
    return root / "ratings.csv"


def _spec(ratings, name="mine"):
    spec = SourceSpec("csv", ratings, name)
    apply_options([spec], [f"{name}.path=file", f"{name}.valence=val", f"{name}.arousal=aro",
                           f"{name}.scale=1,7", f"{name}.id=file", f"{name}.group=grp"])
    return spec


def test_counts_reconcile_and_every_skip_names_its_row(tmp_path):
    ratings = _messy_set(tmp_path / "set")
    report = build(tmp_path / "out", [_spec(ratings)], size=32, seed=0, workers=2, progress=False)
    assert report["read"] == 32
    assert report["kept"] == 25
    assert report["read"] == report["kept"] + report["skipped"]
    reasons = {r["id"]: r["reason"] for r in report["skipped_rows"]}
    assert "empty file" in reasons["img/empty.jpg"]
    assert "not an image" in reasons["img/notes.jpg"]
    assert "truncated" in reasons["img/cut.jpg"]
    assert "not found" in reasons["img/missing.jpg"] or "no image" in reasons["img/missing.jpg"]
    assert "missing valence" in reasons["img/good1.jpg"]
    assert "outside the scale" in reasons["img/good2.jpg"]
    assert "duplicate" in reasons["img/good3.jpg"]
    assert all(r["row"] for r in report["skipped_rows"])

    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert len(manifest) == 32
    assert {"source", "path", "valence", "arousal", "split", "status"} <= set(manifest.columns)
    ok = manifest[manifest.status == "ok"]
    assert ok["valence"].between(1, 9).all() and ok["arousal"].between(1, 9).all()
    # 1..7 -> 1..9: 4 -> 5, 1 -> 1, 7 -> 9
    first = ok.iloc[0]
    assert first["valence_raw"] == 1 and first["valence"] == 1 and first["arousal"] == 9
    assert set(ok["split"]) == {"train", "test", "validation"}
    assert manifest.loc[manifest.status != "ok", "split"].isna().all()

    images = open_cache(tmp_path / "out" / "images.npy")
    assert images.shape == (25, 32, 32, 3)
    assert sorted(ok["index"]) == list(range(25))
    # the cache row of good5 holds good5's colour (50, 100, 175)
    row = ok[ok["id"] == "img/good5.jpg"].iloc[0]
    assert np.abs(images[row["index"]].reshape(-1, 3).mean(0) - (50, 100, 175)).max() < 6
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["sources"]["mine"]["kept"] == 25
    assert (tmp_path / "out" / "plots" / "valence_arousal.png").stat().st_size > 1000
    assert (tmp_path / "out" / "plots" / "histograms.png").stat().st_size > 1000


def test_group_split_keeps_groups_whole(tmp_path):
    ratings = _messy_set(tmp_path / "set")
    build(tmp_path / "out", [_spec(ratings)], size=16, split="group", seed=1, progress=False, plots=False)
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    grouped = manifest[(manifest.status == "ok") & manifest.group.notna() & (manifest.group != "")]
    assert (grouped.groupby("group")["split"].nunique() == 1).all()


def test_same_inputs_same_outputs_whatever_the_workers(tmp_path):
    ratings = _messy_set(tmp_path / "set")
    build(tmp_path / "a", [_spec(ratings)], size=16, seed=5, workers=1, progress=False, plots=False)
    build(tmp_path / "b", [_spec(ratings)], size=16, seed=5, workers=3, progress=False, plots=False)
    a = pd.read_parquet(tmp_path / "a" / "manifest.parquet")
    b = pd.read_parquet(tmp_path / "b" / "manifest.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert (open_cache(tmp_path / "a" / "images.npy") == open_cache(tmp_path / "b" / "images.npy")).all()


def test_strict_stops_at_the_first_bad_row(tmp_path):
    ratings = _messy_set(tmp_path / "set")
    with pytest.raises(BuildError, match="line"):
        build(tmp_path / "out", [_spec(ratings)], size=16, strict=True, progress=False)


def test_cli_build_and_strict_exit(tmp_path, capsys):
    ratings = _messy_set(tmp_path / "set")
    opts = ["--option", "m.path=file", "--option", "m.valence=val", "--option", "m.arousal=aro",
            "--option", "m.scale=1,7", "--option", "m.id=file"]
    assert main(["build", str(tmp_path / "out"), "--source", f"csv:m={ratings}", *opts, "--size", "16"]) == 0
    out = capsys.readouterr().out
    assert "skipped rows (7)" in out and "empty file" in out
    assert main(["build", str(tmp_path / "out2"), "--source", f"csv:m={ratings}", *opts, "--strict"]) != 0
    assert "error" in capsys.readouterr().err


def test_cli_missing_rating_file_is_named(tmp_path, capsys):
    code = main(["build", str(tmp_path / "out"), "--source", f"oasis={tmp_path / 'nope'}"])
    assert code != 0
    assert "nope" in capsys.readouterr().err


def test_cli_bad_source_argument(tmp_path, capsys):
    assert main(["build", str(tmp_path / "out"), "--source", "flickr=/x"]) != 0
    assert "unknown preset 'flickr'" in capsys.readouterr().err


def test_dataset_and_loader(tmp_path):
    ratings = _messy_set(tmp_path / "set")
    build(tmp_path / "out", [_spec(ratings)], size=16, seed=0, progress=False, plots=False)
    sets = {s: RatedImages(tmp_path / "out", s) for s in ("train", "test", "validation")}
    assert sum(len(d) for d in sets.values()) == 25 == len(RatedImages(tmp_path / "out", "all"))
    image, target = sets["train"][0]
    assert image.shape == (3, 16, 16) and image.dtype.is_floating_point is False
    assert target.shape == (2,) and 1 <= float(target.min()) and float(target.max()) <= 9
    seen = []
    for images, targets in make_loader(sets["train"], batch_size=4, shuffle=True, workers=2):
        assert images.shape[1:] == (3, 16, 16) and targets.shape[1] == 2
        seen.extend(targets[:, 0].tolist())
    assert sorted(seen) == sorted(sets["train"].targets[:, 0].tolist())
    with pytest.raises(DatasetError, match="picaffect build"):
        RatedImages(tmp_path / "nothing", "train")
