"""What `predict` collects from the paths a user names: every input a picture or a note, with the true reason."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import write_image
from picaffect.data.pictures import PICTURE_SUFFIXES, Note, collect_pictures, file_problem, is_picture_name


@pytest.fixture()
def tree(tmp_path) -> Path:
    root = tmp_path / "photos"
    write_image(root / "a.jpg")
    write_image(root / "B.PNG")
    write_image(root / "sub" / "c.gif", fmt="GIF")
    (root / "notes.txt").write_text("x")
    return root


def _names(paths) -> list[str]:
    return [p.name for p in paths]


def test_every_picture_ending_has_a_pillow_reader():
    import subprocess
    import sys

    # in a child process: Image.init() reorders Pillow's plugins for the whole process
    code = (f"from PIL import Image; Image.init(); S = set({sorted(PICTURE_SUFFIXES)!r}); "
            "readable = {e for e, f in Image.registered_extensions().items() if f in Image.OPEN}; "
            "print(sorted(S - readable))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_picture_names_are_pillows_readable_endings():
    assert is_picture_name("x.JPG") and is_picture_name("y.webp") and is_picture_name("z.tiff")
    assert not is_picture_name("Thumbs.db") and not is_picture_name("a.txt") and not is_picture_name("b.h5")


def test_folder_without_and_with_recursive(tree):
    pictures, notes = collect_pictures([tree])
    assert _names(pictures) == ["B.PNG", "a.jpg"]
    assert [str(n) for n in notes] == [f"{tree / 'notes.txt'}: skipped, not a picture file",
                                       f"{tree}: 1 sub-folder(s) not searched (add --recursive)"]
    assert not any(n.problem for n in notes)
    pictures, _ = collect_pictures([tree], recursive=True)
    assert _names(pictures) == ["B.PNG", "a.jpg", "c.gif"]


def test_links_fifos_and_loops_in_a_folder_are_rows_or_notes(tree):
    (tree / "loop.jpg").symlink_to(tree / "loop.jpg")
    (tree / "gone.jpg").symlink_to(tree / "nowhere.jpg")
    os.mkfifo(tree / "pipe.png")
    os.mkfifo(tree / "pipe")
    (tree / "dead").symlink_to(tree / "nothing")
    pictures, notes = collect_pictures([tree])
    # entries that end like pictures are rows: the row says why they cannot be scored
    assert _names(pictures) == ["B.PNG", "a.jpg", "gone.jpg", "loop.jpg", "pipe.png"]
    assert file_problem(tree / "loop.jpg") == "symlink loop"
    assert file_problem(tree / "gone.jpg").startswith("broken link")
    assert file_problem(tree / "pipe.png") == "not a regular file (FIFO)"
    reasons = {Path(n.path).name: n.reason for n in notes}
    assert reasons["pipe"] == "skipped, not a regular file (FIFO)"
    assert reasons["dead"].startswith("skipped, broken link")


def test_directory_link_loops_are_searched_once(tree):
    (tree / "sub" / "back").symlink_to(tree)
    (tree / "again").symlink_to(tree / "sub")
    pictures, notes = collect_pictures([tree], recursive=True)
    assert sorted(_names(pictures)) == ["B.PNG", "a.jpg", "c.gif"]
    assert sum("already searched" in n.reason for n in notes) == 2


def test_quoted_double_star_glob_does_not_follow_loops(tree):
    (tree / "sub" / "loop").symlink_to(tree / "sub")
    (tree / "sub" / "loop2").symlink_to(tree)
    pictures, notes = collect_pictures([f"{tree}/**/*.gif"], recursive=True)
    assert _names(pictures) == ["c.gif"]  # glob.glob would list it dozens of times
    pictures, _ = collect_pictures([f"{tree}/**/*.jpg"], recursive=True)
    assert _names(pictures) == ["a.jpg"]
    pictures, _ = collect_pictures([f"{tree}/*.jpg", f"{tree}/*/*.gif"])
    assert _names(pictures) == ["a.jpg", "c.gif"]


def test_named_paths(tree, tmp_path):
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    collection = collect_pictures([tree / "a.jpg", tree / "notes.txt", tmp_path / "loop.jpg",
                                   tmp_path / "missing.jpg", f"{tree}/nothing*.png", f"{tree / 'a.jpg'}/x.jpg"])
    # named files are rows whatever they are; a name that names nothing is a note marked missing
    assert _names(collection.pictures) == ["a.jpg", "notes.txt", "loop.jpg"]
    assert [(Path(n.path).name, n.reason, n.missing) for n in collection.notes] == [
        ("missing.jpg", "no such file or folder", True),
        ("nothing*.png", "matches no file", True),
        ("x.jpg", "no such file (a part of the path is a file, not a folder)", True)]
    assert collection.problems == collection.notes


def _denied(monkeypatch, name: str, target: Path) -> None:
    """``os.<name>`` raises "permission denied" for ``target`` alone (root reads everything otherwise)."""
    real = getattr(os, name)

    def fake(path, *args, **kwargs):
        if os.fspath(path) == os.fspath(target):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, fake)


def test_permission_denied_file_is_a_row_saying_so(tree, monkeypatch):
    from picaffect.data.images import ImageProblem, load_square

    _denied(monkeypatch, "stat", tree / "a.jpg")
    assert file_problem(tree / "a.jpg") == "permission denied"
    with pytest.raises(ImageProblem, match="^permission denied$"):
        load_square(tree / "a.jpg", 8)


def test_permission_denied_folder_is_a_problem_note(tree, monkeypatch):
    """A folder that cannot be listed (chmod 0 to a normal user; root lists every folder, so the denial is
    patched in, and the test runs as root too)."""
    _denied(monkeypatch, "scandir", tree / "sub")
    pictures, notes = collect_pictures([tree], recursive=True)
    assert _names(pictures) == ["B.PNG", "a.jpg"]
    assert Note(str(tree / "sub"), "folder not searched: permission denied", problem=True) in notes  # --strict fails
    _, notes = collect_pictures([tree / "sub"])
    assert notes == [Note(str(tree / "sub"), "folder not searched: permission denied", problem=True)]
