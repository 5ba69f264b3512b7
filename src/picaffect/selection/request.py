"""What a stimulus-selection request asks for, checked before any optimising.

K sets of N pictures each; per set, ranges on valence and arousal; one dimension on
which consecutive sets must differ by at least a number of points (``differ``);
dimensions on which every pair of sets must be statistically equivalent within a
bound (``match``, tested with TOST at ``alpha``); a weight for preferring pictures
whose prediction is sure (narrow intervals), and a ceiling on interval width.
The command line's strings (``--range 1:valence=1..4``) are parsed here, so that a
mistake is named in one line before the pool is read.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.errors import UsageError
from ..core.scale import SAM

DIMENSIONS = ("valence", "arousal")


class SelectionError(UsageError):
    """A request the pool cannot meet: the message names the constraint and by how much (exit 2)."""


@dataclass(frozen=True)
class Range:
    """Set ``set`` (1-based; 0 = every set) keeps pictures with ``low <= dimension <= high``."""
    set: int
    dimension: str
    low: float
    high: float

    def __str__(self) -> str:
        where = "every set" if self.set == 0 else f"set {self.set}"
        return f"{where}: {self.low:g} <= {self.dimension} <= {self.high:g}"


@dataclass(frozen=True)
class Request:
    sets: int = 2
    size: int = 40
    ranges: tuple[Range, ...] = ()
    differ: tuple[str, float] | None = None      # (dimension, at least this many points between consecutive sets)
    match: tuple[tuple[str, float], ...] = ()    # (dimension, equivalence bound in points)
    alpha: float = 0.05
    prefer_sure: float = 0.0                      # weight of the mean interval width in the objective
    max_width: float | None = None                # leave out pictures whose interval is wider than this
    time_limit_s: float = 20.0

    def __post_init__(self) -> None:
        if self.sets < 1 or self.size < 2:
            raise UsageError(f"ask for at least 1 set of at least 2 pictures, not {self.sets} of {self.size}")
        if self.differ is not None:
            dim, delta = self.differ
            _dimension(dim, "--differ")
            if not (math.isfinite(delta) and delta > 0):
                raise UsageError(f"--differ {dim}:{delta:g}: the difference must be a positive number of points")
            if self.sets < 2:
                raise UsageError("--differ needs at least 2 sets")
        for dim, bound in self.match:
            _dimension(dim, "--match")
            if not (math.isfinite(bound) and bound > 0):
                raise UsageError(f"--match {dim}:{bound:g}: the equivalence bound must be a positive number of points")
            if self.differ is not None and dim == self.differ[0]:
                raise UsageError(f"{dim} cannot both differ and match")
        if len({d for d, _ in self.match}) != len(self.match):
            raise UsageError("each dimension may be matched once")
        if not 0 < self.alpha < 0.5:
            raise UsageError(f"--alpha {self.alpha:g}: give a significance level between 0 and 0.5, e.g. 0.05")
        for r in self.ranges:
            if r.set > self.sets:
                raise UsageError(f"--range {r}: there are only {self.sets} sets")
        if self.prefer_sure < 0:
            raise UsageError(f"--prefer-sure {self.prefer_sure:g}: give a weight of 0 or more")
        if self.max_width is not None and not self.max_width > 0:
            raise UsageError(f"--max-width {self.max_width:g}: give a positive width in points")

    def ranges_of(self, k: int) -> list[Range]:
        """The ranges that set ``k`` (1-based) must keep."""
        return [r for r in self.ranges if r.set in (0, k)]


def _dimension(name: str, where: str) -> str:
    if name not in DIMENSIONS:
        raise UsageError(f"{where}: the dimension is valence or arousal, not {name!r}")
    return name


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{what}: {text!r} is not a finite number")
    return value


def parse_range(text: str) -> Range:
    """``SET:DIM=LOW..HIGH`` (``1:valence=1..4``; ``all:arousal=3..7``; a missing end is the scale's)."""
    where, colon, rest = text.partition(":")
    dim, eq, bounds = rest.partition("=")
    if not colon or not eq or ".." not in bounds:
        raise UsageError(f"--range {text}: write SET:DIMENSION=LOW..HIGH, e.g. 1:valence=1..4 or all:arousal=3..7")
    if where == "all":
        k = 0
    else:
        try:
            k = int(where)
        except ValueError:
            raise UsageError(f"--range {text}: the set is a number from 1, or all") from None
        if k < 1:
            raise UsageError(f"--range {text}: sets are numbered from 1")
    low_text, high_text = bounds.split("..", 1)
    low = _number(low_text, f"--range {text}") if low_text.strip() else SAM.min
    high = _number(high_text, f"--range {text}") if high_text.strip() else SAM.max
    if low > high:
        raise UsageError(f"--range {text}: the low end {low:g} is above the high end {high:g}")
    return Range(k, _dimension(dim.strip(), f"--range {text}"), low, high)


def parse_amount(text: str, option: str, default: float | None = None) -> tuple[str, float]:
    """``DIM:POINTS`` (``valence:3``); ``DIM`` alone takes ``default``."""
    dim, colon, amount = text.partition(":")
    dim = _dimension(dim.strip(), f"{option} {text}")
    if not colon:
        if default is None:
            raise UsageError(f"{option} {text}: write DIMENSION:POINTS, e.g. valence:3")
        return dim, default
    return dim, _number(amount, f"{option} {text}")


MATCH_BOUND = 0.3  # points: `--match arousal` alone asks for equivalence within +-0.3


def request_from_text(*, sets: int = 2, size: int = 40, ranges: Sequence[str] = (), differ: str | None = None,
                      match: Sequence[str] = (), alpha: float = 0.05, prefer_sure: float = 0.0,
                      max_width: float | None = None, time_limit_s: float = 20.0) -> Request:
    """A ``Request`` from the command line's strings: ``ranges`` as ``SET:DIM=LOW..HIGH``, ``differ`` as
    ``DIM:POINTS``, ``match`` as ``DIM[:BOUND]`` (``MATCH_BOUND`` when no bound is given). Each mistake is
    named in one line before any scores are read."""
    return Request(sets=sets, size=size, ranges=tuple(parse_range(r) for r in ranges),
                   differ=parse_amount(differ, "--differ") if differ else None,
                   match=tuple(parse_amount(m, "--match", MATCH_BOUND) for m in match), alpha=alpha,
                   prefer_sure=prefer_sure, max_width=max_width, time_limit_s=time_limit_s)


@dataclass
class Selection:
    """The optimiser's answer: the row indices of the pool in each set, and how it got there."""
    members: list[list[int]]
    objective: float
    centre: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    solver: str = ""
