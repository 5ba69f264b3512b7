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
from .tables import images_folder, load_table, locate, parse_scale, stats_options, table_record

DEFAULTS: dict[str, str] = {
    "ratings": "ground_truth.txt",
    "images": "images",
    "image": "1",
    "valence": "2",
    "arousal": "3",
    "scale": "1,9",
}


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    folder, ratings = locate(root, options["ratings"])
    scale = parse_scale(options["scale"])
    images = images_folder(folder, options["images"])
    required = {k: options[k] for k in ("image", "valence", "arousal")}
    table = load_table(ratings, required, stats_options(options), sep="\t")
    for row in table.rows:
        name = table.get(row, "image")
        yield table_record("emotion6", table, row, id=name, path=images / name if name else None,
                           scale=scale, problem=None if name else "no image file name in this row")
