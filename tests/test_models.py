"""The thesis's four CNNs: architecture, parameter counts, output shapes, and loading
torchvision / timm ImageNet state dicts."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from picaffect import models
from picaffect.models.emosepar import Emosepar
from picaffect.models.layers import KerasBatchNorm2d, SeparableConv2d
from picaffect.core.errors import WeightsError
from picaffect.models.weights import load_weights

BIG = ["vgg16", "inception_v3", "xception"]


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def running_stats(module: nn.Module) -> int:
    return sum(b.numel() for name, b in module.named_buffers()
               if name.endswith(("running_mean", "running_var")))


def backbone_params(model: nn.Module) -> int:
    return trainable(model) - trainable(model.head)


@pytest.fixture(scope="module")
def big_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {name: models.create(name).eval() for name in BIG}


# ---------------------------------------------------------------- Emosepar

def test_emosepar_layer_sequence():
    seq = [type(m) for m in Emosepar().body]
    conv, bn, relu, pool, sep = nn.Conv2d, KerasBatchNorm2d, nn.ReLU, nn.MaxPool2d, SeparableConv2d
    block = [sep, bn, relu, sep, bn]
    assert seq == [conv, bn, relu, pool] + block + [pool] + block + [pool] + block
    head = Emosepar().head
    assert isinstance(head.pool, nn.AdaptiveAvgPool2d)
    assert isinstance(head.dropout, nn.Dropout) and head.dropout.p == 0.5
    assert (head.fc.in_features, head.fc.out_features) == (512, 2)


def test_emosepar_separable_convs_and_bn_like_keras():
    model = Emosepar()
    seps = [m for m in model.modules() if isinstance(m, SeparableConv2d)]
    assert [s.pointwise.out_channels for s in seps] == [128, 128, 256, 256, 512, 512]
    for s in seps:
        assert s.conv1.groups == s.conv1.in_channels and s.conv1.bias is None
        assert s.conv1.kernel_size == (3, 3) and s.conv1.padding == (0, 0)
        assert s.pointwise.kernel_size == (1, 1) and s.pointwise.bias is not None
    assert model.body[0].bias is None
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert (m.eps, m.momentum) == (1e-3, 0.01)


def test_emosepar_spatial_sizes_counts_and_output():
    model = Emosepar().eval()
    sizes: list[int] = []
    hooked = [m for m in model.body if isinstance(m, (nn.Conv2d, nn.MaxPool2d, SeparableConv2d))]
    handles = [m.register_forward_hook(lambda mod, inp, out: sizes.append(out.shape[-1])) for m in hooked]
    with torch.no_grad():
        out = model(torch.randn(2, 3, 150, 150))
    for h in handles:
        h.remove()
    assert sizes == [148, 73, 71, 69, 34, 32, 30, 14, 12, 10]
    assert trainable(model) == 531_138
    assert running_stats(model) == 3_648
    assert out.shape == (2, 2)


def test_emosepar_options():
    model = Emosepar(dropout=0.0, num_outputs=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 150, 150)).shape == (1, 3)
    with pytest.raises(TypeError):
        Emosepar(0.5)  # keyword-only, like every model


@pytest.mark.parametrize("name", models.names())
def test_every_model_splits_features_and_head_the_same_way(name):
    import inspect

    cls = models.model_class(name)
    params = inspect.signature(cls).parameters
    assert {"num_outputs", "dropout", "pretrained"} <= set(params)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    model = models.create(name, pretrained=None, num_outputs=3).eval()
    x = torch.rand(2, 3, 96, 96) if name != "inception_v3" else torch.rand(2, 3, 150, 150)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        assert features.ndim == 4 and pooled.shape == (2, features.shape[1])
        assert torch.allclose(model.forward_head(features), model(x), atol=1e-5)
        assert model(x).shape == (2, 3)


def test_unknown_model_or_option_is_a_usage_error():
    from picaffect.core.errors import UsageError

    with pytest.raises(UsageError, match="unknown model 'resnet'"):
        models.create("resnet")
    with pytest.raises(UsageError, match="no option in_chans"):
        models.create("emosepar", in_chans=1)


# ---------------------------------------------------------------- the big three

def test_registry_builds_all_four():
    assert {"emosepar", *BIG} <= set(models.names())
    assert isinstance(models.create("emosepar"), Emosepar)


@pytest.mark.parametrize("name", BIG)
def test_big_models_output_at_150(big_models, name):
    with torch.no_grad():
        assert big_models[name](torch.randn(1, 3, 150, 150)).shape == (1, 2)


def test_vgg16_backbone_count_and_layout(big_models):
    model = big_models["vgg16"]
    assert backbone_params(model) == 14_714_688  # Keras VGG16(include_top=False)
    conv_idx = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    assert conv_idx == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_inception_v3_backbone_count_and_names(big_models):
    model = big_models["inception_v3"]
    # Keras InceptionV3(include_top=False): 21,768,352 trainable + 34,432 BN statistics;
    # Keras's BN has no gamma, torchvision's (and ours) has: + 17,216 (one per BN channel).
    bn_channels = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert bn_channels == 17_216
    assert backbone_params(model) == 21_768_352 + bn_channels
    assert running_stats(model) == 34_432
    keys = model.state_dict()
    for key in ("Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_var", "Mixed_5b.branch5x5_1.conv.weight",
                "Mixed_6e.branch7x7dbl_5.bn.weight", "Mixed_7c.branch3x3dbl_3b.conv.weight"):
        assert key in keys
    assert not any(k.startswith(("AuxLogits", "fc.")) for k in keys)


def test_xception_backbone_count_and_names(big_models):
    model = big_models["xception"]
    # Keras Xception(include_top=False): 20,861,480 = 20,806,952 trainable + 54,528 BN statistics.
    assert backbone_params(model) == 20_806_952
    assert backbone_params(model) + running_stats(model) == 20_861_480
    keys = model.state_dict()
    for key in ("conv1.weight", "bn2.running_mean", "block1.rep.0.conv1.weight", "block1.skip.weight",
                "block1.skipbn.weight", "block4.rep.1.pointwise.weight", "block12.rep.4.pointwise.weight",
                "conv3.conv1.weight", "conv4.pointwise.weight", "bn4.bias"):
        assert key in keys
    assert "block4.skip.weight" not in keys


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("vgg16", 224), ("inception_v3", 299), ("xception", 299)])
def test_big_models_native_size(big_models, name, size):
    with torch.no_grad():
        assert big_models[name](torch.randn(1, 3, size, size)).shape == (1, 2)


# ---------------------------------------------------------------- pretrained loading

def fake_imagenet_state_dict(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """Our backbone's keys (they are torchvision's / timm's), fresh random values, plus
    the other library's 1000-way classifier keys."""
    torch.manual_seed(1)
    state = {k: (torch.randn_like(v) if v.is_floating_point() else v.clone())
             for k, v in model.state_dict().items() if not k.startswith(("head.", "normalize."))}
    if name == "vgg16":  # torchvision: classifier.0 / .3 / .6 (reduced sizes: never loaded)
        state |= {"classifier.0.weight": torch.randn(16, 512), "classifier.6.weight": torch.randn(1000, 16),
                  "classifier.6.bias": torch.randn(1000)}
    elif name == "inception_v3":  # torchvision
        state |= {"AuxLogits.conv0.conv.weight": torch.randn(128, 768, 1, 1),
                  "AuxLogits.fc.weight": torch.randn(1000, 768),
                  "fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)}
    else:  # timm legacy xception
        state |= {"fc.weight": torch.randn(1000, 2048), "fc.bias": torch.randn(1000)}
    return state


@pytest.mark.parametrize("name", BIG)
def test_load_weights(tmp_path, name):
    model = models.create(name)
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    state = fake_imagenet_state_dict(name, model)
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)

    report = load_weights(model, path)

    ours = model.state_dict()
    assert report.skipped and all(k.startswith(("classifier.", "fc.", "AuxLogits.")) for k in report.skipped)
    assert set(report.loaded) == {k for k in ours if not k.startswith(("head.", "normalize."))}
    for key in report.loaded:
        assert torch.equal(ours[key], state[key]), key
    for key, value in model.head.state_dict().items():
        assert torch.equal(value, head_before[key]), key
    assert not report.missing and not report.unexpected and not report.mismatched


