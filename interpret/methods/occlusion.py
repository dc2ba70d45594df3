"""Occlusion (Zeiler & Fergus 2014), computed by Captum with batched perturbations."""

from __future__ import annotations

import torch

from ..errors import InputError
from .common import BASELINES, Context, Result, baseline
from .registry import Cost, Param, method


def _windows(size, window: int, stride: int) -> int:
    H, W = size
    return ((H - window) // stride + 1) * ((W - window) // stride + 1)


def _cost(handle, layer, params) -> Cost:
    n = _windows(handle.input_size, int(params["window"]), int(params["stride"]))
    # Captum scores the unoccluded image first, then the windows in batches
    return Cost(n + 1, -(-n // int(params["batch_size"])) + 1)


def _counting(fn, ctx: Context, total: int):
    """Wrap a forward function to report progress once per call."""
    state = {"n": 0}

    def wrapped(batch, *args):
        out = fn(batch, *args)
        state["n"] += 1
        ctx.report(min(state["n"], total), total)
        return out

    return wrapped


@method("occlusion", label="Occlusion", family="path", needs_layer=False,
        params=(
            Param("window", "Window size (pixels)", "int", 64, 4, 224),
            Param("stride", "Stride (pixels)", "int", 32, 2, 224),
            Param("baseline", "Fill of the occluding patch", "choice", "black", choices=BASELINES),
            Param("batch_size", "Occluded images per forward", "int", 16, 1, 256),
        ),
        preview={"window": 32, "stride": 32, "batch_size": 1},
        speed="slow", heatmap="positive_sum", progress=True, cost=_cost, order=20,
        paper="https://arxiv.org/abs/1311.2901",
        description="Covers the image patch by patch and records how much the score drops: "
                    "direct, model-agnostic, slow.")
def occlusion(ctx: Context) -> Result:
    from captum.attr import Occlusion

    x = ctx.x.detach()
    w, s = int(ctx.params["window"]), int(ctx.params["stride"])
    H, W = ctx.size
    if w > min(H, W):
        raise InputError(f"Occlusion window {w} is larger than the input ({H}x{W}).")
    n = _windows(ctx.size, w, s)
    bs = int(ctx.params["batch_size"])
    fn = _counting(ctx.score_fn(), ctx, (n + bs - 1) // bs + 1)
    with torch.no_grad():
        attr = Occlusion(fn).attribute(
            x, sliding_window_shapes=(3, w, w), strides=(3, s, s),
            baselines=baseline(ctx, ctx.params["baseline"]), perturbations_per_eval=bs,
        )
    # drawn as the positive part: the regions whose occlusion lowers the score
    return Result(attribution=attr.detach().cpu(), extras={"windows": n})
