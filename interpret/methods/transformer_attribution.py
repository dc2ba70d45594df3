"""Transformer attribution: gradient-weighted attention relevance (Chefer, Gur & Wolf
2021, "Generic Attention-model Explainability for Interpreting Bi-Modal and
Encoder-Decoder Transformers", arXiv:2103.15679, eqs. 5-6 for self-attention), no LRP."""

from __future__ import annotations

from typing import Sequence

import torch

from .. import attention
from .common import Context, Result
from .registry import method


def relevance(attentions: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor]) -> torch.Tensor:
    """The N x N relevance of per-block H x N x N attention probabilities ``A`` and
    gradients ``dS/dA``, first block first: ``R = I``; per block
    ``Ā = E_h[(∇A ⊙ A)^+]`` (eq. 5) and ``R ← R + Ā R`` (eq. 6)."""
    n = attentions[0].shape[-1]
    r = torch.eye(n, dtype=torch.float64, device=attentions[0].device)
    for a, g in zip(attentions, gradients):
        a_bar = (g.double() * a.double()).clamp(min=0).mean(0)
        r = r + a_bar @ r
    return r


def _applies(handle):
    return attention.unavailable(handle)


@method("transformer_attribution", label="Transformer attribution (Chefer et al.)",
        family="transformer", needs_layer=False, params=(), speed="fast", uses="own",
        heatmap="cam", order=20, applies=_applies, paper="https://arxiv.org/abs/2103.15679",
        description="Every block's attention weighted by the gradient of the class score, "
                    "its positive part averaged over heads and propagated to the class "
                    "token. Class-specific; one forward and one backward.")
def transformer_attribution(ctx: Context) -> Result:
    ap = attention.record_attention(ctx.handle, ctx.x, ctx.target, ctx.contrast, grads=True)
    r = relevance([a[0] for a in ap.attentions], [g[0] for g in ap.gradients])
    m = attention.patch_map(ap.layout, r)
    return Result(attribution=m.float().cpu(),
                  extras={"blocks": len(ap.attentions), "grid": ap.layout.grid,
                          "readout": ap.layout.readout, "prefix_tokens": ap.layout.prefix})
