"""The data the benchmarks read: the shared rated sets, built once into a scratch folder and reused.

A built dataset lives where every other script looks for it, ``WORK/data/<sets>-<size>px-<split>``
(``data/rated_sets.py``; ``WORK`` is ``runs``, so the full bench reuses ``runs/data/``).

The smoke mode (a check that the whole bench runs, in about a minute, with figures that
mean nothing) needs no real set: it writes a small synthetic set in OASIS's layout, so
that the same `picaffect build` presets read it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from picaffect.data.rated_sets import RATED_SETS as SETS
from picaffect.data.rated_sets import dataset_folder, source_arguments
OASIS_HEADER = ",Theme,Category,Source,Valence_mean,Valence_SD,Valence_N,Arousal_mean,Arousal_SD,Arousal_N"


def present_sets(data: Path) -> tuple[str, ...]:
    """The shared sets found under ``data`` (each in its own folder, as distributed)."""
    return tuple(name for name in SETS if (data / name).is_dir())


def synthetic_oasis(folder: Path, n: int = 96, seed: int = 0) -> Path:
    """``n`` smooth-gradient JPEGs with random ratings on 1..7, as OASIS.csv and images/ (kept when present)."""
    if (folder / "OASIS.csv").is_file():
        return folder
    gen = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = [OASIS_HEADER]
    for i in range(n):
        theme = f"Theme{i // 4} {i % 4 + 1}"
        tint = gen.uniform(0.2, 1.0, 3)
        pixels = np.linspace(0, 255, 64)[None, :, None] * tint + gen.normal(0, 20, (48, 64, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / "images" / f"{theme}.jpg", quality=90)
        valence, arousal = gen.uniform(1, 7, 2)
        lines.append(f"I{i + 1},{theme},Object,synthetic,{valence:.3f},1,100,{arousal:.3f},1,100")
    (folder / "OASIS.csv").write_text("\n".join(lines) + "\n")
    return folder


def ensure_dataset(data: Path, sets: tuple[str, ...], size: int, work: Path) -> tuple[Path, bool]:
    """A `picaffect build` of ``sets`` at ``size`` px (thesis split) in ``work/data/``, reused when already built.

    Returns the folder and whether it was built now. The build writes into a temporary
    folder and moves it into place whole, so a present folder is a finished build.
    """
    out = dataset_folder(size, "thesis", sets, root=work / "data")
    if (out / "images.npy").is_file() and (out / "manifest.parquet").is_file():
        return out, False
    cmd = [sys.executable, "-m", "picaffect", "build", str(out), *source_arguments(data, sets), "--size", str(size),
           "--split", "thesis", "--no-plots"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out, True
