"""The rated sets the project trains its shipped models on, and where a built dataset of them lives.

Named once, here. The Makefile and the shell scripts read them through this module's
command line, the configurations' ``build`` falls back on them, and the benchmarks, the
research scripts and the experiments import them, so that a set added here reaches every
build. Built datasets follow one scheme, ``runs/data/<sets joined by +>-<size>px-<split>``
(``runs/data/oasis+emotion6+bass-224px-group``; ``-seedN`` after a split seed other than
0), so that every step that needs the same pictures reuses one build:

    python -m picaffect.data.rated_sets sets                  # oasis emotion6 bass, one a line
    python -m picaffect.data.rated_sets sources ../shared/data  # --source oasis=../shared/data/oasis ...
    python -m picaffect.data.rated_sets folder 224 group       # runs/data/oasis+emotion6+bass-224px-group

Each word it prints is on its own line, so that a shell reads them with ``mapfile`` whatever
the paths hold, and Make's ``$(shell ...)`` joins them with spaces.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

# OASIS, Emotion6 and BASS: the three rated sets of the shared data folder, one folder each as distributed.
RATED_SETS: tuple[str, ...] = ("oasis", "emotion6", "bass")
DATA_ROOT = Path("runs/data")  # relative to the repository root, as the configurations' paths are


def dataset_name(size: int, split: str, sets: Sequence[str] = RATED_SETS, seed: int = 0) -> str:
    """``oasis+emotion6+bass-224px-group``: what a build holds, in the order of ``sets``."""
    return "+".join(sets) + f"-{size}px-{split}" + (f"-seed{seed}" if seed else "")


def dataset_folder(size: int, split: str, sets: Sequence[str] = RATED_SETS, seed: int = 0,
                   root: str | Path = DATA_ROOT) -> Path:
    """Where the build of ``sets`` at ``size`` px with ``split`` (and ``seed``) lives under ``root``."""
    return Path(root) / dataset_name(size, split, sets, seed)


def source_arguments(data: str | Path, sets: Sequence[str] = RATED_SETS) -> list[str]:
    """``picaffect build``'s ``--source`` options for ``sets``, each in its folder under ``data``."""
    return [word for name in sets for word in ("--source", f"{name}={Path(data) / name}")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m picaffect.data.rated_sets", description=__doc__.splitlines()[0])
    words = parser.add_subparsers(dest="what", required=True)
    words.add_parser("sets", help="the rated sets' names")
    sources = words.add_parser("sources", help="picaffect build's --source options for them")
    sources.add_argument("data", help="the folder holding one folder per set (../shared/data)")
    folder = words.add_parser("folder", help="the built dataset's folder")
    folder.add_argument("size", type=int)
    folder.add_argument("split")
    folder.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.what == "sets":
        out = list(RATED_SETS)
    elif args.what == "sources":
        out = source_arguments(args.data)
    else:
        out = [str(dataset_folder(args.size, args.split, seed=args.seed))]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
