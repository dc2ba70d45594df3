"""Layers: listing them with output shapes, resolving names, choosing a default,
and turning token outputs (ViT, Swin) into spatial maps."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import nn

from .errors import InputError
from .hooks import hooks
from .models import ModelHandle, _first_tensor


@dataclass(frozen=True)
class LayerInfo:
    """One named module: ``name`` (dotted path), ``kind`` (class name), ``output_shape``
    (from a dry forward; None when not called or not a tensor), ``num_params``
    (including children), ``spatial`` (its output can be shown as maps), ``depth``,
    ``calls`` (how often it ran in one forward; shared modules run several times)."""

    name: str
    kind: str
    output_shape: Optional[Tuple[int, ...]]
    num_params: int
    spatial: bool
    depth: int
    calls: int = 1
    is_leaf: bool = True


def token_grid(n: int) -> Optional[Tuple[int, int, int]]:
    """For a token count n, (skip, h, w): skip leading class/register tokens, or None."""
    for skip in (1, 0, 2, 5):
        m = n - skip
        r = int(round(math.sqrt(m))) if m > 0 else 0
        if r > 1 and r * r == m:
            return skip, r, r
    return None


def to_spatial(t: torch.Tensor, channels_last: bool = False) -> Optional[torch.Tensor]:
    """B x C x h x w view of a layer output, or None if it has no spatial layout.

    * B x C x h x w: as is;   * B x h x w x C (Swin, ``channels_last``): permuted;
    * B x N x C tokens (ViT): the class token dropped, reshaped to the patch grid.
    """
    if t.dim() == 4:
        if channels_last and t.shape[1] == t.shape[2] and t.shape[3] != t.shape[2]:
            return t.permute(0, 3, 1, 2)
        return t
    if t.dim() == 3:
        grid = token_grid(t.shape[1])
        if grid is None:
            return None
        skip, h, w = grid
        return t[:, skip:, :].reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)
    return None


def _spatial_shape(shape, channels_last) -> bool:
    if shape is None:
        return False
    t = torch.empty(shape, device="meta")
    s = to_spatial(t, channels_last)
    return s is not None and (s.shape[2] > 1 or s.shape[3] > 1)


def resolve_layer(handle: ModelHandle, name: str) -> nn.Module:
    modules = dict(handle.module.named_modules())
    if name in modules and name != "":
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(
        f"Model '{handle.name}' has no layer named '{name}'.{hint} "
        "interpret.list_layers(model) lists them."
    )


def list_layers(handle: ModelHandle) -> List[LayerInfo]:
    """Every named module, in forward order where it ran, with its output shape from one
    dry forward at the model's input size (cached on the handle)."""
    if handle._layers is not None:
        return handle._layers
    module = handle.module
    named = [(n, m) for n, m in module.named_modules() if n]
    shapes, calls, order = {}, {}, []
    if not handle.scripted:
        handle.check_ready()
        with hooks() as hs:
            for n, m in named:
                def rec(mod, inp, out, n=n):
                    t = _first_tensor(out)
                    shapes[n] = tuple(t.shape) if t is not None else None
                    calls[n] = calls.get(n, 0) + 1
                    if calls[n] == 1:
                        order.append(n)
                hs.forward(m, rec)
            with torch.no_grad():
                module(torch.zeros(1, 3, *handle.input_size, device=handle.device))
    rank = {n: i for i, n in enumerate(order)}
    infos = []
    for n, m in named:
        shape = shapes.get(n)
        infos.append(LayerInfo(
            name=n,
            kind=type(m).__name__,
            output_shape=shape,
            num_params=sum(p.numel() for p in m.parameters()),
            spatial=_spatial_shape(shape, handle.channels_last_tokens),
            depth=n.count(".") + 1,
            calls=calls.get(n, 0),
            is_leaf=len(list(m.children())) == 0,
        ))
    # forward order for modules that ran, definition order for the rest
    infos.sort(key=lambda i: rank.get(i.name, len(rank) + 1))
    handle._layers = infos
    return infos


def default_layer(handle: ModelHandle) -> Optional[str]:
    """The layer CAMs use by default: the output of the last *block* with a spatial output.

    A block is a module with children that is not a plain Sequential of leaf layers
    (conv-bn-act units such as torchvision's final 1x1 "head" convolution, whose maps
    localise poorly for Grad-CAM++ and LayerCAM).  For vision transformers, the input
    norm of the last encoder block (the class token alone carries the gradient at the
    block's output; pytorch-grad-cam makes the same choice)."""
    if handle._default_layer is not None:
        return handle._default_layer
    if handle.scripted:
        return None
    mod = handle.module
    if type(mod).__name__ == "VisionTransformer" and hasattr(mod, "encoder"):
        last = list(mod.encoder.layers.named_children())[-1][0]
        handle._default_layer = f"encoder.layers.{last}.ln_1"
        return handle._default_layer
    infos = list_layers(handle)
    modules = dict(mod.named_modules())

    layer_types = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase,
                   nn.LayerNorm, nn.GroupNorm, nn.modules.pooling._MaxPoolNd,
                   nn.modules.pooling._AvgPoolNd, nn.Identity, nn.Dropout)

    def simple_unit(name: str) -> bool:
        m = modules[name]
        kids = list(m.children())
        if not kids or isinstance(m, layer_types):  # e.g. a Conv2d subclass with a padding child
            return True
        if isinstance(m, nn.Sequential):
            if all(len(list(k.children())) == 0 for k in kids):
                return True
            # a container ends in whatever its last child is
            last = [n for n, _ in m.named_children()][-1]
            return simple_unit(f"{name}.{last}")
        return False

    ran = [i for i in infos if i.calls > 0]
    candidates = [i for i in ran if i.spatial and not simple_unit(i.name)]
    if not candidates:
        candidates = [i for i in ran if i.spatial and i.kind not in ("AdaptiveAvgPool2d", "AvgPool2d")]
    if not candidates:
        return None
    handle._default_layer = candidates[-1].name
    return handle._default_layer


def check_layer(handle: ModelHandle, layer: Optional[str]) -> str:
    """Resolve ``layer`` (None = the default) and check it has a spatial output."""
    if handle.scripted:
        raise InputError(
            "This is a TorchScript model: TorchScript modules take no hooks, so layer "
            "methods cannot run on it. Use saliency, Integrated Gradients or occlusion."
        )
    if layer is None:
        layer = default_layer(handle)
        if layer is None:
            raise InputError(f"Model '{handle.name}' has no layer with a spatial output to explain.")
        return layer
    resolve_layer(handle, layer)
    info = {i.name: i for i in list_layers(handle)}.get(layer)
    if info is not None and info.calls == 0:
        raise InputError(f"Layer '{layer}' is not used in the model's forward pass.")
    if info is not None and not info.spatial:
        raise InputError(
            f"Layer '{layer}' has output shape {info.output_shape}, which has no spatial "
            "layout to map onto the image; pick a convolutional or token layer."
        )
    return layer
