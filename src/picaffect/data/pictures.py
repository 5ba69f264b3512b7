"""What a picture file is, and turning what a user names (files, folders, globs) into pictures.

One definition serves the source readers (``ImageFolder`` finds pictures by stem),
the decoder (``load_rgb`` asks ``file_problem`` before opening anything, so that a
FIFO is never opened and a symlink loop is reported as one) and ``predict``
(``collect_pictures``). The reasons are the true ones: "symlink loop", "broken
link", "is a folder", "not a regular file (FIFO)", "permission denied", never a
decoder's "truncated or corrupt image" for a file that was never read.
"""
from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


# Endings of the picture formats Pillow reads. Written out, not taken from
# ``Image.registered_extensions()``: that needs ``Image.init()``, which loads every
# plugin and puts JPEG behind a dozen formats that each get to try every file first,
# slowing every ``Image.open`` in the process by a quarter (measured on Emotion6).
# A test checks that Pillow registers a reader for each of them.
PICTURE_SUFFIXES = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".pcx", ".tga", ".ico", ".icns", ".cur", ".psd", ".jp2", ".j2k", ".jpx",
    ".jpf", ".j2c", ".jpc", ".dds", ".sgi", ".rgb", ".rgba", ".bw", ".qoi", ".avif", ".avifs", ".im", ".msp",
    ".xbm", ".xpm", ".blp", ".ras", ".pcd", ".fit", ".fits", ".dcx",
})


def is_picture_name(path: str | os.PathLike) -> bool:
    """Whether the name ends like a picture Pillow can open (.jpg, .PNG, .gif, .bmp, .tif, .webp, ...)."""
    return os.path.splitext(os.fspath(path))[1].lower() in PICTURE_SUFFIXES


_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"))


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be read as a picture file; None for a non-empty regular file.

    Asked before any file is opened: opening a FIFO would block, and a symlink loop or
    a dangling link would otherwise surface as a bare OSError.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken link (points to {os.readlink(path)}, which does not exist)"
        return "no such file"
    except NotADirectoryError:
        return "no such file (a part of the path is a file, not a folder)"
    except PermissionError:
        return "permission denied"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop"
        return f"cannot read: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a picture file"
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "special file")
        return f"not a regular file ({kind})"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    return None


@dataclass(frozen=True)
class Note:
    """An input that gives no picture, and why.

    ``problem`` marks an input the user meant to be scored that could not be (a path
    that names nothing, a folder that cannot be read): ``--strict`` fails on those.
    ``missing`` marks the subset that names nothing at all. A plain skip (a text file
    in a folder, sub-folders without ``--recursive``) has neither.
    """

    path: str
    reason: str
    problem: bool = False
    missing: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class Collection(NamedTuple):
    """The pictures found, in a stable order, and a note for every input that gave none."""

    pictures: list[Path]
    notes: list[Note]

    @property
    def problems(self) -> list[Note]:
        """Notes that ``--strict`` counts as failures."""
        return [n for n in self.notes if n.problem]


def collect_pictures(paths: Sequence[str | os.PathLike], recursive: bool = False) -> Collection:
    """Expand files, folders and globs into picture paths, in a stable order.

    A file named explicitly is always kept, whatever it is: its row says why it cannot
    be scored. Inside folders and glob matches, files that end like pictures are kept
    (an unreadable one gets a row with its reason) and everything else gets a note.
    Folders are searched with ``recursive`` only; directory links are followed once
    each, so a symlink loop can neither repeat a picture nor run away.
    """
    pictures: list[Path] = []
    notes: list[Note] = []
    for item in paths:
        text = os.fspath(item)
        found, more = _expand(text, recursive)
        pictures += found
        notes += more
    return Collection(pictures, notes)


def _expand(text: str, recursive: bool) -> tuple[list[Path], list[Note]]:
    path = Path(text)
    exists = os.path.lexists(text)
    if exists and os.path.isdir(text):
        return _folder(path, recursive)
    if exists:
        return [path], []  # a file, a link, a FIFO: named on purpose, so its row tells what it is
    if glob.has_magic(text):
        return _glob(text, recursive)
    problem = file_problem(text)
    reason = problem if problem and problem.startswith("no such file (") else "no such file or folder"
    return [], [Note(text, reason, problem=True, missing=True)]


