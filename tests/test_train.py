"""The training engine on a tiny learnable dataset: learning, resume, NaN, outputs."""
from __future__ import annotations

import csv

import pytest
import torch

from picaffect.app.cli import main
from picaffect.models.emosepar import Emosepar
from picaffect.core.errors import CheckpointError, UsageError
from picaffect.inference import checkpoint
from picaffect.training.engine import Trainer, TrainConfig, TrainingDiverged, epoch_batches, train

SIZE = 80  # Emosepar's smallest comfortable input; the 24 px cache is upsampled on the fly


def config(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), model="emosepar", out=str(out), recipe="modern", epochs=2, batch_size=16,
                size=SIZE, lr=3e-3, checkpoint_every=2, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def read_history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_loss_falls_on_a_learnable_target(learnable_dataset, tmp_path):
    summary = train(config(learnable_dataset, tmp_path / "run", epochs=6), progress=False)
    history = read_history(tmp_path / "run")
    assert summary["train_rows"] == 64  # 96 pictures: 10 validation, 22 test, 64 train
    assert len(history) == 6 and summary["steps"] == 6 * 4
    first, last = float(history[0]["train_loss"]), float(history[-1]["train_loss"])
    assert last < 0.6 * first
    for name in ("config.yaml", "history.csv", "loss.png", "best.pt", "last.pt", "summary.json"):
        assert (tmp_path / "run" / name).is_file(), name


def test_epoch_batches_depend_only_on_seed_and_epoch():
    assert epoch_batches(50, 16, 0, 3) == epoch_batches(50, 16, 0, 3)
    assert epoch_batches(50, 16, 0, 3) != epoch_batches(50, 16, 0, 4)
    assert sorted(sum(epoch_batches(50, 16, 0, 3), [])) == list(range(50))


