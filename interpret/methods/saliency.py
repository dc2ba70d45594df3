"""Saliency and input x gradient: read from the recorded pass (with the input gradient).
Given the CAMs' layer, they share one capture with them."""

from __future__ import annotations

from .common import Context, Result
from .registry import method


def _capture(ctx: Context):
    return ctx.capture(input_grad=True, with_layer=ctx.layer is not None)


@method("saliency", label="Saliency (gradient)", family="gradient", needs_layer=False,
        accepts_layer=True, params=(), speed="instant", uses="input", heatmap="abs_max",
        order=10, paper="https://arxiv.org/abs/1312.6034",
        description="How much each pixel would change the score if nudged: the raw "
                    "gradient, largest absolute value over colour channels.")
def saliency(ctx: Context) -> Result:
    return Result(attribution=_capture(ctx).input_grad.cpu())


@method("input_x_gradient", label="Input x Gradient", family="gradient", needs_layer=False,
        accepts_layer=True, params=(), speed="instant", uses="input", heatmap="abs_sum",
        order=20, paper="https://arxiv.org/abs/1605.01713",
        description="Gradient times the (normalised) input: a first-order estimate of each "
                    "pixel's contribution.")
def input_x_gradient(ctx: Context) -> Result:
    cap = _capture(ctx)
    return Result(attribution=(cap.input_grad * cap.input).cpu())
