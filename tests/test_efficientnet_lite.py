"""EfficientNet-Lite1 and -Lite2 (and Lite0 again): one implementation, the shipped ImageNet
weights load by name, agree with the reference code's logits and classify real photos."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import sklearn_photo

from picaffect.core.errors import UsageError
from picaffect.models import create
from picaffect.models.efficientnet_lite import VARIANTS, load_shipped_state_dict, round_filters

BUILDINGS = {442, 449, 483, 497, 538, 663, 668, 698, 832, 858}  # bell cote ... tile roof
DAISY = 985
# flower.jpg, a pink blossom close up: Lite0 and Lite1 name "daisy" in their top 5; Lite2's top 5 is honeycomb,
# bee, ant, rose hip, ... (measured), so for the photo's sanity check a flower or a pollinator is enough.
FLOWERISH = {DAISY, 989, 309}  # daisy, rose hip, bee
VARIANT_NAMES = ("lite0", "lite1", "lite2")
# (blocks, channels of the seven stages, backbone parameters without _fc and our head)
EXPECTED = {"lite0": (16, (16, 24, 40, 80, 112, 192, 320), 3_371_008),
            "lite1": (21, (16, 24, 40, 80, 112, 192, 320), 4_135_680),
            "lite2": (21, (16, 24, 48, 88, 120, 208, 352), 4_811_072)}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _weights_installed(variant: str) -> bool:
    try:
        __import__(VARIANTS[variant].package)
        return True
    except ImportError:
        return False


def _need(variant: str) -> None:
    if not _weights_installed(variant):
        pytest.skip(f"{VARIANTS[variant].distribution} is not installed")


def test_scaling_rules():
    assert [round_filters(c, 1.1) for c in (16, 24, 40, 80, 112, 192, 320)] == list(EXPECTED["lite2"][1])
    for name, (blocks, channels, _) in EXPECTED.items():
        stages = VARIANTS[name].stages()
        assert tuple(s[4] for s in stages) == channels
        assert sum(s[0] for s in stages) == blocks
        assert stages[0][0] == 1 and stages[-1][0] == 1  # first and last stage are never deepened


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_shipped_weights_load_exactly(variant):
    _need(variant)
    model = create(f"efficientnet_{variant}").eval()
    state = load_shipped_state_dict(variant)
    own = model.state_dict()
    backbone = {k for k in state if not k.startswith("_fc.")}
    assert set(own) - backbone == {"head.fc.weight", "head.fc.bias", "normalize.mean", "normalize.std"}
    assert all(torch.equal(own[k], state[k]) for k in backbone)
    assert sum(p.numel() for n, p in model.named_parameters() if not n.startswith("head.")) == EXPECTED[variant][2]
    assert model.num_blocks == EXPECTED[variant][0]


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_logits_match_the_reference_code(variant):
    """The reference ``efficientnet_lite_pytorch`` with the same weights gives the same ImageNet logits."""
    _need(variant)
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    ref = reference.EfficientNet.from_name(f"efficientnet-{variant}")
    state = load_shipped_state_dict(variant)
    ref.load_state_dict(state)
    ref.eval()
    ours = create(f"efficientnet_{variant}").eval()
    side = VARIANTS[variant].resolution
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref(ours.normalize(x))
        pooled = ours.forward_head(ours.forward_features(x), pre_logits=True)
        got = F.linear(pooled, state["_fc.weight"], state["_fc.bias"])
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


@pytest.mark.parametrize("variant", ("lite1", "lite2"))
def test_imagenet_predictions_on_real_photos(variant):
    _need(variant)
    model = create(f"efficientnet_{variant}").eval()
    state = load_shipped_state_dict(variant)
    side = VARIANTS[variant].resolution
    with torch.no_grad():
        def probabilities(x):
            pooled = model.forward_head(model.forward_features(x), pre_logits=True)
            return F.linear(pooled, state["_fc.weight"], state["_fc.bias"]).softmax(1)[0]
        china = probabilities(sklearn_photo("china.jpg", side))
        flower = probabilities(sklearn_photo("flower.jpg", side))
    top5 = china.topk(5).indices.tolist()
    assert top5[0] in BUILDINGS and len(set(top5) & BUILDINGS) >= 3, top5
    assert set(flower.topk(5).indices.tolist()) & FLOWERISH


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_stage_features(variant):
    """features="stages": the pooled output of every resolution stage and of the head, concatenated."""
    _need(variant)
    last = create(f"efficientnet_{variant}").eval()
    stages = create(f"efficientnet_{variant}", features="stages").eval()
    channels = EXPECTED[variant][1]
    assert stages.head.width == 1280 + channels[0] + channels[1] + channels[2] + channels[4] + channels[6]
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pooled = stages.forward_head(stages.forward_features(x), pre_logits=True)
        assert pooled.shape == (2, stages.head.width)
        # The last 1280 are the ordinary pooled head features.
        assert torch.allclose(pooled[:, -1280:], last.forward_head(last.forward_features(x), pre_logits=True),
                              atol=1e-5)
        assert stages(x).shape == (2, 2)
    with pytest.raises(UsageError, match="features must be"):
        create(f"efficientnet_{variant}", pretrained=None, features="middle")


def test_freeze_counts_the_variants_blocks():
    m = create("efficientnet_lite2", pretrained=None, freeze="top:21")
    assert all(p.requires_grad for n, p in m.named_parameters() if n.startswith("_blocks."))
    assert not m._conv_stem.weight.requires_grad
    with pytest.raises(UsageError, match="0 <= N <= 21"):
        create("efficientnet_lite1", pretrained=None, freeze="top:22")
