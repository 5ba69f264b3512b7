"""Every awkward kind of file a published set holds decodes to RGB, or says why not."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from conftest import write_image
from picaffect.data.images import ImageProblem, load_rgb, load_square, prepare_picture


def test_plain_jpeg_resized_to_square(tmp_path):
    path = write_image(tmp_path / "a.jpg", size=(400, 320), color=(10, 200, 30))
    arr = load_square(path, 150)
    assert arr.shape == (150, 150, 3) and arr.dtype == np.uint8
    assert np.abs(arr.reshape(-1, 3).mean(0) - (10, 200, 30)).max() < 4


def test_jpeg_draft_decodes_at_reduced_scale(tmp_path):
    path = write_image(tmp_path / "big.jpg", size=(1600, 1200))
    assert load_rgb(path, 150).size == (200, 150)  # 1/8 scale, still at least 150 on each side
    assert load_rgb(path).size == (1600, 1200)


def test_cmyk_becomes_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("RGB", (32, 32), (250, 20, 20)).convert("CMYK").save(path)
    assert Image.open(path).mode == "CMYK"
    arr = load_square(path, 16)
    assert arr[..., 0].mean() > 200 and arr[..., 1].mean() < 60


def test_16_bit_greyscale_scaled_not_clipped(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.full((20, 20), 32768, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    arr = load_square(path, 10)
    assert 120 <= arr.mean() <= 135  # half of the 16-bit range is mid-grey, not white


def test_palette_with_transparency_on_white(tmp_path):
    im = Image.new("P", (10, 10), 0)
    im.putpalette([0, 0, 0] + [255, 0, 0] * 255)
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    arr = load_square(tmp_path / "p.png", 10)
    assert (arr == 255).all()  # fully transparent black shows as the white background


def test_rgba_alpha_and_greyscale_and_bilevel(tmp_path):
    Image.new("RGBA", (8, 8), (0, 0, 255, 0)).save(tmp_path / "rgba.png")
    write_image(tmp_path / "l.png", color=90, mode="L")
    write_image(tmp_path / "one.png", color=1, mode="1")
    assert (load_square(tmp_path / "rgba.png", 8) == 255).all()
    assert (load_square(tmp_path / "l.png", 8) == 90).all()
    assert (load_square(tmp_path / "one.png", 8) == 255).all()


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (12, 12), c) for c in ((0, 255, 0), (255, 0, 0))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    arr = load_square(tmp_path / "anim.gif", 12)
    assert arr[..., 1].mean() > 200 and arr[..., 0].mean() < 50


def test_exif_orientation_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    im.putpixel((0, 0), (255, 255, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    out = load_rgb(tmp_path / "rot.jpg")
    assert out.size == (20, 40)
    assert np.asarray(out)[0, -1].mean() > 150  # top-left pixel moved to the top-right


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"this is a text file, not a picture", "not an image"),
])
def test_unusable_files(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageProblem, match=reason):
        load_square(path, 16)


def test_truncated_jpeg(tmp_path):
    path = write_image(tmp_path / "t.jpg", size=(300, 300))
    data = (tmp_path / "t.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageProblem, match="truncated"):
        load_square(path, 64)


def test_missing_file(tmp_path):
    with pytest.raises(ImageProblem, match="not found"):
        load_square(tmp_path / "nowhere.jpg", 16)


def test_decompression_bomb(tmp_path, monkeypatch):
    path = write_image(tmp_path / "bomb.png", size=(200, 200))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ImageProblem, match="decompression-bomb"):
        load_square(path, 16)


def test_pillow_warnings_name_the_file(tmp_path):
    """A damaged EXIF block warns; the warning must say which of thousands of files it is about."""
    import struct
    import warnings

    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x010E, 2, 100, 1000) + struct.pack("<I", 0)
    path = tmp_path / "exif.jpg"
    Image.new("RGB", (20, 20), (9, 9, 9)).save(path, exif=b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arr = load_square(path, 8)
    assert arr.shape == (8, 8, 3)
    messages = [str(w.message) for w in caught]
    assert messages and all(m.startswith(f"{path}: ") for m in messages), messages
    assert any("tag" in m.lower() or "exif" in m.lower() for m in messages)


@pytest.mark.parametrize("make, reason", [
    (lambda p: p.symlink_to(p), "symlink loop"),
    (lambda p: p.symlink_to(p.parent / "gone.jpg"), "broken link"),
    (lambda p: os.mkfifo(p), r"not a regular file \(FIFO\)"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_files_that_are_not_pictures_give_the_true_reason(tmp_path, make, reason):
    path = tmp_path / "x.jpg"
    make(path)
    with pytest.raises(ImageProblem, match=reason) as info:
        load_square(path, 16)
    assert "truncated" not in str(info.value) and "corrupt" not in str(info.value)


def _closed() -> Image.Image:
    im = Image.new("RGB", (8, 8))
    im.close()
    return im


@pytest.mark.parametrize("picture, reason", [
    (None, r"no picture \(None\)"),
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((0, 5), np.float32), "empty"),
    (np.full((6, 6, 3), np.nan, np.float32), "all NaN"),
    (Image.new("RGB", (0, 0)), r"empty \(0 x 0 pixels\)"),
    (_closed(), "closed"),
    (np.zeros((4, 4, 3), np.int64), "must be uint8"),
    (np.full((4, 4, 3), 2.0), r"float in \[0, 1\]"),
    ({"not": "a picture"}, "cannot read a dict"),
])
def test_api_pictures_that_cannot_be_scored_raise_image_problem(picture, reason):
    with pytest.raises(ImageProblem, match=reason):
        prepare_picture(picture, 16)


def test_api_pictures_that_can_be_scored(tmp_path):
    assert prepare_picture(np.full((5, 7), 0.5, np.float32), 8).mean() == 128
    partly_nan = np.full((4, 4, 3), 0.5, np.float32)
    partly_nan[0, 0] = np.nan
    assert prepare_picture(partly_nan, 4).shape == (4, 4, 3)
    im = Image.new("RGB", (10, 10), (250, 0, 0))
    assert prepare_picture(im, 4)[0, 0].tolist() == [250, 0, 0] and im.size == (10, 10)
    assert prepare_picture(write_image(tmp_path / "a.png"), 4).shape == (4, 4, 3)
