"""A run's name (its folder) and its label (its words in a report), both from one list of its choices.

The experiments name a run after what was chosen for it: model, recipe, augmentation,
precision, weight average, picture side and seed, each only where it is not the
default, so that runs at two sides of one split, or replicates of one run, sit side by
side in one folder and one report. The folder name
``emosepar-modern-augment-thesis-bf16-ema0.995-224px-seed1`` and the label
``emosepar (modern, augment thesis, bf16, ema 0.995, 224 px, seed 1)`` come from the same
parts, taken from a ``TrainConfig`` (a run to train) or from a run's record in
``results.json`` (a run to report, ``scripts/results_table.py`` too).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..training.config import TrainConfig

THESIS_SIZE = 150  # the thesis's input side (section 6.2); a run at another side says so in its name


@dataclass(frozen=True)
class RunIdentity:
    """The choices that make one run another; what a name or label leaves out is the default."""

    model: str
    recipe: str = "thesis"
    augment: str = "none"
    precision: str = "fp32"
    ema: float | None = None
    seed: int = 0
    size: int = THESIS_SIZE  # fields in the order of a run's record in results.json

    @classmethod
    def of(cls, config: TrainConfig, size: int | None = None) -> "RunIdentity":
        """A run to train: ``config``'s choices; ``size`` is the dataset's side where the config leaves it open."""
        return cls(config.model, config.recipe, config.augment, config.precision, config.ema, config.seed,
                   config.size or size or THESIS_SIZE)

    @classmethod
    def of_record(cls, run: Mapping[str, Any]) -> "RunIdentity":
        """A run in a ``results.json``; records written before a choice was recorded had its default."""
        return cls(run["model"], run["recipe"], run["augment"], run["precision"], run.get("ema"),
                   run.get("seed") or 0, run.get("size") or THESIS_SIZE)

    def parts(self) -> list[tuple[str, str]]:
        """(in the folder name, in the label) for each choice, in order; defaults left out after the recipe."""
        parts = [(self.model, self.model), (self.recipe, self.recipe)]
        if self.augment != "none":
            parts.append((f"augment-{self.augment}", f"augment {self.augment}"))
        if self.precision != "fp32":
            parts.append((self.precision, self.precision))
        if self.ema is not None:
            parts.append((f"ema{self.ema:g}", f"ema {self.ema:g}"))
        if self.size != THESIS_SIZE:
            parts.append((f"{self.size}px", f"{self.size} px"))
        if self.seed:
            parts.append((f"seed{self.seed}", f"seed {self.seed}"))
        return parts

    @property
    def name(self) -> str:
        """The run's folder name, e.g. ``emosepar-modern-augment-thesis-bf16-ema0.995-224px``."""
        return "-".join(name for name, _ in self.parts())

    @property
    def label(self) -> str:
        """The run's name in words, e.g. ``emosepar (modern, augment thesis, bf16, ema 0.995, 224 px)``."""
        return f"{self.model} ({', '.join(label for _, label in self.parts()[1:])})"


def run_label(run: Mapping[str, Any]) -> str:
    """A reported run's label (``results.json``): the report's tables and the README's use it."""
    return RunIdentity.of_record(run).label
