"""Layers: listing them with output shapes, resolving names, choosing a default, and
taps (:class:`~interpret.hooks.Tap`) on them.  Token outputs (ViT, Swin) are turned
into maps by the model's :class:`~interpret.tokens.TokenLayout`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import nn

from .errors import InputError
from .handle import ModelHandle
from .hooks import Tap, record


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


def resolve_layer(handle: ModelHandle, name: str) -> nn.Module:
    if isinstance(name, str) and name:
        try:  # walks the dotted path: O(depth), not a traversal of the whole tree
            return handle.module.get_submodule(name)
        except AttributeError:
            pass
    modules = dict(handle.module.named_modules())
    close = difflib.get_close_matches(str(name), [n for n in modules if n], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(
        f"Model '{handle.name}' has no layer named '{name}'.{hint} "
        "interpret.list_layers(model) lists them."
    )


def _shape(t: torch.Tensor):
    return tuple(t.shape)


def _list_layers(handle: ModelHandle) -> List[LayerInfo]:
    named = [(n, m) for n, m in handle.module.named_modules() if n]
    rec = None
    if not handle.scripted:
        handle.check_ready()
        taps = [Tap(n, m, reduce=_shape) for n, m in named]
        x = torch.zeros(1, 3, *handle.input_size, device=handle.device)
        rec = record(handle, x, taps, logits=False, grad="none", require_all=False)
    shapes = rec.values if rec else {}
    calls = rec.calls if rec else {}
    rank = {n: i for i, n in enumerate(rec.order)} if rec else {}
    infos = []
    for n, m in named:
        shape = shapes.get(n)
        infos.append(LayerInfo(
            name=n,
            kind=type(m).__name__,
            output_shape=shape,
            num_params=sum(p.numel() for p in m.parameters()),
            spatial=handle.tokens.is_spatial(shape),
            depth=n.count(".") + 1,
            calls=calls.get(n, 0),
            is_leaf=len(list(m.children())) == 0,
        ))
    # forward order for modules that ran, definition order for the rest
    infos.sort(key=lambda i: rank.get(i.name, len(rank) + 1))
    return infos


def list_layers(handle: ModelHandle) -> List[LayerInfo]:
    """Every named module, in forward order where it ran, with its output shape from one
    dry forward at the model's input size (memoised on the handle)."""
    return list(handle.memo("layers", lambda: tuple(_list_layers(handle))))


def layer_info(handle: ModelHandle, name: str) -> Optional[LayerInfo]:
    return handle.memo("layers_by_name", lambda: {i.name: i for i in list_layers(handle)}).get(name)


_LAYER_TYPES = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase,
                nn.LayerNorm, nn.GroupNorm, nn.modules.pooling._MaxPoolNd,
                nn.modules.pooling._AvgPoolNd, nn.Identity, nn.Dropout)


def _default_layer(handle: ModelHandle) -> Optional[str]:
    if handle.info.suggested_layer is not None:
        return handle.info.suggested_layer
    if handle.scripted:
        return None
    mod = handle.module
    from .sources.timm import is_timm_module, suggested_layer

    if is_timm_module(mod):  # timm's own feature_info (a module given without its info)
        name = suggested_layer(mod)
        if name is not None:
            return name
    from .attention import layout

    vit = layout(handle)
    if not isinstance(vit, str):  # torchvision / Hugging Face ViTs: the last block's first norm
        return vit.blocks[-1].norm
    infos = list_layers(handle)
    modules = dict(mod.named_modules())

    def simple_unit(name: str) -> bool:
        m = modules[name]
        kids = list(m.children())
        if not kids or isinstance(m, _LAYER_TYPES):  # e.g. a Conv2d subclass with a padding child
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
    return candidates[-1].name if candidates else None


def default_layer(handle: ModelHandle) -> Optional[str]:
    """The layer CAMs use by default: the loader's suggestion where it knows the model
    family, else the output of the last *block* with a spatial output.

    A block is a module with children that is not a plain Sequential of leaf layers
    (conv-bn-act units such as torchvision's final 1x1 "head" convolution, whose maps
    localise poorly for Grad-CAM++ and LayerCAM).  timm models: the last stage of
    timm's ``feature_info``.  Vision transformers (timm, torchvision, Hugging Face): the
    input norm of the last block (the class token alone carries the gradient at the
    block's output; pytorch-grad-cam makes the same choice)."""
    return handle.memo("default_layer", lambda: _default_layer(handle))


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
    info = layer_info(handle, layer)
    if info is not None and info.calls == 0:
        raise InputError(f"Layer '{layer}' is not used in the model's forward pass.")
    if info is not None and not info.spatial:
        raise InputError(
            f"Layer '{layer}' has output shape {info.output_shape}, which has no spatial "
            "layout to map onto the image; pick a convolutional or token layer."
        )
    return layer


def tap(handle: ModelHandle, layer: str, use_input: bool = False) -> Tap:
    """A tap on the output (or the input) of ``layer``: InputError for unknown, unused
    or tensor-less layers."""
    if handle.scripted:
        raise InputError(
            "This is a TorchScript model: TorchScript modules take no hooks, so its layers "
            "cannot be read. Load the model as a state dict with its architecture."
        )
    if not isinstance(layer, str) or not layer:
        raise InputError(f"A layer must be a module name such as '_blocks.10', not {layer!r}.")
    module = resolve_layer(handle, layer)
    info = layer_info(handle, layer)
    if info is not None and info.calls == 0:
        raise InputError(f"Layer '{layer}' is not used in the model's forward pass.")
    if info is not None and info.output_shape is None and not use_input:
        raise InputError(f"Layer '{layer}' does not output a tensor.")
    return Tap(layer, module, use_input, max(1, info.calls if info is not None else 1))


def map_shape(handle: ModelHandle, layer: str) -> Tuple[int, Tuple[int, int]]:
    """(channels, (h, w)) of ``layer``'s maps at the model's input size (vectors: 1 x 1),
    from the dry forward of :func:`list_layers`."""
    info = layer_info(handle, layer)
    shape = handle.tokens.map_shape(info.output_shape) if info is not None else None
    if shape is None:
        raise InputError(
            f"Layer '{layer}' has output shape {None if info is None else info.output_shape}, "
            "which has no channel axis to visualise."
        )
    return shape[0], (shape[1], shape[2])


def as_maps(handle: ModelHandle, t: torch.Tensor, name: str = "the layer") -> torch.Tensor:
    """B x C x h x w view of a layer output: maps as they are, token outputs on their
    grid, vectors (B x C) as 1 x 1 maps; InputError otherwise."""
    m = handle.tokens.to_maps(t)
    if m is None:
        raise InputError(f"{name} has output shape {tuple(t.shape)}, which has no channel axis.")
    return m
