"""Data-parallel training under ``torchrun`` (DistributedDataParallel): gloo on CPU, NCCL on CUDA.

    torchrun --standalone --nproc_per_node 2 -m picaffect train --data D --model emosepar --out runs/x
    picaffect train --nproc 2 ...            # the same, started by picaffect itself

Every rank reads the same seeded batches (``engine.epoch_batches``), prepares and
augments the whole batch exactly as one process would, and keeps its contiguous
share of it. The loss of a share is scaled so that DDP's gradient average is the
gradient of the whole batch's mean loss, and batch norms compute their statistics
over the whole batch (``SyncBatchNorm`` on CUDA, ``GlooSyncBatchNorm`` below on
CPU): with dropout off, one process and N processes follow the same history up to
float rounding. How large that rounding gets depends on the model's conditioning:
on the tests' nearly flat-coloured fixture one process with 1 thread and with 2
threads already differ by about 5e-4 relative in the first gradient (and 1 against
2 processes by as much), which SGD at lr 1e-3 grows to 4 % of the loss in four
steps; at the thesis's lr 1e-5 tests/test_distributed.py holds 1 and 2 processes
to 1e-4 relative over two epochs. Dropout masks are drawn per
rank, so with dropout on the runs agree only in distribution. Rank 0 alone writes
checkpoints, history, plots and logs; resuming is exact (each rank's RNG is saved).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..models.layers import KerasBatchNorm2d


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def share(self, n: int) -> slice:
        """This rank's contiguous part of a batch of ``n`` (may be empty when ``n`` < ranks)."""
        lo, hi = n * self.rank // self.size, n * (self.rank + 1) // self.size
        return slice(lo, hi)


def launched() -> bool:
    """Whether torchrun (or another launcher setting WORLD_SIZE) started this process with several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun describes; returns this rank and its device."""
    if not launched():
        return World(), device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    world = World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
        device = torch.device("cuda", world.local_rank)
    return world, device


def shutdown(finished: bool = False) -> None:
    """Leave the process group. After a run that ``finished``, every rank first waits for the others:
    rank 0 still writes the run's files when the rest are done, and a gloo rank that tore its group
    down while its peer was still connected sometimes aborted at exit ("terminate called without an
    active exception"), failing the whole torchrun. After an error there is no barrier (the other
    ranks may never reach it); torchrun ends them."""
    if dist.is_available() and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover every rank's share (torch's SyncBatchNorm is GPU-only).

    Same parameters and buffers as ``BatchNorm2d`` (checkpoints do not change); in
    eval mode, or in one process, it is exactly ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        import warnings

        with warnings.catch_warnings():  # the differentiable all-reduce; its successor is not public yet
            warnings.simplefilter("ignore", FutureWarning)
            from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        # Two passes (mean, then squared deviations), as batch_norm itself: E[x^2] - E[x]^2 cancels badly in float32.
        local = torch.cat([x.sum((0, 2, 3)), x.new_tensor([x.numel() / max(c, 1)])])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            total = all_reduce(local, op=dist.ReduceOp.SUM)
            n = total[-1]
            mean = total[:c] / n
            var = all_reduce((x - mean.view(1, c, 1, 1)).square().sum((0, 2, 3)), op=dist.ReduceOp.SUM) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                t = float(self.num_batches_tracked)
                m = self.momentum if self.momentum is not None else 1.0 / t
                if getattr(self, "unbiased_start", False):  # converted from KerasBatchNorm2d: keep its 1 / t start
                    m = max(m, 1.0 / t)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1).clamp_min(1)), alpha=m)
        shape = (1, c, 1, 1)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batch_norms(model: nn.Module, device: torch.device) -> nn.Module:
    """Batch norms over the whole batch: torch's SyncBatchNorm on CUDA, ``GlooSyncBatchNorm`` on CPU."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and not isinstance(m, GlooSyncBatchNorm):
            m.unbiased_start = isinstance(m, KerasBatchNorm2d)
            m.__class__ = GlooSyncBatchNorm
    return model


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """The module the training step calls: DDP around ``model`` (which keeps its own weights) when distributed."""
    if not world.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(sync_batch_norms(model, device),
                                   device_ids=[world.local_rank] if device.type == "cuda" else None)


def share_loss(pred: torch.Tensor, target: torch.Tensor, batch_rows: int, world: World) -> torch.Tensor:
    """This rank's part of the whole batch's mean squared error, scaled for DDP's gradient average."""
    if not world.active:
        return F.mse_loss(pred, target)
    return F.mse_loss(pred, target, reduction="sum") * (world.size / (batch_rows * target.shape[-1]))


def mean_over_ranks(value: torch.Tensor, world: World) -> torch.Tensor:
    """The whole batch's loss from the ranks' scaled shares (a copy; gradients untouched)."""
    if not world.active:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world.size


def gather_objects(obj, world: World) -> list:
    if not world.active:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, world: World):
    """Rank 0's ``obj`` on every rank."""
    if not world.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@torch.no_grad()
def weight_spread(model: nn.Module, world: World) -> float:
    """The largest difference between any rank's weights and rank 0's (0.0 when the replicas agree)."""
    if not world.active:
        return 0.0
    flat = torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    spread = (flat - reference).abs().max().reshape(1)
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    return float(spread)


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()
