"""Guided backpropagation and guided Grad-CAM: gradients passed back only where they
are positive through every activation module (thread-local guided activations)."""

from __future__ import annotations

import torch

from ..errors import InputError
from ..hooks import guided
from ..scaling import heatmap
from .cam import gradcam_weights
from .common import Context, Result
from .registry import method


def _guided_grad(ctx: Context) -> torch.Tensor:
    with guided(ctx.handle.module) as n_guided:
        if n_guided == 0:
            # Without activation modules to hook (TorchScript, or F.relu in forward) the
            # result would be the plain gradient under the guided label: refuse instead.
            raise InputError(
                "Guided backpropagation needs activation modules (nn.ReLU and the like) to "
                "guide; this model has none that can be hooked (a TorchScript model, or "
                "activations called as functions). Use saliency instead."
            )
        _, g = ctx.gradients(ctx.x)
    return g


@method("guided_backprop", label="Guided Backpropagation", family="gradient", needs_layer=False,
        params=(), speed="fast", heatmap="abs_max", order=40,
        paper="https://arxiv.org/abs/1412.6806",
        description="Gradient passed back only where it is positive through every "
                    "activation: sharp edges, weakly class-specific.")
def guided_backprop(ctx: Context) -> Result:
    return Result(attribution=_guided_grad(ctx).cpu())


@method("guided_gradcam", label="Guided Grad-CAM", family="gradient", needs_layer=True,
        params=(), speed="fast", uses="own", heatmap="abs_max", order=50,
        paper="https://arxiv.org/abs/1610.02391",
        description="Guided backpropagation masked by the Grad-CAM map: fine detail, "
                    "only where the class evidence is.")
def guided_gradcam(ctx: Context) -> Result:
    g = _guided_grad(ctx)
    cap = ctx.capture()
    A, G = cap.activation[0].float(), cap.gradient[0].float()
    cam = (gradcam_weights(A, G) * A).sum(0)
    mask = torch.from_numpy(heatmap(cam, "cam", ctx.size)).to(g.device)
    a = g * mask[None, None]  # Selvaraju et al. 2017, section 3.1
    return Result(attribution=a.cpu())
