"""Low-level picture features that reviewers of emotion studies ask stimulus sets to be matched on.

Affective picture databases publish them (NAPS: luminance, contrast, entropy per picture)
because luminance, contrast, colour and visual complexity drive arousal ratings and early
visual responses on their own. Every feature is computed the same way for ``build``
(stored in the manifest), ``picaffect predict --describe`` and ``Predictor.describe``: from
the decoded picture (EXIF-rotated, RGB, transparency on white: ``images.to_rgb``), brought
to a fixed working size: its longer side ``WORKING_SIDE`` (128) pixels, aspect kept, by
whole-number box averaging and then Pillow's bilinear filter (``resize`` with
``reducing_gap=1``). A fixed working size makes the values of a 300 px and a 4,000 px
picture comparable (compressed size and edge density depend on the number of pixels).

The picture is decoded once, for the model (or the dataset) and the features together:
JPEGs are decoded with libjpeg's reduced-scale decoding (``Image.draft``) at no less
than the model's or the dataset's side, and never below the working size (a file that
would be is decoded again at the working size). A large JPEG can therefore give
slightly different values in a dataset built at another size; the default model and a
dataset built at the same side give the same.

Columns (``FEATURE_COLUMNS``), with their formulas:

``width``, ``height``
    The picture's own size in pixels, after EXIF rotation (not the working size).
``aspect``
    width / height.
``greyscale``
    True when at most ``GREY_SHARE`` (1 %) of the working picture's pixels have channels
    that differ by more than ``GREY_SPREAD`` (12 of 255) levels: a greyscale or black-and-white
    picture, even when saved as a JPEG in RGB (whose chroma noise stays below that).
``luminance``
    Mean CIELAB L* (0 black .. 100 white). sRGB values are linearised (IEC 61966-2-1),
    relative luminance Y = 0.2126 R + 0.7152 G + 0.0722 B (sRGB primaries, D65 white,
    ITU-R BT.709), L* = 116 f(Y) - 16 with f(t) = t^(1/3) above (6/29)^3 and
    t / (3 (6/29)^2) + 4/29 below (CIE 1976; CIE 15:2004).
``contrast``
    Standard deviation of L* over the pixels (the population SD, ddof 0): luminance
    contrast on a perceptual scale, as NAPS reports it (Marchewka et al. 2014).
``rms_contrast``
    RMS contrast of relative luminance: SD(Y) / mean(Y) (Peli 1990; Bex & Makous 2002;
    Frazor & Geisler 2006); 0 for a black picture. Unlike ``contrast`` it is relative to
    the picture's mean light level (Weber-like) and on linear light.
``colourfulness``
    Hasler & Süsstrunk (2003), "Measuring colourfulness in natural images", on the sRGB
    values 0..255: rg = R - G, yb = (R + G) / 2 - B,
    M = sqrt(SD(rg)^2 + SD(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)
    (population SDs). 0 for any grey picture; about 15 "slightly", 33 "moderately",
    45 "averagely", 59 "quite", 82 "highly" colourful on their scale.
``complexity``
    Compressed size per pixel: the bytes of the working picture saved as a JPEG at
    quality ``JPEG_QUALITY`` (75; Pillow with libjpeg, 4:2:0 chroma subsampling, standard
    tables, no metadata) divided by its pixels. Compression removes what is predictable,
    so detailed, cluttered pictures need more bytes (Donderi 2006; Marin & Leder 2013;
    Machado et al. 2015 on JPEG size as a measure of visual complexity). The JPEG's fixed
    headers (a few hundred bytes) are included, so a flat picture has a small positive value.
``edge_density``
    Share of the working picture's pixels whose Sobel gradient magnitude on L*, divided
    by 8 so that it is in L* units per pixel (a ramp rising 1 L* per pixel gives 1), is above
    ``EDGE_THRESHOLD`` (5 L* per pixel: a step of more than 10 L* between neighbours). The
    picture's edge is extended by repeating its border pixels. Edge density is a common
    measure of visual clutter (Rosenholtz, Li & Nakano 2007) and complexity.

Only numpy and Pillow are needed, so ``predict --describe`` works in a scoring-only install.
"""
from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np
from PIL import Image

from .images import ImageProblem, array_to_rgb, load_rgb, load_rgb_sized, pil_to_rgb, square

WORKING_SIDE = 128      # pixels on the longer side of the picture the features are computed from
EDGE_THRESHOLD = 5.0    # L* per pixel (Sobel magnitude / 8) above which a pixel counts as an edge
GREY_SPREAD = 12        # levels of 255 by which a pixel's channels may differ and it still counts as grey
GREY_SHARE = 0.01       # share of pixels allowed to be more colourful than GREY_SPREAD in a greyscale picture
JPEG_QUALITY = 75       # quality of the JPEG whose size measures complexity

