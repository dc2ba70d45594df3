"""What the feature-visualization modules share: taps on layers (or on the input of a
module, for the penultimate features), the guarded session on the model, and argument
checks.  Forward passes go through :func:`interpret.hooks.record`, like everything
else that observes a model."""

from __future__ import annotations

import numbers
from typing import List, Optional, Tuple

from torch import nn

from ..errors import Cancelled, InputError, Progress, report
from ..explain import as_handle
from ..handle import ModelHandle, session as model_session
from ..hooks import Tap, record
from ..layers import as_maps, list_layers, map_shape, tap as tap_for

__all__ = ["Tap", "tap_for", "penultimate_tap", "record", "as_maps", "report", "Progress",
           "Cancelled", "model_session", "as_handle", "map_shape", "check_int", "batches"]


# auxiliary heads run after the main head (torchvision's ``aux_classifier``, Hugging
# Face's ``auxiliary_head``) but only serve training: their input is not what the
# segmentation map is computed from
_AUX_HEADS = ("aux_classifier", "auxiliary_head")


def _segmentation_tap(modules, ran) -> Optional[Tap]:
    """The input of the last convolution or Linear layer (a leaf, outside an auxiliary
    head) that runs: the features a segmentation head turns into per-pixel class
    scores (DeepLabV3's and FCN's ``classifier.4``, LR-ASPP's
    ``classifier.high_classifier``, SegFormer's ``decode_head.classifier``).  Its input
    is one tensor, where the head itself takes a dict of backbone features."""
    def aux(name: str) -> bool:
        return any(part in _AUX_HEADS for part in name.split("."))

    layers = [i for i in ran if i.is_leaf and not aux(i.name)
              and isinstance(modules.get(i.name), (nn.modules.conv._ConvNd, nn.Linear))]
    if not layers:
        return None
    last = layers[-1]
    return Tap(last.name, modules[last.name], True, last.calls)


def penultimate_tap(handle: ModelHandle) -> Tap:
    """The features the classifier sees: the input of the last Linear layer that runs
    (EfficientNet's ``_fc``, ResNet's ``fc``, ViT's ``heads.head``).  For a segmentation
    model (``handle.task``), the features its head turns into per-pixel class scores:
    the input of the head's last convolution (see :func:`_segmentation_tap`)."""
    if handle.scripted:
        raise InputError("This is a TorchScript model: its layers cannot be read (no hooks).")
    modules = dict(handle.module.named_modules())
    ran = [i for i in list_layers(handle) if i.calls > 0]
    if handle.task == "segmentation":
        seg = _segmentation_tap(modules, ran)
        if seg is not None:
            return seg
    linears = [i for i in ran if isinstance(modules.get(i.name), nn.Linear)]
    if linears:
        last = linears[-1]
        return Tap(last.name, modules[last.name], True, last.calls)
    # no Linear classifier (e.g. SqueezeNet's 1x1 convolution): the input of the last
    # module that ran, if it has a tensor output
    if not ran:
        raise InputError(f"Model '{handle.name}' has no layers to read features from.")
    last = ran[-1]
    return Tap(last.name, modules[last.name], True, last.calls)


def check_int(name: str, value, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi], or an :class:`InputError` naming the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be a whole number between {lo} and {hi}; got {value!r}.")
    v = int(value)
    if not lo <= v <= hi:
        raise InputError(f"{name} must be between {lo} and {hi}; got {v}.")
    return v


def batches(n: int, size: int) -> List[Tuple[int, int]]:
    return [(i, min(n, i + size)) for i in range(0, n, size)]
