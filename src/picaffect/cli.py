"""The ``picaffect`` command: a thin layer over the Python API.

Each sub-command parses its arguments, calls one API function and turns the
errors users can cause (a missing file, a bad column name) into one clear line
and a non-zero exit instead of a traceback.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from . import __version__
from .errors import PicaffectError, UsageError
from .training.config import TrainConfig
from .names import AUGMENTS, BUILTIN_MODELS, DEVICES, MODELS, RECIPES, SPLITS, SPLITS_OR_ALL, THESIS_MODELS, check_model

EXIT_OK, EXIT_ITEMS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (batch sizes, epochs, sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def model_name(text: str) -> str:
    """argparse type: a registered architecture or ``hub:ORG/NAME``."""
    try:
        return check_model(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


MODEL_HELP = (f"{', '.join(BUILTIN_MODELS)}, or hub:ORG/NAME (a Hugging Face image model, or "
              f"hub:/folder written by save_pretrained; needs pip install 'picaffect[hub]')")


# The train options' defaults are TrainConfig's own (training/config.py is torch-free).
TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


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
    from .data.build import SourceSpec, apply_options, build
    from .data.report import format_report

    specs = [SourceSpec.parse(s) for s in args.source]
    apply_options(specs, args.option)
    report = build(args.out_dir, specs, size=args.size, split=args.split, seed=args.seed, workers=args.workers,
                   strict=args.strict, plots=not args.no_plots, progress=sys.stderr.isatty())
    print(format_report(report))
    print(f"wrote {args.out_dir}/ (manifest.parquet, images.npy, report.json, plots/)")
    return 0


def _add_train(sub) -> None:
    d = TRAIN_DEFAULTS
    p = sub.add_parser("train", help="train a model on a built dataset",
                       description="Train one model on the train split of a built dataset, watching the test split.")
    p.add_argument("--data", required=True, type=Path, help="a folder written by `picaffect build`")
    p.add_argument("--model", required=True, type=model_name, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--out", required=True, type=Path, help="run folder for checkpoints, history and plots")
    p.add_argument("--recipe", choices=RECIPES, default=d["recipe"],
                   help="thesis (SGD as in section 7.2), modern (AdamW, cosine), ridge (closed-form linear probe)")
    p.add_argument("--epochs", type=positive_int, default=d["epochs"])
    p.add_argument("--batch-size", type=positive_int, default=d["batch_size"])
    p.add_argument("--augment", nargs="?", const="thesis", default=d["augment"], choices=AUGMENTS,
                   help="augment training batches: the thesis's transforms (the default when given alone), "
                        "or light ones (mirror, small turns, shifts, zooms) for fine-tuning")
    p.add_argument("--size", type=positive_int, default=d["size"], help="input side (default: the dataset's)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--limit", type=positive_int, default=d["limit"],
                   help="use only the first N rows of each split (smoke runs)")
    p.add_argument("--device", choices=DEVICES, default=d["device"])
    p.add_argument("--lr", type=float, default=d["lr"], help="override the recipe's learning rate")
    p.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    p.add_argument("--patience", type=positive_int, default=d["patience"],
                   help="epochs without a better test loss before stopping")
    p.add_argument("--targets", choices=("raw", "centred"), default=d["targets"],
                   help="train on raw 1..9 ratings or on (rating - 5) / 4 (default: raw for thesis, else centred)")
    p.add_argument("--init", default=d["init"], metavar="RUN_DIR", help="start from another run's best weights")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the model's constructor, e.g. dropout=0.3 (values read as YAML)")
    p.set_defaults(run=_run_train)


def _model_options(pairs: list[str]) -> dict:
    import yaml

    options = {}
    for text in pairs:
        key, eq, value = text.partition("=")
        if not eq:
            raise UsageError(f"--model-option {text!r}: write KEY=VALUE")
        options[key] = yaml.safe_load(value)
    return options


def _run_train(args) -> int:
    from .training.engine import train

    config = TrainConfig(data=str(args.data), model=args.model, out=str(args.out), recipe=args.recipe,
                         epochs=args.epochs, batch_size=args.batch_size, augment=args.augment, size=args.size,
                         seed=args.seed, limit=args.limit, device=args.device, lr=args.lr,
                         weight_decay=args.weight_decay, patience=args.patience, init=args.init,
                         model_options=_model_options(args.model_option), targets=args.targets)
    summary = train(config, resume=args.resume)
    print(f"{summary['epochs_run']} epochs, {summary['steps']} steps; best test loss "
          f"{summary['best_test_loss']:.4f} (RMSE {summary['best_test_rmse']:.3f}) at epoch {summary['best_epoch']}")
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
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    from .evaluation.evaluate import evaluate
    from .evaluation.markdown import metrics_markdown

    result = evaluate(args.model, args.data, split=args.split, out=args.out, by_source=args.by == "source",
                      batch_size=args.batch_size, device=args.device)
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
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="passed to the model's constructor, e.g. features=stages (values read as YAML)")
    p.set_defaults(run=_run_features)


def _run_features(args) -> int:
    from .workflows.features import extract_features

    meta = extract_features(args.model, args.data, args.out, split=args.split,
                            options=_model_options(args.model_option), size=args.size, tta=not args.no_tta,
                            batch_size=args.batch_size, device=args.device, limit=args.limit)
    print(f"{meta['rows']} rows x {meta['width']} features of {meta['model']} at {meta['size']} px in "
          f"{meta['seconds']} s; wrote {args.out}")
    return EXIT_OK


def _add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="rerun the thesis's experiment, or a leave-one-source-out test")
    p.add_argument("which", choices=("thesis", "cross-dataset"))
    p.add_argument("--data", required=True, type=Path, help="a folder written by `picaffect build`")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--models", default=",".join(THESIS_MODELS),
                   help="comma-separated (thesis); the first one is used for cross-dataset")
    p.add_argument("--recipe", choices=("thesis", "modern"), default="thesis", help="cross-dataset only")
    p.add_argument("--limit", type=positive_int, default=None, help="first N rows of each split (smoke runs)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--size", type=positive_int, default=None)
    p.add_argument("--patience", type=positive_int, default=10)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.set_defaults(run=_run_experiment)


def _run_experiment(args) -> int:
    from .evaluation.experiment import run_cross_dataset, run_thesis

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise UsageError(f"--models: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(MODELS)}")
    common = dict(epochs=args.epochs, limit=args.limit, batch_size=args.batch_size, size=args.size,
                  device=args.device, patience=args.patience)
    if args.which == "thesis":
        run_thesis(args.data, args.out, models=models, **common)
    else:
        run_cross_dataset(args.data, args.out, model=models[0], recipe=args.recipe, **common)
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
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--workers", type=positive_int, default=None, help="decoding threads (default: one per core)")
    p.add_argument("--tta", action="store_true", help="average with the mirror image (slower, a little better)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if any picture could not be scored or a named path does not exist")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.set_defaults(run=_run_predict)


def _parse_scale(text: str | None):
    from .scale import Scale

    if text is None:
        return None
    try:
        return Scale.parse(text)
    except (ValueError, PicaffectError) as e:
        raise UsageError(f"--scale {text}: {e}") from None


def _run_predict(args) -> int:
    from tqdm.auto import tqdm

    from .inference import Predictor
    from .io import check_output_path, output_meta, render, write_predictions

    scale = _parse_scale(args.scale)
    if args.out is not None:
        check_output_path(args.out)  # before any work: a bad --out should not cost a scoring run
    predictor = Predictor.from_pretrained(args.model, device=args.device, workers=args.workers)

    def progress(stream, total):
        return tqdm(stream, total=total, unit="img", disable=total < 50 or not sys.stderr.isatty())

    run = predictor.predict_files(args.paths, recursive=args.recursive, batch_size=args.batch_size, tta=args.tta,
                                  scale=scale, progress=progress)
    for note in run.notes:
        print(f"note: {note}", file=sys.stderr)
    if not run.rows:
        raise UsageError("no pictures to score")
    meta = output_meta(str(args.model), str(scale) if scale else None)
    if args.out:
        write_predictions(run.rows, args.out, meta)
    else:
        print(render(run.rows, args.format, meta), end="")
    for r in run.failed:
        print(f"error: {r['path']}: {r['error']}", file=sys.stderr)
    print(run.summary() + (f"; wrote {args.out}" if args.out else ""), file=sys.stderr)
    return EXIT_ITEMS_FAILED if args.strict and (run.failed or run.missing) else EXIT_OK


def _add_retrain(sub) -> None:
    p = sub.add_parser("retrain", help="rebuild a model from its configuration (configs/default.yaml)")
    p.add_argument("config", type=Path)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--force", action="store_true",
                   help="replace the exported file even if the new model is not better on the validation rows")
    p.set_defaults(run=_run_retrain)


def _run_retrain(args) -> int:
    from .evaluation.markdown import metrics_markdown
    from .workflows.retrain import retrain

    summary = retrain(args.config, device=args.device, force=args.force)
    print(metrics_markdown(summary["final"]))
    if "kept" in summary:
        print(f"note: {summary['kept']}; the new weights are in {summary['exported']}", file=sys.stderr)
    else:
        print(f"wrote {summary['exported']}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write a model as a slim fp16 checkpoint for shipping",
                       description="MODEL is a training run folder (its best.pt), a checkpoint file, or a shipped "
                                   "model's name. Optimiser and training state are left out.")
    p.add_argument("model")
    p.add_argument("out", type=Path)
    p.add_argument("--fp32", action="store_true", help="keep 32-bit weights")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from .inference import export, resolve_model

    if args.out.is_dir():
        raise UsageError(f"{args.out} is a folder; give the file to write, e.g. {args.out / 'model.pt'}")
    if not args.out.parent.is_dir():
        raise UsageError(f"cannot write {args.out}: {args.out.parent} is not an existing folder")
    path = export(resolve_model(args.model), args.out, half=not args.fp32,
                  metadata={"made_by": f"picaffect {__version__}: picaffect export {args.model} {args.out.name}"})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picaffect",
                                description="How a picture makes people feel: valence and arousal on 1..9.")
    p.add_argument("--version", action="version", version=f"picaffect {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_build, _add_train, _add_evaluate, _add_features, _add_experiment, _add_predict, _add_retrain, _add_export,
                _add_demo):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except PicaffectError as e:  # the user's input or request: one line; anything else is a bug and keeps its trace
        print(f"picaffect {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"picaffect {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


HEAVY_COMMANDS = {"train", "experiment", "evaluate", "features", "predict", "retrain", "demo"}


def entry() -> None:
    """The console script. For heavy commands it re-executes itself once with
    glibc's allocator told to keep freed memory (``runtime.allocator_env``): about
    twice the CPU training speed, which an in-process setting only partly gets."""
    import os

    if len(sys.argv) > 1 and sys.argv[1] in HEAVY_COMMANDS:
        from .runtime import allocator_env

        env = allocator_env()
        if env is not None:
            os.execve(sys.executable, [sys.executable, "-m", "picaffect", *sys.argv[1:]], env)
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
