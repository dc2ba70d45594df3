"""The recorded pass every gradient method shares, and the forward-only layer maps.

:func:`capture` runs one forward and one ``torch.autograd.grad`` and keeps the layer's
activation and gradient, the logits, the target it resolved and its score.  When only a
layer gradient is needed (the CAMs), the forward builds no autograd graph before the
layer and the backward stops at it; the input gradient is computed the first time an
input-gradient method asks for it (then the capture is recorded again, with both).
The score is a :class:`~interpret.targets.Target`'s (a class, a label, an output, a
segment's region); its ``key`` is part of the cache key.
:func:`layer_maps` is a forward alone, stopped at the layer.  Both are cached on the
handle per (model state, input, layer[, target, contrast]).

Nothing touches parameter ``.grad`` (only ``torch.autograd.grad`` with explicit inputs
is used), and the hooks live only inside the call, for the calling thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional, Tuple

import numpy as np
import torch

from .errors import InputError
from .handle import ModelHandle
from .detection import Pyramid
from .hooks import Tap, record
from .layers import resolve_layer
from .targets import ClassTarget, Target, resolve
from .tensors import target_score, tensor_key

__all__ = ["Capture", "LayerMaps", "capture", "layer_maps", "logits", "tensor_key", "target_score"]


@dataclass(frozen=True)
class Capture:
    """What one forward/backward recorded.  ``activation`` and ``gradient`` are
    1 x C x h x w (token outputs already on their grid), detached; ``raw_shape`` is the
    layer's own output shape; ``input_grad`` is d score / d input, or None when this
    capture back-propagated to the layer only; ``target`` is the class explained (the
    top class of this very forward when none was given), ``contrast`` its contrast,
    ``score`` its score and ``explained`` the whole :class:`~interpret.targets.Target`
    (a label, an output, a region...)."""

    layer: Optional[str]
    target: int
    contrast: Optional[int]
    logits: torch.Tensor
    input: torch.Tensor
    input_grad: Optional[torch.Tensor]
    activation: Optional[torch.Tensor]
    gradient: Optional[torch.Tensor]
    raw_shape: Optional[Tuple[int, ...]]
    score: float
    explained: Optional[Target] = None


@dataclass(frozen=True)
class LayerMaps:
    """A layer's feature maps for one input, from a forward alone (or from a capture of
    the same input and layer): ``activation`` 1 x C x h x w; ``maps`` the same as a
    C x h x w float32 array; ``channel_means`` / ``channel_maxes`` per channel;
    ``raw_shape`` the layer's own output shape."""

    layer: str
    activation: torch.Tensor = field(repr=False)
    raw_shape: Tuple[int, ...]

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(C, h, w)."""
        return tuple(int(s) for s in self.activation.shape[1:])

    @cached_property
    def maps(self) -> np.ndarray:
        return self.activation[0].detach().float().cpu().numpy()

    @cached_property
    def channel_means(self) -> np.ndarray:
        return self.maps.mean(axis=(1, 2))

    @cached_property
    def channel_maxes(self) -> np.ndarray:
        return self.maps.max(axis=(1, 2))


def logits(handle: ModelHandle, x: torch.Tensor) -> torch.Tensor:
    """The model's class scores for ``x`` (no gradients), cached; a capture of the same
    input fills this cache too."""
    key = ("logits", handle.fingerprint_fast(), tensor_key(x))
    out = handle.cache_get(key)
    if out is None:
        out = record(handle, x, (), logits=True, grad="none").logits.detach()
        handle.cache_put(key, out)
        _note_shape(handle, out)
    return out


def _spatial(handle: ModelHandle, t: torch.Tensor, layer: str) -> torch.Tensor:
    s = handle.tokens.to_spatial(t)
    if s is None:
        raise InputError(f"Layer '{layer}' has output shape {tuple(t.shape)}, which has no spatial layout.")
    return s.contiguous()


def _maps_key(handle: ModelHandle, tkey: str, layer: str) -> tuple:
    return ("maps", handle.fingerprint_fast(), tkey, layer)


def _goal(handle: ModelHandle, x: torch.Tensor, target, contrast, out=None) -> Optional[Target]:
    """The resolved :class:`~interpret.targets.Target` for ``target`` (a Target, an int
    or a label), or None when that needs the model's output and ``out`` is None."""
    if isinstance(target, Target) and target.resolved and contrast in (None, target.contrast):
        return target
    if out is None:
        return None
    return resolve(handle, target, x, contrast=contrast, output=out)


