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
