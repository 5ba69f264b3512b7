"""Files others read are replaced whole: a failed write leaves the old file and no temporary."""
from __future__ import annotations

import pytest

from picaffect.core.atomic import folder_problem, replace_atomically, write_bytes_atomically


def test_a_write_replaces_the_file_whole(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    write_bytes_atomically(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "predictions.csv"
    target.write_bytes(b"old")

    def dies_half_way(temp):
        temp.write_bytes(b"half")
        raise KeyboardInterrupt  # Ctrl-C while writing

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(target, dies_half_way)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"]


def test_folder_problem_says_why_a_folder_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("")
    assert folder_problem(tmp_path) is None
    assert folder_problem(tmp_path / "file" / "below") == f"{tmp_path / 'file'} is a file, not a folder"
    assert folder_problem(tmp_path / "missing") == f"the folder {tmp_path / 'missing'} does not exist"
    assert folder_problem(tmp_path / "missing" / "deeper", must_exist=False) is None  # the writer creates it