def test_load_imagenet_weights_errors_name_the_key():
    model = models.create("xception")
    state = fake_imagenet_state_dict("xception", model)

    wrong = dict(state)
    wrong["block5.rep.1.pointwise.weight"] = torch.randn(728, 727, 1, 1)
    with pytest.raises(WeightsError, match=r"mismatched shapes: block5\.rep\.1\.pointwise\.weight"):
        load_weights(model, wrong)

    missing = dict(state)
    del missing["bn3.running_var"]
    with pytest.raises(WeightsError, match=r"missing keys: bn3\.running_var"):
        load_weights(model, missing)

    extra = dict(state) | {"block13.rep.0.conv1.weight": torch.randn(1)}
    with pytest.raises(WeightsError, match=r"unexpected keys: block13\.rep\.0\.conv1\.weight"):
        load_weights(model, extra)


def test_load_imagenet_weights_lenient_and_wrapped():
    model = models.create("vgg16")
    before = model.features[0].weight.clone()
    state = fake_imagenet_state_dict("vgg16", model)
    del state["features.28.bias"]
    report = load_weights(model, {"state_dict": state}, strict_backbone=False)
    assert report.missing == ["features.28.bias"]
    assert torch.equal(model.features[0].weight, state["features.0.weight"])
    assert not torch.equal(model.features[0].weight, before)


