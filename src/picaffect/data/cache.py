"""The image cache: one ``images.npy`` of shape (n, size, size, 3), uint8.

It is written as a stream, one picture at a time, so that a build's memory does
not grow with the number of pictures; the count is known only at the end, so the
header is reserved up front and rewritten then. The result is an ordinary .npy
file: ``np.load(path, mmap_mode="r")`` reads any row without loading the rest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER_BYTES = 128  # magic (6) + version (2) + length (2) + padded dict: room for any shape we write


def _header(shape: tuple[int, ...]) -> bytes:
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    body_len = HEADER_BYTES - 10
    if len(text) + 1 > body_len:
        raise ValueError(f"shape {shape} does not fit the reserved .npy header")
    return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + (text.ljust(body_len - 1) + "\n").encode("latin1")


class CacheWriter:
    """Appends (size, size, 3) uint8 pictures to ``path`` in order."""

    def __init__(self, path: str | Path, size: int) -> None:
        self.path = Path(path)
        self.size = size
        self.count = 0
        self._file = open(self.path, "wb")
        self._file.write(_header((0, size, size, 3)))

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
        self._file.write(_header((self.count, self.size, self.size, 3)))
        self._file.close()

    def __enter__(self) -> "CacheWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_cache(path: str | Path) -> np.ndarray:
    """Memory-map a cache for reading."""
    return np.load(path, mmap_mode="r")

