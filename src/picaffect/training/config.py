"""The settings of one training run, torch-free so that the command line can take
its option defaults from here without paying for importing torch."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ConfigError, UsageError
from ..names import AUGMENTS, DEVICES, PRECISIONS, RECIPES, check, check_model
from ..scale import CENTRED_MAPPING, RAW_MAPPING

TARGET_MAPPINGS = {"raw": RAW_MAPPING, "centred": CENTRED_MAPPING}


@dataclass
class TrainConfig:
    """One training run. The command line takes its defaults from here; ``check``
    refuses impossible values before any work starts."""
    data: str
    model: str
    out: str
    recipe: str = "thesis"
    epochs: int = 10
    batch_size: int = 64
    augment: str = "none"            # "none", "thesis" (section 7.3) or "light" (for fine-tuning)
    size: int | None = None          # input side; None = the dataset's cache size
    seed: int = 0
    limit: int | None = None         # first N rows of each split, for smoke runs
    device: str = "auto"
    lr: float | None = None
    weight_decay: float | None = None
    backbone_lr_scale: float = 1.0   # the backbone's learning rate as a share of lr (the head's); < 1 for fine-tuning
    patience: int = 10               # epochs without a better test loss before stopping
    checkpoint_every: int = 50       # steps between last.pt writes inside an epoch
    init: str | None = None          # start from this run folder's best.pt (or a checkpoint file)
    model_options: dict = field(default_factory=dict)
    ridge_fit: str = "train"         # ridge only: "train" (penalty chosen on test) or "train+test" (group CV, refit)
    ridge_recalibrate: bool = False  # ridge only: undo the shrinkage with a line fitted out of fold
    targets: str | None = None       # "raw" (1..9) or "centred" ((y - 5) / 4); None: raw for thesis, else centred
    precision: str = "fp32"          # "bf16": forward and backward under bf16 autocast (weights stay fp32)
    budget_minutes: float | None = None  # wall-clock budget over all sessions of the run; checked between epochs

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise a ``UsageError`` naming the first impossible setting."""
        check_model(self.model)
        check("recipe", self.recipe, RECIPES)
        check("augmentation", self.augment, AUGMENTS)
        check("device", self.device, DEVICES)
        check("precision", self.precision, PRECISIONS)
        check("ridge fit", self.ridge_fit, ("train", "train+test"))
        if not isinstance(self.ridge_recalibrate, bool):
            raise UsageError(f"ridge recalibrate must be true or false, not {self.ridge_recalibrate!r}")
        if self.targets is not None:
            check("target mapping", self.targets, tuple(TARGET_MAPPINGS))
        for name in ("epochs", "batch_size", "patience", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"{name.replace('_', ' ')} must be a whole number of at least 1, "
                                 f"not {getattr(self, name)!r}")
        for name in ("size", "limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"{name} must be a whole number of at least 1, not {value!r}")
        if self.budget_minutes is not None and not (math.isfinite(self.budget_minutes) and self.budget_minutes > 0):
            raise UsageError(f"budget minutes must be a finite number > 0, not {self.budget_minutes!r}")
        if not (isinstance(self.backbone_lr_scale, (int, float)) and math.isfinite(self.backbone_lr_scale)
                and 0 <= self.backbone_lr_scale <= 1):
            raise UsageError(f"backbone lr scale must be a number from 0 to 1, not {self.backbone_lr_scale!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{name.replace('_', ' ')} must be a finite number >= 0, not {value!r}")

    @property
    def output_mapping(self) -> tuple[float, float]:
        """(scale, offset) with rating = output * scale + offset."""
        return TARGET_MAPPINGS[self.targets or ("raw" if self.recipe == "thesis" else "centred")]

    def save(self, path: Path) -> None:
        import yaml  # here: the command line reads this module on every start, yaml only when saving

        path.write_text(yaml.safe_dump(asdict(self), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        import yaml

        values = yaml.safe_load(path.read_text())
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
        return cls(**values)
