"""Values as strict JSON: NaN and infinities, which JSON cannot hold, become null.

Metrics of an empty or constant block are NaN, and a prediction that failed has no
value; every JSON file picaffect writes (metrics.json, results.json, predictions)
goes through ``jsonable`` so that any JSON reader can load it.
"""
from __future__ import annotations

import math
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth of dicts, lists and tuples, replaced by None."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
