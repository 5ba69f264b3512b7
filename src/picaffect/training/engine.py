"""``picaffect train``: one loop for every model and recipe.

The loop is deliberately plain (nanoGPT-style): fixed per-epoch shuffles derived
from the seed, so that a run killed at any step and resumed from ``last.pt``
takes the same batches and ends after the same number of steps; the ``test``
split watched after each epoch (as in the thesis) for early stopping and
``best.pt``; a non-finite loss stops the run before anything is overwritten.
"""
from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from .. import models
from ..data.dataset import RatedImages, make_loader
from ..core.errors import CheckpointError, PicaffectError, UsageError
from ..inference.checkpoint import ModelSpec, model_record, read, save_atomic
from ..inference.forward import ratings, to_input
from ..core.metrics import pcc, rmse, sagr
from ..models.layers import set_bn_momentum
from ..core.plots import loss_curves
from ..core.runtime import pick_device
from ..core.scale import SAM
from . import distributed
from .augment import AUGMENTS as AUGMENT_TRANSFORMS
from .config import TrainConfig
from .kernel_probe import fit_kernel_probe
from .probe import fit_ridge_probe
from .recipes import make_recipe

HISTORY_FIELDS = ["epoch", "step", "train_loss", "test_loss", "test_rmse", "test_pcc", "test_sagr", "lr", "seconds",
                  "images_per_s"]


