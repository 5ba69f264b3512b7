"""Why Emosepar's evaluation outputs were constant (issue 10): Keras's BN running statistics against ours.

Trains Emosepar on a built dataset's train split with one recipe and, every few
steps, puts the model in eval mode on a fixed batch of the test split and prints
the spread of its outputs (a network that divides by the wrong variance in seven
layers gives near-constant outputs), its RMSE there, and how far each BN layer's
running variance is from the variance of the batch it is shown (median ratio).

``--bn keras`` reproduces Keras exactly (running statistics start at 0 / 1 and move
by 1 % a batch, whatever the recipe); ``--bn ours`` is ``KerasBatchNorm2d`` (a plain
average of the batches seen until there are 1 / momentum) with the recipe's momentum. Example (about 2 minutes on 2 cores):

    python -m research.bn_diagnostic --data runs/data/oasis+emotion6+bass-150px-thesis --bn keras --steps 150
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from picaffect import models
from picaffect.data.dataset import RatedImages
from picaffect.models.layers import KerasBatchNorm2d, set_bn_momentum
from picaffect.inference.checkpoint import ModelSpec
from picaffect.inference.forward import to_input
from picaffect.core.runtime import tune_allocator
from picaffect.core.scale import CENTRED_MAPPING, RAW_MAPPING
from picaffect.training.engine import epoch_batches
from picaffect.training.recipes import make_recipe


def variance_ratios(model: torch.nn.Module, x: torch.Tensor) -> list[float]:
    """Per BN layer: median over channels of running_var / (the batch's own variance), in eval mode."""
    ratios, hooks = [], []

    def hook(module, inputs, _output):
        v = inputs[0].float().var(dim=(0, 2, 3), unbiased=False)
        ratios.append(float((module.running_var / v.clamp_min(1e-12)).median()))
    for m in model.modules():
        if isinstance(m, KerasBatchNorm2d):
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return ratios


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--bn", choices=("keras", "ours"), default="ours")
    p.add_argument("--recipe", default="thesis")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--every", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    tune_allocator()
    torch.manual_seed(0)
    train, test = RatedImages(args.data, "train"), RatedImages(args.data, "test")
    recipe = make_recipe(args.recipe)
    scale, offset = RAW_MAPPING if args.recipe == "thesis" else CENTRED_MAPPING
    spec = ModelSpec("emosepar", train.image_size, output_scale=scale, output_offset=offset)
    model = models.create("emosepar").to(memory_format=torch.channels_last)
    if args.bn == "ours":
        set_bn_momentum(model, recipe.bn_momentum)
    else:  # Keras's momentum 0.99 whatever the recipe; 1 / t never exceeds it: the plain moving average from 0 / 1
        for m in model.modules():
            if isinstance(m, KerasBatchNorm2d):
                m.num_batches_tracked.fill_(10**9)
    opt = recipe.optimizer(model.parameters())
    sched = recipe.schedule(opt, args.steps)
    images, truth = test.__getitems__(list(range(min(256, len(test)))))  # a fixed batch of the test split
    x_test = to_input(images, spec, torch.device("cpu"))
    step, epoch, start = 0, 0, time.perf_counter()
    print(f"bn={args.bn} recipe={args.recipe}: {len(train)} training rows, "
          f"{-(-len(train) // args.batch_size)} steps an epoch")
    while step < args.steps:
        for batch in epoch_batches(len(train), args.batch_size, 0, epoch):
            imgs, y = train.__getitems__(batch)
            model.train()
            loss = F.mse_loss(model(to_input(imgs, spec, torch.device("cpu"))), spec.encode(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % args.every == 0 or step == args.steps:
                model.eval()
                with torch.no_grad():
                    out = spec.decode(model(x_test))
                model.train()
                with torch.no_grad():
                    out_train = spec.decode(model(x_test))
                model.eval()
                ratios = variance_ratios(model, x_test)
                rmse = float(((out - truth) ** 2).mean().sqrt())
                rmse_train_mode = float(((out_train - truth) ** 2).mean().sqrt())
                print(f"step {step:4d}  train loss {loss.item():7.3f}  eval-mode output SD "
                      f"{out.std(0).mean():.2e}  train-mode SD {out_train.std(0).mean():.2e}  "
                      f"eval RMSE {rmse:.3f}  train-mode RMSE {rmse_train_mode:.3f}  running/batch var "
                      + " ".join(f"{r:.1f}" for r in ratios) + f"  {time.perf_counter() - start:.0f}s", flush=True)
            if step >= args.steps:
                break
        epoch += 1


if __name__ == "__main__":
    main()
