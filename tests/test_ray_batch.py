"""`picaffect predict --engine ray`: a local 2-CPU Ray, every input a row, an actor killed mid-run."""
from __future__ import annotations

import json

import pytest

from conftest import write_image

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray") / "pictures"
    for i in range(40):
        write_image(folder / f"p{i:02d}.jpg", size=(60 + i, 50), color=(6 * i, 100, 255 - 6 * i))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "empty.png").write_bytes(b"")
    return folder


def test_ray_job_accounts_for_every_input_and_survives_a_dead_actor(pictures, tmp_path):
    from picaffect.batch.ray_job import score_with_ray
    from picaffect.inference import Predictor

    out = tmp_path / "scores"
    marker = tmp_path / "crashed"
    summary = score_with_ray([str(pictures)], out, actors=2, batch_size=8, num_cpus=2, crash_once=str(marker))
    assert marker.exists(), "one actor was killed mid-run"
    assert not ray.is_initialized(), "the local Ray started for the job is stopped after it"
    table = pq.read_table(out).to_pylist()  # the folder reads as one table (_summary.json is skipped)
    assert len(table) == summary["rows"] == summary["inputs"] == 42  # rows out = inputs in
    assert summary["failed"] == 2 and summary["scored"] == 40
    assert sorted(r["path"].split("/")[-1] for r in table if r["error"]) == ["broken.jpg", "empty.png"]
    assert len({r["path"] for r in table}) == 42
    assert json.loads((out / "_summary.json").read_text())["rows"] == 42
    # the same numbers as the local engine
    local = {r["path"]: r for r in Predictor.from_pretrained("default").predict_files([pictures]).rows}
    for row in table:
        if not row["error"]:
            assert row["valence"] == pytest.approx(local[row["path"]]["valence"], abs=1e-3)
            assert row["quadrant"] == local[row["path"]]["quadrant"]


def test_ray_sources_from_a_table_and_cli_refusals(pictures, tmp_path, capsys):
    import pyarrow as pa

    from picaffect.batch.ray_job import input_paths
    from picaffect.app.cli import main

    table = tmp_path / "list.parquet"
    pq.write_table(pa.table({"file": [f"{pictures.name}/p00.jpg", str(pictures / "p01.jpg")]}), table)
    (tmp_path / pictures.name).symlink_to(pictures)
    paths, notes = input_paths([str(table)], path_column="file")
    assert paths == [str(tmp_path / pictures.name / "p00.jpg"), str(pictures / "p01.jpg")] and notes == []
    assert main(["predict", "--engine", "ray", str(table), "--out", str(tmp_path / "o")]) == 2
    assert "no column 'path'" in capsys.readouterr().err
    assert main(["predict", "--engine", "ray", str(pictures)]) == 2
    assert "--out DIR/" in capsys.readouterr().err


def test_the_job_wants_a_folder_and_says_so_before_ray_starts(tmp_path):
    from picaffect.batch.ray_job import check_out, score_with_ray
    from picaffect.core.errors import UsageError

    assert check_out(str(tmp_path / "shards")) == tmp_path / "shards"
    with pytest.raises(UsageError, match="give --out DIR/"):
        check_out(None)
    with pytest.raises(UsageError, match=r"scores\.csv should be a folder"):
        score_with_ray([str(tmp_path)], tmp_path / "scores.csv")
    assert not ray.is_initialized()
