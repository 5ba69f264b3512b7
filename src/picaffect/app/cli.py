"""The ``picaffect`` command: a thin layer over the Python API.

Each sub-command parses its arguments, calls one API function and turns the
errors users can cause (a missing file, a bad column name) into one clear line
and a non-zero exit instead of a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import __version__
from .arguments import add_dataclass_options, dataclass_from_options, key_value, model_list, positive_int
from ..core.errors import PicaffectError, UsageError
from .launcher import check_extras, relaunch_with_allocator, wants_allocator
from ..core.names import AUGMENTS, BACKENDS, DEVICES, ENGINES, MODEL_HELP, SPLITS_OR_ALL, THESIS_MODELS
from ..core.scale import Scale
from ..training.config import EXPERIMENT_DEFAULTS, TrainConfig

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _add_build(sub) -> None:
    p = sub.add_parser("build", help="merge published rated picture sets into one dataset on 1..9",
                       description="Read rated picture sets in their publishers' layouts, rescale to 1..9, "
                                   "decode every picture once into an image cache, split, and report.")
    p.add_argument("out_dir", type=Path, help="folder to write the dataset into")
    p.add_argument("--source", action="append", default=[], metavar="PRESET[:NAME]=PATH",
                   help="a rated set, e.g. oasis=../shared/data/oasis; repeat for several")
    p.add_argument("--option", action="append", default=[], metavar="NAME.OPTION=VALUE",
                   help="override a source's column or scale, e.g. mycsv.valence=Val or oasis.scale=1,7")
    p.add_argument("--size", type=positive_int, default=150, help="side of the square cached images (default 150)")
    p.add_argument("--split", choices=("thesis", "group"), default="thesis")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=positive_int, default=None, help="decoding threads (default: one per core)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row instead of skipping it")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.set_defaults(run=_run_build)


def _run_build(args) -> int:
    from ..data.build import SourceSpec, apply_options, build
    from ..data.build_report import format_report

    specs = [SourceSpec.parse(s) for s in args.source]
    apply_options(specs, args.option)
    report = build(args.out_dir, specs, size=args.size, split=args.split, seed=args.seed, workers=args.workers,
                   strict=args.strict, plots=not args.no_plots, progress=sys.stderr.isatty())
    print(format_report(report))
    print(f"wrote {args.out_dir}/ (manifest.parquet, images.npy, report.json{'' if args.no_plots else ', plots/'})")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a built dataset",
                       description="Train one model on the train split of a built dataset, watching the test split.")
    add_dataclass_options(p, TrainConfig)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--nproc", type=positive_int, default=1,
                   help="data-parallel processes on this machine (DistributedDataParallel; gloo on CPU, NCCL on "
                        "CUDA): the same as `torchrun --standalone --nproc_per_node N -m picaffect train ...`")
    p.set_defaults(run=_run_train)


def _run_train(args) -> int:
    from ..training.launch import is_main_rank, launch_torchrun, under_torchrun

    if args.nproc > 1 and not under_torchrun():
        launch_torchrun(args.argv, args.nproc)
        return EXIT_OK
    from ..training.engine import train

    summary = train(dataclass_from_options(TrainConfig, args), resume=args.resume)
    if is_main_rank():
        print(f"{summary['epochs_run']} epochs, {summary['steps']} steps; best test loss "
              f"{summary['best_test_loss']:.4f} (RMSE {summary['best_test_rmse']:.3f}) at epoch "
              f"{summary['best_epoch']}")
        print(f"wrote {args.out}/ (config.yaml, history.csv, loss.png, best.pt, last.pt, summary.json)")
    return EXIT_OK


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained model on a built dataset",
                       description="RMSE, MAE, Pearson CC, CCC and SAGR with baselines and bootstrap intervals.")
    p.add_argument("model", help="a training run folder (or the name of a shipped model)")
    p.add_argument("--data", required=True, type=Path, help="a folder written by `picaffect build`")
    p.add_argument("--split", choices=SPLITS_OR_ALL, default="validation")
    p.add_argument("--out", type=Path, default=None, help="write metrics.json, report.md, predictions.csv, plots")
    p.add_argument("--by", choices=("source",), default=None, help="add one block per source")
    p.add_argument("--level", type=float, default=0.9,
                   help="a calibrated model's interval coverage to measure (default 0.9)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from ..evaluation.evaluate import evaluate
    from ..evaluation.markdown import metrics_markdown

    result = evaluate(args.model, args.data, split=args.split, out=args.out, by_source=args.by == "source",
                      batch_size=args.batch_size, device=args.device, level=args.level)
    print(metrics_markdown(result))
    if args.out:
        print(f"wrote {args.out}/ (metrics.json, report.md, predictions.csv, predicted_vs_true.png, circumplex.png)")
    return 0


def _add_features(sub) -> None:
    p = sub.add_parser("features", help="pooled features of any backbone for a rated dataset (.npz)",
                       description="Extract the frozen, pooled features of a backbone for every picture of a built "
                                   "dataset, beside its ratings, ids, sources and splits: what a ridge readout needs.")
    p.add_argument("model", help=MODEL_HELP + "; or a trained run folder, checkpoint file or shipped model name")
    p.add_argument("--data", required=True, type=Path, help="a folder written by `picaffect build`")
    p.add_argument("--out", required=True, type=Path, help="the .npz file to write")
    p.add_argument("--split", choices=SPLITS_OR_ALL, default="all")
    p.add_argument("--size", type=positive_int, default=None,
                   help="input side (default: a hub model's own, else the dataset's)")
    p.add_argument("--no-tta", action="store_true", help="do not average with the mirror image")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N rows (smoke runs)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--model-option", action="append", default=[], type=key_value, metavar="KEY=VALUE",
                   help="passed to the model's constructor, e.g. features=stages (values read as YAML)")
    p.set_defaults(run=_run_features)


def _run_features(args) -> int:
    from ..workflows.features import extract_features

    meta = extract_features(args.model, args.data, args.out, split=args.split,
                            options=dict(args.model_option), size=args.size, tta=not args.no_tta,
                            batch_size=args.batch_size, device=args.device, limit=args.limit)
    print(f"{meta['rows']} rows x {meta['width']} features of {meta['model']} at {meta['size']} px in "
          f"{meta['seconds']} s; wrote {args.out}")
    return EXIT_OK


def _add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="rerun the thesis's experiment, or a leave-one-source-out test",
                       description="thesis: train each model (plus Emosepar with the thesis's augmentation unless "
                                   "--augment is given) and write tables 8.1-8.3 for every run under OUT/runs. "
                                   "cross-dataset: train on all sources but one, evaluate on that one, in turn. "
                                   "Both resume: finished runs are not trained again, interrupted ones continue. "
                                   "The training options apply to every run; a stage of --stages-from overrides "
                                   "those it names.")
    p.add_argument("which", choices=("thesis", "cross-dataset"))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--models", type=model_list, default=THESIS_MODELS,
                   help="comma-separated (thesis); the first one is used for cross-dataset")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help="thesis: every model with this augmentation only (default: none, plus Emosepar with the "
                        "thesis's, as table 8.2)")
    p.add_argument("--stages-from", type=Path, default=None, metavar="CONFIG",
                   help="cross-dataset: train the stages of this retrain configuration instead "
                        "(configs/default.yaml: ridge probe, then fine-tuning)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing; evaluate the runs already in OUT and rewrite the report")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples for the intervals")
    add_dataclass_options(p, TrainConfig, skip=("out", "model", "augment", "init"), defaults=EXPERIMENT_DEFAULTS)
    p.set_defaults(run=_run_experiment)


def _run_experiment(args) -> int:
    from ..workflows.experiments import run_cross_dataset, run_thesis
    from ..workflows.stages import stages_from_config

    base = dataclass_from_options(TrainConfig, args, model=args.models[0], out=str(args.out))
    common = dict(n_boot=args.n_boot, train_runs=not args.report_only)
    if args.which == "thesis":
        run_thesis(args.data, args.out, base, models=args.models, augment=args.augment, **common)
    else:
        stages = stages_from_config(args.stages_from) if args.stages_from else None
        run_cross_dataset(args.data, args.out, base, stages=stages, **common)
    print((args.out / "report.md").read_text())
    print(f"wrote {args.out}/ (report.md, results.json, runs/)")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="valence and arousal for pictures",
                       description="Score pictures with the shipped default model or a trained run. Exit status: "
                                   "0 done, 1 some pictures or named paths failed (with --strict), 2 bad input.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="picture files, folders or globs")
    p.add_argument("--model", default="default", help="default (shipped), a run folder, or a checkpoint file")
    p.add_argument("--recursive", action="store_true", help="search folders (and ** globs) recursively")
    p.add_argument("--out", type=Path, default=None, help="write FILE.csv, .json, .jsonl or .parquet")
    p.add_argument("--format", choices=("table", "csv", "jsonl"), default="table", help="stdout format without --out")
    p.add_argument("--scale", default=None, metavar="MIN,MAX", help="also give the values on this scale, e.g. 1,7")
    p.add_argument("--level", type=float, default=0.9,
                   help="coverage of the prediction intervals of a calibrated model (default 0.9: 90 %%)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--workers", type=positive_int, default=None, help="decoding threads (default: one per core)")
    p.add_argument("--tta", action="store_true", help="average with the mirror image (slower, a little better)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any picture could not be scored or a named path does not exist")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="onnx (onnxruntime, no torch), torch, or auto: ONNX when the model has an ONNX file (the "
                        "shipped default does) and no GPU is in play, the faster one on a CPU")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: in this process; ray: a Ray Data job (decoding tasks, an actor pool of models, "
                        "Parquet shards in --out DIR/)")
    p.add_argument("--address", default=None,
                   help="--engine ray: the cluster (auto, ray://HOST:10001); default $RAY_ADDRESS or a local Ray")
    p.add_argument("--actors", type=positive_int, default=None,
                   help="--engine ray: model actors, each holding one model (default: 1 per 2 CPUs)")
    p.add_argument("--path-column", default="path", help="--engine ray with a Parquet/CSV SOURCE: its path column")
    p.set_defaults(run=_run_predict)


def _parse_scale(text: str | None):
    if text is None:
        return None
    try:
        return Scale.parse(text)
    except (ValueError, PicaffectError) as e:
        raise UsageError(f"--scale {text}: {e}") from None


def _run_predict(args) -> int:
    if args.engine == "ray":
        return _run_predict_ray(args)

    from ..inference import Predictor
    from .outputs import check_output_path, output_meta, render, write_predictions

    from ..inference.intervals import check_level

    scale = _parse_scale(args.scale)
    check_level(args.level)
    if args.out is not None:
        check_output_path(args.out)  # before any work: a bad --out should not cost a scoring run
    predictor = Predictor.from_pretrained(args.model, device=args.device, workers=args.workers, backend=args.backend,
                                          level=args.level)
    if predictor.calibration is None:
        print(f"note: model {args.model} has no calibration, so no prediction intervals (add them with "
              f"`picaffect calibrate {args.model} --data DATASET --out calibrated.pt`)", file=sys.stderr)

    def progress(stream, total):
        if total < 50 or not sys.stderr.isatty():
            return stream
        from tqdm.auto import tqdm  # only when a bar is shown: importing it costs a tenth of a second

        return tqdm(stream, total=total, unit="img")

    run = predictor.predict_files(args.paths, recursive=args.recursive, batch_size=args.batch_size, tta=args.tta,
                                  scale=scale, progress=progress)
    for note in run.notes:
        print(f"note: {note}", file=sys.stderr)
    if not run.rows:
        raise UsageError("no pictures to score")
    meta = output_meta(str(args.model), str(scale) if scale else None,
                       args.level if predictor.calibration is not None else None)
    if args.out:
        write_predictions(run.rows, args.out, meta)
    else:
        print(render(run.rows, args.format, meta), end="")
    for r in run.failed:
        print(f"error: {r['path']}: {r['error']}", file=sys.stderr)
    print(run.summary() + (f"; wrote {args.out}" if args.out else ""), file=sys.stderr)
    return EXIT_ITEMS_FAILED if args.strict and (run.failed or run.problems) else EXIT_OK


def _run_predict_ray(args) -> int:
    from ..batch.ray_job import score_with_ray

    if args.out is None:
        raise UsageError("--engine ray writes Parquet shards: give --out DIR/")
    if args.out.suffix:
        raise UsageError(f"--engine ray: --out {args.out} should be a folder (shards and _summary.json go there)")
    summary = score_with_ray(args.paths, args.out, model=args.model, address=args.address, actors=args.actors,
                             batch_size=args.batch_size, tta=args.tta, recursive=args.recursive,
                             path_column=args.path_column, backend=args.backend)
    print(f"scored {summary['scored']} of {summary['rows']} pictures"
          + (f", {summary['failed']} unreadable" if summary["failed"] else "")
          + f" in {summary['seconds']:.1f} s on Ray; wrote {args.out}/ ({summary['shards']} Parquet shards, "
            f"_summary.json)",
          file=sys.stderr)
    return EXIT_ITEMS_FAILED if args.strict and summary["failed"] else EXIT_OK


def _add_retrain(sub) -> None:
    p = sub.add_parser("retrain", help="rebuild a model from its configuration (configs/default.yaml)")
    p.add_argument("config", type=Path)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--force", action="store_true",
                   help="replace the exported file even if the new model is not better on the validation rows")
    p.set_defaults(run=_run_retrain)


def _run_retrain(args) -> int:
    from ..evaluation.markdown import metrics_markdown
    from ..workflows.retrain import retrain

    summary = retrain(args.config, device=args.device, force=args.force)
    print(metrics_markdown(summary["final"]))
    if "kept" in summary:
        print(f"note: {summary['kept']}; the new weights are in {summary['exported']}", file=sys.stderr)
    else:
        print(f"wrote {summary['exported']}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a model as a slim fp16 checkpoint or an ONNX file for shipping",
                       description="MODEL is a training run folder (its best.pt), a checkpoint file, or a shipped "
                                   "model's name. OUT ending in .onnx: an ONNX file with the input size, input "
                                   "scaling, output mapping and model name in its metadata, enough to score with "
                                   "onnxruntime alone (picaffect predict --model OUT.onnx); otherwise a checkpoint "
                                   "without optimiser and training state.")
    p.add_argument("model")
    p.add_argument("out", type=Path, help="FILE.pt (a checkpoint) or FILE.onnx")
    p.add_argument("--fp32", action="store_true", help="keep 32-bit weights (.pt only; .onnx keeps them exact)")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from ..inference.shipping import export_model

    made_by = {"made_by": f"picaffect {__version__}: picaffect export {args.model} {args.out.name}"}
    path = export_model(args.model, args.out, fp32=args.fp32, metadata=made_by)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return EXIT_OK


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="add prediction intervals to a model file (conformal, leave one source out)",
                       description="Compute the model's errors on sources it was not fitted on, fit an error head "
                                   "that predicts each picture's difficulty, and write the conformal calibration "
                                   "into a copy of the model (and its ONNX twin with --onnx). Default protocol "
                                   "(refit-head): for each source, a ridge readout on the model's frozen features "
                                   "fitted on the other sources predicts it. --predictions takes held-out "
                                   "predictions made by any protocol instead (e.g. `experiment cross-dataset`).")
    p.add_argument("model", help="a run folder, checkpoint file or shipped model name")
    p.add_argument("--data", required=True, type=Path, help="a folder written by `picaffect build`, >= 2 sources")
    p.add_argument("--out", required=True, type=Path, help="the calibrated checkpoint to write (.pt)")
    p.add_argument("--onnx", type=Path, default=None, help="also write the calibrated model as this .onnx file")
    p.add_argument("--predictions", action="append", default=[], metavar="TABLE_OR_FOLDER",
                   help="held-out predictions (CSV/Parquet: id, source, valence_true, arousal_true, valence_pred, "
                        "arousal_pred), or a cross-dataset experiment folder with --stage; repeat for several")
    p.add_argument("--stage", default=None, help="with a cross-dataset folder: the stage whose runs to read")
    p.add_argument("--constant", action="store_true",
                   help="no error head: every picture gets the same width (plain split conformal)")
    p.add_argument("--features", type=Path, default=None, metavar="NPZ",
                   help="this model's features of DATA already extracted (picaffect features MODEL --data DATA "
                        "--no-tta), instead of extracting them again")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.set_defaults(run=_run_calibrate)


def _run_calibrate(args) -> int:
    from ..workflows.calibrate import calibrate, coverage_table

    if args.onnx is not None and args.onnx.suffix.lower() != ".onnx":
        raise UsageError(f"--onnx {args.onnx}: give a file ending in .onnx")
    summary = calibrate(args.model, args.data, args.out, predictions=args.predictions or None, stage=args.stage,
                        device=args.device, batch_size=args.batch_size, onnx=args.onnx, adaptive=not args.constant,
                        features=args.features)
    info = summary["info"]
    print(f"protocol {info['protocol']['name']}: {info['rows']} held-out rows "
          f"({', '.join(f'{s} {n}' for s, n in info['sources'].items())}); residual RMSE valence "
          f"{info['residual_rmse']['valence']:.2f}, arousal {info['residual_rmse']['arousal']:.2f}; "
          f"{'adaptive widths (error head)' if summary['adaptive'] else 'constant width'}")
    print("\nCalibrated on the other sources, measured on each (90 % intervals):\n")
    print(coverage_table(summary))
    print(f"wrote {', '.join(summary['written'])} in {summary['seconds']:.0f} s")
    return EXIT_OK


def _add_select(sub) -> None:
    p = sub.add_parser("select", help="choose stimulus sets that differ on one dimension and match on the other",
                       description="From a scores file (picaffect predict's output, or any table with picture, "
                                   "valence, arousal on 1..9) or a built dataset's published ratings, choose SETS "
                                   "sets of SIZE pictures by mixed-integer optimisation. Writes sets.csv, "
                                   "summary.csv, statistics.json (Welch t, TOST), report.md and sets.png. A request "
                                   "that cannot be met names the failing constraint and by how much (exit 2).")
    p.add_argument("scores", type=Path, help="a scores file (.csv, .json, .jsonl, .parquet) or a dataset folder")
    p.add_argument("--out", required=True, type=Path, help="folder for the five files")
    p.add_argument("--sets", type=positive_int, default=2)
    p.add_argument("--size", type=positive_int, default=40, help="pictures per set")
    p.add_argument("--differ", default=None, metavar="DIM:POINTS",
                   help="consecutive sets' means differ by at least this much, set 1 lowest (e.g. valence:3)")
    p.add_argument("--match", action="append", default=[], metavar="DIM[:BOUND]",
                   help="sets equivalent on DIM within +-BOUND points by TOST (default bound 0.3), e.g. arousal:0.3")
    p.add_argument("--range", action="append", default=[], dest="ranges", metavar="SET:DIM=LOW..HIGH",
                   help="keep set SET (a number, or all) within a range, e.g. 1:valence=1..4; repeat")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests (default 0.05)")
    p.add_argument("--exclude", action="append", default=[], type=Path, metavar="FILE",
                   help="pictures to leave out: one name a line, or a CSV's picture/path/id column; repeat")
    p.add_argument("--prefer-sure", type=float, default=0.0, metavar="WEIGHT",
                   help="prefer pictures with narrow prediction intervals (weight of the mean width; try 0.1)")
    p.add_argument("--max-width", type=float, default=None, metavar="POINTS",
                   help="leave out pictures whose mean interval width is larger")
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds for the optimiser (default 20)")
    p.set_defaults(run=_run_select)


def _run_select(args) -> int:
    from ..selection import (Request, exclude, parse_amount, parse_range, read_exclusions, read_pool, select,
                            write_result)
    from ..selection.report import check_out

    check_out(args.out)
    request = Request(sets=args.sets, size=args.size, ranges=tuple(parse_range(r) for r in args.ranges),
                      differ=parse_amount(args.differ, "--differ") if args.differ else None,
                      match=tuple(parse_amount(m, "--match", 0.3) for m in args.match), alpha=args.alpha,
                      prefer_sure=args.prefer_sure, max_width=args.max_width, time_limit_s=args.time_limit)
    pool = exclude(read_pool(args.scores), read_exclusions(args.exclude))
    if request.prefer_sure and not pool.has_widths:
        raise UsageError("--prefer-sure needs prediction intervals in the scores file (predict with a calibrated "
                         "model)")
    result = select(pool, request)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    written = write_result(result, args.out)
    from ..selection.report import markdown

    print(markdown(result))
    print(f"wrote {', '.join(str(p) for p in written)}")
    return EXIT_OK


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="score the sample photographs that installed packages ship")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write the photos, table and plot")
    p.add_argument("--model", default="default")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, args.model)
    return EXIT_OK


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="a web page and REST service for scoring pictures",
                       description="Serve the page (GET /) and the REST API (POST /v1/predict with multipart field "
                                   "'files'; GET /v1/health, /v1/model; docs at /docs). Binds to loopback unless "
                                   "--host says otherwise. Needs the 'serve' extra.")
    p.add_argument("--model", default="default", help="default (shipped), a run folder, or a checkpoint file")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to others)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=positive_int, default=None,
                   help="threads that decode uploaded pictures (default: one per core); the model runs in one "
                        "more thread that scores shared batches, using all cores")
    p.add_argument("--token", default=None,
                   help="require 'Authorization: Bearer TOKEN' on /v1/predict and /v1/model "
                        "(or set PICAFFECT_TOKEN, which keeps it out of the process list)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--tta", action="store_true", help="average with the mirror image (slower, a little better)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="largest shared batch (default 32)")
    p.add_argument("--max-files", type=positive_int, default=None, help="pictures per request (default 64)")
    p.add_argument("--max-file-mb", type=float, default=None, help="size of one picture (default 16)")
    p.add_argument("--max-request-mb", type=float, default=None, help="size of one request (default 64)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to receive, and to score, a request "
                                                                "(default 60)")
    p.add_argument("--header-timeout", type=float, default=None,
                   help="seconds for a request's headers to arrive once a connection opens or a request begins "
                        "(default 10)")
    p.add_argument("--keep-alive", type=float, default=None, help="seconds an idle connection stays open between "
                                                                   "requests (default 30)")
    p.add_argument("--max-connections", type=positive_int, default=None,
                   help="connections open at once; more are answered 503 (default 512)")
    p.add_argument("--shutdown-timeout", type=float, default=None,
                   help="on SIGTERM, seconds to finish the requests in progress before exiting 0 (default 30)")
    p.set_defaults(run=_run_serve)


def _run_serve(args) -> int:
    import ipaddress

    try:
        from ..service import Settings, create_app
        from ..service.server import serve
    except ImportError as e:
        raise UsageError(f"picaffect serve needs the 'serve' extra ({e.name} is missing): "
                         f"pip install 'picaffect[serve]'") from None
    from ..inference import Predictor
    from ..service.settings import MB

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: give a port between 1 and 65535")
    token = args.token or os.environ.get("PICAFFECT_TOKEN") or None
    given = {"max_files": args.max_files, "timeout_s": args.timeout, "header_timeout_s": args.header_timeout,
             "keep_alive_s": args.keep_alive, "max_connections": args.max_connections,
             "shutdown_timeout_s": args.shutdown_timeout,
             "max_file_bytes": int(args.max_file_mb * MB) if args.max_file_mb else None,
             "max_request_bytes": int(args.max_request_mb * MB) if args.max_request_mb else None}
    settings = Settings(token=token, tta=args.tta, batch_size=args.batch_size, decode_workers=args.workers,
                        **{k: v for k, v in given.items() if v is not None})
    predictor = Predictor.from_pretrained(args.model, device=args.device, workers=args.workers)
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"picaffect serve: model {args.model}, http://{shown}:{args.port}/ (page), /v1/predict, /docs",
          file=sys.stderr)
    if loopback:
        print(f"picaffect serve: listening on loopback {args.host} only: other machines cannot reach it "
              f"(--host 0.0.0.0 opens it, with --token)", file=sys.stderr)
    elif token is None:
        print(f"picaffect serve: warning: listening on {args.host} without --token: anyone who can reach this "
              f"address can use the service", file=sys.stderr)
    if serve(create_app(predictor, settings), settings, args.host, args.port):
        print("picaffect serve: stopped by SIGTERM after answering the requests in progress", file=sys.stderr)
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picaffect",
                                description="How a picture makes people feel: valence and arousal on 1..9.")
    p.add_argument("--version", action="version", version=f"picaffect {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_build, _add_train, _add_evaluate, _add_features, _add_experiment, _add_predict, _add_retrain,
                _add_export, _add_calibrate, _add_select, _add_demo, _add_serve):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv  # what `train --nproc N` hands to torchrun
    try:
        check_extras(args.command)
        return args.run(args)
    except PicaffectError as e:  # the user's input or request: one line; anything else is a bug and keeps its trace
        print(f"picaffect {args.command}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_USAGE)  # 1 where --strict met a bad item (build), else 2
    except KeyboardInterrupt:
        print(f"picaffect {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _wants_allocator(argv: list[str]) -> bool:
    return wants_allocator(argv, lambda predict: parser().parse_known_args(predict)[0])


def entry() -> None:
    """The console script: commands that run torch first re-execute once with the allocator setting
    (``launcher``)."""
    if _wants_allocator(sys.argv[1:]):
        relaunch_with_allocator(sys.argv[1:])
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
