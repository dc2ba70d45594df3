"""What the feature-visualization modules share: reading a layer's output (or the input
of a module, for the penultimate features) during one forward, with thread-filtered
hooks that live only inside the call, and stopping that forward early once every layer
needed has run; progress callbacks; a guarded session on the model."""

from __future__ import annotations

import contextlib
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..explain import _model_guard, as_handle
from ..hooks import hooks
from ..layers import list_layers, resolve_layer, to_spatial
from ..methods.common import Cancelled
from ..models import ModelHandle, _first_tensor

__all__ = ["Tap", "tap_for", "penultimate_tap", "run_taps", "as_maps", "report",
           "model_session", "as_handle", "layer_channels"]


class _StopForward(Exception):
    """Raised from our own hook once every tapped layer has run: the rest of the
    forward pass is not needed (a mid-layer objective need not run the classifier)."""


@dataclass(frozen=True)
class Tap:
    """Where to read a tensor during the forward: the output of the module ``name``,
    or (``use_input``) its first input, e.g. the features the classifier receives.
    ``calls``: how often the module runs in one forward (the last call wins)."""

    name: str
    module: nn.Module
    use_input: bool = False
    calls: int = 1

    @property
    def key(self) -> str:
        return f"{self.name} (input)" if self.use_input else self.name


def _layer_info(handle: ModelHandle, name: str):
    return {i.name: i for i in list_layers(handle)}.get(name)


def tap_for(handle: ModelHandle, layer: str) -> Tap:
    """A tap on the output of ``layer``; InputError for unknown or unused layers."""
    if handle.scripted:
        raise InputError(
            "This is a TorchScript model: TorchScript modules take no hooks, so its layers "
            "cannot be read. Load the model as a state dict with its architecture."
        )
    if not isinstance(layer, str) or not layer:
        raise InputError(f"A layer must be a module name such as '_blocks.10', not {layer!r}.")
    module = resolve_layer(handle, layer)
    info = _layer_info(handle, layer)
    if info is not None and info.calls == 0:
        raise InputError(f"Layer '{layer}' is not used in the model's forward pass.")
    if info is not None and info.output_shape is None:
        raise InputError(f"Layer '{layer}' does not output a tensor.")
    return Tap(layer, module, False, max(1, info.calls if info is not None else 1))


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


def layer_channels(handle: ModelHandle, layer: str) -> Tuple[int, Tuple[int, int]]:
    """(channels, (h, w)) of ``layer``'s output at the model's input size, read from
    the dry forward of :func:`interpret.list_layers`."""
    info = _layer_info(handle, layer)
    if info is None or info.output_shape is None:
        raise InputError(f"Layer '{layer}' does not output a tensor.")
    meta = torch.empty(info.output_shape, device="meta")
    maps = _maps_or_none(meta, handle.channels_last_tokens)
    if maps is None:
        raise InputError(
            f"Layer '{layer}' has output shape {info.output_shape}, which has no channel axis "
            "to visualise."
        )
    return int(maps.shape[1]), (int(maps.shape[2]), int(maps.shape[3]))


def _maps_or_none(t: torch.Tensor, channels_last: bool) -> Optional[torch.Tensor]:
    s = to_spatial(t, channels_last)
    if s is not None:
        return s
    if t.dim() == 2:
        return t[:, :, None, None]
    return None


def as_maps(t: torch.Tensor, channels_last: bool, name: str = "the layer") -> torch.Tensor:
    """B x C x h x w view of a layer output: maps as they are, token outputs on their
    grid, vectors (B x C) as 1 x 1 maps."""
    m = _maps_or_none(t, channels_last)
    if m is None:
        raise InputError(f"{name} has output shape {tuple(t.shape)}, which has no channel axis.")
    return m


def run_taps(
    handle: ModelHandle, x: torch.Tensor, taps: Sequence[Tap], need_logits: bool
) -> Tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
    """One forward of ``x``: the tapped tensors (by ``Tap.key``) and, if asked, the
    logits.  Without logits the forward stops as soon as every tap has run.

    Gradients flow if the caller enabled them; hooks exist only within the call and
    only for this thread."""
    store: Dict[str, torch.Tensor] = {}
    counts: Dict[str, int] = {}
    need = {t.key: t.calls for t in taps}
    out = None
    with hooks() as hs:
        for tap in taps:
            def rec(mod, inputs, output, tap=tap):
                t = inputs[0] if tap.use_input and inputs else _first_tensor(output)
                if not isinstance(t, torch.Tensor):
                    raise InputError(f"Layer '{tap.name}' does not output a tensor.")
                store[tap.key] = t
                counts[tap.key] = counts.get(tap.key, 0) + 1
                if not need_logits and all(counts.get(k, 0) >= n for k, n in need.items()):
                    raise _StopForward()
            hs.forward(tap.module, rec)
        try:
            out = handle.module(x)
        except _StopForward:
            out = None
    missing = [k for k in need if k not in store]
    if missing:
        raise InputError(f"Layer '{missing[0]}' did not run in the forward pass.")
    logits = None
    if need_logits:
        logits = _first_tensor(out)
        if logits is None or logits.dim() != 2:
            raise InputError("The model must return class scores of shape [batch, classes].")
    return store, logits


def report(callback: Optional[Callable[..., Any]], *args) -> None:
    """Call a progress callback; ``False`` from it (or :class:`Cancelled` raised in it)
    stops the computation with :class:`Cancelled`."""
    if callback is None:
        return
    if callback(*args) is False:
        raise Cancelled("Cancelled by the progress callback.")


@contextlib.contextmanager
def model_session(handle: ModelHandle) -> Iterator[None]:
    """Refuse a model in training mode; share the model with other readers; restore
    parameter ``.grad`` and the flags whatever happens (the same guard as
    :func:`interpret.explain`)."""
    handle.check_ready()
    with handle.rwlock.read(), _model_guard(handle):
        yield


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
