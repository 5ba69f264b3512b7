"""Model factory: ``create(name, **options)`` returns a ``RegressionModel`` whose
output is (N, 2) = (valence, arousal).

One architecture per file; each module is imported only when asked for, so that
``import picaffect`` stays quick. Every model has the same keyword-only
constructor names (``num_outputs``, ``dropout``, ``pretrained``) and the same
``forward_features`` / ``forward_head`` split (``layers.RegressionModel``).
"""
from __future__ import annotations

from importlib import import_module
from inspect import signature
from typing import Any

from ..names import MODEL_CLASSES, MODELS, check
from .layers import RegressionModel


def names() -> list[str]:
    return list(MODELS)


def model_class(name: str) -> type[RegressionModel]:
    module, cls = MODEL_CLASSES[check("model", name, MODELS)].split(":")
    return getattr(import_module(f"{__name__}.{module}"), cls)


def options_of(name: str) -> dict[str, Any]:
    """The constructor options of a model with their defaults (for help texts and checks)."""
    return {k: p.default for k, p in signature(model_class(name)).parameters.items()}


def create(name: str, **options: Any) -> RegressionModel:
    """Build a model by name; ``options`` go to its keyword-only constructor."""
    unknown = sorted(set(options) - set(options_of(name)))
    if unknown:
        from ..errors import UsageError
        raise UsageError(f"model {name} has no option {', '.join(unknown)}; "
                         f"its options: {', '.join(options_of(name))}")
    return model_class(name)(**options)
