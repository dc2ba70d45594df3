"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
Transformers", arXiv:2005.00928, Sec. 3): how much each patch token flows into the
class token through every block's attention and its residual connection."""

from __future__ import annotations

from typing import Sequence

import torch

from .. import attention
from .common import Context, Result
from .registry import Param, method

FUSIONS = ("mean", "max", "min")


def fuse_heads(a: torch.Tensor, fusion: str) -> torch.Tensor:
    """H x N x N attention -> N x N: the mean over heads (the paper's choice), or the
    maximum or minimum (Gildenblat's vit-explain)."""
    if fusion == "mean":
        return a.mean(0)
    if fusion == "max":
        return a.amax(0)
    return a.amin(0)


def rollout(attentions: Sequence[torch.Tensor], fusion: str = "mean",
            discard_ratio: float = 0.0) -> torch.Tensor:
    """The N x N rollout of per-block H x N x N attention probabilities, first block first.

    Per block, the heads are fused; with ``discard_ratio`` > 0 that fraction of the
    smallest fused weights is set to zero (Gildenblat's vit-explain); the residual is
    added as in Abnar & Zuidema (Sec. 3): ``Ã = 0.5 A + 0.5 I``, rows renormalised to sum
    to one; then ``R = Ã_L ... Ã_2 Ã_1``."""
    n = attentions[0].shape[-1]
    eye = torch.eye(n, dtype=torch.float64, device=attentions[0].device)
    r = eye.clone()
    for a in attentions:
        f = fuse_heads(a.double(), fusion)
        if discard_ratio > 0:
            flat = f.flatten().clone()
            k = int(flat.numel() * discard_ratio)
            if k > 0:
                flat[torch.topk(flat, k, largest=False).indices] = 0
            f = flat.view_as(f)
        a_res = 0.5 * f + 0.5 * eye
        a_res = a_res / a_res.sum(dim=-1, keepdim=True)
        r = a_res @ r
    return r


def _applies(handle):
    return attention.unavailable(handle)


@method("attention_rollout", label="Attention rollout", family="transformer", needs_layer=False,
        params=(
            Param("head_fusion", "Head fusion", "choice", "mean", choices=FUSIONS,
                  help="How the heads of a block are combined: the paper averages them."),
            Param("discard_ratio", "Discard ratio", "float", 0.0, 0.0, 0.99,
                  help="Fraction of the smallest attention weights dropped in every block "
                       "(reduces noise; 0.9 is common with max fusion)."),
        ),
        speed="fast", uses="own", heatmap="cam", contrastive=False, order=10,
        applies=_applies, paper="https://arxiv.org/abs/2005.00928",
        description="How much each patch flows into the class token through every block's "
                    "attention and residual connection. Class-independent; no gradients.")
def attention_rollout(ctx: Context) -> Result:
    ap = attention.record_attention(ctx.handle, ctx.x)
    r = rollout([a[0] for a in ap.attentions], ctx.params["head_fusion"],
                float(ctx.params["discard_ratio"]))
    m = attention.patch_map(ap.layout, r)
    return Result(attribution=m.float().cpu(),
                  extras={"blocks": len(ap.attentions), "grid": ap.layout.grid,
                          "readout": ap.layout.readout, "prefix_tokens": ap.layout.prefix})
