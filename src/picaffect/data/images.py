"""Decoding one picture into a square RGB uint8 array, or saying why not.

Published sets hold every kind of file: CMYK and greyscale JPEGs, palette GIFs,
1-bit silhouettes, 16-bit TIFFs, PNGs with alpha. All of them end up the same way
here: decoded once, EXIF orientation applied, RGB, resized to ``size`` squared
(the thesis squashes, it does not crop). A file that cannot be used raises
``ImageProblem`` whose message is the reason a report shows beside its row.

Only the formats in ``ACCEPTED_FORMATS`` are ever decoded, for files and uploads
alike; Pillow's other readers never see a byte (``refused_format`` names what a
refused file looks like from its signature alone).
"""
from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.errors import PicaffectError
from .pictures import file_problem

# Transparent pixels are shown on white: the silhouette sets are drawn that way.
BACKGROUND = (255, 255, 255)


class ImageProblem(PicaffectError):
    """A picture that cannot be used; the message is the reason."""


class TooManyPixels(ImageProblem):
    """A picture whose header declares more pixels than allowed (the decompression-bomb guard).

    A subclass, so that ``predict`` reports it as any other unusable picture, while the
    service can refuse the whole request (413) instead of decoding it.
    """


# The formats a picture tool needs, and every format the rated sets use (JPEG, PNG, GIF, BMP).
# Pillow can open forty more; some hand the file to other programs (EPS runs Ghostscript on
# it) and all of them are parsers a stranger's upload would reach. MPO (the multi-picture
# JPEG of phones) and APNG come through the JPEG and PNG readers; DIB is BMP without its header.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "DIB", "TIFF")
ACCEPTED_NAMES = "JPEG, PNG, WebP, GIF, BMP, TIFF"


def load_rgb(path: str | Path, size: int | None = None) -> Image.Image:
    """Open ``path`` as an RGB image, at least ``size`` on each side if given.

    ``size`` lets JPEG decode at a reduced scale (draft mode), which is most of
    the speed of a build: a 400 px photo decodes at 1/2 scale for 150 px. Pillow's
    warnings about a file (corrupt EXIF data, odd chunks) are re-issued with the
    file's name, since "Corrupt EXIF data" alone does not say which of 10,000 files.
    """
    return load_rgb_sized(path, size)[0]


def load_rgb_sized(path: str | Path, size: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """``load_rgb``, and the picture's own (width, height) after EXIF rotation.

    A reduced-scale decode no longer shows the picture's own size, which its features
    report; reading it here, from the header already open, spares opening the file again
    (that second open cost a third of the features' time in a build).
    """
    path = Path(path)
    problem = file_problem(path)
    if problem == "no such file":
        raise ImageProblem("image file not found")
    if problem is not None:
        raise ImageProblem(problem)
    with pillow_problems(lambda: _head_of(path)), _open(path, path) as im:
        stored = im.size
        rgb = to_rgb(im, size, path)
        return rgb, (stored[1], stored[0]) if _quarter_turned(im) else stored


def _quarter_turned(im: Image.Image) -> bool:
    """Whether ``im``'s EXIF orientation (parsed by ``to_rgb``, so cached) turns it a quarter."""
    try:
        return im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # a damaged EXIF block: to_rgb kept the picture as stored
        return False


def decode_bytes(data: bytes | bytearray, size: int, max_pixels: int | None = None) -> np.ndarray:
    """A file's bytes (an upload) as a (size, size, 3) uint8 array, prepared exactly as a file on disk.

    ``TooManyPixels`` when the header declares more than ``max_pixels`` pixels (checked
    before any pixel is decoded); ``ImageProblem`` says why the bytes are no usable picture.
    """
    if not data:
        raise ImageProblem("empty file (0 bytes)")
    with pillow_problems(lambda: bytes(data[:16])), _open(io.BytesIO(bytes(data)), None) as im:
        if max_pixels is not None and im.width * im.height > min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels):
            raise TooManyPixels(f"{im.width} x {im.height} pixels, over the limit of {max_pixels:,} pixels "
                                f"(decompression-bomb guard)")
        return square(to_rgb(im, size), size)


@contextmanager
def pillow_problems(head: Callable[[], bytes]) -> Iterator[None]:
    """Pillow's many exceptions for a bad file as one ``ImageProblem`` with the reason.

    The one place that reads them, for files (build, ``predict``) and uploads (the
    service) alike. ``head`` gives the file's first bytes, read only when no accepted
    format recognised the file, to name a format that was refused.
    """
    try:
        yield
    except ImageProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TooManyPixels(f"over Pillow's decompression-bomb limit: {e}") from None
    except UnidentifiedImageError:
        refused = refused_format(head())
        if refused:
            raise ImageProblem(f"format not accepted: {refused} (accepted: {ACCEPTED_NAMES})") from None
        raise ImageProblem(f"not an image in an accepted format ({ACCEPTED_NAMES})") from None
    except PermissionError:
        raise ImageProblem("permission denied") from None
    except (OSError, SyntaxError, ValueError) as e:
        # Pillow reports truncated and corrupt data as OSError (or SyntaxError for some headers).
        raise ImageProblem(f"truncated or corrupt image: {e}") from None


