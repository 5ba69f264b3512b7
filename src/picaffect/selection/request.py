"""What a stimulus-selection request asks for, checked before any optimising.

K sets of N pictures each; per set, ranges on any numeric column of the pool; one
column on which consecutive sets must differ by at least an amount (``differ``);
columns on which every pair of sets must be statistically equivalent within a bound
(``match``, tested with TOST at ``alpha``), for some of them with matched SDs as well
(``match_sd``: matched distributions, not one narrow band); categorical columns whose
levels every set holds in the same numbers, within one (``balance``); a weight for
preferring pictures whose prediction is sure (narrow intervals), a ceiling on interval
width, and a time limit for the whole selection.

The command line's strings (``--range 1:valence=1..4``, ``--match luminance:5:sd``) are
parsed here, so that a mistake is named in one line before the pool is read. Whether a
named column exists, and is numeric or categorical, is checked against the pool
(``choose.resolve``), which also gives a bare ``--match COLUMN`` its bound.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..core.errors import UsageError
from ..core.scale import SAM

DIMENSIONS = ("valence", "arousal")   # the ratings every pool has, on 1..9
MATCH_BOUND = 0.3                     # points: a bare `--match arousal` asks for equivalence within +-0.3
MATCH_SDS = 0.3                       # other columns: a bare `--match luminance` asks for +-0.3 of the pool's SD


class SelectionError(UsageError):
    """A request the pool cannot meet: the message names the constraint and by how much (exit 2)."""


def number(value: float) -> str:
    """A number for a message: two decimals in the usual range, three significant digits beyond it (a
    ``--differ valence:1e308`` is not echoed as 300 digits)."""
    if not math.isfinite(value):
        return f"{value}"
    return f"{value:.2f}" if 0.01 <= abs(value) < 1e5 or value == 0 else f"{value:.3g}"


@dataclass(frozen=True)
class Range:
    """Set ``set`` (1-based; 0 = every set) keeps pictures with ``low <= dimension <= high`` (a column's name)."""
    set: int
    dimension: str
    low: float
    high: float

    def __str__(self) -> str:
        where = "every set" if self.set == 0 else f"set {self.set}"
        parts = ([f"{self.low:g} <="] if math.isfinite(self.low) else []) + [self.dimension] + \
            ([f"<= {self.high:g}"] if math.isfinite(self.high) else [])
        return f"{where}: {' '.join(parts)}"


@dataclass(frozen=True)
class Request:
    sets: int = 2
    size: int = 40
    ranges: tuple[Range, ...] = ()
    differ: tuple[str, float] | None = None          # (column, at least this much between consecutive sets)
    match: tuple[tuple[str, float | None], ...] = ()  # (column, equivalence bound; None: the column's default)
    alpha: float = 0.05
    prefer_sure: float = 0.0                          # weight of the mean interval width in the objective
    max_width: float | None = None                    # leave out pictures whose interval is wider than this
    time_limit_s: float = 20.0                        # for the whole selection, diagnosis included
    match_sd: tuple[str, ...] = ()                    # matched columns whose SDs are matched too
    balance: tuple[str, ...] = ()                     # categorical columns: the same count of each level per set

    def __post_init__(self) -> None:
        if self.sets < 1 or self.size < 2:
            raise UsageError(f"ask for at least 1 set of at least 2 pictures, not {self.sets} of {self.size}")
        if self.differ is not None:
            dim, delta = self.differ
            _column(dim, "--differ")
            if not (math.isfinite(delta) and delta > 0):
                raise UsageError(f"--differ {dim}:{delta:g}: the difference must be a positive number")
            if self.sets < 2:
                raise UsageError("--differ needs at least 2 sets")
        for dim, bound in self.match:
            _column(dim, "--match")
            if bound is not None and not (math.isfinite(bound) and bound > 0):
                raise UsageError(f"--match {dim}:{bound:g}: the equivalence bound must be a positive number")
            if self.differ is not None and dim == self.differ[0]:
                raise UsageError(f"{dim} cannot both differ and match")
        matched = [d for d, _ in self.match]
        if len(set(matched)) != len(matched):
            raise UsageError("each column may be matched once")
        for dim in self.match_sd:
            if dim not in matched:
                raise UsageError(f"SDs are matched only on matched columns: {dim} is not matched (--match {dim}:sd)")
        for column in self.balance:
            _column(column, "--balance")
            if column in matched or (self.differ is not None and column == self.differ[0]):
                raise UsageError(f"--balance {column}: {column} is already a numeric constraint (--differ or "
                                 f"--match); balance takes a categorical column")
        if len(set(self.balance)) != len(self.balance):
            raise UsageError("each column may be balanced once")
        if not 0 < self.alpha < 0.5:
            raise UsageError(f"--alpha {self.alpha:g}: give a significance level between 0 and 0.5, e.g. 0.05")
        for r in self.ranges:
            if r.set > self.sets:
                raise UsageError(f"--range {r}: there are only {self.sets} sets")
        if not (math.isfinite(self.prefer_sure) and self.prefer_sure >= 0):
            raise UsageError(f"--prefer-sure {self.prefer_sure:g}: give a weight of 0 or more")
        if self.max_width is not None and not (math.isfinite(self.max_width) and self.max_width > 0):
            raise UsageError(f"--max-width {self.max_width:g}: give a positive width in points")
        if not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise UsageError(f"--time-limit {self.time_limit_s:g}: give a positive number of seconds")

    def ranges_of(self, k: int) -> list[Range]:
        """The ranges that set ``k`` (1-based) must keep."""
        return [r for r in self.ranges if r.set in (0, k)]

    @property
    def numeric_columns(self) -> list[str]:
        """valence, arousal, then every other numeric column the request names (differ, match, ranges), once."""
        named = [self.differ[0]] if self.differ else []
        named += [d for d, _ in self.match] + [r.dimension for r in self.ranges]
        return list(dict.fromkeys([*DIMENSIONS, *named]))


def _column(name: str, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{where}: name a column of the pool, e.g. valence")
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
    """``SET:COLUMN=LOW..HIGH`` (``1:valence=1..4``; ``all:luminance=30..``); a missing end is the 1..9 scale's for
    valence and arousal, open for other columns."""
    where, colon, rest = text.partition(":")
    dim, eq, bounds = rest.partition("=")
    if not colon or not eq or ".." not in bounds:
        raise UsageError(f"--range {text}: write SET:COLUMN=LOW..HIGH, e.g. 1:valence=1..4 or all:arousal=3..7")
    if where == "all":
        k = 0
    else:
        try:
            k = int(where)
        except ValueError:
            raise UsageError(f"--range {text}: the set is a number from 1, or all") from None
        if k < 1:
            raise UsageError(f"--range {text}: sets are numbered from 1")
    dim = _column(dim.strip(), f"--range {text}")
    rating = dim in DIMENSIONS
    low_text, high_text = bounds.split("..", 1)
    low = _number(low_text, f"--range {text}") if low_text.strip() else (SAM.min if rating else -math.inf)
    high = _number(high_text, f"--range {text}") if high_text.strip() else (SAM.max if rating else math.inf)
    if low > high:
        raise UsageError(f"--range {text}: the low end {low:g} is above the high end {high:g}")
    return Range(k, dim, low, high)


def parse_amount(text: str, option: str, default: float | None = None) -> tuple[str, float]:
    """``COLUMN:AMOUNT`` (``valence:3``); ``COLUMN`` alone takes ``default``."""
    dim, colon, amount = text.partition(":")
    dim = _column(dim.strip(), f"{option} {text}")
    if not colon:
        if default is None:
            raise UsageError(f"{option} {text}: write COLUMN:AMOUNT, e.g. valence:3")
        return dim, default
    return dim, _number(amount, f"{option} {text}")


def parse_match(text: str) -> tuple[str, float | None, bool]:
    """``COLUMN[:BOUND][:sd]`` -> (column, bound, whether SDs are matched too). Without a bound, valence and
    arousal take ``MATCH_BOUND`` points; other columns get theirs from the pool (``MATCH_SDS`` of its SD)."""
    parts = [p.strip() for p in text.split(":")]
    sd = len(parts) > 1 and parts[-1].lower() == "sd"
    if sd:
        parts = parts[:-1]
    if len(parts) > 2 or not parts[0]:
        raise UsageError(f"--match {text}: write COLUMN, COLUMN:BOUND or COLUMN:BOUND:sd, e.g. arousal:0.3:sd")
    dim = _column(parts[0], f"--match {text}")
    if len(parts) == 1 or not parts[1]:
        return dim, (MATCH_BOUND if dim in DIMENSIONS else None), sd
    return dim, _number(parts[1], f"--match {text}"), sd


def request_from_text(*, sets: int = 2, size: int = 40, ranges: Sequence[str] = (), differ: str | None = None,
                      match: Sequence[str] = (), alpha: float = 0.05, prefer_sure: float = 0.0,
                      max_width: float | None = None, time_limit_s: float = 20.0,
                      balance: Sequence[str] = ()) -> Request:
    """A ``Request`` from the command line's strings: ``ranges`` as ``SET:COLUMN=LOW..HIGH``, ``differ`` as
    ``COLUMN:AMOUNT``, ``match`` as ``COLUMN[:BOUND][:sd]`` (``MATCH_BOUND`` for a bare valence or arousal),
    ``balance`` as column names. Each mistake is named in one line before any scores are read."""
    matches = [parse_match(m) for m in match]
    return Request(sets=sets, size=size, ranges=tuple(parse_range(r) for r in ranges),
                   differ=parse_amount(differ, "--differ") if differ else None,
                   match=tuple((d, b) for d, b, _ in matches), alpha=alpha, prefer_sure=prefer_sure,
                   max_width=max_width, time_limit_s=time_limit_s, match_sd=tuple(d for d, _, sd in matches if sd),
                   balance=tuple(b.strip() for b in balance))


@dataclass
class Selection:
    """The optimiser's answer: the row indices of the pool in each set, and how it got there."""
    members: list[list[int]]
    objective: float
    centre: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    solver: str = ""
