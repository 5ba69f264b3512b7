"""The Lite ensemble (the shipped ``accurate`` model's architecture): members, in-graph resize, ONNX."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from picaffect import models
from picaffect.core.errors import UsageError
from picaffect.models.lite_ensemble import LiteEnsemble, parse_members, resize_matrix

SMALL = "lite0@64,lite0@48,lite1@56"


def test_resize_matrices_are_antialiased_bilinear():
    """Two products with the fixed matrix give what F.interpolate(antialias=True) gives (which ONNX lacks)."""
    x = torch.rand(2, 3, 64, 64)
    a = resize_matrix(64, 41)
    assert a.shape == (41, 64) and torch.allclose(a.sum(1), torch.ones(41), atol=1e-5)
    expected = F.interpolate(x, size=(41, 41), mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(a @ x @ a.T, expected, atol=1e-5)


def test_members_share_a_backbone_per_variant_and_concatenate_their_features():
    model = LiteEnsemble(members=SMALL, pretrained=None).eval()
    assert model.size == 64 and sorted(model.backbones) == ["lite0", "lite1"]
    alone = {v: b.head.width for v, b in model.backbones.items()}
    assert model.head.width == 2 * alone["lite0"] + alone["lite1"]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        # the second member is lite0 on the picture resized to 48 px: its slice is that backbone's features there
        small = F.interpolate(x, size=(48, 48), mode="bilinear", align_corners=False, antialias=True)
        lite0_48 = model.backbones["lite0"].forward_features(small)
    width = alone["lite0"]
    assert features.shape == (2, model.head.width, 1, 1)
    assert torch.allclose(features[:, width:2 * width], lite0_48, atol=1e-4)
    # one state dict entry per weight of each variant, not per member
    assert sum(k.startswith("backbones.lite0._conv_stem") for k in model.state_dict()) == 1


@pytest.mark.parametrize("members, why", [("lite3@240", "VARIANT@SIZE"), ("lite1@x", "VARIANT@SIZE"),
                                          ("lite1@16", "at least 32"), ("", "at least one member"),
                                          ("lite1@240,lite1@240", "repeat")])
def test_bad_members_are_usage_errors(members, why):
    with pytest.raises(UsageError, match=why):
        parse_members(members)
    with pytest.raises(UsageError):
        models.create("lite_ensemble", members=members, pretrained=None)


def test_only_imagenet_or_no_pretrained_weights():
    with pytest.raises(UsageError, match="'imagenet' or None"):
        LiteEnsemble(members="lite0@64", pretrained="weights.pt")


def test_onnx_export_scores_like_torch(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from picaffect.inference import ModelSpec, Predictor, model_record, save_atomic
    from picaffect.inference.onnx_export import export_onnx

    torch.manual_seed(0)
    model = LiteEnsemble(members=SMALL, pretrained=None).eval()
    spec = ModelSpec(architecture="lite_ensemble", size=64, arguments={"members": SMALL}, output_scale=4.0,
                     output_offset=5.0)
    ckpt = save_atomic(model_record(model, spec), tmp_path / "ens.pt")
    out = export_onnx(ckpt, tmp_path / "ens.onnx")
    x = np.random.default_rng(0).integers(0, 256, (3, 3, 64, 64)).astype(np.uint8)
    torch_p, onnx_p = Predictor.from_pretrained(ckpt, device="cpu"), Predictor.from_pretrained(out)
    assert onnx_p.backend_name == "onnx"
    np.testing.assert_allclose(onnx_p.score_images(x), torch_p.score_images(x), atol=1e-4, rtol=0)


def test_the_kernel_head_scores_as_the_fitted_kernel_ridge():
    """The head's float32 torch readout gives the numpy float64 kernel ridge's predictions (the shipped readout is
    the one the search measured)."""
    from picaffect.training.kernel_probe import fit_kernel_ridge, kernel_head

    g = np.random.default_rng(0)
    scales = g.uniform(0.1, 5, 6)  # features of very different scales; the targets bend in the standardised ones
    z = g.normal(size=(150, 6))
    x = z * scales
    y = np.column_stack([np.tanh(z[:, 0]) + z[:, 1] ** 2 / 4, np.cos(z[:, 2])]) + g.normal(0, 0.05, (150, 2))
    fitted, alphas, info = fit_kernel_ridge(x, y, np.arange(150).astype(str), components=4)
    assert fitted.basis.shape == (6, 4) and len(alphas) == 2 and info["cv_rmse"] < 0.8 * y.std(0).mean()
    head = kernel_head(fitted, alphas)
    new = g.normal(size=(7, 6)) * scales
    with torch.no_grad():
        scored = head(torch.from_numpy(new).float()[:, :, None, None]).numpy()
    np.testing.assert_allclose(scored, fitted.predict(new, alphas), atol=1e-3)


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory):
    """A built dataset of three learnable sources (brightness sets valence, redness arousal), 40 pictures each."""
    from conftest import build_three_sources

    return build_three_sources(tmp_path_factory.mktemp("three"), n=40)


def test_an_rbf_readout_trains_calibrates_exports_and_scores_alike_on_every_path(three_sources, tmp_path, capsys):
    """``ridge_readout: rbf`` end to end: the head's shapes in the checkpoint, better than the training mean on
    rows it never saw, its own kind of readout refitted to calibrate, fp32 kernel buffers in an fp16 export,
    and ONNX scoring as torch does."""
    import json

    from picaffect.app.cli import main
    from picaffect.data.dataset import RatedImages
    from picaffect.evaluation.evaluate import evaluate
    from picaffect.inference import Predictor, checkpoint
    from picaffect.training.engine import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(data=str(three_sources), model="lite_ensemble", out=str(run), recipe="ridge", size=64,
                      device="cpu", ridge_fit="train+test", ridge_readout="rbf",
                      model_options={"members": "lite0@64,lite0@48"}), progress=False)
    fitting_rows = len(RatedImages(three_sources, "train")) + len(RatedImages(three_sources, "test"))
    probe = json.loads((run / "probe.json").read_text())
    assert probe["readout"] == "rbf" and probe["support"] == fitting_rows and len(probe["alpha"]) == 2
    record = checkpoint.read(run / "best.pt")
    assert record["spec"]["arguments"]["readout"] == "rbf" and record["spec"]["arguments"]["support"] == fitting_rows
    result = evaluate(run, three_sources, split="validation", n_boot=50)["splits"]["validation"]["overall"]
    assert result["rmse"] < result["rmse_mean_baseline"]

    slim = tmp_path / "slim.pt"
    assert main(["export", str(run), str(slim)]) == 0
    weights = checkpoint.read(slim)["weights"]
    assert weights["head.kernel_dual"].dtype == torch.float32 and weights["head.kernel_support"].dtype == torch.float32
    assert weights["backbones.lite0._conv_stem.weight"].dtype == torch.float16

    out, onnx_path = tmp_path / "calibrated.pt", tmp_path / "calibrated.onnx"
    assert main(["calibrate", str(slim), "--data", str(three_sources), "--out", str(out), "--onnx", str(onnx_path),
                 "--constant", "--device", "cpu"]) == 0
    torch_p, onnx_p = Predictor.from_pretrained(out, device="cpu", backend="torch"), Predictor.from_pretrained(onnx_path)
    assert "RBF kernel ridge" in torch_p.calibration.info["protocol"]["description"]
    x = np.random.default_rng(1).integers(0, 256, (3, 3, 64, 64)).astype(np.uint8)
    assert onnx_p.backend_name == "onnx"
    np.testing.assert_allclose(onnx_p.score_images(x), torch_p.score_images(x), atol=1e-4, rtol=0)
    full = Predictor.from_pretrained(run, device="cpu", backend="torch")
    np.testing.assert_allclose(torch_p.score_images(x), full.score_images(x), atol=0.05)  # fp16 backbone only


def test_a_linear_model_refuses_an_rbf_readout_and_recalibration_is_linear_only(tmp_path):
    from picaffect.training.engine import TrainConfig

    with pytest.raises(UsageError, match="ridge_recalibrate is for the linear readout"):
        TrainConfig(data="d", model="lite_ensemble", out=str(tmp_path), recipe="ridge", ridge_readout="rbf",
                    ridge_recalibrate=True)
    with pytest.raises(UsageError, match="support >= 1"):
        LiteEnsemble(members="lite0@64", pretrained=None, readout="rbf")
    with pytest.raises(UsageError, match="unknown ensemble readout"):
        LiteEnsemble(members="lite0@64", pretrained=None, readout="cubic")
