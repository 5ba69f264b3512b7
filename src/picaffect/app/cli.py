"""The ``picaffect`` command: a thin layer over the Python API.

Each sub-command (its options in ``commands``) calls the API, prints what it did, and
turns the errors users can cause (a missing file, a bad column name) into one clear
line and a non-zero exit instead of a traceback. Decisions belong to the API modules it
calls (``predict``, ``service.launch``, ``selection.from_files``, ``training.launch``, ...),
so that a Python user gets the same behaviour without this file.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from .. import __version__
from ..core.errors import PicaffectError
from ..training.config import TrainConfig
from .arguments import dataclass_from_options
from .commands import parser
from .launcher import check_extras, relaunch_with_allocator, wants_allocator

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _run_build(args: argparse.Namespace) -> int:
    from ..data.build import SourceSpec, apply_options, build
    from ..data.build_report import format_report

    specs = [SourceSpec.parse(s) for s in args.source]
    apply_options(specs, args.option)
    report = build(args.out_dir, specs, size=args.size, split=args.split, seed=args.seed, workers=args.workers,
                   strict=args.strict, plots=not args.no_plots, progress=sys.stderr.isatty())
    print(format_report(report))
    print(f"wrote {args.out_dir}/ (manifest.parquet, images.npy, report.json{'' if args.no_plots else ', plots/'})")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from ..training.launch import is_main_rank, launch_if_asked

    if launch_if_asked(args.argv, args.nproc):  # the ranks have trained and reported
        return EXIT_OK
    from ..training.engine import train

    summary = train(dataclass_from_options(TrainConfig, args), resume=args.resume)
    if is_main_rank():
        print(f"{summary['epochs_run']} epochs, {summary['steps']} steps; best test loss "
              f"{summary['best_test_loss']:.4f} (RMSE {summary['best_test_rmse']:.3f}) at epoch "
              f"{summary['best_epoch']}")
        print(f"wrote {args.out}/ (config.yaml, history.csv, loss.png, best.pt, last.pt, summary.json)")
    return EXIT_OK


def _run_evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate
    from ..evaluation.markdown import metrics_markdown

    result = evaluate(args.model, args.data, split=args.split, out=args.out, by_source=args.by == "source",
                      batch_size=args.batch_size, device=args.device, level=args.level)
    for text in result.get("notes", []):
        _note(text)
    print(metrics_markdown(result))
    if args.out:
        print(f"wrote {args.out}/ (metrics.json, report.md, predictions.csv, predicted_vs_true.png, circumplex.png)")
    return 0


def _run_features(args: argparse.Namespace) -> int:
    from ..workflows.features import extract_features

    meta = extract_features(args.model, args.data, args.out, split=args.split,
                            options=dict(args.model_option), size=args.size, tta=not args.no_tta,
                            batch_size=args.batch_size, device=args.device, limit=args.limit)
    print(f"{meta['rows']} rows x {meta['width']} features of {meta['model']} at {meta['size']} px in "
          f"{meta['seconds']} s; wrote {args.out}")
    return EXIT_OK


def _run_experiment(args: argparse.Namespace) -> int:
    from ..workflows.experiments import run_cross_dataset, run_thesis

    base = dataclass_from_options(TrainConfig, args, model=args.models[0], out=str(args.out))
    common = dict(n_boot=args.n_boot, train_runs=not args.report_only)
    if args.which == "thesis":
        run_thesis(args.data, args.out, base, models=args.models, augment=args.augment, **common)
    else:  # one model, every held-out source: --augment (when given) is its augmentation
        if args.augment is not None:
            base = replace(base, augment=args.augment)
        run_cross_dataset(args.data, args.out, base, stages=args.stages_from, **common)
    print((args.out / "report.md").read_text())
    print(f"wrote {args.out}/ (report.md, results.json, runs/)")
    return 0


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _progress_bar(stream: Iterator[dict[str, Any]], total: int) -> Iterable[dict[str, Any]]:
    """A bar on standard error for 50 pictures or more, when a person watches it."""
    if total < 50 or not sys.stderr.isatty():
        return stream
    from tqdm.auto import tqdm  # only when a bar is shown: importing it costs a tenth of a second

    return tqdm(stream, total=total, unit="img")


def _run_predict(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        return _run_predict_ray(args)
    from .predict import predict_paths

    run, text = predict_paths(args.paths, model=args.model, out=args.out, fmt=args.format, scale=args.scale,
                              level=args.level, recursive=args.recursive, batch_size=args.batch_size,
                              workers=args.workers, tta=args.tta, device=args.device, backend=args.backend,
                              progress=_progress_bar, note=_note, describe=args.describe)
    print(text, end="")
    for r in run.failed:
        print(f"error: {r['path']}: {r['error']}", file=sys.stderr)
    print(run.summary() + (f"; wrote {args.out}" if args.out else ""), file=sys.stderr)
    return EXIT_ITEMS_FAILED if args.strict and (run.failed or run.problems) else EXIT_OK


def _run_predict_ray(args: argparse.Namespace) -> int:
    from ..batch.ray_job import score_with_ray

    if args.describe:
        from ..core.errors import UsageError

        raise UsageError("--describe works with --engine local (the Ray job writes ratings only)")

    summary = score_with_ray(args.paths, args.out, model=args.model, address=args.address, actors=args.actors,
                             batch_size=args.batch_size, tta=args.tta, recursive=args.recursive,
                             path_column=args.path_column, backend=args.backend)
    print(f"scored {summary['scored']} of {summary['rows']} pictures"
          + (f", {summary['failed']} unreadable" if summary["failed"] else "")
          + f" in {summary['seconds']:.1f} s on Ray; wrote {args.out}/ ({summary['shards']} Parquet shards, "
            f"_summary.json)",
          file=sys.stderr)
    return EXIT_ITEMS_FAILED if args.strict and summary["failed"] else EXIT_OK


def _run_retrain(args: argparse.Namespace) -> int:
    from ..evaluation.markdown import metrics_markdown
    from ..workflows.retrain import retrain

    summary = retrain(args.config, device=args.device, force=args.force)
    print(metrics_markdown(summary["final"]))
    if "kept" in summary:
        print(f"note: {summary['kept']}; the new weights are in {summary['exported']}", file=sys.stderr)
    else:
        print(f"wrote {summary['exported']}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from ..inference.shipping import export_model

    # the file keeps the metadata of the one it copies (made_by: the command that made the weights)
    exported_by = {"exported_by": f"picaffect {__version__}: picaffect export {args.model} {args.out.name}"}
    path = export_model(args.model, args.out, fp32=args.fp32, metadata=exported_by)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return EXIT_OK


def _run_calibrate(args: argparse.Namespace) -> int:
    from ..core.errors import UsageError
    from ..workflows.calibrate import accuracy_table, calibrate, coverage_table

    if args.pilot is not None:
        return _run_pilot_calibration(args)
    if args.data is None:
        raise UsageError("calibrate needs --data DATASET (held-out errors of a built dataset's sources) or --pilot "
                         "FILE (your own rated pictures)")
    summary = calibrate(args.model, args.data, args.out, predictions=args.predictions or None, stage=args.stage,
                        device=args.device, batch_size=args.batch_size, onnx=args.onnx, adaptive=not args.constant,
                        features=args.features, scheme=args.scheme)
    info = summary["info"]
    print(f"protocol {info['protocol']['name']}: {info['rows']} held-out rows "
          f"({', '.join(f'{s} {n}' for s, n in info['sources'].items())}); residual RMSE valence "
          f"{info['residual_rmse']['valence']:.2f}, arousal {info['residual_rmse']['arousal']:.2f}; "
          f"{'adaptive widths (error head)' if summary['adaptive'] else 'constant width'}, scheme {summary['scheme']}")
    print("\nAccuracy of the held-out predictions (each source predicted without its own rows):\n")
    print(accuracy_table(summary))
    print("\nCalibrated on the other sources, measured on each (90 % intervals):\n")
    print(coverage_table(summary))
    for text in summary.get("notes", []):
        _note(text)
    print(f"wrote {', '.join(summary['written'])} in {summary['seconds']:.0f} s")
    return EXIT_OK


def _run_pilot_calibration(args: argparse.Namespace) -> int:
    from ..core.errors import UsageError
    from ..workflows.pilot import calibrate_with_pilot

    ignored = [flag for flag, given in (("--predictions", args.predictions), ("--stage", args.stage),
                                        ("--constant", args.constant)) if given]
    if ignored:
        raise UsageError(f"{', '.join(ignored)} calibrate(s) on a dataset's held-out errors, not with --pilot")
    summary = calibrate_with_pilot(args.model, args.pilot, args.out, onnx=args.onnx, scale=args.pilot_scale,
                                   skip_missing=args.skip_missing, adjust=args.pilot_adjust, data=args.data,
                                   features=args.features, device=args.device, batch_size=args.batch_size)
    print(summary["report"])
    print(f"wrote {', '.join(summary['written'])} in {summary['seconds']:.0f} s")
    return EXIT_OK


def _run_info(args: argparse.Namespace) -> int:
    from .info import as_json, as_text, model_info

    info = model_info(args.model)
    print(as_json(info) if args.json else as_text(info), end="")
    return EXIT_OK


def _run_select(args: argparse.Namespace) -> int:
    from ..selection import request_from_text, select_from_files
    from ..selection.report import markdown

    request = request_from_text(sets=args.sets, size=args.size, ranges=args.ranges, differ=args.differ,
                                match=args.match, alpha=args.alpha, prefer_sure=args.prefer_sure,
                                max_width=args.max_width, time_limit_s=args.time_limit, balance=args.balance)
    result, written = select_from_files(args.scores, args.out, request, exclude_files=args.exclude, note=_note,
                                        overwrite=args.overwrite, decimal=args.decimal)
    print(markdown(result))
    print(f"wrote {', '.join(str(p) for p in written)}")
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, args.model)
    return EXIT_OK


def _run_serve(args: argparse.Namespace) -> int:
    from ..service.launch import check_serve_extra, serve_model
    from ..service.settings import ServeOptions

    options = dataclass_from_options(ServeOptions, args)
    check_serve_extra()
    if serve_model(options.model, options.settings(), options.host, options.port, device=options.device):
        print("picaffect serve: stopped by SIGTERM after answering the requests in progress", file=sys.stderr)
    return EXIT_OK


# Each command's run: it gets the parsed arguments and returns the exit status.
RUNS: dict[str, Callable[[argparse.Namespace], int]] = {
    "build": _run_build, "train": _run_train, "evaluate": _run_evaluate, "features": _run_features,
    "experiment": _run_experiment, "predict": _run_predict, "retrain": _run_retrain, "export": _run_export,
    "calibrate": _run_calibrate, "info": _run_info, "select": _run_select, "demo": _run_demo, "serve": _run_serve,
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: this process's); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv  # what `train --nproc N` hands to torchrun
    try:
        check_extras(args.command)
        return RUNS[args.command](args)
    except PicaffectError as e:  # the user's input or request: one line; anything else is a bug and keeps its trace
        print(f"picaffect {args.command}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_USAGE)  # 1 where --strict met a bad item (build), else 2
    except KeyboardInterrupt:
        print(f"picaffect {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def needs_allocator(argv: list[str]) -> bool:
    """Whether the command line ``argv`` will run torch (``launcher.wants_allocator``), read with this command
    line's parser: the console script then re-executes under the allocator setting, and so does a benchmark."""
    return wants_allocator(argv, lambda predict: parser().parse_known_args(predict)[0])


def entry() -> None:
    """The console script: commands that run torch first re-execute once with the allocator setting
    (``launcher``)."""
    if needs_allocator(sys.argv[1:]):
        relaunch_with_allocator(sys.argv[1:])
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
