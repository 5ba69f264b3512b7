"""Each of the thesis's transforms on a synthetic image with one marked pixel."""
from __future__ import annotations

import math

import pytest
import torch

from picaffect.training.augment import AffineParams, ThesisAugment, apply_affine

SIZE = 21  # odd, so the centre is a pixel


def marked(row: int, col: int) -> torch.Tensor:
    image = torch.zeros(1, 3, SIZE, SIZE)
    image[0, :, row, col] = 1.0
    return image


def brightest(image: torch.Tensor) -> tuple[int, int]:
    flat = int(image[0, 0].argmax())
    return divmod(flat, SIZE)


def test_identity_changes_nothing():
    image = torch.rand(2, 3, SIZE, SIZE)
    assert torch.allclose(apply_affine(image, AffineParams.identity(2)), image, atol=1e-5)


def test_horizontal_flip_mirrors_a_pixel():
    out = apply_affine(marked(3, 5), AffineParams.identity(1, hflip=True))
    assert brightest(out) == (3, SIZE - 1 - 5)


def test_vertical_flip_mirrors_a_pixel():
    out = apply_affine(marked(3, 5), AffineParams.identity(1, vflip=True))
    assert brightest(out) == (SIZE - 1 - 3, 5)


def test_rotation_turns_counter_clockwise():
    # a pixel right of centre goes above centre after a quarter turn counter-clockwise
    c = SIZE // 2
    out = apply_affine(marked(c, c + 6), AffineParams.identity(1, rotation=90.0))
    assert brightest(out) == (c - 6, c)


def test_shift_moves_content():
    out = apply_affine(marked(10, 4), AffineParams.identity(1, shift_x=6 / SIZE, shift_y=-3 / SIZE))
    assert brightest(out) == (7, 10)


def test_zoom_above_one_shrinks_content_towards_centre():
    c = SIZE // 2
    out = apply_affine(marked(c, c + 8), AffineParams.identity(1, zoom_x=2.0))
    row, col = brightest(out)
    assert row == c and col == c + 4


def centroid(image: torch.Tensor) -> tuple[float, float]:
    """Brightness-weighted (row, col) of channel 0: sub-pixel, since bilinear sampling spreads a point."""
    w = image[0, 0]
    rows, cols = torch.meshgrid(torch.arange(SIZE, dtype=w.dtype), torch.arange(SIZE, dtype=w.dtype), indexing="ij")
    return float((w * rows).sum() / w.sum()), float((w * cols).sum() / w.sum())


@pytest.mark.parametrize("angle", [45.0, 20.0, -30.0])
@pytest.mark.parametrize("below", [8, -6])
def test_shear_moves_a_pixel_where_the_shear_map_says(angle, below):
    """The documented forward shear (x, y) -> (x - sin(s) y, cos(s) y) about the centre,
    x to the right and y downwards: a pixel ``below`` rows under the centre."""
    c = SIZE // 2
    out = apply_affine(marked(c + below, c), AffineParams.identity(1, shear=angle))
    s = math.radians(angle)
    row, col = centroid(out)
    assert row == pytest.approx(c + below * math.cos(s), abs=0.35)
    assert col == pytest.approx(c - below * math.sin(s), abs=0.35)


def test_nearest_fill_repeats_the_border():
    image = torch.zeros(1, 1, SIZE, SIZE)
    image[..., :, -1] = 1.0  # right-most column lit
    out = apply_affine(image, AffineParams.identity(1, shift_x=-0.3))
    assert torch.allclose(out[0, 0, :, -6:], torch.ones(SIZE, 6), atol=1e-5)


def test_random_parameters_stay_in_the_thesis_ranges():
    p = ThesisAugment().sample(4000, torch.Generator().manual_seed(0))
    assert p.rotation.abs().max() <= 80 and p.rotation.abs().max() > 75
    assert p.shift_x.abs().max() <= 0.2 and p.shear.abs().max() <= 0.2
    assert 0.8 <= p.zoom_x.min() and p.zoom_y.max() <= 1.2
    assert 0.45 < p.hflip.float().mean() < 0.55 and 0.45 < p.vflip.float().mean() < 0.55


def test_augment_is_seeded_and_keeps_shape():
    images = torch.rand(4, 3, 32, 32)
    a = ThesisAugment()(images, torch.Generator().manual_seed(1))
    b = ThesisAugment()(images, torch.Generator().manual_seed(1))
    assert a.shape == images.shape and torch.equal(a, b)
