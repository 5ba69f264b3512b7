"""The names users can choose from, in one torch-free place.

The command line offers these as choices and the Python API checks against
them, so the two can never drift apart; importing this module costs nothing,
which keeps ``picaffect --help`` and ``picaffect build`` free of torch.
"""
from __future__ import annotations

from .errors import UsageError

# Architectures, in the order of the thesis, then the pretrained backbone: "file:Class" under models/.
MODEL_CLASSES: dict[str, str] = {
    "emosepar": "emosepar:Emosepar",
    "vgg16": "vgg16:VGG16",
    "inception_v3": "inception_v3:InceptionV3",
    "xception": "xception:Xception",
    "efficientnet_lite0": "efficientnet_lite:EfficientNetLite0",
    "efficientnet_lite1": "efficientnet_lite:EfficientNetLite1",
    "efficientnet_lite2": "efficientnet_lite:EfficientNetLite2",
    # Lite backbones at several sizes, one head (the shipped ``accurate`` model's architecture).
    "lite_ensemble": "lite_ensemble:LiteEnsemble",
    # Any image model of the Hugging Face hub through ``transformers`` (the ``hub`` extra);
    # on the command line ``hub:ORG/NAME`` or ``hub:/local/folder``.
    "hub": "hub:HubBackbone",
}
MODELS: tuple[str, ...] = tuple(MODEL_CLASSES)
# The architectures that build from their name alone (``hub`` needs a ``name_or_path``).
BUILTIN_MODELS: tuple[str, ...] = tuple(m for m in MODELS if m != "hub")
THESIS_MODELS: tuple[str, ...] = MODELS[:4]
# Training recipes (training/recipes.py): optimiser and schedule; ``ridge`` is the closed-form probe.
RECIPES: tuple[str, ...] = ("thesis", "modern", "ridge")
# Augmentation of training batches (training/augment.py).
AUGMENTS: tuple[str, ...] = ("none", "thesis", "light")
# Dataset splits (data/splits.py); ``all`` means every kept row.
SPLITS: tuple[str, ...] = ("train", "test", "validation")
SPLITS_OR_ALL: tuple[str, ...] = SPLITS + ("all",)
# Training arithmetic: bf16 autocast (weights stay fp32) is ~1.7x faster on CPUs with AVX512-BF16.
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
# Compute devices; ``auto`` takes CUDA when there is one.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
# Models that ship inside the package (weights/<file>).
# ``default`` is fast (Lite0, 224 px); ``accurate`` (configs/accurate.yaml) costs about six times as much a picture.
SHIPPED: dict[str, str] = {"default": "default.pt", "accurate": "accurate.pt"}
# Their ONNX twins, for the torch-free predict path (`picaffect export default src/picaffect/weights/default.onnx`).
SHIPPED_ONNX: dict[str, str] = {"default": "default.onnx", "accurate": "accurate.onnx"}
# How the network runs (inference/backends.py); ``auto`` takes the faster one at hand.
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")
# How a calibration turns held-out errors of several sources into one interval width (inference/intervals.py).
# ``pooled`` (plain split conformal) came closest to the level on held-out sources with the narrowest widths
# (results/intervals/search.md); the others are there for users whose new pictures call for them.
INTERVAL_SCHEMES: tuple[str, ...] = ("pooled", "equal-sources", "worst-source", "standardised")
DEFAULT_INTERVAL_SCHEME = "pooled"
# Where ``predict`` runs: in this process, or as a Ray Data job (batch/ray_job.py).
ENGINES: tuple[str, ...] = ("local", "ray")


HUB_PREFIX = "hub:"
# What a model option accepts, in the words of the command line's help.
MODEL_HELP = (f"{', '.join(BUILTIN_MODELS)}, or hub:ORG/NAME (a Hugging Face image model, or "
              f"hub:/folder written by save_pretrained; needs pip install 'picaffect[hub]')")


def is_hub(name: str) -> bool:
    """``hub:ORG/NAME`` or ``hub:/local/folder``: a Hugging Face image model."""
    return isinstance(name, str) and name.startswith(HUB_PREFIX) and len(name) > len(HUB_PREFIX)


def check_model(name: str) -> str:
    """``name`` if it is a registered architecture or ``hub:...``; otherwise a ``UsageError``."""
    if is_hub(name):
        return name
    if name in BUILTIN_MODELS:
        return name
    raise UsageError(f"unknown model {name!r}; choose one of {', '.join(BUILTIN_MODELS)}, "
                     f"or hub:ORG/NAME for a Hugging Face image model")


def check(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``; otherwise a ``UsageError`` listing them."""
    if value not in allowed:
        raise UsageError(f"unknown {kind} {value!r}; choose one of {', '.join(allowed)}")
    return value
