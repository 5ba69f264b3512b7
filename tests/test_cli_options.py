"""The command line keeps every option it ever offered, and training options have one source: ``TrainConfig``."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

import pytest

from picaffect.app.arguments import add_dataclass_options, dataclass_from_options
from picaffect.app.cli import RUNS, main
from picaffect.app.commands import parser
from picaffect.training.config import TrainConfig, option, whole_number
from picaffect.workflows.stages import STAGE_KEYS, stage_configs, stages_from_config

# Every option of every sub-command as of issue 20 (before training options were generated from
# TrainConfig): a later change may add options, never drop one.
OPTIONS_BEFORE = {
    "build": ["out_dir", "--source", "--option", "--size", "--split", "--seed", "--workers", "--strict", "--no-plots"],
    "train": ["--data", "--model", "--out", "--recipe", "--epochs", "--batch-size", "--augment", "--size", "--resume",
              "--seed", "--limit", "--device", "--lr", "--weight-decay", "--backbone-lr-scale", "--patience",
              "--targets", "--init", "--model-option", "--precision", "--budget-minutes", "--nproc"],
    "evaluate": ["model", "--data", "--split", "--out", "--by", "--batch-size", "--device"],
    "features": ["model", "--data", "--out", "--split", "--size", "--no-tta", "--batch-size", "--limit", "--device",
                 "--model-option"],
    "experiment": ["which", "--data", "--out", "--epochs", "--models", "--recipe", "--augment", "--stages-from",
                   "--report-only", "--limit", "--batch-size", "--size", "--patience", "--n-boot", "--device",
                   "--precision", "--budget-minutes"],
    "predict": ["paths", "--model", "--recursive", "--out", "--format", "--scale", "--batch-size", "--workers", "--tta",
                "--strict", "--device", "--backend", "--engine", "--address", "--actors", "--path-column"],
    "retrain": ["config", "--device", "--force"],
    "export": ["model", "out", "--fp32"],
    "demo": ["--out", "--model"],
    "serve": ["--model", "--host", "--port", "--workers", "--token", "--device", "--tta", "--batch-size",
              "--max-files", "--max-file-mb", "--max-request-mb", "--timeout"],
}


def subparsers() -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def options(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {(a.option_strings[0] if a.option_strings else a.dest): a for a in sub._actions
            if not isinstance(a, argparse._HelpAction)}


def test_every_option_offered_before_is_still_there():
    subs = subparsers()
    missing = {name: sorted(set(before) - set(options(subs[name]))) for name, before in OPTIONS_BEFORE.items()}
    assert {k: v for k, v in missing.items() if v} == {}


def test_every_command_runs():
    """Each sub-command of the grammar (`commands`) has a run in `cli`, and nothing else does."""
    assert set(RUNS) == set(subparsers()) == {*OPTIONS_BEFORE, "calibrate", "info", "select"}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-") if name != "model_options" else "--model-option"


def test_every_training_option_reaches_train_experiment_and_retrain_stages():
    """Adding a TrainConfig field is the whole edit: each command that trains offers it, with a help text."""
    subs = subparsers()
    train, experiment = options(subs["train"]), options(subs["experiment"])
    per_run = {"out", "model", "augment", "init"}  # experiment: --out is its folder, --models and --augment choose runs
    for f in fields(TrainConfig):
        assert flag(f.name) in train, f.name
        assert train[flag(f.name)].help, f"{f.name} has no help text"
        if f.name not in per_run:
            assert flag(f.name) in experiment, f.name
        if f.name not in ("data", "out", "device"):
            assert f.name in STAGE_KEYS, f.name


def test_train_options_build_the_config():
    args = parser().parse_args(["train", "--data", "d", "--model", "emosepar", "--out", "o", "--epochs", "3",
                                "--lr", "0.01", "--model-option", "dropout=0.25", "--augment"])
    config = dataclass_from_options(TrainConfig, args)
    assert (config.epochs, config.lr, config.model_options, config.augment) == (3, 0.01, {"dropout": 0.25}, "thesis")
    assert (config.batch_size, config.patience, config.targets) == (64, 10, None)  # TrainConfig's own defaults


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "epochs must be a whole number of at least 1, not 0"),
    (["--epochs", "two"], "'two' is not a whole number"),
    (["--lr", "nan"], "lr must be a finite number >= 0"),
    (["--grad-clip", "0"], "grad clip must be a finite number > 0"),
    (["--backbone-lr-scale", "2"], "backbone lr scale must be a number from 0 to 1"),
    (["--model-option", "dropout"], "write KEY=VALUE"),
    (["--model", "resnet"], "unknown model 'resnet'"),
])
def test_a_bad_training_option_is_one_line_before_any_work(tmp_path, capsys, argv, message):
    base = ["train", "--data", str(tmp_path / "nothing"), "--model", "emosepar", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as stop:
        main(base + argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_experiment_options_have_the_experiments_defaults():
    args = parser().parse_args(["experiment", "thesis", "--data", "d", "--out", "o"])
    assert (args.epochs, args.batch_size, args.patience, args.augment) == (30, 64, 10, None)


def test_grad_clip_reaches_train_experiment_and_retrain_stages(tmp_path):
    """grad_clip was added as one TrainConfig field (and its use in the engine's step): every way of
    training takes it with no other edit."""
    train = parser().parse_args(["train", "--data", "d", "--model", "emosepar", "--out", "o", "--grad-clip", "2"])
    assert dataclass_from_options(TrainConfig, train).grad_clip == 2.0
    experiment = parser().parse_args(["experiment", "thesis", "--data", "d", "--out", "o", "--grad-clip", "0.5"])
    base = dataclass_from_options(TrainConfig, experiment, model="emosepar", out="o")
    config = tmp_path / "stages.yaml"
    config.write_text("stages:\n  - {name: probe, model: efficientnet_lite0, recipe: ridge}\n"
                      "  - {name: finetune, model: efficientnet_lite0, init: probe, grad_clip: 5}\n")
    runs = stage_configs(stages_from_config(config), "d", tmp_path, base)
    assert (runs["probe"].grad_clip, runs["finetune"].grad_clip) == (0.5, 5)


@dataclass
class Knobs:
    """Settings of another kind: a required field, a switch, an optional checked number."""
    name: str = option(help="a name")
    fast: bool = option(False, "go fast")
    level: int | None = option(None, "a level", check=whole_number)


def test_options_of_any_settings_class():
    p = argparse.ArgumentParser()
    add_dataclass_options(p, Knobs)
    assert dataclass_from_options(Knobs, p.parse_args(["--name", "x", "--fast", "--level", "3"])) == Knobs("x", True, 3)
    assert dataclass_from_options(Knobs, p.parse_args(["--name", "x", "--no-fast"])) == Knobs("x", False, None)
    for wrong in (["--fast"], ["--name", "x", "--level", "0"]):  # --name is required; level at least 1
        with pytest.raises(SystemExit):
            p.parse_args(wrong)
