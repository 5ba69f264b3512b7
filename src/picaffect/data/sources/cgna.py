"""IED, the image emotion dataset of Kim et al. (2017), preset ``cgna``.

Two text files, one rating per line and no header: ``valence_avg_10766_v2.txt`` and
``arousal_avg_10766_v2.txt`` (the ``valence`` and ``arousal`` options name them). Line
n of both belongs to picture ``<n>.jpg`` in ``images`` (extension in any case), and
its id is ``n``. Scale 1..9. Files of different lengths cannot be paired, so they stop
the build; trailing blank lines are ignored, a blank line inside is a missing rating.
A first line that is not a number (a header someone added) stops the build: read as
headerless, it would shift every rating onto the wrong picture.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..records import Record
from .problems import RatingFileError
from .tables import ImageFolder, images_folder, make_record, parse_scale, read_text, to_float

DEFAULTS: dict[str, str] = {
    "valence": "valence_avg_10766_v2.txt",
    "arousal": "arousal_avg_10766_v2.txt",
    "images": "images",
    "scale": "1,9",
}


def _values(path: Path) -> list[str]:
    """One value per line, trailing blank lines dropped."""
    if not path.is_file():
        raise RatingFileError(path, "rating file not found")
    lines = [line.strip() for line in read_text(path).split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise RatingFileError(path, "holds no values")
    try:
        to_float(lines[0])
    except ValueError:
        raise RatingFileError(path, f"line 1 is {lines[0]!r}, not a number: these files have no header, "
                                    "line n holds the rating of picture n") from None
    return lines


def read(root: Path, options: dict[str, str]) -> Iterator[Record]:
    folder = root.parent if root.is_file() else root
    scale = parse_scale(options["scale"])
    valence_file, arousal_file = folder / options["valence"], folder / options["arousal"]
    valences, arousals = _values(valence_file), _values(arousal_file)
    if len(valences) != len(arousals):
        raise RatingFileError(valence_file, f"{len(valences)} values, but {arousal_file.name} has "
                                            f"{len(arousals)}: line n of each must be picture n")
    pictures = ImageFolder(images_folder(folder, options["images"]))
    for n, (valence, arousal) in enumerate(zip(valences, arousals), start=1):
        path, problem = pictures.lookup(str(n))
        yield make_record("cgna", id=str(n), path=path, where=f"{valence_file.name} line {n}",
                          scale=scale, valence=valence, arousal=arousal, problem=problem)
