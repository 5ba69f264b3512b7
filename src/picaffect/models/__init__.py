"""Model factory: ``create(name, **options)`` returns a ``RegressionModel`` whose
output is (N, 2) = (valence, arousal).

One architecture per file; each module is imported only when asked for, so that
``import picaffect`` stays quick. Every model has the same keyword-only
constructor names (``num_outputs``, ``dropout``, ``pretrained``) and the same
``forward_features`` / ``forward_head`` split (``layers.RegressionModel``).

``hub:ORG/NAME`` (or ``hub:/local/folder``) names a Hugging Face image model: it is
the ``hub`` architecture with ``name_or_path=ORG/NAME`` (``hub.py``, needs the
``hub`` extra). ``input_size.smallest_input`` says how small a picture a network takes.
"""
from __future__ import annotations

from importlib import import_module
from inspect import signature
from typing import Any

from ..core.errors import UsageError
from ..core.names import BUILTIN_MODELS, HUB_PREFIX, MODEL_CLASSES, MODELS, check, is_hub
from .layers import RegressionModel


def names() -> list[str]:
    """The architectures that build from their name alone (not ``hub``, which needs ``name_or_path``)."""
    return list(BUILTIN_MODELS)


def resolve(name: str, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """(architecture, constructor options) for a model name: ``hub:X`` becomes ``hub`` with ``name_or_path=X``."""
    options = dict(options or {})
    if is_hub(name):
        return "hub", {**options, "name_or_path": name[len(HUB_PREFIX):]}
    return check("model", name, MODELS), options


def checkpoint_arguments(model: RegressionModel, options: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments a checkpoint records: the options given (without ``pretrained``),
    plus whatever the model says rebuilding it needs (a hub model's config and preprocessing)."""
    arguments = {k: v for k, v in options.items() if k != "pretrained"}
    extra = getattr(model, "checkpoint_arguments", None)
    return {**arguments, **(extra() if callable(extra) else {})}


def model_class(name: str) -> type[RegressionModel]:
    module, cls = MODEL_CLASSES[check("model", name, MODELS)].split(":")
    return getattr(import_module(f"{__name__}.{module}"), cls)


def options_of(name: str) -> dict[str, Any]:
    """The constructor options of a model with their defaults (for help texts and checks)."""
    return {k: p.default for k, p in signature(model_class(name)).parameters.items()}


def create(name: str, **options: Any) -> RegressionModel:
    """Build a model by name (or ``hub:X``); ``options`` go to its keyword-only constructor."""
    name, options = resolve(name, options)
    unknown = sorted(set(options) - set(options_of(name)))
    if unknown:
        raise UsageError(f"model {name} has no option {', '.join(unknown)}; "
                         f"its options: {', '.join(options_of(name))}")
    return model_class(name)(**options)
