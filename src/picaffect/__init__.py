"""picaffect: how a picture makes people feel, as valence and arousal on 1..9."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Predictor", "__version__"]


def __getattr__(name: str):
    """`from picaffect import Predictor` without importing torch on `import picaffect`."""
    if name == "Predictor":
        from .inference import Predictor
        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