def _folder(root: Path, recursive: bool) -> tuple[list[Path], list[Note]]:
    pictures: list[Path] = []
    notes: list[Note] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: dict[str, Path] = {}
    unsearched: list[str] = []

    def visit(folder: Path) -> None:
        try:
            st = os.stat(folder)
        except OSError as e:
            notes.append(Note(str(folder), _os_reason(e), problem=True))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            notes.append(Note(str(folder), f"not searched again: a link to {os.path.realpath(folder)}, "
                                           "which is already searched"))
            return
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            notes.append(Note(str(folder), f"folder not searched: {_os_reason(e)}", problem=True))
            return
        for entry in entries:
            path = folder / entry.name
            if _is_dir(entry):
                if recursive:
                    visit(path)
                else:
                    unsearched.append(entry.name)
                continue
            if is_picture_name(entry.name):
                real = os.path.realpath(path)
                if real in seen_files:
                    notes.append(Note(str(path), f"skipped, the same file as {seen_files[real]}"))
                    continue
                seen_files[real] = path
                pictures.append(path)
            else:
                problem = file_problem(path)
                why = "not a picture file" if problem is None or problem.startswith("empty") else problem
                notes.append(Note(str(path), f"skipped, {why}"))

    visit(root)
    if unsearched:
        notes.append(Note(str(root), f"{len(unsearched)} sub-folder(s) not searched (add --recursive)"))
    return pictures, notes


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows links; False for a symlink loop or a broken link
    except OSError:
        return False


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error)


def _glob(pattern: str, recursive: bool) -> tuple[list[Path], list[Note]]:
    """Glob matches with ``**`` walked once per folder: a link back to a parent cannot repeat or loop."""
    matches = sorted(set(_match(pattern, recursive)))
    pictures: list[Path] = []
    notes: list[Note] = []
    seen: dict[str, Path] = {}
    for text in matches:
        path = Path(text)
        if os.path.isdir(text):
            if not recursive:
                notes.append(Note(text, "is a folder: not searched (name it, or add --recursive)"))
            continue
        if not is_picture_name(text):
            problem = file_problem(text)
            why = "not a picture file" if problem is None or problem.startswith("empty") else problem
            notes.append(Note(text, f"skipped, {why}"))
            continue
        real = os.path.realpath(text)
        if real in seen:
            notes.append(Note(text, f"skipped, the same file as {seen[real]}"))
            continue
        seen[real] = path
        pictures.append(path)
    if not pictures and not notes:
        notes.append(Note(pattern, "matches no file", problem=True, missing=True))
    return pictures, notes


def _match(pattern: str, recursive: bool) -> Iterator[str]:
    """Paths matching ``pattern`` as ``glob.glob`` would, but each folder entered once per ``**``."""
    parts = pattern.split(os.sep)
    fixed: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    rest = parts[len(fixed):]
    base = os.sep.join(fixed) if fixed else ""
    if fixed == [""]:
        base = os.sep
    visited: set[tuple[int, int, int]] = set()
    yield from _walk(base, rest, recursive, visited)


def _walk(base: str, segments: list[str], recursive: bool, visited: set) -> Iterator[str]:
    if not segments:
        if os.path.lexists(base or "."):
            yield base
        return
    segment, rest = segments[0], segments[1:]
    if segment == "**" and recursive:
        try:
            st = os.stat(base or ".")
        except OSError:
            return
        key = (st.st_dev, st.st_ino, len(segments))
        if key in visited:
            return
        visited.add(key)
        yield from _walk(base, rest, recursive, visited)
        for name in _names(base):
            child = os.path.join(base, name)
            if not name.startswith(".") and os.path.isdir(child):
                yield from _walk(child, segments, recursive, visited)
        return
    if not glob.has_magic(segment):
        yield from _walk(os.path.join(base, segment) if base else segment, rest, recursive, visited)
        return
    pattern = "*" if segment == "**" else segment
    for name in _names(base):
        if name.startswith(".") and not pattern.startswith("."):
            continue
        if fnmatch.fnmatchcase(name, pattern):
            child = os.path.join(base, name) if base else name
            if rest and not os.path.isdir(child):
                continue
            yield from _walk(child, rest, recursive, visited)


def _names(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder or "."))
    except OSError:
        return []
