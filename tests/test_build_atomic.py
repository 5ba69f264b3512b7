"""A dataset folder is always one whole build: staged beside the target, swapped in at the end,
and refused by every reader when its manifest and image cache come from different builds."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import ROOT, write_image
from picaffect.app.cli import main
from picaffect.data.build import BuildError, SourceSpec, build
from picaffect.data.cache import CacheWriter, cache_build_id, open_cache
from picaffect.data.dataset import DatasetError, RatedImages, load_manifest
from picaffect.data.layout import BUILD_ID_ATTR


def _set(root: Path, n: int = 12, bad_last: bool = False) -> Path:
    lines = ["file,valence,arousal"]
    for i in range(n):
        write_image(root / f"p{i}.png", size=(20, 20), color=(i * 20, 50, 90))
        lines.append(f"p{i}.png,{1 + i % 9},{9 - i % 9}")
    if bad_last:
        lines.append("missing.png,5,5")
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    return root / "ratings.csv"


def _spec(ratings: Path) -> SourceSpec:
    return SourceSpec("csv", ratings, "s", {"path": "file"})


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_manifest_and_cache_carry_one_build_id(tmp_path):
    report = build(tmp_path / "out", [_spec(_set(tmp_path / "set"))], size=16, progress=False, plots=False)
    manifest = load_manifest(tmp_path / "out")
    assert manifest.attrs[BUILD_ID_ATTR] == report["build_id"] == cache_build_id(tmp_path / "out" / "images.npy")
    assert len(report["build_id"]) == 32
    assert open_cache(tmp_path / "out" / "images.npy").shape == (12, 16, 16, 3)  # numpy still reads the header
    again = build(tmp_path / "out", [_spec(_set(tmp_path / "set"))], size=16, progress=False, plots=False)
    assert again["build_id"] != report["build_id"]
    assert _leftovers(tmp_path) == []


def test_cache_header_comment_is_ignored_by_numpy(tmp_path):
    with CacheWriter(tmp_path / "c.npy", 4, "00ff") as cache:
        cache.append(np.full((4, 4, 3), 7, np.uint8))
    assert np.load(tmp_path / "c.npy").sum() == 7 * 48
    assert cache_build_id(tmp_path / "c.npy") == "00ff"
    assert (tmp_path / "c.npy").stat().st_size % 64 == 48 % 64  # 192-byte header, then the pixels


def test_caches_of_two_builds_are_refused(tmp_path):
    ratings = _set(tmp_path / "set")
    build(tmp_path / "a", [_spec(ratings)], size=16, progress=False, plots=False)
    build(tmp_path / "b", [_spec(ratings)], size=16, progress=False, plots=False)
    shutil.copyfile(tmp_path / "b" / "images.npy", tmp_path / "a" / "images.npy")
    with pytest.raises(DatasetError, match="different builds"):
        RatedImages(tmp_path / "a", "train")
    assert main(["evaluate", "default", "--data", str(tmp_path / "a")]) == 2


def test_a_manifest_without_build_id_is_refused(tmp_path):
    build(tmp_path / "a", [_spec(_set(tmp_path / "set"))], size=16, progress=False, plots=False)
    manifest = pd.read_parquet(tmp_path / "a" / "manifest.parquet")
    manifest.attrs.clear()
    manifest.to_parquet(tmp_path / "a" / "manifest.parquet")
    with pytest.raises(DatasetError, match="manifest.parquet carry no build id"):
        load_manifest(tmp_path / "a")
    (tmp_path / "a" / "images.npy").unlink()
    with pytest.raises(DatasetError, match="images.npy is missing"):
        load_manifest(tmp_path / "a")


def test_a_rewritten_manifest_beside_a_linked_cache_is_accepted(tmp_path):
    """What a leave-one-source-out view does: copy the manifest, hard-link the cache."""
    build(tmp_path / "a", [_spec(_set(tmp_path / "set"))], size=16, progress=False, plots=False)
    view = load_manifest(tmp_path / "a").copy()
    view["split"] = "train"
    (tmp_path / "view").mkdir()
    view.to_parquet(tmp_path / "view" / "manifest.parquet", index=False)
    os.link(tmp_path / "a" / "images.npy", tmp_path / "view" / "images.npy")
    assert len(RatedImages(tmp_path / "view", "train")) == 12


def test_a_short_cache_is_refused(tmp_path):
    build(tmp_path / "a", [_spec(_set(tmp_path / "set"))], size=16, progress=False, plots=False)
    build_id = cache_build_id(tmp_path / "a" / "images.npy")
    with CacheWriter(tmp_path / "a" / "images.npy", 16, build_id) as cache:
        cache.append(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(DatasetError, match="indexes 12 pictures but images.npy holds 1"):
        load_manifest(tmp_path / "a")


def test_a_failed_rebuild_keeps_the_old_dataset(tmp_path):
    ratings = _set(tmp_path / "set", bad_last=True)
    first = build(tmp_path / "out", [_spec(ratings)], size=16, progress=False, plots=False)
    with pytest.raises(BuildError, match="missing.png"):
        build(tmp_path / "out", [_spec(ratings)], size=24, strict=True, progress=False, plots=False)
    assert load_manifest(tmp_path / "out").attrs[BUILD_ID_ATTR] == first["build_id"]
    assert RatedImages(tmp_path / "out", "all").image_size == 16
    assert _leftovers(tmp_path) == []


def test_a_failed_first_build_leaves_no_folder(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "ratings.csv").write_text("file,valence,arousal\nnone.png,5,5\n")
    with pytest.raises(BuildError, match="no row kept: all 1 rows read were skipped"):
        build(tmp_path / "out", [_spec(tmp_path / "set" / "ratings.csv")], size=16, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_targets_a_build_must_not_replace(tmp_path):
    ratings = _set(tmp_path / "set")
    (tmp_path / "file").write_text("x")
    with pytest.raises(BuildError, match="is a file, not a folder"):
        build(tmp_path / "file", [_spec(ratings)], progress=False)
    with pytest.raises(BuildError, match="file is a file, not a folder"):
        build(tmp_path / "file" / "below", [_spec(ratings)], progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_text("x")
    with pytest.raises(BuildError, match=r"not part of a dataset \(holiday.jpg\)"):
        build(tmp_path / "mine", [_spec(ratings)], progress=False)
    assert (tmp_path / "mine" / "holiday.jpg").read_text() == "x"


def test_stale_folders_of_killed_builds_are_cleared(tmp_path):
    stale = tmp_path / ".out.building-999999999-abcd"  # no such process
    stale.mkdir()
    live = tmp_path / f".out.building-{os.getpid()}-abcd"  # a build still running: left alone
    live.mkdir()
    build(tmp_path / "out", [_spec(_set(tmp_path / "set"))], size=16, progress=False, plots=False)
    assert not stale.exists() and live.exists()


def _part_way(parent: Path, proc: subprocess.Popen, more_than: int) -> Path | None:
    """The staged image cache of the build ``proc`` once it holds more than ``more_than`` bytes."""
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        staged = list(parent.glob(".out.building-*/images.npy"))
        if staged and staged[0].stat().st_size > more_than:
            return staged[0]
        time.sleep(0.02)
    return None


def test_sigint_during_a_rebuild_leaves_the_old_dataset(tmp_path):
    """Ctrl-C half-way through re-decoding: the folder still holds the first build, whole."""
    pictures = tmp_path / "set"
    pictures.mkdir()
    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(pictures / "p0.png")  # PNG: no reduced-scale decoding, so slow enough
    n = 600
    for i in range(1, n):
        os.link(pictures / "p0.png", pictures / f"p{i}.png")
    (pictures / "ratings.csv").write_text("file,valence,arousal\n" + "".join(f"p{i}.png,5,5\n" for i in range(n)))
    spec = SourceSpec("csv", pictures / "ratings.csv", "s", {"path": "file"})
    small = _set(tmp_path / "small")

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "picaffect", "build", str(tmp_path / "out"), "--source",
           f"csv:s={spec.path}", "--option", "s.path=file", "--size", "64", "--workers", "1", "--no-plots"]
    full = 192 + n * 64 * 64 * 3
    for _ in range(3):  # a test process starved of CPU can see the build only once it is done: try again
        first = build(tmp_path / "out", [_spec(small)], size=16, progress=False, plots=False)
        # Ctrl-C as a user's shell delivers it: an ignored SIGINT is inherited across exec, and a test earlier
        # in the same pytest process can leave it ignored, so the build would never see the interrupt
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        staged = _part_way(tmp_path, proc, more_than=192 + 50 * 64 * 64 * 3)
        if staged is not None:
            proc.send_signal(signal.SIGSTOP)  # frozen: its progress can be read without a race
            if proc.poll() is None and staged.exists() and staged.stat().st_size < full:
                break
            proc.send_signal(signal.SIGCONT)
        proc.communicate(timeout=60)
    else:
        pytest.fail("the build was never caught part-way through decoding in three tries")
    proc.send_signal(signal.SIGINT)  # delivered when it runs again
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    manifest = load_manifest(tmp_path / "out")
    assert manifest.attrs[BUILD_ID_ATTR] == first["build_id"] and len(manifest) == 12
    assert RatedImages(tmp_path / "out", "all").image_size == 16
    assert _leftovers(tmp_path) == []
