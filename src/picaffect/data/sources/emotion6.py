"""Emotion6 (Peng, Sadovnik, Gallagher & Chen, CVPR 2015).

``ground_truth.txt`` is tab-separated with a bracketed header
``[image_filename] [valence] [arousal] [prob. anger] ... [prob. neutral]``. Columns are
taken by 1-based position by default (file name 1, valence 2, arousal 3; a header name
such as ``[valence]`` works too). The file name (``disgust/1.jpg``) is relative to
``images/`` and is the id. The seven emotion probabilities go into ``extra`` as floats
under clean keys (``prob_anger`` .. ``prob_neutral``). Scale 1..9. No group: the
keyword folders are emotion classes, not near-duplicates.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .tables import read_named_images

DEFAULTS: dict[str, str] = {
    "ratings": "ground_truth.txt",
    "images": "images",
    "image": "1",
    "valence": "2",
    "arousal": "3",
    "scale": "1,9",
}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    return read_named_images("emotion6", root, options, sep="\t")
