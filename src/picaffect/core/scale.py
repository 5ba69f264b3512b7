"""The Self-Assessment Manikin scale and the thesis's linear rescaling.

Everything inside picaffect lives on 1..9 (SPEC.md, "Definitions we fix"); other
scales appear only at the edges: a publisher's native scale on input, a user's
requested scale on output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


# The largest end a scale may have. Rating scales are small (1..5, 0..100, -100..100); ends
# near the float range would make rescaled values overflow to inf (answered as null) or
# come out as meaningless 1e299s.
LARGEST_END = 1e6


@dataclass(frozen=True)
class Scale:
    """A closed rating interval such as 1..7 (OASIS) or -2..2 (EmoMadrid)."""

    min: float
    max: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError(f"a scale needs finite ends, got {self.min:g}..{self.max:g}")
        if max(abs(self.min), abs(self.max)) > LARGEST_END:
            raise ValueError(f"a scale's ends must lie within -{LARGEST_END:g}..{LARGEST_END:g}, "
                             f"got {self.min:g}..{self.max:g}")
        if not self.max > self.min:
            raise ValueError(f"scale maximum must exceed its minimum, got {self.min}..{self.max}")

    @property
    def midpoint(self) -> float:
        return (self.min + self.max) / 2

    @classmethod
    def parse(cls, text: str) -> "Scale":
        """Read 'MIN,MAX' (or 'MIN..MAX'), as given on the command line."""
        parts = text.replace("..", ",").split(",")
        if len(parts) != 2:
            raise ValueError(f"a scale is written MIN,MAX (for example 1,7), got {text!r}")
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"a scale is written MIN,MAX with numbers, got {text!r}") from None
        return cls(low, high)

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max

    def __str__(self) -> str:
        return f"{self.min:g}..{self.max:g}"


SAM = Scale(1.0, 9.0)


def rescale(value, old: Scale, new: Scale = SAM):
    """The thesis's formula (section 6.1): a linear map of ``old`` onto ``new``.

    Plain arithmetic, so it serves floats, numpy arrays and torch tensors alike.
    """
    return (value - old.min) * (new.max - new.min) / (old.max - old.min) + new.min


# How a network's outputs map to 1..9 ratings, rating = output * scale + offset (stored
# in every checkpoint as numbers): raw ratings (the thesis), or ratings centred on the
# midpoint and divided by the half-width, so outputs lie in [-1, 1] (its future work 9.2.1).
RAW_MAPPING: tuple[float, float] = (1.0, 0.0)
CENTRED_MAPPING: tuple[float, float] = (SAM.max - SAM.midpoint, SAM.midpoint)
