"""LeGrad (Bousselham, Boggust, Chaybouti, Strobelt & Kuehne, "LeGrad: An Explainability
Method for Vision Transformers via Feature Formation Sensitivity", ICCV 2025,
arXiv:2404.03214): the sensitivity of every block's own prediction to that block's
attention."""

from __future__ import annotations

from typing import Sequence

import torch

from .. import attention
from .common import Context, Result
from .registry import Cost, Param, method


def legrad_map(gradients: Sequence[torch.Tensor], prefix: int) -> torch.Tensor:
    """The patch relevance (length N - prefix) of per-block H x N x N gradients
    ``∇A^l = ∂s^l/∂A^l``: per block the positive part ``ReLU(∇A^l)`` averaged over heads
    and over the query tokens (every row: class and patch tokens), then averaged over
    blocks (paper Sec. 3; the authors' ``compute_legrad`` does the same: clamp, mean over
    heads, mean over rows, patch columns, summed over layers)."""
    total = None
    for g in gradients:
        e = g.double().clamp(min=0).mean(0).mean(0)[prefix:]
        total = e if total is None else total + e
    return total / len(gradients)


def _applies(handle):
    return attention.unavailable(handle, needs_head=True)


def _blocks(handle, params) -> int:
    lay = attention.layout(handle)
    n = len(lay.blocks) if not isinstance(lay, str) else 1
    k = int(params["layers"])
    return n if k <= 0 else min(k, n)


def _cost(handle, layer, params) -> Cost:
    return Cost(1, 1, note=f"one forward, then {_blocks(handle, params)} short backward passes")


@method("legrad", label="LeGrad", family="transformer", needs_layer=False,
        params=(Param("layers", "Last blocks used (0: all)", "int", 0, 0, 64,
                      help="LeGrad averages over blocks; its reference code for CLIP uses the "
                           "last few. 0 uses every block."),),
        preview={"layers": 2}, speed="fast", uses="own", heatmap="cam", progress=True,
        cost=_cost, order=30, applies=_applies, paper="https://arxiv.org/abs/2404.03214",
        description="How strongly each block's own prediction (the model's head on that "
                    "block's tokens) reacts to the attention given to each patch, averaged "
                    "over blocks. Class-specific.")
def legrad(ctx: Context) -> Result:
    lay = attention.layout(ctx.handle)
    k = _blocks(ctx.handle, ctx.params)
    idx = list(range(len(lay.blocks) - k, len(lay.blocks)))
    _, grads = attention.layer_gradients(ctx.handle, ctx.x, ctx.target, ctx.contrast, idx,
                                         progress=ctx.progress)
    e = legrad_map([g[0] for g in grads], lay.prefix)
    h, w = lay.grid
    return Result(attribution=e.reshape(1, 1, h, w).float().cpu(),
                  extras={"blocks": idx, "grid": lay.grid, "prefix_tokens": lay.prefix})
