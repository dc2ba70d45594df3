"""SmoothGrad: saliency averaged over noisy copies of the image, in batches."""

from __future__ import annotations

import torch

from .common import Context, Result
from .registry import Cost, Param, method


def _cost(handle, layer, params) -> Cost:
    n = int(params["samples"])
    return Cost(n, -(-n // int(params["batch_size"])))


@method("smoothgrad", label="SmoothGrad", family="gradient", needs_layer=False,
        params=(
            Param("samples", "Noisy samples", "int", 25, 1, 500),
            Param("noise", "Noise level (fraction of the input range)", "float", 0.15, 0.0, 1.0),
            Param("batch_size", "Samples per backward pass", "int", 8, 1, 128),
            Param("seed", "Random seed", "int", 0, 0, 2**31 - 1),
        ),
        preview={"samples": 3, "batch_size": 1},
        speed="fast", heatmap="abs_max", progress=True, cost=_cost, order=30,
        paper="https://arxiv.org/abs/1706.03825",
        description="Saliency averaged over noisy copies of the image: removes much of the "
                    "gradient's speckle.")
def smoothgrad(ctx: Context) -> Result:
    n, bs = int(ctx.params["samples"]), int(ctx.params["batch_size"])
    x = ctx.x.detach()
    sigma = float(ctx.params["noise"]) * float(x.max() - x.min())
    gen = torch.Generator(device="cpu").manual_seed(int(ctx.params["seed"]))
    total = torch.zeros_like(x)
    done = 0
    ctx.report(0, n)
    while done < n:
        b = min(bs, n - done)
        noise = torch.randn((b,) + tuple(x.shape[1:]), generator=gen).to(x.device) * sigma
        _, g = ctx.gradients(x + noise)
        total += g.sum(0, keepdim=True)
        done += b
        ctx.report(done, n)
    mean = total / n  # Smilkov et al. 2017, eq. 3
    return Result(attribution=mean.cpu(), extras={"sigma": sigma})
