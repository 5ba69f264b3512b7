"""Picture features checked against independent computations (scikit-image's CIELAB, scipy's Sobel, the published
formulas by hand) on synthetic pictures: a flat grey, a checkerboard, pure-colour patches, noise."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from picaffect.data.images import load_square
from picaffect.data.picture_features import (EDGE_THRESHOLD, FEATURE_COLUMNS, JPEG_QUALITY, WORKING_SIDE,
                                             decode_with_features, picture_features, working_size)

color = pytest.importorskip("skimage.color")
ndimage = pytest.importorskip("scipy.ndimage")


LAB = 0.02  # L*: scikit-image derives Y's weights from the primaries (0.212671, ...), the sRGB standard rounds them


def lab_lightness(rgb: np.ndarray) -> np.ndarray:
    """CIELAB L* by scikit-image (D65, 2 degree observer), float64."""
    return color.rgb2lab(rgb.astype(np.float64) / 255)[..., 0]


def checkerboard(cell: int, cells: int, low=(0, 0, 0), high=(255, 255, 255)) -> np.ndarray:
    squares = np.indices((cells, cells)).sum(axis=0) % 2
    mask = np.kron(squares, np.ones((cell, cell), int)).astype(bool)
    return np.where(mask[..., None], np.array(high, np.uint8), np.array(low, np.uint8)).astype(np.uint8)


def jpeg_size(rgb: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.tell()


def test_a_flat_grey_picture():
    grey = np.full((96, WORKING_SIDE, 3), 128, np.uint8)
    f = picture_features(grey)
    assert (f["width"], f["height"], f["aspect"], f["greyscale"]) == (128, 96, pytest.approx(4 / 3, abs=1e-4), True)
    assert f["luminance"] == pytest.approx(lab_lightness(grey).mean(), abs=LAB)
    assert f["luminance"] == pytest.approx(53.585, abs=1e-3)  # sRGB 128 is L* 53.585 in every colour table
    assert f["contrast"] == f["rms_contrast"] == f["colourfulness"] == f["edge_density"] == 0
    assert f["complexity"] == pytest.approx(jpeg_size(grey) / grey[..., 0].size, abs=1e-4)


def test_a_black_and_white_checkerboard():
    board = checkerboard(16, 8)  # 128 x 128, the working size: no resizing
    f = picture_features(board)
    lstar = lab_lightness(board)
    assert f["luminance"] == pytest.approx(lstar.mean(), abs=LAB) and f["luminance"] == pytest.approx(50, abs=1e-3)
    assert f["contrast"] == pytest.approx(lstar.std(), abs=LAB) and f["contrast"] == pytest.approx(50, abs=1e-3)
    assert f["rms_contrast"] == pytest.approx(1.0, abs=1e-4)  # luminance 0 or 1, half each: SD 0.5 / mean 0.5
    assert f["colourfulness"] == 0 and f["greyscale"] is True
    # Sobel by scipy on scikit-image's L*: the pixels on either side of the 7 inner borders of each direction
    gradient = np.hypot(ndimage.sobel(lstar, axis=0, mode="nearest"), ndimage.sobel(lstar, axis=1, mode="nearest")) / 8
    assert f["edge_density"] == pytest.approx((gradient > EDGE_THRESHOLD).mean(), abs=1e-4)
    assert f["edge_density"] == pytest.approx(1 - (1 - 14 / 128) ** 2, abs=1e-4)
    assert f["complexity"] > picture_features(np.full_like(board, 128))["complexity"]


def test_a_faint_checkerboard_has_no_edges_under_the_threshold():
    """Steps of 8 L* give a Sobel magnitude of 4 L* per pixel on each side: under the threshold of 5."""
    board = checkerboard(16, 8, low=(118, 118, 118), high=(137, 137, 137))
    step = np.ptp(lab_lightness(board))
    assert 7 < step < 10
    assert picture_features(board)["edge_density"] == 0


@pytest.mark.parametrize("rgb", [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 150, 40)])
def test_pure_colour_patches(rgb):
    patch = np.empty((64, 80, 3), np.uint8)
    patch[...] = rgb
    f = picture_features(patch)
    r, g, b = map(float, rgb)
    # Hasler & Suesstrunk with no spread: 0.3 * sqrt(mean_rg^2 + mean_yb^2)
    assert f["colourfulness"] == pytest.approx(0.3 * np.hypot(r - g, (r + g) / 2 - b), abs=1e-3)
    assert f["luminance"] == pytest.approx(lab_lightness(patch).mean(), abs=LAB)
    assert f["greyscale"] is False and f["contrast"] == 0 and f["edge_density"] == 0
    assert (f["width"], f["height"]) == (80, 64)


def test_noise_against_independent_formulas():
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (100, WORKING_SIDE, 3), dtype=np.uint8)
    f = picture_features(noise)
    lstar = lab_lightness(noise)
    y = color.rgb2xyz(noise.astype(np.float64) / 255)[..., 1]
    c = noise.astype(np.float64)
    rg, yb = c[..., 0] - c[..., 1], (c[..., 0] + c[..., 1]) / 2 - c[..., 2]
    assert f["luminance"] == pytest.approx(lstar.mean(), abs=LAB)
    assert f["contrast"] == pytest.approx(lstar.std(), abs=LAB)
    assert f["rms_contrast"] == pytest.approx(y.std() / y.mean(), abs=1e-3)
    assert f["colourfulness"] == pytest.approx(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()),
                                               abs=1e-2)
    assert f["complexity"] == pytest.approx(jpeg_size(noise) / (100 * WORKING_SIDE), abs=1e-4)
    assert f["complexity"] > 5 * picture_features(checkerboard(16, 8))["complexity"]
    assert f["greyscale"] is False


def test_a_greyscale_photograph_saved_as_an_rgb_jpeg_counts_as_greyscale(tmp_path):
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (150, 200, 1), dtype=np.uint8), 3, axis=2)
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=85)
    assert picture_features(tmp_path / "grey.jpg")["greyscale"] is True
    tinted = grey.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 40, 0, 255)
    Image.fromarray(tinted).save(tmp_path / "tinted.jpg", quality=85)
    assert picture_features(tmp_path / "tinted.jpg")["greyscale"] is False


def test_size_is_the_picture_s_own_after_exif_rotation(tmp_path):
    assert working_size(400, 300) == (128, 96) and working_size(30, 3000) == (1, 128)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to show: a 400 x 300 file is a 300 x 400 picture
    Image.new("RGB", (400, 300), (10, 200, 30)).save(tmp_path / "turned.jpg", exif=exif.tobytes())
    f = picture_features(tmp_path / "turned.jpg")
    assert (f["width"], f["height"], f["aspect"]) == (300, 400, 0.75)


def test_one_decode_gives_the_model_s_pixels_and_the_features(tmp_path):
    """The square for the model is exactly load_square's; a large JPEG decoded at a small side (libjpeg's 1/8
    scale) is decoded again at the working size, so its features are those of the working decode."""
    rng = np.random.default_rng(1)
    big = np.kron(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), np.ones((20, 20, 1), np.uint8))
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=90)  # 1600 x 1200
    Image.fromarray(big[:30, :40]).save(tmp_path / "small.png")
    for path in (tmp_path / "big.jpg", tmp_path / "small.png"):
        for side in (8, 224):
            pixels, features = decode_with_features(path, side)
            assert (pixels == load_square(path, side)).all()
            assert set(features) == set(FEATURE_COLUMNS)
        assert decode_with_features(path, 8)[1] == picture_features(path)
    assert picture_features(tmp_path / "big.jpg")["width"] == 1600


def test_a_built_dataset_carries_the_features_of_its_pictures(tmp_path):
    from picaffect.data.build import build, SourceSpec

    root = tmp_path / "set"
    root.mkdir()
    rng = np.random.default_rng(2)
    lines = ["file,valence,arousal"]
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)).save(root / f"p{i}.png")
        lines.append(f"p{i}.png,{1 + i},{2 + i / 2}")
    lines.append("missing.png,4,4")
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    spec = SourceSpec("csv", root / "ratings.csv", "mine", {"path": "file", "valence": "valence",
                                                            "arousal": "arousal", "scale": "1,9"})
    report = build(tmp_path / "data", [spec], size=32, progress=False, plots=False)
    manifest = pd.read_parquet(tmp_path / "data" / "manifest.parquet")
    assert set(FEATURE_COLUMNS) <= set(manifest.columns)
    assert report["picture_features"]["columns"] == list(FEATURE_COLUMNS)
    ok = manifest[manifest.status == "ok"]
    assert len(ok) == 6 and manifest.loc[manifest.status != "ok", "luminance"].isna().all()
    for _, row in ok.iterrows():
        expected = picture_features(row["path"], 32)
        assert {c: row[c] for c in FEATURE_COLUMNS} == pytest.approx(expected)
    assert json.loads((tmp_path / "data" / "report.json").read_text())["picture_features"]["working_side"] == 128
    bare = build(tmp_path / "bare", [spec], size=32, progress=False, plots=False, features=False)
    assert "picture_features" not in bare
    assert "luminance" not in pd.read_parquet(tmp_path / "bare" / "manifest.parquet").columns


def test_predict_describe_adds_the_features_of_each_picture(tmp_path, capsys):
    from picaffect import Predictor
    from picaffect.app.cli import main

    rng = np.random.default_rng(4)
    Image.fromarray(checkerboard(16, 8)).save(tmp_path / "board.png")
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(tmp_path / "noise.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    predictor = Predictor.from_pretrained("default", device="cpu", workers=2)
    described = predictor.describe([tmp_path / "board.png", tmp_path / "noise.jpg"])
    assert described[0] == picture_features(tmp_path / "board.png")
    assert predictor.describe(tmp_path / "noise.jpg") == described[1]
    with pytest.raises(Exception, match="broken.jpg"):
        predictor.describe(tmp_path / "broken.jpg")
    out = tmp_path / "scores.csv"
    assert main(["predict", str(tmp_path), "--describe", "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index("path")
    assert list(table.columns[-len(FEATURE_COLUMNS) - 1:-1]) == list(FEATURE_COLUMNS)
    board = table.loc[str(tmp_path / "board.png")]
    assert board["edge_density"] == pytest.approx(described[0]["edge_density"])
    assert board["luminance"] == pytest.approx(50, abs=1e-3)
    assert table.loc[str(tmp_path / "noise.jpg"), "complexity"] == pytest.approx(described[1]["complexity"])
    broken = table.loc[str(tmp_path / "broken.jpg")]
    assert broken[list(FEATURE_COLUMNS)].isna().all() and "not an image" in broken["error"]
    plain = predictor.predict([tmp_path / "board.png"])[0]  # the ratings do not change with --describe
    assert (board["valence"], board["arousal"]) == pytest.approx((plain["valence"], plain["arousal"]), abs=1e-4)
    assert "picture features" in json.loads((tmp_path / "scores.csv.meta.json").read_text())["description"]
    assert main(["predict", str(tmp_path / "board.png"), "--describe", "--engine", "ray", "--out",
                 str(tmp_path / "ray")]) == 2
    assert "--describe works with --engine local" in capsys.readouterr().err
