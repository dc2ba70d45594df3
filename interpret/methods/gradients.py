"""Input-gradient methods.  Saliency and input x gradient reuse the captured pass; the
others need their own backward passes (SmoothGrad batched, guided backprop with
thread-local guided activations)."""

from __future__ import annotations

import torch

from ..capture import target_score
from ..hooks import guided
from ..models import _first_tensor
from .cam import gradcam
from .common import Context, Result, grad_heatmap, upsample
from .registry import Param, method


@method("saliency", label="Saliency (gradient)", family="gradient", needs_layer=False, params=(),
        cost="instant", paper="https://arxiv.org/abs/1312.6034",
        description="How much each pixel would change the score if nudged: the raw "
                    "gradient, largest absolute value over colour channels.")
def saliency(ctx: Context) -> Result:
    cap = ctx.capture(with_layer=ctx.layer is not None)
    g = cap.input_grad
    return Result(attribution=g.cpu(), heatmap=grad_heatmap(g, "abs_max"))


@method("input_x_gradient", label="Input x Gradient", family="gradient", needs_layer=False,
        params=(), cost="instant", paper="https://arxiv.org/abs/1605.01713",
        description="Gradient times the (normalised) input: a first-order estimate of each "
                    "pixel's contribution.")
def input_x_gradient(ctx: Context) -> Result:
    cap = ctx.capture(with_layer=ctx.layer is not None)
    a = cap.input_grad * cap.input
    return Result(attribution=a.cpu(), heatmap=grad_heatmap(a, "abs_sum"))


@method("smoothgrad", label="SmoothGrad", family="gradient", needs_layer=False,
        params=(
            Param("samples", "Noisy samples", "int", 25, 1, 500),
            Param("noise", "Noise level (fraction of the input range)", "float", 0.15, 0.0, 1.0),
            Param("batch_size", "Samples per backward pass", "int", 8, 1, 128),
            Param("seed", "Random seed", "int", 0, 0, 2**31 - 1),
        ),
        cost="fast", paper="https://arxiv.org/abs/1706.03825",
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
        xin = (x + noise).requires_grad_(True)
        with torch.enable_grad():
            s = target_score(_first_tensor(ctx.handle.module(xin)), ctx.target, ctx.contrast).sum()
        (g,) = torch.autograd.grad(s, [xin])
        total += g.sum(0, keepdim=True)
        done += b
        ctx.report(done, n)
    mean = total / n  # Smilkov et al. 2017, eq. 3
    return Result(attribution=mean.cpu(), heatmap=grad_heatmap(mean, "abs_max"),
                  extras={"sigma": sigma})


def _guided_grad(ctx: Context) -> torch.Tensor:
    xin = ctx.x.detach().clone().requires_grad_(True)
    with guided(ctx.handle.module) as n_guided:
        if n_guided == 0:
            # Without activation modules to hook (TorchScript, or F.relu in forward) the
            # result would be the plain gradient under the guided label: refuse instead.
            from ..errors import InputError

            raise InputError(
                "Guided backpropagation needs activation modules (nn.ReLU and the like) to "
                "guide; this model has none that can be hooked (a TorchScript model, or "
                "activations called as functions). Use saliency instead."
            )
        with torch.enable_grad():
            s = target_score(_first_tensor(ctx.handle.module(xin)), ctx.target, ctx.contrast).sum()
        (g,) = torch.autograd.grad(s, [xin])
    return g.detach()


@method("guided_backprop", label="Guided Backpropagation", family="gradient", needs_layer=False,
        params=(), cost="fast", paper="https://arxiv.org/abs/1412.6806",
        description="Gradient passed back only where it is positive through every "
                    "activation: sharp edges, weakly class-specific.")
def guided_backprop(ctx: Context) -> Result:
    g = _guided_grad(ctx)
    return Result(attribution=g.cpu(), heatmap=grad_heatmap(g, "abs_max"))


@method("guided_gradcam", label="Guided Grad-CAM", family="gradient", needs_layer=True,
        params=(), cost="fast", paper="https://arxiv.org/abs/1610.02391",
        description="Guided backpropagation masked by the Grad-CAM map: fine detail, "
                    "only where the class evidence is.")
def guided_gradcam(ctx: Context) -> Result:
    g = _guided_grad(ctx)
    cam = torch.from_numpy(gradcam(ctx).heatmap).to(g.device)
    a = g * cam[None, None]  # Selvaraju et al. 2017, section 3.1
    return Result(attribution=a.cpu(), heatmap=grad_heatmap(a, "abs_max"))
