"""``picaffect train``: one loop for every model and recipe.

The loop is deliberately plain (nanoGPT-style): fixed per-epoch shuffles derived
from the seed, so that a run killed at any step and resumed from ``last.pt``
takes the same batches and ends after the same number of steps; the ``test``
split watched after each epoch (as in the thesis) for early stopping and
``best.pt``; a non-finite loss stops the run before anything is overwritten.
"""
from __future__ import annotations

import csv
import inspect
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from tqdm.auto import tqdm

from .. import models
from ..models.layers import set_bn_momentum
from ..data.dataset import RatedImages, make_loader
from ..errors import PicaffectError
from ..evaluation.metrics import pcc, rmse, sagr
from ..scale import SAM
from . import checkpoint
from .augment import AUGMENTS
from .recipes import make_recipe
from .runtime import pick_device, tune_allocator

HISTORY_FIELDS = ["epoch", "step", "train_loss", "test_loss", "test_rmse", "test_pcc", "test_sagr", "lr", "seconds",
                  "images_per_s"]


class TrainingDiverged(PicaffectError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


@dataclass
class TrainConfig:
    data: str
    model: str
    out: str
    recipe: str = "thesis"
    epochs: int = 10
    batch_size: int = 64
    augment: str = "none"            # "none", "thesis" (section 7.3) or "light" (for fine-tuning)
    size: int | None = None          # input side; None = the dataset's cache size
    seed: int = 0
    limit: int | None = None         # first N rows of each split, for smoke runs
    device: str = "auto"
    lr: float | None = None
    weight_decay: float | None = None
    patience: int = 10               # epochs without a better test loss before stopping
    checkpoint_every: int = 50       # steps between last.pt writes inside an epoch
    init: str | None = None          # start from this run folder's best.pt (or a checkpoint file)
    model_options: dict = field(default_factory=dict)
    precision: str = "fp32"          # "bf16": forward and backward under bf16 autocast (weights stay fp32)
    budget_minutes: float | None = None  # wall-clock budget over all sessions of the run; checked between epochs

    def save(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(asdict(self), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        return cls(**yaml.safe_load(path.read_text()))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled batches of one epoch: a function of (seed, epoch) alone."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def to_input(images: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """uint8 (N,3,H,W) -> float in [0, 1], channels_last, resized to ``size`` if needed."""
    x = images.to(device, non_blocking=True).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def predict_loader(model: torch.nn.Module, dataset: RatedImages, recipe, size: int, device: torch.device,
                   batch_size: int = 64, tta: bool = False) -> torch.Tensor:
    """Predictions on 1..9 for a whole dataset, in dataset order."""
    model.eval()
    out = []
    for images, _ in make_loader(dataset, batch_size, shuffle=False):
        x = to_input(images, size, device)
        with _autocast(device):
            y = model(x).float()
            if tta:
                y = (y + model(x.flip(-1)).float()) / 2
        out.append(recipe.decode(y).cpu())
    return torch.cat(out) if out else torch.empty(0, 2)


PRECISIONS = ("fp32", "bf16")


def _autocast(device: torch.device, precision: str = "fp32"):
    """bf16 autocast on CUDA always; on CPU only when asked (AVX512-BF16 makes a training step ~1.7x faster)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool | None = None) -> None:
        tune_allocator()
        self.config = config
        self.out = Path(config.out)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.device = pick_device(config.device)
        self.recipe = make_recipe(config.recipe, config.lr, config.weight_decay)
        self.train_set = RatedImages(config.data, "train", limit=config.limit)
        self.test_set = RatedImages(config.data, "test", limit=config.limit)
        if len(self.train_set) == 0:
            raise ValueError(f"{config.data} has no training rows")
        self.size = config.size or self.train_set.image_size
        torch.manual_seed(config.seed)
        self.model = models.create(config.model, **config.model_options).to(self.device)
        set_bn_momentum(self.model, self.recipe.bn_momentum)
        if config.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {config.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if config.init:
            self._init_from(Path(config.init))
        self.model = self.model.to(memory_format=torch.channels_last)
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.batch_size)
        self.optimizer = self.scheduler = None
        if self.recipe.name != "ridge":  # the probe is solved in closed form: nothing to step
            self.optimizer = self.recipe.optimizer([p for p in self.model.parameters() if p.requires_grad])
            self.scheduler = self.recipe.schedule(self.optimizer, self.steps_per_epoch * config.epochs)
        if config.augment not in ("none", *AUGMENTS):
            raise ValueError(f"unknown augmentation {config.augment!r}; choose none, {', '.join(AUGMENTS)}")
        self.augment = AUGMENTS.get(config.augment)
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best_loss, self.stale_epochs = math.inf, 0
        self.seconds_before = 0.0  # wall time spent by earlier sessions of this run (it may be resumed)
        self.stopped: str | None = None
        self.history: list[dict] = []
        self.train_loss_sum, self.train_seen = 0.0, 0
        self._start(resume)

    def _init_from(self, path: Path) -> None:
        """Start from another run's weights (a linear probe before fine-tuning, say)."""
        path = path / "best.pt" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"--init {path}: no such checkpoint")
        state = checkpoint.load(path)
        if state["config"]["model"] != self.config.model:
            raise ValueError(f"--init {path} holds a {state['config']['model']} model, not {self.config.model}")
        if make_recipe(state["config"]["recipe"]).normalize_targets != self.recipe.normalize_targets:
            raise ValueError(f"--init {path} was trained with another target mapping than recipe {self.recipe.name}")
        self.model.load_state_dict(checkpoint.float_weights(state))

    # -- state ---------------------------------------------------------------------------------------------------
    def _start(self, resume: bool) -> None:
        last = self.out / "last.pt"
        if last.exists() and not resume:
            raise FileExistsError(f"{self.out} already holds a run; add --resume to continue it or pick another --out")
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and last.exists():
            saved = TrainConfig.load(self.out / "config.yaml")
            if (saved.model, saved.recipe, saved.data) != (self.config.model, self.config.recipe, self.config.data):
                raise ValueError(f"{self.out} was trained with model {saved.model}, recipe {saved.recipe} on "
                                 f"{saved.data}; --resume needs the same")
            self._load_state(checkpoint.load(last))
        else:
            self.config.save(self.out / "config.yaml")

    def _state(self) -> dict:
        return {"model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                "scheduler": self.scheduler.state_dict() if self.scheduler else None, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "step": self.step, "best_loss": self.best_loss, "stale_epochs": self.stale_epochs,
                "history": self.history, "train_loss_sum": self.train_loss_sum, "train_seen": self.train_seen,
                "rng": torch.get_rng_state(), "config": asdict(self.config), "recipe": asdict(self.recipe),
                "size": self.size, "seconds": self._seconds()}

    def _load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        for key in ("epoch", "batch_in_epoch", "step", "best_loss", "stale_epochs", "history", "train_loss_sum",
                    "train_seen"):
            setattr(self, key, state[key])
        self.seconds_before = float(state.get("seconds", 0.0))
        torch.set_rng_state(state["rng"])

    def _save(self, name: str) -> None:
        checkpoint.save_atomic(self._state(), self.out / name)

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
        if self.recipe.name == "ridge":
            self._fit_probe()
            self.stopped = "probe"
        else:
            while (reason := self._stop_reason()) is None:
                self._train_epoch()
                row = self._end_epoch()
                self._log_epoch(row)
            self.stopped = reason
        summary = self._summary()
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def _train_epoch(self) -> None:
        cfg = self.config
        batches = epoch_batches(len(self.train_set), cfg.batch_size, cfg.seed, self.epoch)
        self.model.train()
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
        """The ridge recipe: one closed-form 'epoch' on frozen features."""
        from .probe import fit_probe

        self._epoch_start, self._epoch_images = time.perf_counter(), len(self.train_set)
        probe = fit_probe(self.model, self.train_set, self.test_set, self.size, self.device, self.recipe)
        (self.out / "probe.json").write_text(json.dumps(probe, indent=2) + "\n")
        row = self._end_epoch()
        print(f"ridge probe: penalty {probe['alpha']:.3g} chosen on the test split", flush=True)
        self._log_epoch(row)

    def _step(self, images: torch.Tensor, targets: torch.Tensor, batch: int) -> float:
        x = to_input(images, self.size, self.device)
        if self.augment is not None:
            gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
            x = self.augment(x, gen).contiguous(memory_format=torch.channels_last)
        y = self.recipe.encode(targets.to(self.device))
        with _autocast(self.device, self.config.precision):
            loss = F.mse_loss(self.model(x).float(), y)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss.item()} at step {self.step + 1} (epoch {self.epoch + 1}, batch {batch + 1}); "
                f"stopped without saving, the last good checkpoint in {self.out} is kept")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.item()

    def _end_epoch(self) -> dict:
        seconds = time.perf_counter() - self._epoch_start
        pred = predict_loader(self.model, self.test_set, self.recipe, self.size, self.device, self.config.batch_size)
        truth = self.test_set.targets
        test_loss = float(F.mse_loss(self.recipe.encode(pred), self.recipe.encode(truth))) if len(truth) else math.nan
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
        self._write_history()
        return row

    def _log_epoch(self, row: dict) -> None:
        line = (f"epoch {row['epoch']}/{self.config.epochs}  train loss {row['train_loss']:.4f}  "
                f"test loss {row['test_loss']:.4f}  test RMSE {row['test_rmse']:.3f}  PCC {row['test_pcc']:.3f}  "
                f"SAGR {row['test_sagr']:.3f}  {row['images_per_s']:.1f} img/s  {row['seconds']:.0f}s")
        if self.stale_epochs >= self.config.patience:
            line += f"  (early stop: no better test loss for {self.stale_epochs} epochs)"
        print(line, flush=True)

    def _write_history(self) -> None:
        with open(self.out / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            writer.writeheader()
            writer.writerows(self.history)
        plot_history(self.history, self.out / "loss.png")

    def _summary(self) -> dict:
        best = min(self.history, key=lambda r: r["test_loss"]) if self.history else {}
        return {"model": self.config.model, "recipe": self.config.recipe, "epochs_run": self.epoch,
                "steps": self.step, "best_epoch": best.get("epoch"), "best_test_loss": best.get("test_loss"),
                "best_test_rmse": best.get("test_rmse"), "stopped_early": self.stale_epochs >= self.config.patience,
                "stopped": self.stopped, "seconds": round(self._seconds(), 1), "precision": self.config.precision,
                "budget_minutes": self.config.budget_minutes,
                "train_rows": len(self.train_set), "test_rows": len(self.test_set),
                "parameters": sum(p.numel() for p in self.model.parameters() if p.requires_grad)}


def plot_history(history: list[dict], path: Path) -> None:
    """The thesis's figure 1: train and test loss per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    ax.plot(epochs, [r["test_loss"] for r in history], marker="o", label="test")
    ax.set(xlabel="epoch", ylabel="loss (MSE)", title="Training and test loss")
    ax.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def train(config: TrainConfig, resume: bool = False, progress: bool | None = None) -> dict:
    """Train one model; returns the run's summary (also in RUN_DIR/summary.json)."""
    return Trainer(config, resume=resume, progress=progress).fit()


def load_checkpoint(path: str | Path):
    """A model from a picaffect checkpoint file, with its recipe and input size, in eval mode."""
    state = checkpoint.load(path)
    cfg = state["config"]
    options = dict(cfg.get("model_options", {}))
    if "pretrained" in inspect.signature(models.model_class(cfg["model"])).parameters:
        options["pretrained"] = None  # the checkpoint holds every weight: no need to read ImageNet files again
    model = models.create(cfg["model"], **options)
    model.load_state_dict(checkpoint.float_weights(state))
    recipe = make_recipe(cfg["recipe"], cfg.get("lr"), cfg.get("weight_decay"))
    return model.eval(), recipe, int(state["size"])


def load_run(run_dir: str | Path, which: str = "best", device: str = "cpu"):
    """The ``best`` (or ``last``) model of a training run, ready for inference."""
    path = Path(run_dir) / f"{which}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} holds no {which}.pt: is it a picaffect training run?")
    model, recipe, size = load_checkpoint(path)
    return model.to(pick_device(device)), recipe, size


def export(run_dir: str | Path, out: str | Path, which: str = "best", half: bool = True,
           metadata: dict | None = None) -> Path:
    """A slim checkpoint for shipping: weights (fp16 by default), config and size, no optimiser state."""
    state = checkpoint.load(Path(run_dir) / f"{which}.pt")
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in state["model"].items()}
    slim = {"model": weights, "config": state["config"], "recipe": state["recipe"], "size": state["size"],
            "epoch": state["epoch"], "metadata": metadata or {}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save_atomic(slim, out)
    return out
