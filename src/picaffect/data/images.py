"""Decoding one picture into a square RGB uint8 array, or saying why not.

Published sets hold every kind of file: CMYK and greyscale JPEGs, palette GIFs,
1-bit silhouettes, 16-bit TIFFs, PNGs with alpha. All of them end up the same way
here: decoded once, EXIF orientation applied, RGB, resized to ``size`` squared
(the thesis squashes, it does not crop). A file that cannot be used raises
``ImageProblem`` whose message is the reason a report shows beside its row.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import PicaffectError

# Transparent pixels are shown on white: the silhouette sets are drawn that way.
BACKGROUND = (255, 255, 255)


class ImageProblem(PicaffectError):
    """A picture that cannot be used; the message is the reason."""


def load_rgb(path: str | Path, size: int | None = None) -> Image.Image:
    """Open ``path`` as an RGB image, at least ``size`` on each side if given.

    ``size`` lets JPEG decode at a reduced scale (draft mode), which is most of
    the speed of a build: a 400 px photo decodes at 1/2 scale for 150 px.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageProblem("empty file (0 bytes)")
    except FileNotFoundError:
        raise ImageProblem("image file not found") from None
    except IsADirectoryError:
        raise ImageProblem("is a folder, not an image file") from None
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                return to_rgb(im, size)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageProblem(f"over Pillow's decompression-bomb limit: {e}") from None
        except UnidentifiedImageError:
            raise ImageProblem("not an image Pillow can read") from None
        except (OSError, SyntaxError, ValueError) as e:
            # Pillow reports truncated and corrupt data as OSError (or SyntaxError for some headers).
            raise ImageProblem(f"truncated or corrupt image: {e}") from None


def to_rgb(im: Image.Image, size: int | None = None) -> Image.Image:
    """Any Pillow image as RGB: first frame, EXIF orientation, alpha on white, wide ranges scaled."""
    if size and im.format == "JPEG":
        im.draft("RGB", (size, size))
    im.seek(0)  # GIF and other animations: the first frame
    im.load()
    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        im = _wide_to_l(im)
    elif mode == "P":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        im = Image.alpha_composite(flat, rgba)
    return im.convert("RGB") if im.mode != "RGB" else im


def _wide_to_l(im: Image.Image) -> Image.Image:
    """16-bit and float images: scale their full range to 0..255 (Pillow would clip)."""
    a = np.asarray(im, dtype=np.float64)
    top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
    if im.mode == "F":
        top = max(float(a.max()), 1e-12)
    return Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def square(im: Image.Image, size: int) -> np.ndarray:
    """An RGB image squashed to (size, size, 3) uint8, as the thesis resized its pictures."""
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    return np.asarray(im, dtype=np.uint8)


def load_square(path: str | Path, size: int) -> np.ndarray:
    """Decode ``path`` into a (size, size, 3) uint8 array."""
    return square(load_rgb(path, size), size)


def array_to_rgb(array: np.ndarray) -> Image.Image:
    """A numpy picture (H, W), (H, W, 3) or (H, W, 4), uint8 or float in [0, 1], as RGB."""
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageProblem(f"an image array must be (H, W) or (H, W, 3 or 4), got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating) or np.nanmin(a) < 0 or np.nanmax(a) > 1:
            raise ImageProblem(f"an image array must be uint8, or float in [0, 1]; got {a.dtype} "
                               f"in [{np.nanmin(a):g}, {np.nanmax(a):g}]")
        a = (np.nan_to_num(a) * 255 + 0.5).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    return to_rgb(Image.fromarray(a), None)
