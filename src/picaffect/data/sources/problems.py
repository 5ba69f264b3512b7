"""The one error that stops a build: a rating file we cannot read at all."""
from __future__ import annotations

from pathlib import Path

from ...core.errors import PicaffectError


class RatingFileError(PicaffectError):
    """A rating file that is missing or cannot be parsed; names the file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
