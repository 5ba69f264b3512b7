"""One rated picture as a source reader hands it over.

A reader never drops a row: a row it cannot use still becomes a ``Record`` whose
``problem`` says why, so that the build can report it and the counts reconcile
(rows read = rows kept + rows skipped).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.scale import SAM, Scale, rescale


@dataclass
class Record:
    source: str                     # the source's name in this build (preset or alias)
    id: str                         # the publisher's id for the picture, unique within the source
    path: Path | None               # the image file, resolved; None when the row names none
    valence_raw: float              # as published, on ``scale``
    arousal_raw: float
    scale: Scale                    # the publisher's native scale
    row: str = ""                   # where the row stands in the rating file, for messages ("OASIS.csv line 12")
    valence_sd: float | None = None
    arousal_sd: float | None = None
    valence_n: float | None = None
    arousal_n: float | None = None
    group: str | None = None        # near-duplicate group (OASIS theme, GAPED category)
    extra: dict[str, Any] = field(default_factory=dict)  # other published columns, kept as they are
    problem: str | None = None      # why the row cannot be used; None when it can

    def __post_init__(self) -> None:
        if self.problem is None:
            self.problem = self._own_problem()

    def _own_problem(self) -> str | None:
        """What every reader would otherwise check itself: an id to name the picture, ratings on the scale."""
        if not str(self.id).strip():
            return "empty id cell: the row names no picture"
        for name, value in (("valence", self.valence_raw), ("arousal", self.arousal_raw)):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return f"missing {name} rating"
            if not self.scale.contains(value):
                return f"{name} {value:g} outside the scale {self.scale}"
        return None

    @property
    def valence(self) -> float:
        """Valence on 1..9."""
        return float(rescale(self.valence_raw, self.scale, SAM))

    @property
    def arousal(self) -> float:
        """Arousal on 1..9."""
        return float(rescale(self.arousal_raw, self.scale, SAM))
