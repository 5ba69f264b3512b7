"""picaffect: how a picture makes people feel, as valence and arousal on 1..9."""
from __future__ import annotations

__version__ = "0.1.0"
