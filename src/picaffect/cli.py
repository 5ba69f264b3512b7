"""The ``picaffect`` command: a thin layer over the Python API.

Each sub-command parses its arguments, calls one API function and turns the
errors users can cause (a missing file, a bad column name) into one clear line
and a non-zero exit instead of a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__

DEFAULT_DATA = Path("../shared/data")
SHARED_SETS = ("oasis", "emotion6", "bass")


class UsageError(Exception):
    """A problem with what the user asked for; printed without a traceback."""


def _add_build(sub) -> None:
    p = sub.add_parser("build", help="merge published rated picture sets into one dataset on 1..9",
                       description="Read rated picture sets in their publishers' layouts, rescale to 1..9, "
                                   "decode every picture once into an image cache, split, and report.")
    p.add_argument("out_dir", type=Path, help="folder to write the dataset into")
    p.add_argument("--source", action="append", default=[], metavar="PRESET[:NAME]=PATH",
                   help="a rated set, e.g. oasis=../shared/data/oasis; repeat for several")
    p.add_argument("--option", action="append", default=[], metavar="NAME.OPTION=VALUE",
                   help="override a source's column or scale, e.g. mycsv.valence=Val or oasis.scale=1,7")
    p.add_argument("--size", type=int, default=150, help="side of the square cached images (default 150)")
    p.add_argument("--split", choices=("thesis", "group"), default="thesis")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None, help="decoding threads (default: one per core)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.set_defaults(run=_run_build)


def _run_build(args) -> int:
    from .data.build import SourceSpec, apply_options, build
    from .data.report import format_report

    specs = [SourceSpec.parse(s) for s in args.source]
    apply_options(specs, args.option)
    report = build(args.out_dir, specs, size=args.size, split=args.split, seed=args.seed, workers=args.workers,
                   strict=args.strict, plots=not args.no_plots, progress=sys.stderr.isatty())
    print(format_report(report))
    print(f"wrote {args.out_dir}/ (manifest.parquet, images.npy, report.json, plots/)")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the main job on the sets that ship beside the project")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding oasis/, emotion6/, bass/")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write the demo's outputs")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from .data.build import SourceSpec, build
    from .data.report import format_report

    present = [name for name in SHARED_SETS if (args.data / name).is_dir()]
    if not present:
        raise UsageError(f"no rated picture sets found in {args.data} (expected {', '.join(SHARED_SETS)} folders); "
                         f"point --data at them")
    specs = [SourceSpec(name, args.data / name, name) for name in present]
    report = build(args.out / "dataset", specs, progress=sys.stderr.isatty())
    print(format_report(report))
    print(f"wrote {args.out / 'dataset'}/ with plots in {args.out / 'dataset' / 'plots'}/")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picaffect", description="How a picture makes people feel: valence and arousal on 1..9.")
    p.add_argument("--version", action="version", version=f"picaffect {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_build, _add_demo):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .data.build import BuildError
    from .data.sources import RatingFileError

    try:
        return args.run(args)
    except (UsageError, BuildError, RatingFileError, FileNotFoundError) as e:
        print(f"picaffect {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"picaffect {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
