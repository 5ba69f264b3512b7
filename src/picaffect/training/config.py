"""The settings of one training run: the one place that names each option, says what it
means and checks it.

``picaffect train`` and ``picaffect experiment`` make their options from these fields
(``picaffect.app.arguments``), retrain configurations accept each as a stage key, and the
Python API takes them as keywords: adding an option is one edit here, and its use in
the engine. Torch-free, so that the command line can read it without importing torch.
"""
from __future__ import annotations

import math
import os
import types
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, get_type_hints

from ..core.errors import ConfigError, UsageError
from ..core.names import AUGMENTS, DEVICES, MODEL_HELP, PRECISIONS, RECIPES, check, check_model
from ..core.scale import CENTRED_MAPPING, RAW_MAPPING

TARGET_MAPPINGS = {"raw": RAW_MAPPING, "centred": CENTRED_MAPPING}
# Where ``picaffect experiment``'s runs start from other defaults than ``picaffect train``'s.
EXPERIMENT_DEFAULTS = {"epochs": 30}

# A check takes a field's name and a value of the field's type (never None) and raises a UsageError.
Check = Callable[[str, Any], None]


def label(name: str) -> str:
    """How messages name a field: ``batch_size`` -> ``batch size``."""
    return name.replace("_", " ")


def whole_number(name: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{label(name)} must be a whole number of at least 1, not {value!r}")


def at_least_zero(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"{label(name)} must be a finite number >= 0, not {value!r}")


def above_zero(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{label(name)} must be a finite number > 0, not {value!r}")


def share(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise UsageError(f"{label(name)} must be a number from 0 to 1, not {value!r}")


def decay(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0 < value < 1):
        raise UsageError(f"{label(name)} must be a number between 0 and 1 (a decay a step, such as 0.99), not {value!r}")


def model_check(name: str, value: str) -> None:
    check_model(value)


@dataclass(frozen=True)
class OneOf:
    """A check that the value is one of ``names``; the command line offers them as its choices."""
    kind: str  # how messages call the option: "unknown augmentation 'x'"
    names: tuple[str, ...]

    def __call__(self, name: str, value: str) -> None:
        check(self.kind, value, self.names)


def option(default: Any = MISSING, help: str = "", *, check: Check | None = None, factory: Callable | None = None,
           **cli: Any) -> Any:
    """A settings field with its help text, its check and, in ``cli``, how the command line shows it
    (``metavar``, ``flag`` for another option name, ``const`` for a value the bare flag means)."""
    metadata = {"help": help, "check": check, **cli}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """One training run. ``check`` (also on construction) refuses impossible values before any work starts."""
    data: str = option(help="a folder written by `picaffect build`")
    model: str = option(help=MODEL_HELP, check=model_check, metavar="MODEL")
    out: str = option(help="run folder for checkpoints, history and plots")
    recipe: str = option("thesis", "thesis (SGD as in section 7.2), modern (AdamW, cosine), ridge (closed-form "
                                   "linear probe)", check=OneOf("recipe", RECIPES))
    epochs: int = option(10, "the most epochs to train", check=whole_number)
    batch_size: int = option(64, "pictures per training step", check=whole_number)
    augment: str = option("none", "augment training batches: the thesis's transforms (the default when given alone), "
                                  "or light ones (mirror, small turns, shifts, zooms) for fine-tuning",
                          check=OneOf("augmentation", AUGMENTS), const="thesis")
    size: int | None = option(None, "input side (default: the dataset's)", check=whole_number)
    seed: int = option(0, "seed of the initial weights, shuffles and augmentation")
    limit: int | None = option(None, "use only the first N rows of each split (smoke runs)", check=whole_number)
    device: str = option("auto", "auto takes CUDA when there is one", check=OneOf("device", DEVICES))
    lr: float | None = option(None, "override the recipe's learning rate", check=at_least_zero)
    weight_decay: float | None = option(None, "override the recipe's weight decay", check=at_least_zero)
    backbone_lr_scale: float = option(1.0, "the backbone's learning rate as a share of --lr (the head's), e.g. 0.1 "
                                           "for fine-tuning", check=share)
    patience: int = option(10, "epochs without a better test loss before stopping", check=whole_number)
    checkpoint_every: int = option(50, "steps between last.pt writes inside an epoch", check=whole_number)
    init: str | None = option(None, "start from another run's best weights (a run folder or checkpoint file)",
                              metavar="RUN_DIR")
    model_options: dict = option(help="passed to the model's constructor, e.g. dropout=0.3 (values read as YAML)",
                                 factory=dict, flag="--model-option", metavar="KEY=VALUE")
    ridge_fit: str = option("train", "ridge: penalty chosen on the test split and fitted on train, or by group "
                                     "cross-validation on train+test and refitted there",
                            check=OneOf("ridge fit", ("train", "train+test")))
    ridge_recalibrate: bool = option(False, "ridge: undo the shrinkage with a line per dimension fitted on "
                                            "out-of-fold predictions (linear readout only)")
    ridge_readout: str = option("linear", "ridge: a linear head, or rbf: an RBF kernel ridge on 256 principal "
                                          "components of the features (lite_ensemble only)",
                                check=OneOf("ridge readout", ("linear", "rbf")))
    targets: str | None = option(None, "train on raw 1..9 ratings or on (rating - 5) / 4 (default: raw for thesis, "
                                       "else centred)", check=OneOf("target mapping", tuple(TARGET_MAPPINGS)))
    precision: str = option("fp32", "bf16: train under bf16 autocast (about 1.7x faster on CPUs with AVX512-BF16)",
                            check=OneOf("precision", PRECISIONS))
    budget_minutes: float | None = option(None, "stop between epochs when the next one would end past this much "
                                                "wall time, over every session of the run", check=above_zero)
    ema: float | None = option(None, "keep an exponential moving average of the weights, this decay a step (e.g. "
                                     "0.99): the test split is scored and best.pt written with the average, which "
                                     "steadies a noisy test loss (default: none)", check=decay)
    grad_clip: float | None = option(None, "clip the gradient to this largest norm before each step (default: "
                                           "no clipping); steadies fine-tuning at larger learning rates",
                                     check=above_zero)

    def __post_init__(self) -> None:
        for f in fields(self):  # a path where text is meant: Path objects from Python callers
            if isinstance(getattr(self, f.name), os.PathLike):
                setattr(self, f.name, os.fspath(getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Raise a ``UsageError`` naming the first impossible setting."""
        for f in fields(self):
            check_value(type(self), f.name, getattr(self, f.name))
        if self.ridge_readout == "rbf" and self.ridge_recalibrate:
            raise UsageError("ridge_recalibrate is for the linear readout; an rbf readout's predictions are not "
                             "shrunk as a ridge's are (set one of them back)")

    def differs_from(self, other: "TrainConfig") -> str | None:
        """What makes ``other`` (the configuration a run folder was trained with) another run than this one:
        its model, recipe, input side or dataset (compared as resolved paths); None when it is the same run.
        Epochs, patience and budget may differ: a later sitting continues a run with larger limits."""
        for key in ("model", "recipe", "size"):
            if getattr(self, key) != getattr(other, key):
                return f"{key} {getattr(other, key)} (not {getattr(self, key)})"
        if Path(self.data).resolve() != Path(other.data).resolve():
            return f"dataset {other.data} (not {self.data})"
        return None

    @property
    def output_mapping(self) -> tuple[float, float]:
        """(scale, offset) with rating = output * scale + offset."""
        return TARGET_MAPPINGS[self.targets or ("raw" if self.recipe == "thesis" else "centred")]

    def save(self, path: Path) -> None:
        import yaml  # here: the command line reads this module on every start, yaml only when saving

        path.write_text(yaml.safe_dump(asdict(self), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        """A run's ``config.yaml``; a key this version does not know is refused, one it lacks takes its default
        (so runs written before an option existed still resume)."""
        import yaml

        values = yaml.safe_load(path.read_text())
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
        return cls(**values)


# -- what the fields' annotations say ----------------------------------------------------------------------------
KINDS = {int: "a whole number", float: "a number", str: "text", dict: "a mapping", bool: "true or false"}


@lru_cache(maxsize=None)
def field_type(cls: type, name: str) -> tuple[type, bool]:
    """(the type of field ``name``, whether it may be None), from the class's annotations."""
    hint = get_type_hints(cls)[name]
    if isinstance(hint, types.UnionType):
        kinds = [t for t in hint.__args__ if t is not type(None)]
        return kinds[0], len(kinds) < len(hint.__args__)
    return hint, False


def check_value(cls: type, name: str, value: Any) -> None:
    """Raise a ``UsageError`` unless ``value`` fits field ``name`` of ``cls``: its type, then its own check."""
    kind, optional = field_type(cls, name)
    if value is None and optional:
        return
    fits = isinstance(value, (int, float) if kind is float else kind) and (kind is bool or not isinstance(value, bool))
    if not fits:
        raise UsageError(f"{label(name)} must be {KINDS.get(kind, kind.__name__)}, not {value!r}")
    test = cls.__dataclass_fields__[name].metadata.get("check")
    if test is not None:
        test(name, value)
