"""The thesis's augmentation (section 7.3), on batches of tensors.

Keras's ``ImageDataGenerator(rotation_range=80, width_shift_range=0.2,
height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
vertical_flip=True, fill_mode='nearest')``, redone as one ``affine_grid`` /
``grid_sample`` per batch so that it runs in torch, on the fly, on whatever device
the batch is on. As in Keras, ``shear_range`` is an angle in degrees (0.2 degrees
is barely visible, but that is what the thesis asked for), zoom is drawn
independently for each axis, and 'nearest' fill repeats the border pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AffineParams:
    """Per-image parameters, each a tensor of shape (N,)."""

    rotation: torch.Tensor   # degrees, counter-clockwise
    shift_x: torch.Tensor    # fraction of the width, positive moves content right
    shift_y: torch.Tensor    # fraction of the height, positive moves content down
    shear: torch.Tensor      # degrees
    zoom_x: torch.Tensor     # > 1 shows more of the picture (content shrinks), as in Keras
    zoom_y: torch.Tensor
    hflip: torch.Tensor      # bool
    vflip: torch.Tensor      # bool

    @classmethod
    def identity(cls, n: int, **overrides) -> "AffineParams":
        fields = dict(rotation=torch.zeros(n), shift_x=torch.zeros(n), shift_y=torch.zeros(n), shear=torch.zeros(n),
                      zoom_x=torch.ones(n), zoom_y=torch.ones(n), hflip=torch.zeros(n, dtype=torch.bool),
                      vflip=torch.zeros(n, dtype=torch.bool))
        fields.update({k: torch.as_tensor(v).expand(n).clone() for k, v in overrides.items()})
        return cls(**fields)


@dataclass(frozen=True)
class ThesisAugment:
    rotation_range: float = 80.0
    width_shift_range: float = 0.2
    height_shift_range: float = 0.2
    shear_range: float = 0.2
    zoom_range: float = 0.2
    horizontal_flip: bool = True
    vertical_flip: bool = True

    def sample(self, n: int, generator: torch.Generator | None = None) -> AffineParams:
        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.rand(n, generator=generator) * (high - low) + low

        def coin(enabled: bool) -> torch.Tensor:
            return (torch.rand(n, generator=generator) < 0.5) & enabled

        return AffineParams(
            rotation=uniform(-self.rotation_range, self.rotation_range),
            shift_x=uniform(-self.width_shift_range, self.width_shift_range),
            shift_y=uniform(-self.height_shift_range, self.height_shift_range),
            shear=uniform(-self.shear_range, self.shear_range),
            zoom_x=uniform(1 - self.zoom_range, 1 + self.zoom_range),
            zoom_y=uniform(1 - self.zoom_range, 1 + self.zoom_range),
            hflip=coin(self.horizontal_flip),
            vflip=coin(self.vertical_flip),
        )

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return apply_affine(images, self.sample(images.shape[0], generator))


def apply_affine(images: torch.Tensor, p: AffineParams) -> torch.Tensor:
    """Transform a float batch (N, C, H, W) with per-image parameters."""
    n = images.shape[0]
    theta = _inverse_matrices(p).to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    hflip, vflip = p.hflip.to(images.device), p.vflip.to(images.device)
    if hflip.any():
        out = torch.where(hflip.view(n, 1, 1, 1), out.flip(-1), out)
    if vflip.any():
        out = torch.where(vflip.view(n, 1, 1, 1), out.flip(-2), out)
    return out


def _inverse_matrices(p: AffineParams) -> torch.Tensor:
    """For each output pixel, where to read in the input, in normalised (-1..1) coordinates.

    The forward map is: zoom, then shear, then rotate about the centre, then shift.
    ``affine_grid`` wants its inverse. Assumes square-ish pixels in normalised space,
    which holds for the square caches picaffect builds.
    """
    a = torch.deg2rad(p.rotation.double())
    s = torch.deg2rad(p.shear.double())
    n = a.shape[0]
    rot = torch.stack([torch.cos(a), -torch.sin(a), torch.sin(a), torch.cos(a)], 1).view(n, 2, 2)
    # y grows downwards in image coordinates, so a counter-clockwise turn on screen is clockwise here
    rot = rot.transpose(1, 2)
    shear = torch.zeros(n, 2, 2, dtype=torch.float64)
    shear[:, 0, 0] = 1
    shear[:, 0, 1] = -torch.sin(s)
    shear[:, 1, 1] = torch.cos(s)
    zoom = torch.diag_embed(torch.stack([1 / p.zoom_x.double(), 1 / p.zoom_y.double()], 1))
    forward = rot @ shear @ zoom
    inverse = torch.linalg.inv(forward)
    shift = torch.stack([p.shift_x.double(), p.shift_y.double()], 1) * 2  # fraction of size -> normalised units
    offset = -(inverse @ shift.unsqueeze(-1))
    return torch.cat([inverse, offset], dim=2).float()


# "light": what fine-tuning a pretrained network on affect wants. Upside-down and
# 80-degree-turned pictures no longer feel the same (a sky below, a face sideways),
# so only mirror images, small turns, shifts and zooms.
AUGMENTS = {
    "thesis": ThesisAugment(),
    "light": ThesisAugment(rotation_range=10.0, width_shift_range=0.08, height_shift_range=0.08, shear_range=0.0,
                           zoom_range=0.1, horizontal_flip=True, vertical_flip=False),
}
