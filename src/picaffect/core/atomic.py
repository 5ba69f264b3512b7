"""Files others read are replaced whole, never seen half-written.

Each writer writes a temporary file beside the target (same folder, so the rename
stays on one file system), flushes it to disk, then renames it over the target:
a reader sees the old file or the new one, even if the writer is killed.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def staged_folder(out: str | os.PathLike, kind: str = "building") -> Iterator[Path]:
    """A temporary folder beside ``out`` that becomes ``out`` when the block ends without error.

    On any error or interrupt the temporary folder is removed and ``out`` is untouched.
    The swap is two renames (old out aside, new in place) with interrupts held back
    between them, then the old folder is deleted. ``kind`` names the temporary folder
    (``.OUT.KIND-PID-TAG``), so that a killed run's leftover is recognised and removed by
    the next run into the same place once its process is gone.
    """
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out, kind)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temp = out.parent / f".{out.name}.{kind}-{tag}"
    temp.mkdir()
    try:
        yield temp
        old = out.parent / f".{out.name}.old-{tag}"
        with _interrupts_held():
            if out.exists():
                os.replace(out, old)
            try:
                os.replace(temp, out)
            except BaseException:
                if old.exists():
                    os.replace(old, out)
                raise
        if old.is_symlink():  # the target was a link to a dataset folder: the link is replaced, its folder kept
            old.unlink()
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _remove_stale(out: Path, kind: str) -> None:
    """Temporary folders of runs of ``kind`` that were killed outright (SIGKILL), whose process is gone."""
    for stale in out.parent.glob(f".{glob.escape(out.name)}.*-*"):
        found, _, tag = stale.name[len(out.name) + 2:].partition("-")
        pid = tag.split("-")[0]
        if found not in (kind, "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for a few microseconds of renames (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in held:
            signal.raise_signal(s)