def _note_shape(handle: ModelHandle, out: torch.Tensor) -> None:
    """Remember the output's shape from a real forward, so that ``handle.task`` and
    ``num_classes`` need no forward of their own."""
    with handle.runtime.lock:
        handle.runtime.memos.setdefault("output_shape", (1,) + tuple(int(s) for s in out.shape[1:]))


def capture(handle: ModelHandle, x: torch.Tensor, layer: Optional[str], target,
            contrast: Optional[int] = None, *, input_grad: bool = False) -> Capture:
    """Run (or reuse from the handle's cache) the one forward/backward pass.

    ``target``: what is explained, a :class:`~interpret.targets.Target` or what
    :func:`interpret.targets.resolve` takes (a class index or label; None: the top
    class of this very forward, no extra pass).  ``input_grad``: the caller needs
    d score / d input (saliency, input x gradient); otherwise (CAMs) the pass
    back-propagates to ``layer`` only.  The logits and the layer maps are cached too,
    so :func:`interpret.predict` and :func:`layer_maps` on the same input are free."""
    fp, tkey = handle.fingerprint_fast(), tensor_key(x)
    need_input = input_grad or layer is None
    goal = _goal(handle, x, target, contrast, handle.cache_get(("logits", fp, tkey)))
    if goal is not None:  # else it is resolved from this very forward's output
        cached = handle.cache_get(("capture", fp, tkey, layer, goal.key))
        if cached is not None and (cached.input_grad is not None or not need_input):
            return cached
    taps = [Tap(layer, resolve_layer(handle, layer))] if layer is not None else []
    rec = record(handle, x, taps, logits=True, grad="input" if need_input else "taps")
    out = rec.logits
    handle.cache_put(("logits", fp, tkey), out.detach())
    _note_shape(handle, out)
    if goal is None:
        goal = _goal(handle, x, target, contrast, out.detach())
        cached = handle.cache_get(("capture", fp, tkey, layer, goal.key))
        if cached is not None and (cached.input_grad is not None or not need_input):
            return cached
    score = goal.score(out).sum()
    act = rec.values.get(layer) if layer is not None else None
    if act is not None and not act.requires_grad:
        raise InputError(f"Layer '{layer}' is not on the path to the output (no gradient).")
    pyramid = act if isinstance(act, Pyramid) else None  # levels on one grid, gradients too
    inputs = ([rec.input] if need_input else []) + (
        pyramid.tensors if pyramid is not None else [act] if act is not None else [])
    if not score.requires_grad:
        raise InputError("The model's output does not depend on its input (no gradient).")
    grads = list(torch.autograd.grad(score, inputs, allow_unused=True))
    gin = None
    if need_input:
        g0 = grads.pop(0)
        gin = (g0 if g0 is not None else torch.zeros_like(rec.input)).detach()
    a = g = raw_shape = None
    if pyramid is not None:
        a = pyramid.combined([t.detach() for t in pyramid.tensors]).contiguous()
        g = pyramid.combined([None if gr is None else gr.detach() for gr in grads]).contiguous()
        raw_shape = tuple(a.shape)
        handle.cache_put(_maps_key(handle, tkey, layer), LayerMaps(layer, a, raw_shape))
    elif act is not None:
        raw_shape = tuple(act.shape)
        gact = grads[0] if grads[0] is not None else torch.zeros_like(act)
        a = _spatial(handle, act.detach(), layer)
        g = _spatial(handle, gact.detach(), layer)
        handle.cache_put(_maps_key(handle, tkey, layer), LayerMaps(layer, a, raw_shape))
    cap = Capture(layer, goal.index, goal.contrast, out.detach(), x.detach(), gin, a, g, raw_shape,
                  float(score.detach()), goal)
    handle.cache_put(("capture", fp, tkey, layer, goal.key), cap)
    return cap


def layer_maps(handle: ModelHandle, x: torch.Tensor, layer: str) -> LayerMaps:
    """``layer``'s feature maps for ``x``: one forward with no autograd graph, stopped as
    soon as the layer has run (or a capture of the same input and layer, reused)."""
    key = _maps_key(handle, tensor_key(x), layer)
    cached = handle.cache_get(key)
    if cached is not None:
        return cached
    from .layers import tap

    t = tap(handle, layer)
    rec = record(handle, x, [t], logits=False, grad="none")
    act = rec.values[t.key].detach()
    maps = LayerMaps(layer, _spatial(handle, act, layer), tuple(act.shape))
    handle.cache_put(key, maps)
    return maps
