"""The gradient CAMs.  Each is its weights function on the captured (activation A,
gradient G) pair of one layer (C x h x w each): per-channel weights (C x 1 x 1), or
per-location weights (C x h x w) for LayerCAM and HiResCAM; the map is then
``sum_c weights_c * A_c`` (the template of pytorch-grad-cam's ``BaseCAM``).  All five
share one capture that back-propagates to the layer only.
"""

from __future__ import annotations

from typing import Callable

import torch

from .common import Context, Result
from .registry import method

_EPS = 1e-7

Weights = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gradient_cam(name: str, label: str, paper: str, description: str, order: int):
    """Register a gradient CAM given by its weights function ``weights(A, G)``."""

    def deco(weights: Weights) -> Weights:
        def run(ctx: Context) -> Result:
            cap = ctx.capture()
            A, G = cap.activation[0].float(), cap.gradient[0].float()
            w = weights(A, G)
            cam = (w * A).sum(0)
            extras = {"layer_shape": tuple(A.shape)}
            if w.shape[1:] == (1, 1):
                extras["weights"] = w.flatten().cpu().numpy()
            return Result(attribution=cam[None, None].detach().cpu(), extras=extras)

        method(name, label=label, family="cam", needs_layer=True, params=(), speed="instant",
               uses="layer", heatmap="cam", paper=paper, description=description, order=order)(run)
        return weights

    return deco


@gradient_cam("gradcam", "Grad-CAM", "https://arxiv.org/abs/1610.02391",
              "Layer maps weighted by the spatial mean of their gradient: where the evidence "
              "for the class sits, at the layer's resolution.", 10)
def gradcam_weights(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    return G.mean(dim=(1, 2), keepdim=True)  # Selvaraju et al. 2017, eq. 1


@gradient_cam("gradcam_plus_plus", "Grad-CAM++", "https://arxiv.org/abs/1710.11063",
              "Grad-CAM with pixel-wise weights from higher-order gradients; better for "
              "several instances of a class.", 20)
def gradcam_plus_plus_weights(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    g2, g3 = G ** 2, G ** 3
    sum_a = A.sum(dim=(1, 2), keepdim=True)
    # Chattopadhyay et al. 2018, eq. 19, with exp(score) gradients approximated as in
    # the paper's and pytorch-grad-cam's implementation; alpha = 0 where the gradient is 0.
    alpha = g2 / (2 * g2 + sum_a * g3 + 1e-6)
    alpha = torch.where(G != 0, alpha, torch.zeros_like(alpha))
    return (G.clamp(min=0) * alpha).sum(dim=(1, 2), keepdim=True)


@gradient_cam("xgradcam", "XGrad-CAM", "https://arxiv.org/abs/2008.02312",
              "Grad-CAM with weights normalised by each map's activation mass (axiom-based: "
              "sensitivity and conservation).", 30)
def xgradcam_weights(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    sum_a = A.sum(dim=(1, 2), keepdim=True)
    return (G * A / (sum_a + _EPS)).sum(dim=(1, 2), keepdim=True)  # Fu et al. 2020, eq. 9


@gradient_cam("layercam", "LayerCAM", "https://ieeexplore.ieee.org/document/9462463",
              "Each location weighted by its own positive gradient: finer maps, usable on "
              "earlier layers.", 40)
def layercam_weights(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    return G.clamp(min=0)  # Jiang et al. 2021, eq. 4-5


@gradient_cam("hirescam", "HiResCAM", "https://arxiv.org/abs/2011.08891",
              "Element-wise gradient x activation summed over channels: provably shows the "
              "locations the score used, for CNNs ending in one linear layer.", 50)
def hirescam_weights(A: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    return G  # Draelos & Carin 2020, eq. 4