def refused_format(head: bytes) -> str | None:
    """The name of the format Pillow would have taken ``head`` (a file's first bytes) for, if it
    is one that is not accepted; None when nothing recognises it.

    Only the readers' signature checks run (a few byte comparisons each): no refused
    reader ever parses the file.
    """
    Image.init()
    for name in Image.ID:
        accept = Image.OPEN[name][1]
        if name in ACCEPTED_FORMATS or accept is None:
            continue
        try:
            if accept(head):
                return name
        except Exception:  # a signature check that chokes on a short head: not this format
            continue
    return None


def _head_of(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except OSError:
        return b""


@contextmanager
def _open(source: Path | IO[bytes], path: Path | None) -> Iterator[Image.Image]:
    """``Image.open`` of the accepted formats only, with its warnings named after ``path``,
    closing the file whatever happens."""
    opened: list[Image.Image] = []
    try:
        with _named_warnings(path):
            opened.append(Image.open(source, formats=ACCEPTED_FORMATS))
        yield opened[0]
    finally:
        for im in opened:
            im.close()


# ``warnings.catch_warnings`` swaps process-wide state, and builds decode on several threads:
# the short parts that can warn (reading the header and the EXIF block) run one at a time.
_WARNINGS_LOCK = threading.Lock()


@contextmanager
def _named_warnings(path: Path | None) -> Iterator[None]:
    """Run a block that may warn about ``path``; re-issue its warnings with the file's name.

    A decompression-bomb warning becomes an error (``ImageProblem`` upstream).
    """
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, Image.DecompressionBombWarning):
            raise Image.DecompressionBombWarning(str(w.message))
        if path is None:
            warnings.warn(w.message, w.category, stacklevel=3)
        else:
            warnings.warn(f"{path}: {w.message}", w.category, stacklevel=3)


def to_rgb(im: Image.Image, size: int | None = None, path: Path | None = None) -> Image.Image:
    """Any Pillow image as RGB: first frame, EXIF orientation, alpha on white, wide ranges scaled.

    ``path`` names the file in warnings. An image with no pixels (0 x 0, or closed)
    raises ``ImageProblem``: scoring it would score a black square.
    """
    if im.width == 0 or im.height == 0:
        raise ImageProblem(f"the image is empty ({im.width} x {im.height} pixels)")
    if size and im.format == "JPEG":
        im.draft("RGB", (size, size))
    try:
        im.seek(0)  # GIF and other animations: the first frame
        im.load()
    except ValueError as e:  # Pillow: "Operation on closed image"
        if "closed" in str(e):
            raise ImageProblem("the PIL image is closed: keep it open (or copy it) until it is scored") from None
        raise
    with _named_warnings(path):
        im.getexif()  # parsed (and cached) here, where a damaged EXIF block's warning gets the file's name
    # A copy even when nothing turns: what load_rgb returns outlives the file it was opened from.
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


def pil_to_rgb(im: Image.Image) -> Image.Image:
    """A PIL image from an API caller as RGB, leaving the caller's image as it was."""
    try:
        im.load()
        copy = im.copy()
    except ValueError as e:  # Pillow: "Operation on closed image"
        if "closed" in str(e):
            raise ImageProblem("the PIL image is closed: keep it open (or copy it) until it is scored") from None
        raise ImageProblem(f"cannot read the PIL image: {e}") from None
    except OSError as e:
        raise ImageProblem(f"truncated or corrupt image: {e}") from None
    return to_rgb(copy, None)


def prepare_picture(picture: object, size: int) -> np.ndarray:
    """Any picture the API accepts (path, PIL image, numpy array) as (size, size, 3) uint8.

    Everything a caller can hand over that is not a usable picture (None, a closed or
    empty PIL image, a 0-size or all-NaN array, a folder, an object of another type)
    raises ``ImageProblem`` with the reason, so a stream can turn it into an error row
    and go on with the next picture.
    """
    if picture is None:
        raise ImageProblem("no picture (None)")
    if isinstance(picture, (str, os.PathLike)):
        return load_square(picture, size)
    if isinstance(picture, Image.Image):
        return square(pil_to_rgb(picture), size)
    if isinstance(picture, np.ndarray):
        return square(array_to_rgb(picture), size)
    raise ImageProblem(f"cannot read a {type(picture).__name__} as a picture (give a path, a PIL image or an array)")


def array_to_rgb(array: np.ndarray) -> Image.Image:
    """A numpy picture (H, W), (H, W, 3) or (H, W, 4), uint8 or float in [0, 1], as RGB.

    An array without pixels, or a float array that is all NaN, raises ``ImageProblem``
    rather than becoming a black picture with a confident score. Scattered NaNs count as 0.
    """
    if array is None:
        raise ImageProblem("no picture (None)")
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageProblem(f"an image array must be (H, W) or (H, W, 3 or 4), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageProblem(f"the image array is empty (shape {a.shape})")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise ImageProblem(f"an image array must be uint8, or float in [0, 1]; got {a.dtype}")
        if np.isnan(a).all():
            raise ImageProblem(f"the image array is all NaN (shape {a.shape})")
        low, high = float(np.nanmin(a)), float(np.nanmax(a))
        if low < 0 or high > 1:
            raise ImageProblem(f"an image array must be uint8, or float in [0, 1]; got {a.dtype} "
                               f"in [{low:g}, {high:g}]")
        a = (np.nan_to_num(a) * 255 + 0.5).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    return to_rgb(Image.fromarray(a), None)
