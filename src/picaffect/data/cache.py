"""The image cache: one ``images.npy`` of shape (n, size, size, 3), uint8.

It is written as a stream, one picture at a time, so that a build's memory does
not grow with the number of pictures; the count is known only at the end, so the
header is reserved up front and rewritten then. The result is an ordinary .npy
file: ``np.load(path, mmap_mode="r")`` reads any row without loading the rest.

The header also carries the build id as a Python comment after the header dict
(numpy reads the header with ``ast.literal_eval``, which ignores comments), so the
id travels with the file through a copy or a hard link, and a reader can tell a
cache from another build before trusting its rows.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.errors import PicaffectError

# magic (6) + version (2) + length (2) + padded dict and id comment; a multiple of 64 as numpy aligns.
HEADER_BYTES = 192
MAGIC = b"\x93NUMPY\x01\x00"
_ID_COMMENT = "# picaffect build "
_ID_PATTERN = re.compile(re.escape(_ID_COMMENT) + r"([0-9a-f]+)")


class CacheError(PicaffectError):
    """An image cache that is not a picaffect cache (foreign or damaged header)."""


def _header(shape: tuple[int, ...], build_id: str) -> bytes:
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    if build_id:
        text += f"  {_ID_COMMENT}{build_id}"
    body_len = HEADER_BYTES - 10
    if len(text) + 1 > body_len:
        raise ValueError(f"shape {shape} does not fit the reserved .npy header")
    return MAGIC + body_len.to_bytes(2, "little") + (text.ljust(body_len - 1) + "\n").encode("latin1")


class CacheWriter:
    """Appends (size, size, 3) uint8 pictures to ``path`` in order, under build id ``build_id``."""

    def __init__(self, path: str | Path, size: int, build_id: str = "") -> None:
        if build_id and not re.fullmatch(r"[0-9a-f]+", build_id):
            raise ValueError(f"a build id is lower-case hex, got {build_id!r}")
        self.path = Path(path)
        self.size = size
        self.build_id = build_id
        self.count = 0
        self._file = open(self.path, "wb")
        self._file.write(_header((0, size, size, 3), build_id))

    def append(self, image: np.ndarray) -> int:
        """Write one picture; returns its row index in the cache."""
        if image.shape != (self.size, self.size, 3) or image.dtype != np.uint8:
            raise ValueError(f"cache expects ({self.size}, {self.size}, 3) uint8, got {image.shape} {image.dtype}")
        self._file.write(np.ascontiguousarray(image).tobytes())
        self.count += 1
        return self.count - 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.seek(0)
        self._file.write(_header((self.count, self.size, self.size, 3), self.build_id))
        self._file.close()

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_cache(path: str | Path) -> np.ndarray:
    """Memory-map a cache for reading."""
    return np.load(path, mmap_mode="r")


def cache_build_id(path: str | Path) -> str | None:
    """The build id in a cache's header; None for a cache written without one."""
    with open(path, "rb") as f:
        start = f.read(10)
        if len(start) < 10 or not start.startswith(b"\x93NUMPY"):
            raise CacheError(f"{path}: not a .npy image cache")
        length = int.from_bytes(start[8:10], "little")
        text = f.read(length).decode("latin1", errors="replace")
    match = _ID_PATTERN.search(text)
    return match.group(1) if match else None
