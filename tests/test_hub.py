"""Hugging Face backbones (``--model hub:...``), offline: tiny randomly initialised models that
the tests write with ``save_pretrained`` and load back from disk, as a user's hub download would be."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from picaffect.app.cli import main  # noqa: E402
from picaffect.core.errors import UsageError  # noqa: E402
from picaffect.inference import Predictor, checkpoint  # noqa: E402
from picaffect.models import create  # noqa: E402

TINY_VIT = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                patch_size=8)


def _save_clip(folder):
    """A whole two-tower CLIP (text + vision) with its image processor: picaffect takes the vision tower."""
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16),
        vision_config=TINY_VIT, projection_dim=8)
    torch.manual_seed(0)
    model = transformers.CLIPModel(config)
    model.save_pretrained(folder)
    transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder)
    return model


def _save(kind: str, folder):
    torch.manual_seed(0)
    if kind == "clip":
        return _save_clip(folder)
    if kind == "convnext":
        model = transformers.ConvNextModel(transformers.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1],
                                                                       num_stages=2, image_size=32))
    elif kind == "dinov2":
        model = transformers.Dinov2Model(transformers.Dinov2Config(**TINY_VIT))
    elif kind == "siglip":
        model = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(**TINY_VIT))
    else:
        raise AssertionError(kind)
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    for kind in ("clip", "convnext", "dinov2", "siglip"):
        _save(kind, root / kind)
    return root


@pytest.mark.parametrize("kind,backbone", [("clip", "CLIPVisionModel"), ("convnext", "ConvNextModel"),
                                           ("dinov2", "Dinov2Model"), ("siglip", "SiglipVisionModel")])
def test_hub_models_load_from_disk_and_rebuild_from_their_arguments(hub_dir, kind, backbone):
    model = create(f"hub:{hub_dir / kind}").eval()
    assert type(model.backbone).__name__ == backbone
    assert model.input_size == 32
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    assert y.shape == (3, 2) and pooled.shape == (3, model.width) == (3, 16)
    # What a checkpoint records rebuilds the same network with no access to the folder.
    arguments = json.loads(json.dumps(model.checkpoint_arguments()))  # plain data
    rebuilt = create("hub", **arguments, pretrained=None)
    rebuilt.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(rebuilt.eval()(x), y, atol=1e-6)


def test_clip_takes_the_vision_tower_weights_and_its_own_preprocessing(tmp_path):
    clip = _save_clip(tmp_path / "clip")
    model = create(f"hub:{tmp_path / 'clip'}")
    ours = dict(model.backbone.named_parameters())
    theirs = dict(clip.named_parameters())
    key = next(k for k in ours if k.endswith("patch_embedding.weight"))
    theirs_key = next(k for k in theirs if k.endswith("patch_embedding.weight") and "vision" in k)
    assert torch.equal(ours[key], theirs[theirs_key])
    # CLIP's own normalisation, from its image processor, not ImageNet's.
    assert model.preprocessing["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert torch.allclose(model.normalize.mean.flatten(), torch.tensor([0.48145466, 0.4578275, 0.40821073]))


def test_bad_hub_options(hub_dir, tmp_path):
    with pytest.raises(UsageError, match="pooling"):
        create(f"hub:{hub_dir / 'dinov2'}", pooling="max")
    with pytest.raises(UsageError, match="freeze"):
        create(f"hub:{hub_dir / 'dinov2'}", freeze="top:3")
    with pytest.raises(Exception, match="nowhere"):
        create(f"hub:{tmp_path / 'nowhere'}")
    frozen = create(f"hub:{hub_dir / 'dinov2'}", freeze="all").train()
    assert {n for n, p in frozen.named_parameters() if p.requires_grad} == {"head.fc.weight", "head.fc.bias"}
    assert not frozen.backbone.training


def test_train_ridge_on_a_hub_model_then_predict_and_evaluate_without_it(hub_dir, learnable_dataset, tmp_path,
                                                                         capsys):
    folder = tmp_path / "dinov2"
    shutil.copytree(hub_dir / "dinov2", folder)
    run = tmp_path / "run"
    assert main(["train", "--data", str(learnable_dataset), "--model", f"hub:{folder}", "--recipe", "ridge",
                 "--out", str(run)]) == 0
    record = checkpoint.read(run / "best.pt")
    assert record["spec"]["architecture"] == "hub" and record["spec"]["size"] == 32
    assert record["spec"]["arguments"]["name_or_path"] == str(folder)
    assert record["spec"]["arguments"]["config"]["model_type"] == "dinov2"
    shutil.rmtree(folder)  # the checkpoint alone must do from here on
    predictor = Predictor.from_pretrained(run)
    images = torch.randint(0, 255, (4, 3, 24, 24), dtype=torch.uint8)
    assert predictor.score_images(images).shape == (4, 2)
    assert main(["evaluate", str(run), "--data", str(learnable_dataset), "--split", "test"]) == 0
    assert "slope" in capsys.readouterr().out


def test_features_command(hub_dir, learnable_dataset, tmp_path, capsys):
    out = tmp_path / "f.npz"
    assert main(["features", f"hub:{hub_dir / 'convnext'}", "--data", str(learnable_dataset), "--out", str(out)]) == 0
    with np.load(out) as f:
        meta = json.loads(str(f["meta"]))
        assert f["features"].shape == (meta["rows"], 16) and f["ratings"].shape == (meta["rows"], 2)
        assert set(f["split"]) <= {"train", "test", "validation"} and len(f["id"]) == meta["rows"]
    assert meta["architecture"] == "hub" and meta["size"] == 32 and meta["tta"] is True
    out2 = tmp_path / "g.npz"
    assert main(["features", "efficientnet_lite0", "--data", str(learnable_dataset), "--out", str(out2), "--split",
                 "test", "--model-option", "features=stages", "--size", "64", "--no-tta"]) == 0
    with np.load(out2) as f:
        assert f["features"].shape[1] == 1792 and set(f["split"]) == {"test"}
    assert main(["features", "no_such_model", "--data", str(learnable_dataset), "--out", str(out2)]) == 2
    assert main(["features", "efficientnet_lite0", "--data", str(learnable_dataset), "--out", str(tmp_path / "x.csv")]) \
        == 2
    assert "ending in .npz" in capsys.readouterr().err
