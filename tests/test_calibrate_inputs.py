"""What a hostile pass on `calibrate`, `evaluate` and the Python API found (issue 33), each fixed and held here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import build_three_sources
from picaffect.app.cli import main
from picaffect.core.errors import UsageError
from picaffect.data.images import ImageProblem
from picaffect.inference.intervals import Calibration, check_level

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from picaffect import models
    from picaffect.inference import ModelSpec, model_record, save_atomic

    torch.manual_seed(0)
    model = models.create("emosepar").eval()
    spec = ModelSpec(architecture="emosepar", size=80, output_scale=4.0, output_offset=5.0)
    return save_atomic(model_record(model, spec), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def small_pictures(tmp_path_factory) -> Path:
    """Three sources built at 24 px: smaller than the 80 px the checkpoint reads."""
    return build_three_sources(tmp_path_factory.mktemp("three"), n=24)


def test_calibrate_refuses_an_onnx_file_or_a_table_saying_what_it_needs(checkpoint, small_pictures, tmp_path,
                                                                        capsys):
    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", str(checkpoint), str(onnx_path)]) == 0
    table = tmp_path / "scores.csv"
    table.write_text("path,valence,arousal\na.jpg,5,5\n")
    for model, what in ((onnx_path, "is an ONNX file"), (table, "is a text file (a table?)")):
        capsys.readouterr()
        assert main(["calibrate", str(model), "--data", str(small_pictures), "--out", str(tmp_path / "c.pt")]) == 2
        err = capsys.readouterr().err
        assert what in err and "give a .pt file, a training run folder or a shipped model's name" in err
        assert "Weights only" not in err and "PyTorch" not in err and not (tmp_path / "c.pt").exists()
    capsys.readouterr()
    assert main(["calibrate", str(checkpoint), "--out", str(tmp_path / "c.pt")]) == 2
    assert "calibrate needs --data DATASET" in capsys.readouterr().err


def test_evaluate_refuses_an_onnx_file_without_naming_an_option_it_lacks(checkpoint, small_pictures, tmp_path,
                                                                         capsys):
    onnx_path = tmp_path / "tiny.onnx"
    assert main(["export", str(checkpoint), str(onnx_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(onnx_path), "--data", str(small_pictures)]) == 2
    err = capsys.readouterr().err
    assert "evaluate scores with torch" in err and "the checkpoint (.pt)" in err and "--backend" not in err


def test_pictures_built_at_another_size_are_named_in_a_note(checkpoint, small_pictures, tmp_path, capsys):
    assert main(["evaluate", str(checkpoint), "--data", str(small_pictures), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "note:" in err and "built at 24 px" in err and "reads 80 px" in err and "--size 80" in err
    assert main(["calibrate", str(checkpoint), "--data", str(small_pictures), "--out", str(tmp_path / "c.pt"),
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "note: --data" in err and "built at 24 px" in err and "reads 80 px" in err


def test_levels_are_refused_with_the_right_words():
    with pytest.raises(UsageError) as e:
        check_level(1.5)
    assert "did you mean" not in str(e.value) and "strictly between 0 and 1" in str(e.value)
    with pytest.raises(UsageError, match=r"did you mean 0\.9\?"):
        check_level(90)
    calibration = Calibration(errors={"s": {"valence": (0.1,) * 50, "arousal": (0.2,) * 50}}, adaptive=False,
                              scheme="pooled")
    with pytest.raises(UsageError) as e:
        calibration.quantiles(0.999)
    assert "a 99.9 % interval needs at least 999 calibration rows" in str(e.value) and "100" not in str(e.value)


def test_a_bad_item_in_a_list_gets_a_row_naming_its_index(checkpoint, tmp_path):
    from PIL import Image

    from picaffect.inference import Predictor

    good = tmp_path / "good.png"
    Image.new("RGB", (30, 20), (200, 40, 40)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    array = np.full((20, 30, 3), 90, np.uint8)
    items = [str(good), str(broken), array, np.zeros((8, 8, 3), bool), None, str(tmp_path / "absent.png")]
    p = Predictor.from_pretrained(checkpoint, device="cpu", backend="torch")
    rows = p.predict(items)
    assert [r["error"] is None for r in rows] == [True, False, True, False, False, False]
    assert rows[0]["valence"] is not None and rows[2]["valence"] is not None
    assert rows[1]["error"].startswith(f"item 1 ({broken}): ") and rows[1]["valence"] is None
    assert rows[3]["error"].startswith("item 3 (an array): ") and "bool" in rows[3]["error"]
    assert rows[4]["error"] == "item 4 (None): no picture (None)"
    assert rows[5]["error"].startswith("item 5 (") and "absent.png" in rows[5]["error"]
    with pytest.raises(ImageProblem, match=r"^item 1 \("):
        p.predict(items, strict=True)
    with pytest.raises(ImageProblem):
        p.predict(str(broken))