class TrainingDiverged(PicaffectError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled batches of one epoch: a function of (seed, epoch) alone."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


@torch.no_grad()
def score_split(model: torch.nn.Module, dataset: RatedImages, spec: ModelSpec, device: torch.device,
                batch_size: int = 64) -> torch.Tensor:
    """(rows, 2) ratings on 1..9 for a whole split, in dataset order, through the inference forward pass."""
    model.eval()
    out = [ratings(model, images, spec, device) for images, _ in make_loader(dataset, batch_size, shuffle=False)]
    return torch.cat(out) if out else torch.empty(0, 2)


def check_picture_size(model: str, side: int, model_options: dict | None = None) -> None:
    """Refuse, in one line and before any work, pictures smaller than the network ``model`` takes.

    Below its smallest side a network of 'valid' convolutions (Emosepar needs 73 px,
    Inception v3 75) would fail in its first forward pass with a torch traceback.
    ``Trainer`` calls this before it builds anything; the workflows call it for every
    run they will train before they train the first.
    """
    from ..models.input_size import smallest_input

    need = smallest_input(model, model_options, side)
    if need is not None:
        raise UsageError(f"{model} needs pictures of at least {need} x {need} pixels, and this run would give it "
                         f"{side} x {side}: ask for a size of {need} or more (train --size, or 'size:' in a "
                         f"configuration; the pictures are scaled up), or build the dataset at that size or more "
                         f"(picaffect build --size)")


def _autocast(device: torch.device, precision: str = "fp32"):
    """bf16 autocast on CUDA always; on CPU only when asked (AVX512-BF16 makes a training step ~1.7x faster)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool | None = None) -> None:
        config.check()
        self.config = config
        self.out = Path(config.out)
        self.world, self.device = distributed.setup(pick_device(config.device))  # several ranks under torchrun
        self.progress = (sys.stderr.isatty() if progress is None else progress) and self.world.main
        self.probe = config.recipe == "ridge"  # solved in closed form: no optimiser, nothing to step
        if self.probe and self.world.active:
            raise UsageError("--recipe ridge is solved in closed form: run it in one process, not under torchrun")
        self.recipe = None if self.probe else make_recipe(config.recipe, config.lr, config.weight_decay)
        self.train_set = RatedImages(config.data, "train", limit=config.limit)
        self.test_set = RatedImages(config.data, "test", limit=config.limit)
        if len(self.train_set) == 0:
            raise UsageError(f"{config.data} has no training rows")
        check_picture_size(config.model, config.size or self.train_set.image_size, config.model_options)
        scale, offset = config.output_mapping
        torch.manual_seed(config.seed)
        architecture, options = models.resolve(config.model, config.model_options)
        self.model = models.create(architecture, **options).to(self.device)
        # A hub model brings its own input side (its image processor's); the others take the dataset's.
        size = config.size or getattr(self.model, "input_size", None) or self.train_set.image_size
        self.spec = ModelSpec(architecture=architecture, size=size,
                              arguments=models.checkpoint_arguments(self.model, options),
                              output_scale=scale, output_offset=offset)
        self.size = self.spec.size
        set_bn_momentum(self.model, self.recipe.bn_momentum if self.recipe else None)
        if self.world.rank > 0:  # rank 0 draws dropout masks as one process would; the others their own
            torch.manual_seed(config.seed * 1_000 + self.world.rank)
        if config.init:
            self._init_from(Path(config.init))
        self.model = self.model.to(memory_format=torch.channels_last)
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.batch_size)
        self.optimizer = self.scheduler = None
        if self.recipe is not None:
            self.optimizer = self.recipe.optimizer(self._parameter_groups())
            self.scheduler = self.recipe.schedule(self.optimizer, self.steps_per_epoch * config.epochs)
        self.augment = AUGMENT_TRANSFORMS.get(config.augment)
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best_loss, self.stale_epochs = math.inf, 0
        self.seconds_before = 0.0  # wall time spent by earlier sessions of this run (it may be resumed)
        self.stopped: str | None = None
        self.history: list[dict] = []
        self.train_loss_sum, self.train_seen = 0.0, 0
        # the weights' moving average (``ema``): what the test split is scored with and best.pt holds
        self.ema = None if self.probe or config.ema is None else AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
        self._start(resume)
        self.net = distributed.wrap(self.model, self.world, self.device)  # DDP when distributed, else the model

    @property
    def scored(self) -> torch.nn.Module:
        """The weights the test split is scored with and checkpoints give to readers: the average under ``ema``."""
        return self.model if self.ema is None else self.ema.module

    def _parameter_groups(self) -> list[dict]:
        """The head at the recipe's learning rate, the rest at ``backbone_lr_scale`` times it.

        Fine-tuning a pretrained backbone from a fitted probe moves the new head faster
        than the features it reads, so the features are not torn up in the first steps.
        """
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        head = [p for n, p in trainable if n.startswith("head.")]
        rest = [p for n, p in trainable if not n.startswith("head.")]
        scale = self.config.backbone_lr_scale
        if scale == 1.0 or not head:
            return [{"params": head + rest}]
        return [{"params": head}, {"params": rest, "lr": self.recipe.lr * scale}]

    def _init_from(self, path: Path) -> None:
        """Start from another run's weights (a linear probe before fine-tuning, say)."""
        path = path / "best.pt" if path.is_dir() else path
        record = read(path)
        spec = ModelSpec.from_dict(record["spec"])
        if spec.architecture != self.spec.architecture:
            raise UsageError(f"--init {path} holds a {spec.architecture} model, not {self.config.model}")
        if (spec.output_scale, spec.output_offset) != (self.spec.output_scale, self.spec.output_offset):
            raise UsageError(f"--init {path} maps outputs to ratings as {spec.output_scale} x + {spec.output_offset}, "
                             f"this run as {self.spec.output_scale} x + {self.spec.output_offset}: choose --targets "
                             f"to match")
        weights = {k: v.float() if v.is_floating_point() else v for k, v in record["weights"].items()}
        self.model.load_state_dict(weights)

    # -- state ---------------------------------------------------------------------------------------------------
    def _start(self, resume: bool) -> None:
        last = self.out / "last.pt"
        if last.exists() and not resume:
            raise UsageError(f"{self.out} already holds a run; add --resume to continue it or pick another --out")
        if resume and not last.exists():
            raise UsageError(f"--resume: {self.out} holds no last.pt to continue from; leave out --resume to start "
                             f"a new run there")
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--out {self.out}: cannot create the run folder ({e.strerror})") from None
        if resume:
            saved = TrainConfig.load(self.out / "config.yaml")
            difference = self.config.differs_from(saved)
            if difference:
                raise UsageError(f"{self.out} was trained with {difference}; --resume needs the same model, "
                                 f"recipe, size and dataset")
            record = read(last)
            if "training" not in record:
                raise CheckpointError(f"{last} was written by picaffect 0.1 and cannot be resumed by this version; "
                                      f"its best.pt still works with predict, evaluate and --init")
            self._load_state(record)
        if self.world.main:  # on resume too: the limits a run ends under (epochs, patience, budget) are the last ones
            self.config.save(self.out / "config.yaml")

    def _state(self) -> dict:
        """A checkpoint: the model part every reader understands, plus what resuming needs."""
        record = model_record(self.scored, self.spec, metadata={"trained_with": asdict(self.config)})
        record["training"] = {
            "live_weights": None if self.ema is None else self.model.state_dict(),
            "ema_steps": None if self.ema is None else int(self.ema.n_averaged),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None, "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch, "step": self.step, "best_loss": self.best_loss,
            "stale_epochs": self.stale_epochs, "history": self.history, "train_loss_sum": self.train_loss_sum,
            "train_seen": self.train_seen, "rng": torch.get_rng_state(), "config": asdict(self.config),
            "seconds": self._seconds(), "rng_by_rank": getattr(self, "_rngs", None)}
        return record

    def _load_state(self, record: dict) -> None:
        state = record["training"]
        if self.ema is not None:  # the checkpoint's model part is the average; the live weights are beside it
            if state.get("live_weights") is None:
                raise UsageError(f"{self.out} was trained without ema; resume it without ema or start a new run")
            self.ema.module.load_state_dict(record["weights"])
            self.ema.n_averaged.fill_(state["ema_steps"])
            self.model.load_state_dict(state["live_weights"])
        elif state.get("live_weights") is not None:
            raise UsageError(f"{self.out} was trained with ema; resume it with the same ema")
        elif not self.probe:  # a probe is fitted again from the frozen backbone whatever it had reached
            self.model.load_state_dict(record["weights"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        for key in ("epoch", "batch_in_epoch", "step", "best_loss", "stale_epochs", "history", "train_loss_sum",
                    "train_seen"):
            setattr(self, key, state[key])
        self.seconds_before = float(state.get("seconds", 0.0))
        by_rank = state.get("rng_by_rank")
        same_world = by_rank is not None and len(by_rank) == self.world.size
        torch.set_rng_state(by_rank[self.world.rank] if same_world else state["rng"])

    def _save(self, name: str) -> None:
        self._rngs = distributed.gather_objects(torch.get_rng_state(), self.world)  # every rank's, for resuming
        if self.world.main:
            save_atomic(self._state(), self.out / name)

    # -- loop ----------------------------------------------------------------------------------------------------
    def _seconds(self) -> float:
        """Wall time of this run so far, over every session that worked on it."""
        return self.seconds_before + time.perf_counter() - self._session_start

    def _stop_reason(self) -> str | None:
        """Why the loop should stop before another epoch: epochs, patience, or budget (None: go on).

        The budget stops the run when the next epoch, as long as the last one, would end past it.
        """
        cfg = self.config
        if self.epoch >= cfg.epochs:
            return "epochs"
        if self.stale_epochs >= cfg.patience:
            return "patience"
        if cfg.budget_minutes is not None and self.history:
            last = self.history[-1]["seconds"]
            if self._seconds() + last > cfg.budget_minutes * 60:
                return "budget"
        return None

    def fit(self) -> dict:
        self._session_start = time.perf_counter()
        if self.probe:
            self._fit_probe()
            self.stopped = "probe"
        else:
            while (reason := self._stop_reason()) is None:
                self._train_epoch()
                row = self._end_epoch()
                self._log_epoch(row)
            self.stopped = reason
        summary = self._summary()
        if self.world.active:  # DDP keeps the replicas identical; say so, measured
            summary["processes"] = self.world.size
            summary["rank_weight_spread"] = distributed.weight_spread(self.model, self.world)
        if self.world.main:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def _train_epoch(self) -> None:
        cfg = self.config
        batches = epoch_batches(len(self.train_set), cfg.batch_size, cfg.seed, self.epoch)
        self.net.train()
        self._epoch_start, self._epoch_images = time.perf_counter(), 0
        bar = tqdm(total=len(batches), initial=self.batch_in_epoch, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not self.progress, leave=False)
        for b in range(self.batch_in_epoch, len(batches)):
            images, targets = self.train_set.__getitems__(batches[b])
            loss = self._step(images, targets, b)
            self.batch_in_epoch = b + 1
            n = len(batches[b])
            self.train_loss_sum += loss * n
            self.train_seen += n
            self._epoch_images += n
            if self.batch_in_epoch % cfg.checkpoint_every == 0 and self.batch_in_epoch < len(batches):
                self._save("last.pt")
            rate = self._epoch_images / (time.perf_counter() - self._epoch_start)
            bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.1f}")
            bar.update()
        bar.close()

    def _fit_probe(self) -> None:
        """``--recipe ridge``: one closed-form 'epoch' on frozen features."""
        self._epoch_start, self._epoch_images = time.perf_counter(), len(self.train_set)
        if self.config.ridge_readout == "rbf":
            probe = fit_kernel_probe(self.model, self.train_set, self.test_set, self.spec, self.device,
                                     fit=self.config.ridge_fit)
            # the checkpoint must rebuild the kernel head with its shapes: record them beside the options
            self.spec = replace(self.spec, arguments={**self.spec.arguments, **self.model.checkpoint_arguments()})
        else:
            probe = fit_ridge_probe(self.model, self.train_set, self.test_set, self.spec, self.device,
                                    fit=self.config.ridge_fit, recalibrate=self.config.ridge_recalibrate)
        (self.out / "probe.json").write_text(json.dumps(probe, indent=2) + "\n")
        row = self._end_epoch()
        where = "chosen on the test split" if self.config.ridge_fit == "train" else \
            "by group cross-validation on train+test (the test figures below are then not held out)"
        print(f"ridge probe: penalty {probe['alpha']} {where}", flush=True)
        self._log_epoch(row)

    def _step(self, images: torch.Tensor, targets: torch.Tensor, batch: int) -> float:
        x = to_input(images, self.spec, self.device)
        if self.augment is not None:
            gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
            x = self.augment(x, gen).contiguous(memory_format=torch.channels_last)
        y = self.spec.encode(targets.to(self.device))
        rows = len(y)
        if self.world.active:  # the whole batch was prepared and augmented as in one process; keep this rank's share
            part = self.world.share(rows)
            x, y = x[part], y[part]
        with _autocast(self.device, self.config.precision):
            loss = distributed.share_loss(self.net(x).float(), y, rows, self.world)
        whole = distributed.mean_over_ranks(loss, self.world)
        if not torch.isfinite(whole):
            raise TrainingDiverged(
                f"loss became {whole.item()} at step {self.step + 1} (epoch {self.epoch + 1}, batch {batch + 1}); "
                f"stopped without saving, the last good checkpoint in {self.out} is kept")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:  # after DDP's all-reduce: every rank clips the same gradient
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.step += 1
        return whole.item()

    def _end_epoch(self) -> dict:
        seconds = time.perf_counter() - self._epoch_start
        pred = score_split(self.scored, self.test_set, self.spec, self.device, self.config.batch_size) \
            if self.world.main else None
        pred = distributed.broadcast_object(pred, self.world)  # every rank takes the same early-stopping decisions
        truth = self.test_set.targets
        test_loss = float(F.mse_loss(self.spec.encode(pred), self.spec.encode(truth))) if len(truth) else math.nan
        y, yhat = truth.numpy().ravel(), pred.numpy().ravel()
        row = {"epoch": self.epoch + 1, "step": self.step,
               "train_loss": self.train_loss_sum / self.train_seen if self.train_seen else math.nan,
               "test_loss": test_loss,
               "test_rmse": rmse(y, yhat) if len(y) else math.nan,
               "test_pcc": pcc(y, yhat) if len(y) > 1 else math.nan,
               "test_sagr": sagr(y, yhat, SAM.midpoint) if len(y) else math.nan,
               "lr": self.optimizer.param_groups[0]["lr"] if self.optimizer else 0.0, "seconds": round(seconds, 2),
               "images_per_s": round(self._epoch_images / seconds, 2) if seconds > 0 else math.nan}
        self.history.append(row)
        self.epoch += 1
        self.batch_in_epoch, self.train_loss_sum, self.train_seen = 0, 0.0, 0
        if test_loss < self.best_loss or not math.isfinite(self.best_loss):
            self.best_loss, self.stale_epochs = test_loss, 0
            self._save("best.pt")
        else:
            self.stale_epochs += 1
        self._save("last.pt")
        if self.world.main:
            self._write_history()
        return row

    def _log_epoch(self, row: dict) -> None:
        line = (f"epoch {row['epoch']}/{self.config.epochs}  train loss {row['train_loss']:.4f}  "
                f"test loss {row['test_loss']:.4f}  test RMSE {row['test_rmse']:.3f}  PCC {row['test_pcc']:.3f}  "
                f"SAGR {row['test_sagr']:.3f}  {row['images_per_s']:.1f} img/s  {row['seconds']:.0f}s")
        if self.stale_epochs >= self.config.patience:
            line += f"  (early stop: no better test loss for {self.stale_epochs} epochs)"
        if self.world.main:
            print(line + (f"  [{self.world.size} processes]" if self.world.active else ""), flush=True)

    def _write_history(self) -> None:
        with open(self.out / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            writer.writeheader()
            writer.writerows(self.history)
        loss_curves(self.history, self.out / "loss.png")

    def _summary(self) -> dict:
        best = min(self.history, key=lambda r: r["test_loss"]) if self.history else {}
        return {"model": self.config.model, "recipe": self.config.recipe, "epochs_run": self.epoch,
                "steps": self.step, "best_epoch": best.get("epoch"), "best_test_loss": best.get("test_loss"),
                "best_test_rmse": best.get("test_rmse"), "stopped_early": self.stale_epochs >= self.config.patience,
                "stopped": self.stopped, "seconds": round(self._seconds(), 1), "precision": self.config.precision,
                "budget_minutes": self.config.budget_minutes,
                "train_rows": len(self.train_set), "test_rows": len(self.test_set),
                "parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad)}


def train(config: TrainConfig, resume: bool = False, progress: bool | None = None) -> dict:
    """Train one model; returns the run's summary (also in RUN_DIR/summary.json)."""
    finished = False
    try:
        summary = Trainer(config, resume=resume, progress=progress).fit()
        finished = True
        return summary
    finally:
        distributed.shutdown(finished)  # under torchrun; nothing to do in one process
