"""SMID, the Socio-Moral Image Database (Crone, Bode, Murawski & Laham 2018).

``SMID_norms.csv``: the id is in the first, unnamed column (R's row names) or in a
column ``img_name``; the default ``img_name|1`` takes ``img_name`` when there is one,
else the first column. Ratings ``valence_mean``/``arousal_mean`` (+ ``_sd``, ``_n``) are
on 1..5. Pictures are ``img/<id>.<jpg|png|gif>``, matched on the stem; GIFs are
decoded from their first frame by the build.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import read_id_table

DEFAULTS: dict[str, str] = {
    "ratings": "SMID_norms.csv",
    "images": "img",
    "id": "img_name|1",
    "valence": "valence_mean",
    "arousal": "arousal_mean",
    "valence_sd": "valence_sd",
    "arousal_sd": "arousal_sd",
    "valence_n": "valence_n",
    "arousal_n": "arousal_n",
    "scale": "1,5",
}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    return read_id_table("smid", root, options)