def test_pretrained_constructor_option(tmp_path):
    donor = models.create("vgg16")
    path = tmp_path / "vgg16.pth"
    torch.save(fake_imagenet_state_dict("vgg16", donor), path)
    model = models.create("vgg16", pretrained=str(path))
    assert torch.equal(model.features[28].weight, torch.load(path, weights_only=True)["features.28.weight"])
    # the ImageNet input scaling comes with the weights; a model from scratch leaves inputs alone
    assert torch.allclose(model.normalize.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(donor.normalize(x), x)


def test_keras_batch_norm_running_statistics_are_not_biased_by_their_start():
    """Issue 10: Keras starts the running variance at 1 and moves it 1 % a batch, so with Emosepar's pre-BN
    variances of ~0.01 an evaluation after a few hundred steps divided by the wrong variance. Ours average
    the batches seen until there are 1 / momentum of them, then follow Keras's moving average."""
    from picaffect.models.layers import KerasBatchNorm2d, batch_norm, set_bn_momentum

    torch.manual_seed(0)
    bn = batch_norm(4)
    assert isinstance(bn, KerasBatchNorm2d) and bn.eps == 1e-3 and bn.momentum == 0.01
    batches = [0.1 * torch.randn(8, 4, 5, 5) + 2.0 for _ in range(3)]
    bn.train()
    for x in batches:
        out = bn(x)
    # training mode normalises by the batch's own statistics, exactly as nn.BatchNorm2d does
    ref = torch.nn.functional.batch_norm(batches[-1], None, None, training=True, eps=1e-3)
    assert torch.allclose(out, ref, atol=1e-5)
    # after 3 batches: their plain average, not 97 % of the initial 0 / 1
    mean = torch.stack([x.mean(dim=(0, 2, 3)) for x in batches]).mean(0)
    var = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in batches]).mean(0)
    assert torch.allclose(bn.running_mean, mean, atol=1e-5) and torch.allclose(bn.running_var, var, atol=1e-5)
    # past 1 / momentum batches the update weight is the momentum
    bn.num_batches_tracked.fill_(1000)
    before = bn.running_mean.clone()
    bn(batches[0])
    assert torch.allclose(bn.running_mean, 0.99 * before + 0.01 * batches[0].mean(dim=(0, 2, 3)), atol=1e-5)
    set_bn_momentum(bn, 0.1)
    assert bn.momentum == 0.1
