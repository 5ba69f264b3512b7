"""The sub-commands of ``picaffect``: their names, options and help texts (all that ``--help`` shows).

Apart from ``cli``, which runs a parsed command and prints what it did, because this
grammar is also read without running anything: the launcher parses a ``predict`` or
``serve`` command line to decide whether to re-execute, and a test checks that no option
offered before has gone. The training options come from ``TrainConfig``'s fields
(``arguments``), so a new field is a new option here with no edit.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..core.names import (AUGMENTS, BACKENDS, DEFAULT_INTERVAL_SCHEME, DEVICES, ENGINES, INTERVAL_SCHEMES, MODEL_HELP,
                          SPLITS_OR_ALL, THESIS_MODELS)
from ..service.settings import ServeOptions
from ..training.config import EXPERIMENT_DEFAULTS, TrainConfig
from .arguments import add_dataclass_options, at_least_two, key_value, model_list, positive_int, positive_seconds

Subparsers = argparse._SubParsersAction  # what add_subparsers returns; each _add_* adds one command to it


def _add_build(sub: Subparsers) -> None:
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


def _add_train(sub: Subparsers) -> None:
    p = sub.add_parser("train", help="train a model on a built dataset",
                       description="Train one model on the train split of a built dataset, watching the test split.")
    add_dataclass_options(p, TrainConfig)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--nproc", type=positive_int, default=1,
                   help="data-parallel processes on this machine (DistributedDataParallel; gloo on CPU, NCCL on "
                        "CUDA): the same as `torchrun --standalone --nproc_per_node N -m picaffect train ...`")


def _add_evaluate(sub: Subparsers) -> None:
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


def _add_features(sub: Subparsers) -> None:
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


def _add_experiment(sub: Subparsers) -> None:
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
                        "thesis's, as table 8.2); cross-dataset: the model's augmentation (default: none)")
    p.add_argument("--stages-from", type=Path, default=None, metavar="CONFIG",
                   help="cross-dataset: train the stages of this retrain configuration instead "
                        "(configs/default.yaml: ridge probe, then fine-tuning)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing; evaluate the runs already in OUT and rewrite the report")
    p.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples for the intervals")
    add_dataclass_options(p, TrainConfig, skip=("out", "model", "augment", "init"), defaults=EXPERIMENT_DEFAULTS)


SHIPPED_MODELS_HELP = ("default (shipped, fast), accurate (shipped, about 6x slower to score), a run folder, or a "
                       "checkpoint or ONNX file")


def _add_predict(sub: Subparsers) -> None:
    p = sub.add_parser("predict", help="valence and arousal for pictures",
                       description="Score pictures with the shipped default model or a trained run. Exit status: "
                                   "0 done, 1 some pictures or named paths failed (with --strict), 2 bad input.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="picture files, folders or globs")
    p.add_argument("--model", default="default", help=SHIPPED_MODELS_HELP)
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
    p.add_argument("--describe", action="store_true",
                   help="add picture features as columns: width, height, aspect, greyscale, luminance (mean CIELAB "
                        "L*), contrast (SD of L*), rms_contrast, colourfulness (Hasler & Suesstrunk 2003), "
                        "complexity (JPEG bytes per pixel), edge_density; computed at 128 px from the same decode "
                        "(docs/selection.md)")
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


def _add_retrain(sub: Subparsers) -> None:
    p = sub.add_parser("retrain", help="rebuild a model from its configuration (configs/default.yaml)")
    p.add_argument("config", type=Path)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--force", action="store_true",
                   help="replace the exported file even if the new model is not better on the validation rows")


def _add_export(sub: Subparsers) -> None:
    p = sub.add_parser("export", help="write a model as a slim fp16 checkpoint or an ONNX file for shipping",
                       description="MODEL is a training run folder (its best.pt), a checkpoint file, or a shipped "
                                   "model's name. OUT ending in .onnx: an ONNX file with the input size, input "
                                   "scaling, output mapping and model name in its metadata, enough to score with "
                                   "onnxruntime alone (picaffect predict --model OUT.onnx); otherwise a checkpoint "
                                   "without optimiser and training state.")
    p.add_argument("model")
    p.add_argument("out", type=Path, help="FILE.pt (a checkpoint) or FILE.onnx")
    p.add_argument("--fp32", action="store_true", help="keep 32-bit weights (.pt only; .onnx keeps them exact)")


def _add_calibrate(sub: Subparsers) -> None:
    p = sub.add_parser("calibrate", help="add prediction intervals to a model file (conformal: leave one source out, "
                                         "or on your own rated pilot)",
                       description="Compute the model's errors on sources it was not fitted on, fit an error head "
                                   "that predicts each picture's difficulty, and write the conformal calibration "
                                   "into a copy of the model (and its ONNX twin with --onnx). Default protocol "
                                   "(refit-head): for each source, a ridge readout on the model's frozen features "
                                   "fitted on the other sources predicts it. --predictions takes held-out "
                                   "predictions made by any protocol instead (e.g. `experiment cross-dataset`). "
                                   "--pilot FILE calibrates on a rated random pilot of your own picture set "
                                   "instead: intervals that hold on that set (docs/calibration.md).")
    p.add_argument("model", help="a run folder, checkpoint file or shipped model name")
    p.add_argument("--data", default=None, type=Path,
                   help="a folder written by `picaffect build`, >= 2 sources (needed without --pilot); with --pilot: "
                        "the built dataset the model's readout was fitted on, to try refitting it with the pilot")
    p.add_argument("--out", required=True, type=Path, help="the calibrated checkpoint to write (.pt)")
    p.add_argument("--onnx", type=Path, default=None, help="also write the calibrated model as this .onnx file")
    p.add_argument("--predictions", action="append", default=[], metavar="TABLE_OR_FOLDER",
                   help="held-out predictions (CSV/Parquet: id, source, valence_true, arousal_true, valence_pred, "
                        "arousal_pred), or a cross-dataset experiment folder with --stage; repeat for several")
    p.add_argument("--stage", default=None, help="with a cross-dataset folder: the stage whose runs to read")
    p.add_argument("--constant", action="store_true",
                   help="no error head: every picture gets the same width (plain split conformal)")
    p.add_argument("--scheme", choices=INTERVAL_SCHEMES, default=DEFAULT_INTERVAL_SCHEME,
                   help="how the sources' errors become one width: pooled (default: plain split conformal over "
                        "all rows), equal-sources (each source weighs the same), worst-source (the widest source's), "
                        "standardised (a new picture set as one more source, its bias and spread drawn like theirs)")
    p.add_argument("--features", type=Path, default=None, metavar="NPZ",
                   help="this model's features of DATA already extracted (picaffect features MODEL --data DATA "
                        "--no-tta), instead of extracting them again; with --pilot: the features of its training "
                        "rows (picaffect features MODEL --data DATA --split all, mirror-averaged), for the refit")
    p.add_argument("--pilot", type=Path, default=None, metavar="FILE",
                   help="calibrate on your own rated pictures instead: a CSV, TSV or XLSX with path (or picture), "
                        "valence, arousal (optional valence_sd, arousal_sd, n); jackknife+ intervals valid on "
                        "your set, a shrunk bias/scale correction or readout refit where the pilot says it helps, "
                        "and a report with a methods paragraph (OUT.report.md; docs/calibration.md)")
    p.add_argument("--pilot-scale", default=None, metavar="MIN,MAX",
                   help="the pilot's rating scale (default 1,9), e.g. 1,7")
    p.add_argument("--skip-missing", action="store_true",
                   help="with --pilot: leave out pilot pictures that are missing or unreadable (counted in the "
                        "report) instead of stopping")
    p.add_argument("--pilot-adjust", choices=("auto", "none", "correction", "refit"), default="auto",
                   help="with --pilot: auto (the correction or the readout refit, whichever the pilot's "
                        "leave-one-out prefers, per dimension), none (intervals only), correction, or refit")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", choices=DEVICES, default="auto")


def _add_info(sub: Subparsers) -> None:
    p = sub.add_parser("info", help="where a model file came from and the figures it carries",
                       description="Print a model file's config, dataset manifest SHA-256, picaffect version, git "
                                   "commit, evaluation (leave one source out first, then the validation rows) and "
                                   "calibration, as picaffect retrain and calibrate wrote them into it. A file "
                                   "made before they were recorded says which keys it lacks.")
    p.add_argument("model", help=SHIPPED_MODELS_HELP)
    p.add_argument("--json", action="store_true", help="the metadata as JSON, for programs")


def _add_select(sub: Subparsers) -> None:
    p = sub.add_parser("select", help="choose stimulus sets that differ on one column, match on others, balance "
                                      "categories",
                       description="From a scores file (picaffect predict's output, with --describe for picture "
                                   "features, or any table with picture, valence, arousal on 1..9 and the user's "
                                   "own columns) or a built dataset (published ratings, source, picture features), "
                                   "choose SETS sets of SIZE pictures. Constraints: --differ (consecutive sets' "
                                   "means apart on a numeric column), --match (every pair of sets equivalent on a "
                                   "numeric column by TOST; :sd matches the SDs too, for distributions rather than "
                                   "one narrow band), --balance (the same count of each level of a categorical "
                                   "column in every set, within one), --range (per-set limits on any numeric "
                                   "column), --exclude, --max-width and --prefer-sure (prediction intervals). "
                                   "Writes sets.csv, summary.csv, statistics.json (Welch t, TOST, SDs, counts per "
                                   "set), report.md (with a methods paragraph naming every constraint and a warning "
                                   "when a matched column collapses to a band) and sets.png, together, into --out. "
                                   "A request that cannot be met names the failing constraint and by how much "
                                   "(exit 2, nothing written). Guide: docs/selection.md.")
    p.add_argument("scores", type=Path, help="a scores file (.csv, .json, .jsonl, .parquet) or a dataset folder")
    p.add_argument("--out", required=True, type=Path,
                   help="folder for the five files: new or empty (a previous selection with --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous selection in --out (a folder holding other files is still refused)")
    p.add_argument("--sets", type=positive_int, default=2, help="how many sets (default 2)")
    p.add_argument("--size", type=at_least_two, default=40, help="pictures per set (at least 2; default 40)")
    p.add_argument("--differ", default=None, metavar="COLUMN:AMOUNT",
                   help="consecutive sets' means on a numeric column differ by at least AMOUNT, set 1 lowest "
                        "(e.g. valence:1.5)")
    p.add_argument("--match", action="append", default=[], metavar="COLUMN[:BOUND][:sd]",
                   help="every pair of sets equivalent on a numeric column within +-BOUND by TOST (valence and "
                        "arousal: default 0.3 points; other columns: 0.3 of the pool's SD); :sd matches the sets' "
                        "SDs as well (e.g. arousal:0.3:sd, luminance:5); repeat for several columns")
    p.add_argument("--balance", action="append", default=[], metavar="COLUMN",
                   help="every set holds the same count of each level of a categorical column, within one when "
                        "counts do not divide (e.g. source, category, greyscale); repeat")
    p.add_argument("--range", action="append", default=[], dest="ranges", metavar="SET:COLUMN=LOW..HIGH",
                   help="keep set SET (a number, or all) within a range of a numeric column, e.g. 1:valence=1..4 "
                        "or all:luminance=20..80; repeat")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests (default 0.05)")
    p.add_argument("--exclude", action="append", default=[], type=Path, metavar="FILE",
                   help="pictures to leave out: one name a line, or a CSV's picture/path/id column (UTF-8); repeat")
    p.add_argument("--prefer-sure", type=float, default=0.0, metavar="WEIGHT",
                   help="prefer pictures with narrow prediction intervals (weight of the mean width; try 0.1)")
    p.add_argument("--max-width", type=float, default=None, metavar="POINTS",
                   help="leave out pictures whose mean interval width is larger")
    p.add_argument("--decimal", choices=(".", ","), default=".", metavar="MARK",
                   help="the scores file's decimal mark, . or , (',' reads 4,69 as 4.69; cells that are not "
                        "numbers are refused, naming their rows)")
    p.add_argument("--time-limit", type=positive_seconds, default=20.0, metavar="SECONDS",
                   help="seconds for the whole selection, a failure's diagnosis included (default 20)")


def _add_demo(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="score the sample photographs that installed packages ship")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write the photos, table and plot")
    p.add_argument("--model", default="default")


def _add_serve(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="a web page and REST service for scoring pictures",
                       description="Serve the page (GET /) and the REST API (POST /v1/predict with multipart field "
                                   "'files'; GET /v1/health, /v1/model; docs at /docs). Binds to loopback unless "
                                   "--host says otherwise. Needs the 'serve' extra.")
    add_dataclass_options(p, ServeOptions)  # every option, its default, help and check: service/settings.py


def parser() -> argparse.ArgumentParser:
    """The whole command line, every sub-command in the order `picaffect --help` lists them."""
    p = argparse.ArgumentParser(prog="picaffect",
                                description="How a picture makes people feel: valence and arousal on 1..9.")
    p.add_argument("--version", action="version", version=f"picaffect {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_build, _add_train, _add_evaluate, _add_features, _add_experiment, _add_predict, _add_retrain,
                _add_export, _add_calibrate, _add_info, _add_select, _add_demo, _add_serve):
        add(sub)
    return p
