"""Files others read are replaced whole, never seen half-written.

Each writer writes a temporary file beside the target (same folder, so the rename
stays on one file system), flushes it to disk, then renames it over the target:
a reader sees the old file or the new one, even if the writer is killed.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)``, then move the finished file over ``path``."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temp)
        with open(temp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def write_bytes_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """``path`` holds ``data``, whole, or is as it was."""
    return replace_atomically(path, lambda temp: temp.write_bytes(data))


def file_in_the_way(folder: str | os.PathLike) -> Path | None:
    """The nearest of ``folder`` and its parents that exists as a file, which would stop the
    folder from being created (None when nothing is in the way)."""
    folder = Path(folder)
    return next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)


def folder_problem(folder: str | os.PathLike, *, must_exist: bool = True) -> str | None:
    """Why files cannot be written into ``folder``, in words for a message, or None when they can.

    A file where the folder or one of its parents should be; the folder missing (unless
    ``must_exist`` is False: the writer will create it); the folder not writable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        below = file_in_the_way(folder)
        if below is not None:
            return f"{below} is a file, not a folder"
        return f"the folder {folder} does not exist" if must_exist else None
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable (permission denied)"
    return None
