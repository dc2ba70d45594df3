"""What the feature-visualization modules share: taps on layers (or on the input of a
module, for the penultimate features), the guarded session on the model, and argument
checks.  Forward passes go through :func:`interpret.hooks.record`, like everything
else that observes a model."""

from __future__ import annotations

import numbers
from typing import List, Tuple

from torch import nn

from ..errors import Cancelled, InputError, Progress, report
from ..explain import as_handle
from ..handle import ModelHandle, session as model_session
from ..hooks import Tap, record
from ..layers import as_maps, list_layers, map_shape, tap as tap_for

__all__ = ["Tap", "tap_for", "penultimate_tap", "record", "as_maps", "report", "Progress",
           "Cancelled", "model_session", "as_handle", "map_shape", "check_int", "batches"]


def penultimate_tap(handle: ModelHandle) -> Tap:
    """The features the classifier sees: the input of the last Linear layer that runs
    (EfficientNet's ``_fc``, ResNet's ``fc``, ViT's ``heads.head``)."""
    if handle.scripted:
        raise InputError("This is a TorchScript model: its layers cannot be read (no hooks).")
    modules = dict(handle.module.named_modules())
    ran = [i for i in list_layers(handle) if i.calls > 0]
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