FEATURE_COLUMNS = ("width", "height", "aspect", "greyscale", "luminance", "contrast", "rms_contrast",
                   "colourfulness", "complexity", "edge_density")
NUMERIC_FEATURES = tuple(c for c in FEATURE_COLUMNS if c != "greyscale")

# sRGB code value (0..255) -> linear light (0..1), IEC 61966-2-1, and each channel's share of Y (one table per
# channel: three lookups on contiguous planes cost less than a lookup of every value and a product with the weights).
_CODES = np.arange(256) / 255.0
_LINEAR = np.where(_CODES <= 0.04045, _CODES / 12.92, ((_CODES + 0.055) / 1.055) ** 2.4)
_Y_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])
_Y_SHARES = (_Y_WEIGHTS[:, None] * _LINEAR[None, :]).astype(np.float32)  # float32: half the memory traffic
_EPSILON = (6 / 29) ** 3
_KAPPA = 116 / (3 * (6 / 29) ** 2)   # 903.3: L* per unit of Y below _EPSILON


def channel_planes(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) uint8, each channel contiguous: every feature reads the channels apart."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(rgb, dtype=np.uint8), -1, 0))


def lightness(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sRGB channel planes (``channel_planes``) -> (relative luminance Y on 0..1, CIELAB L* on 0..100), each
    (H, W) float32."""
    y = np.take(_Y_SHARES[0], planes[0])
    y += np.take(_Y_SHARES[1], planes[1])
    y += np.take(_Y_SHARES[2], planes[2])
    lstar = np.where(y > _EPSILON, 116 * np.cbrt(y) - 16, _KAPPA * y).astype(np.float32, copy=False)
    return y, lstar


def mean_sd(values: np.ndarray) -> tuple[float, float]:
    """The mean and population SD (ddof 0) of an array, summed pairwise (as numpy does) and centred before
    squaring, so that a flat picture gives 0. Fewer passes than numpy's ``mean`` and ``std``, and no BLAS call
    (``np.dot`` starts BLAS threads, which spin on a busy machine and cost more than the sum at these sizes)."""
    flat = values.ravel()
    mean = float(flat.sum()) / flat.size
    centred = flat - mean
    centred *= centred
    return mean, math.sqrt(float(centred.sum()) / flat.size)


def _sobel(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Sobel derivatives (x, y) of a (H, W) array, unscaled, with the border extended by repeating its pixels;
    separable: smooth [1, 2, 1] across, difference [-1, 0, 1] along."""
    h, w = image.shape
    p = np.empty((h + 2, w + 2), np.float32)
    p[1:-1, 1:-1] = image
    p[0, 1:-1], p[-1, 1:-1] = image[0], image[-1]
    p[:, 0], p[:, -1] = p[:, 1], p[:, -2]
    down = p[:-2] + 2 * p[1:-1] + p[2:]            # (h, w + 2): smoothed down the columns
    across = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # (h + 2, w): smoothed along the rows
    return down[:, 2:] - down[:, :-2], across[2:] - across[:-2]


def edge_share(lstar: np.ndarray) -> float:
    """The share of pixels whose Sobel magnitude / 8 exceeds ``EDGE_THRESHOLD`` (compared squared: no root)."""
    gx, gy = _sobel(lstar)
    return float(np.count_nonzero(gx * gx + gy * gy > (8 * EDGE_THRESHOLD) ** 2)) / lstar.size


def colourfulness(planes: np.ndarray) -> float:
    """Hasler & Süsstrunk's (2003) M on sRGB channel planes (``channel_planes``), values 0..255."""
    r, g, b = planes.astype(np.float32)
    mean_rg, sd_rg = mean_sd(r - g)
    mean_yb, sd_yb = mean_sd(0.5 * (r + g) - b)
    return math.hypot(sd_rg, sd_yb) + 0.3 * math.hypot(mean_rg, mean_yb)


def jpeg_bytes_per_pixel(rgb: np.ndarray) -> float:
    """The size of (H, W, 3) uint8 saved as a JPEG at quality ``JPEG_QUALITY``, in bytes per pixel."""
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.tell() / (rgb.shape[0] * rgb.shape[1])


def is_greyscale(planes: np.ndarray) -> bool:
    """Whether no more than ``GREY_SHARE`` of the pixels have channels more than ``GREY_SPREAD`` levels apart
    (on channel planes, ``channel_planes``)."""
    r, g, b = planes
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # uint8, max >= min: no wrap
    return bool(np.count_nonzero(spread > GREY_SPREAD) <= GREY_SHARE * spread.size)


def pixel_features(rgb: np.ndarray) -> dict[str, Any]:
    """The features of a (H, W, 3) uint8 picture as it is (no resizing): every column but the size ones."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    planes = channel_planes(rgb)
    y, lstar = lightness(planes)
    mean_y, sd_y = mean_sd(y)
    mean_l, sd_l = mean_sd(lstar)
    return {
        "greyscale": is_greyscale(planes),
        "luminance": mean_l,
        "contrast": sd_l,
        "rms_contrast": sd_y / mean_y if mean_y > 0 else 0.0,
        "colourfulness": colourfulness(planes),
        "complexity": jpeg_bytes_per_pixel(rgb),
        "edge_density": edge_share(lstar),
    }


def working_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) with the longer side ``WORKING_SIDE`` and the aspect kept (each side at least 1)."""
    scale = WORKING_SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def working_picture(image: Image.Image) -> np.ndarray:
    """An RGB image at the working size, as (H, W, 3) uint8: whole-number box averaging, then bilinear."""
    target = working_size(*image.size)
    if image.size != target:
        image = image.resize(target, Image.BILINEAR, reducing_gap=1.0)
    return np.asarray(image, dtype=np.uint8)


def image_features(image: Image.Image, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The features of an RGB image; ``size`` is the picture's own (width, height) when ``image`` was decoded
    at a reduced scale (default: the image's size)."""
    width, height = size or image.size
    row = {"width": int(width), "height": int(height), "aspect": width / height}
    row.update(pixel_features(working_picture(image)))
    return rounded(row)


def rounded(row: dict[str, Any]) -> dict[str, Any]:
    """Floats to 4 decimals, as the ratings in picaffect's rows are (plenty for features that vary in the 2nd)."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def empty_features() -> dict[str, Any]:
    """The feature columns of a picture that could not be read: every value None."""
    return dict.fromkeys(FEATURE_COLUMNS)


# -- files ------------------------------------------------------------------------------------------------------------

def file_features(path: str | os.PathLike, side: int = WORKING_SIDE) -> dict[str, Any]:
    """The features of the picture file ``path``, decoded as for a model of ``side`` pixels."""
    return _decoded_features(path, *load_rgb_sized(path, side))


def _decoded_features(path: str | os.PathLike, image: Image.Image, size: tuple[int, int]) -> dict[str, Any]:
    """The features of ``path`` from its decode ``image`` (``load_rgb_sized``) and its own ``size``: the decode is
    used unless JPEG's reduced-scale decoding took it below the working size while the file is larger (then the
    file is decoded again at the working size)."""
    if max(image.size) < min(max(size), WORKING_SIDE):
        image = load_rgb(path, WORKING_SIDE)
    return image_features(image, size)


def decode_with_features(path: str | os.PathLike, size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """One decode of ``path`` for two uses: the (size, size, 3) uint8 square the model or a dataset cache takes
    (exactly ``images.load_square(path, size)``) and the picture's features."""
    image, own = load_rgb_sized(path, size)
    return square(image, size), _decoded_features(path, image, own)


def picture_features(picture: Any, side: int = WORKING_SIDE) -> dict[str, Any]:
    """The features of any picture the API accepts: a path, a PIL image or a numpy array.

    ``side``: a file is decoded as for a model of that input side (``Predictor.describe``
    passes its model's, so that its values are those ``predict --describe`` gives).
    ``ImageProblem`` says why a picture cannot be read (as ``Predictor.predict`` does).
    """
    if picture is None:
        raise ImageProblem("no picture (None)")
    if isinstance(picture, (str, os.PathLike)):
        return file_features(picture, side)
    if isinstance(picture, Image.Image):
        return image_features(pil_to_rgb(picture))
    if isinstance(picture, np.ndarray):
        return image_features(array_to_rgb(picture))
    raise ImageProblem(f"cannot read a {type(picture).__name__} as a picture (give a path, a PIL image or an array)")


def prepared_with_features(picture: Any, size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Any picture the API accepts as the model's (size, size, 3) uint8 square and its features, decoded once."""
    if picture is None:
        raise ImageProblem("no picture (None)")
    if isinstance(picture, (str, os.PathLike)):
        return decode_with_features(picture, size)
    if isinstance(picture, Image.Image):
        image = pil_to_rgb(picture)
    elif isinstance(picture, np.ndarray):
        image = array_to_rgb(picture)
    else:
        raise ImageProblem(f"cannot read a {type(picture).__name__} as a picture (give a path, a PIL image or an "
                           f"array)")
    return square(image, size), image_features(image)