@pytest.mark.parametrize("ema", [None, 0.9])
def test_killed_mid_epoch_and_resumed_matches_an_uninterrupted_run(learnable_dataset, tmp_path, monkeypatch, ema):
    whole = train(config(learnable_dataset, tmp_path / "whole", augment="thesis", ema=ema), progress=False)

    real_step = Trainer._step
    calls = {"n": 0}

    def dying_step(self, *args):
        calls["n"] += 1
        if calls["n"] == 8:  # epoch 2, batch 4: after the checkpoint at batch 2
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(Trainer, "_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(config(learnable_dataset, tmp_path / "cut", augment="thesis", ema=ema), progress=False)
    monkeypatch.setattr(Trainer, "_step", real_step)
    assert checkpoint.read(tmp_path / "cut" / "last.pt")["training"]["step"] == 6  # saved at batch 2 of epoch 2
    resumed = train(config(learnable_dataset, tmp_path / "cut", augment="thesis", ema=ema), resume=True,
                    progress=False)
    assert resumed["steps"] == whole["steps"] == 8
    a, b = (checkpoint.read(tmp_path / run / "last.pt") for run in ("whole", "cut"))
    pairs = [(a["weights"], b["weights"])]
    if ema is not None:  # the average is the checkpoint's model; the live weights resume beside it
        pairs.append((a["training"]["live_weights"], b["training"]["live_weights"]))
    for x, y in pairs:
        for key in x:
            assert torch.allclose(x[key].float(), y[key].float(), atol=1e-4), key


def test_ema_scores_and_saves_the_average_of_the_weights(learnable_dataset, tmp_path):
    """A decay near 0 keeps the average on the live weights; 0.9 lags them; a run is resumed with its own ema."""
    for decay, run in ((1e-6, "follows"), (0.9, "lags")):
        train(config(learnable_dataset, tmp_path / run, epochs=1, ema=decay), progress=False)
    for run, same in (("follows", True), ("lags", False)):
        record = checkpoint.read(tmp_path / run / "last.pt")
        live, average = record["training"]["live_weights"], record["weights"]
        close = all(torch.allclose(live[k].float(), average[k].float(), atol=1e-5)
                    for k in live if live[k].is_floating_point())
        assert close is same, run
        assert record["training"]["ema_steps"] == record["training"]["step"]
    with pytest.raises(UsageError, match="trained with ema"):
        Trainer(config(learnable_dataset, tmp_path / "lags", epochs=2), resume=True)
    with pytest.raises(UsageError, match="between 0 and 1"):
        config(learnable_dataset, tmp_path / "bad", ema=1.0)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(learnable_dataset, tmp_path, monkeypatch):
    real_forward = Emosepar.forward
    calls = {"n": 0}

    def forward(self, x):
        out = real_forward(self, x)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 7:
                return out * float("nan")
        return out

    monkeypatch.setattr(Emosepar, "forward", forward)
    with pytest.raises(TrainingDiverged, match="step 7"):
        train(config(learnable_dataset, tmp_path / "run"), progress=False)
    good = checkpoint.read(tmp_path / "run" / "last.pt")
    assert good["training"]["step"] == 6
    assert all(torch.isfinite(t).all() for t in good["weights"].values() if t.is_floating_point())


def test_cli_train_writes_a_run_and_refuses_to_overwrite(learnable_dataset, tmp_path, capsys):
    args = ["train", "--data", str(learnable_dataset), "--model", "emosepar", "--out", str(tmp_path / "run"),
            "--epochs", "1", "--batch-size", "32", "--size", str(SIZE), "--limit", "40", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "wrote" in out
    assert main(args) != 0
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--resume", "--epochs", "2"]) == 0
    assert len(read_history(tmp_path / "run")) == 2
    assert TrainConfig.load(tmp_path / "run" / "config.yaml").epochs == 2  # the limit the run ended under


def test_resume_with_another_model_is_refused(learnable_dataset, tmp_path):
    train(config(learnable_dataset, tmp_path / "run", epochs=1, limit=20), progress=False)
    with pytest.raises(UsageError, match="same"):
        Trainer(config(learnable_dataset, tmp_path / "run", model="vgg16", epochs=1), resume=True)


def test_resume_without_a_checkpoint_is_refused(learnable_dataset, tmp_path):
    with pytest.raises(UsageError, match="no last.pt"):
        Trainer(config(learnable_dataset, tmp_path / "empty", epochs=1), resume=True)
    assert not (tmp_path / "empty" / "config.yaml").exists()


@pytest.mark.parametrize("field,value", [("batch_size", 0), ("epochs", 0), ("patience", 0), ("size", -5),
                                         ("lr", float("nan")), ("model", "resnet"), ("device", "tpu")])
def test_impossible_settings_are_refused_before_any_work(learnable_dataset, tmp_path, field, value):
    with pytest.raises(UsageError, match=field.replace("_", " ") if field not in ("model", "device") else value):
        config(learnable_dataset, tmp_path / "run", **{field: value})
    assert not (tmp_path / "run").exists()


def test_a_truncated_checkpoint_is_one_clear_error(learnable_dataset, tmp_path):
    train(config(learnable_dataset, tmp_path / "run", epochs=1, limit=20), progress=False)
    last = tmp_path / "run" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="last.pt: not a readable picaffect checkpoint"):
        Trainer(config(learnable_dataset, tmp_path / "run", epochs=2, limit=20), resume=True)


def test_ridge_probe_recipe_fits_the_head_in_closed_form(learnable_dataset, tmp_path):
    import json

    from picaffect.evaluation.evaluate import evaluate

    out = tmp_path / "probe"
    summary = train(config(learnable_dataset, out, model="efficientnet_lite0", recipe="ridge", size=64, lr=None),
                    progress=False)
    assert summary["steps"] == 0 and summary["epochs_run"] == 1
    probe = json.loads((out / "probe.json").read_text())
    assert probe["test_rmse"] == min(probe["rmse_by_alpha"].values())
    # brightness and redness are easy for ImageNet features: far better than the spread of the targets
    result = evaluate(out, learnable_dataset, split="test", n_boot=50)["splits"]["test"]["overall"]
    assert result["rmse"] < 0.6 * result["rmse_mean_baseline"]


def test_ridge_fit_on_train_and_test_by_group_cv_and_the_recalibration_folded_into_the_head(learnable_dataset,
                                                                                             tmp_path):
    import json

    import numpy as np

    from picaffect.evaluation.evaluate import evaluate
    from picaffect.training.probe import ALPHAS

    plain, recal = tmp_path / "plain", tmp_path / "recal"
    for out, again in ((plain, False), (recal, True)):
        train(config(learnable_dataset, out, model="efficientnet_lite0", recipe="ridge", size=64, lr=None,
                     ridge_fit="train+test", ridge_recalibrate=again), progress=False)
    first, second = (json.loads((run / "probe.json").read_text()) for run in (plain, recal))
    assert len(first["alpha"]) == 2 and all(a in ALPHAS for a in first["alpha"])  # one penalty per dimension
    assert second["alpha"] == first["alpha"] and "recalibration" not in first
    lines = second["recalibration"]
    w0, w1 = (checkpoint.read(run / "best.pt")["weights"] for run in (plain, recal))
    slopes = torch.tensor([line["slope"] for line in lines])
    intercepts = torch.tensor([line["intercept"] for line in lines])
    assert torch.allclose(w1["head.fc.weight"], w0["head.fc.weight"] * slopes[:, None], atol=1e-6)
    assert torch.allclose(w1["head.fc.bias"], intercepts + slopes * w0["head.fc.bias"], atol=1e-6)
    assert np.all(np.isfinite(slopes.numpy())) and (slopes > 0).all()
    # 64 rows of flat colours make a weak cross-validated fit (the real sets: results/accuracy/); still better
    # than the training mean on rows it never saw
    result = evaluate(recal, learnable_dataset, split="validation", n_boot=50)["splits"]["validation"]["overall"]
    assert result["rmse"] < result["rmse_mean_baseline"]


def test_init_starts_from_another_runs_weights(learnable_dataset, tmp_path):
    probe = tmp_path / "probe"
    train(config(learnable_dataset, probe, model="efficientnet_lite0", recipe="ridge", size=64, lr=None),
          progress=False)
    trainer = Trainer(config(learnable_dataset, tmp_path / "ft", model="efficientnet_lite0", size=64, epochs=1,
                             init=str(probe)))
    fitted = checkpoint.read(probe / "best.pt")["weights"]["head.fc.weight"]
    assert torch.equal(trainer.model.head.fc.weight.detach(), fitted)
    with pytest.raises(UsageError, match="emosepar"):
        Trainer(config(learnable_dataset, tmp_path / "bad", init=str(probe)))
    with pytest.raises(UsageError, match="maps outputs"):
        Trainer(config(learnable_dataset, tmp_path / "bad2", model="efficientnet_lite0", size=64, init=str(probe),
                       targets="raw"))


def test_grad_clip_bounds_each_step(learnable_dataset, tmp_path):
    """SGD with Nesterov momentum 0.9 moves the weights by lr * 1.9 * gradient on its first step: with the
    gradient clipped to norm 1e-3 at lr 1, by at most 1.9e-3, far less than the unclipped step."""
    def first_step(run, **kw) -> float:
        trainer = Trainer(config(learnable_dataset, tmp_path / run, recipe="thesis", lr=1.0, epochs=1, **kw))
        before = [p.detach().clone() for p in trainer.model.parameters()]
        trainer._step(*trainer.train_set.__getitems__(list(range(16))), 0)
        return float(torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(trainer.model.parameters(), before))))

    clipped, free = first_step("clipped", grad_clip=1e-3), first_step("free")
    assert 0 < clipped <= 1.9e-3 * 1.001
    assert free > 10 * clipped
