"""EfficientNet-Lite0: kept as a module name for code that imports it; the implementation of
every EfficientNet-Lite variant is ``efficientnet_lite``."""
from .efficientnet_lite import (  # noqa: F401
    FEATURE_WIDTH,
    HEAD_CHANNELS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    INPUT_SIZE,
    NORMALIZATIONS,
    NUM_BLOCKS,
    STAGES,
    STEM_CHANNELS,
    WEIGHTS_DISTRIBUTION,
    WEIGHTS_FILE,
    WEIGHTS_PACKAGE,
    Conv2dSame,
    EfficientNetLite0,
    MBConvBlock,
    load_shipped_state_dict,
    weights_path,
)
