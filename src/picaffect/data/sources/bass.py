"""BASS, Bicolor Affective Silhouettes and Shapes (Kawai, Lukacs & Ansorge 2021).

``BASS_data.csv``: ``file_name`` (a PNG under ``images/``, also the id), then ratings
of a US sample (``val_mean_us``, ``aro_mean_us``, ``_sd_us``, ``_n_us``, on 1..9) and a
Chinese sample (``_ch``). The US means are the defaults; every other column (the
``_ch`` ratings, ``keywords``, ``source``, pixel counts) is kept in ``extra``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import read_named_images

DEFAULTS: dict[str, str] = {
    "ratings": "BASS_data.csv",
    "images": "images",
    "image": "file_name",
    "valence": "val_mean_us",
    "arousal": "aro_mean_us",
    "valence_sd": "val_sd_us",
    "arousal_sd": "aro_sd_us",
    "valence_n": "val_n_us",
    "arousal_n": "aro_n_us",
    "scale": "1,9",
}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    return read_named_images("bass", root, options, sep=",")
