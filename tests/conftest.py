"""Shared test helpers: where the real rated sets live, and small image writers."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """``../shared/data`` beside the project, or ``$PICAFFECT_DATA``."""
    return Path(os.environ.get("PICAFFECT_DATA", ROOT.parent / "shared" / "data"))


def require_sets(*names: str) -> Path:
    """Skip the calling test, with the reason, unless the named real sets are present."""
    root = shared_data()
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        pytest.skip(f"real rated sets {', '.join(missing)} not found under {root} (set PICAFFECT_DATA)")
    return root


def write_image(path: Path, size=(40, 30), color=(200, 30, 30), mode: str = "RGB", fmt: str | None = None) -> Path:
    """A flat-coloured picture; enough for readers and the build to chew on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
