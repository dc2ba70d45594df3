"""Concept Relevance Propagation on vision transformers (timm, torchvision and Hugging
Face ViTs), built on our AttnLRP (:mod:`interpret.methods.attnlrp`) instead of zennit.

AttnLRP is *modified gradient x input* on a private copy of the model: at every tensor
``t`` of the modified pass, ``t * d score / d t`` is the relevance the rules give it.  At
a block's output tokens ``a`` (B x N x C), the relevance of channel (concept) ``c`` is

    R_c = sum over all N tokens of a[:, :, c] * g[:, :, c],   g = d score / d a,

summed over the patch tokens **and** the prefix tokens (class token, distillation and
register tokens): at a late block of a class-token ViT much of the relevance sits in the
class token, and leaving it out would break the sum over channels = the layer's total.
The concept's conditional heatmap is CRP's condition on our terms: the backward from the
layer with the incoming gradient kept only in channel ``c`` (every token) and zero
elsewhere, times the input, summed over colour: H x W at the model's input size.  The
backward is linear in what comes in, so the heatmaps of all channels add up to the
unconditional AttnLRP map.

As for CNNs: one forward, one backward to the layer, then one batched backward of the
part below the layer per chunk of concepts (``is_grads_batched`` on the retained graph),
on the private copy, under the handle's writer lock; results are
:class:`~interpret.concepts.crp.ConceptSet` with ``composite == "attnlrp"``.

Across a set (:func:`interpret.reference_patches`, dataset mode): :func:`layer_relevance`
gives ``R_c`` per photo for a batch at once (each photo's own top class, or the class
given), split into the patch tokens on their grid and the prefix tokens' sum; a share is
``R_c`` over the sum of ``|R_c|`` of all channels, the number :func:`concepts` reports as
``.relevance``; a reference patch is :data:`PATCH_TOKENS` tokens a side around the patch
token where the channel's relevance is largest (:func:`token_box`).
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import torch

from .. import attention
from ..errors import InputError, Progress, report
from ..handle import ModelHandle, session
from ..layers import check_layer
from ..methods import attnlrp as A
from ..methods.common import Context
from ..tensors import first_tensor, tensor_key

__all__ = ["covers", "default_layer", "conditional_relevance", "concepts", "layer_relevance", "token_box",
           "PATCH_TOKENS"]

#: the composite name a ViT's concepts report (its rules are AttnLRP's, not zennit's)
COMPOSITE = "attnlrp"

#: a reference patch of a token layer spans this many patch tokens a side, centred on
#: the most relevant token (shifted to lie inside the photo, so every patch has one size,
#: as a CNN's effective receptive field is): the token and its neighbours
PATCH_TOKENS = 3


def covers(handle: ModelHandle) -> bool:
    """True when ``handle``'s model is a vision transformer AttnLRP's rules cover."""
    if handle.scripted:
        return False
    lay = attention.layout(handle)
    return not isinstance(lay, str) and A.unsupported(handle) is None


def default_layer(handle: ModelHandle) -> str:
    """The suggested layer of a ViT's concepts: the output tokens of the next-to-last
    block (the last one when there is only one).  At the last block's output of a
    class-token ViT the head reads the class token alone, so every patch token's
    relevance there is zero; one block earlier the relevance is still spread over the
    patch tokens and the channels mix what the photo shows."""
    blocks = attention.layout(handle).blocks
    return blocks[-2].name if len(blocks) >= 2 else blocks[-1].name


def _resolve_layer(handle: ModelHandle, layer: Optional[str]) -> str:
    return default_layer(handle) if layer is None else check_layer(handle, layer)


def _forward_tokens(handle: ModelHandle, xin: torch.Tensor, layer: str):
    """(the private AttnLRP copy's raw output for ``xin``, ``layer``'s output tokens
    B x N x C in its graph), the forward run with grad enabled by the caller; refused
    when the layer gives no tokens that depend on the input."""
    from .crp import _layer_module

    twin = A.attnlrp_copy(handle)
    module = _layer_module(twin, layer)
    lay = attention.layout(handle)
    seen = {}
    hd = module.register_forward_hook(lambda m, i, o: seen.__setitem__("a", first_tensor(o)))  # the last call
    try:
        raw = twin(xin)
    finally:
        hd.remove()
    a = seen.get("a")
    if not isinstance(a, torch.Tensor) or a.dim() != 3 or a.shape[1] != lay.tokens or a.grad_fn is None:
        shape = tuple(a.shape) if isinstance(a, torch.Tensor) else None
        raise InputError(f"Layer '{layer}' has no B x {lay.tokens} tokens x C output that depends on the "
                         f"input (got {shape}); pick a block of the transformer, such as "
                         f"'{default_layer(handle)}'.")
    return raw, a


def conditional_relevance(handle: ModelHandle, x: torch.Tensor, layer: str, goal,
                          channels: Optional[Sequence[int]] = None, k: int = 6,
                          progress: Optional[Progress] = None):
    """(R: the layer's AttnLRP relevance for ``goal``, 1 x N x C float64; the explained
    score; the channels whose heatmaps were computed; their conditional input relevances,
    n x H x W float64 summed over colour) for the batch-1 input ``x``.  ``channels``
    None: the ``k`` most relevant.  The caller holds the writer lock."""
    from .crp import CHUNK, pick_channels

    ctx = Context(handle, x, None, goal, getattr(goal, "contrast", None), {})
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        raw, a = _forward_tokens(handle, xin, layer)
        score = ctx.score_of(raw)
        (g,) = torch.autograd.grad(score.sum(), [a], retain_graph=True)
        rel = (a.detach().double() * g.detach().double())
        per_channel = rel[0].sum(0)
        channels = pick_channels(per_channel, channels, k, layer)
        maps = []
        n = len(channels)
        report(progress, 0, n)
        for lo in range(0, n, CHUNK):
            part = channels[lo:lo + CHUNK]
            # the layer's gradient kept in one channel per row (every token): CRP's
            # condition in gradient x input form, a chunk in one batched backward
            gm = torch.zeros((len(part),) + tuple(g.shape), dtype=g.dtype, device=g.device)
            for i, c in enumerate(part):
                gm[i, ..., c] = g[..., c]
            last = lo + CHUNK >= n
            (hx,) = torch.autograd.grad(a, [xin], grad_outputs=[gm], retain_graph=not last,
                                        is_grads_batched=True)
            maps.extend((xin.detach().double() * hx.detach().double())[:, 0].sum(1))
            report(progress, min(n, lo + CHUNK), n)
    return (rel, float(score.detach().double().sum()), channels,
            torch.stack(maps) if maps else torch.zeros((0,) + tuple(x.shape[-2:]), dtype=torch.float64))


def concepts(model, image, layer: Optional[str] = None, target=None, k: int = 6, *,
             channels: Optional[Sequence[int]] = None, progress: Optional[Progress] = None,
             store=None):
    """:func:`interpret.concepts` for a vision transformer AttnLRP covers: the ``k``
    channels of ``layer``'s output tokens (default :func:`default_layer`) most relevant
    to ``target``, each with its share of the layer's relevance (summed over every
    token, class token included) and its conditional heatmap.  Same arguments, checks,
    cache, progress and result as the CNN path; the result's ``composite`` is
    ``"attnlrp"`` and ``canonizers`` is empty."""
    from ..explain import as_handle, input_tensor
    from .crp import _resolve, checked_k, concept_set
    from .store import concept_names

    handle = as_handle(model)
    handle.check_ready()
    why = A.unsupported(handle)
    if why:
        raise InputError(f"Concepts cannot be computed for '{handle.name}': {why}.")
    channels = checked_k(k, channels)
    x = input_tensor(handle, image)
    layer = _resolve_layer(handle, layer)
    t0 = time.perf_counter()
    with session(handle, exclusive=True):
        goal = _resolve(handle, target, x)
        key = ("concepts", handle.fingerprint_fast(), tensor_key(x), layer, goal.key, COMPOSITE,
               int(k), channels)
        hit = handle.cache_get(key)
        if hit is not None:
            return hit.named(concept_names(handle, layer, store=store))
        rel, score, chosen, maps = conditional_relevance(handle, x, layer, goal, channels, int(k), progress)
    per_channel = rel[0].sum(0).cpu().numpy()
    result = concept_set(handle, layer, goal, score, per_channel, chosen, maps, COMPOSITE, (), t0)
    handle.cache_put(key, result)
    return result.named(concept_names(handle, layer, store=store))


def layer_relevance(handle: ModelHandle, x: torch.Tensor, layer: str,
                    classes: Optional[torch.Tensor] = None):
    """(the AttnLRP relevance of ``layer``'s patch tokens for each photo of the batch
    ``x``, B x C x h x w float64 on the patch grid; the relevance of its prefix tokens
    (class, distillation, register tokens) summed, B x C float64; the classes
    explained, B longs): activation x AttnLRP gradient of each photo's logit of
    ``classes`` (None: its top class) at the block's output tokens, as
    :func:`conditional_relevance` computes it for one photo.  One forward and one
    backward to the layer for the whole batch, on the private copy.  The caller holds
    the writer lock."""
    lay = attention.layout(handle)
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        raw, a = _forward_tokens(handle, xin, layer)
        out = first_tensor(raw)
        if out is None or out.dim() != 2:
            raise InputError("Concepts across a set need a classifier's B x classes output.")
        cls = out.detach().argmax(1) if classes is None else classes.to(out.device).long()
        if ((cls < 0) | (cls >= out.shape[1])).any():
            raise InputError(f"A class index is out of range: the model has {out.shape[1]} classes.")
        rows = torch.arange(len(x), device=out.device)
        (g,) = torch.autograd.grad(out[rows, cls].sum(), [a])
    rel = a.detach().double() * g.detach().double()  # B x N x C
    h, w = lay.grid
    grid = rel[:, lay.prefix:].reshape(len(x), h, w, rel.shape[2]).permute(0, 3, 1, 2)
    return grid, rel[:, :lay.prefix].sum(1), cls.cpu()


def token_box(handle: ModelHandle, y: int, x: int, grid) -> tuple:
    """(left, top, right, bottom) in model-input pixels of the reference patch of the
    patch token at (``y``, ``x``) of the ``grid`` (h, w): a square of
    :data:`PATCH_TOKENS` tokens a side centred on it (a token covers H/h x W/w input
    pixels), shifted to lie inside the input, so that every patch has the same size
    and holds the token's own pixels."""
    H, W = (int(v) for v in handle.input_size)
    h, w = (int(v) for v in grid)
    sy, sx = H / h, W / w
    side_y, side_x = min(H, int(round(PATCH_TOKENS * sy))), min(W, int(round(PATCH_TOKENS * sx)))
    top = int(round(min(max((y + 0.5) * sy - side_y / 2.0, 0), H - side_y)))
    left = int(round(min(max((x + 0.5) * sx - side_x / 2.0, 0), W - side_x)))
    return left, top, left + side_x, top + side_y
