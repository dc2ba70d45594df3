"""Class activation maps.  The five gradient CAMs and the activation view are a few
tensor operations on ONE captured (activation, gradient) pair; Eigen-CAM needs only the
activation; Score-CAM adds batched forwards of masked inputs (no hooks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .common import Context, Result, cam_heatmap, signed_map_heatmap, upsample
from .registry import Param, method

_EPS = 1e-7


def _pair(ctx: Context):
    cap = ctx.capture()
    return cap, cap.activation[0].float(), cap.gradient[0].float()


def _result(ctx, cam, cap, **extras) -> Result:
    return Result(
        attribution=cam[None, None].detach().cpu(),
        heatmap=cam_heatmap(cam, ctx.size),
        extras={"layer_shape": tuple(cap.activation.shape[1:]), **extras},
    )


@method("gradcam", label="Grad-CAM", family="cam", needs_layer=True, params=(), cost="instant",
        paper="https://arxiv.org/abs/1610.02391",
        description="Layer maps weighted by the spatial mean of their gradient: where the "
                    "evidence for the class sits, at the layer's resolution.")
def gradcam(ctx: Context) -> Result:
    cap, A, G = _pair(ctx)
    weights = G.mean(dim=(1, 2))  # Selvaraju et al. 2017, eq. 1
    return _result(ctx, (weights[:, None, None] * A).sum(0), cap, weights=weights.cpu().numpy())


@method("gradcam_plus_plus", label="Grad-CAM++", family="cam", needs_layer=True, params=(),
        cost="instant", paper="https://arxiv.org/abs/1710.11063",
        description="Grad-CAM with pixel-wise weights from higher-order gradients; better "
                    "for several instances of a class.")
def gradcam_plus_plus(ctx: Context) -> Result:
    cap, A, G = _pair(ctx)
    g2, g3 = G ** 2, G ** 3
    sum_a = A.sum(dim=(1, 2), keepdim=True)
    # Chattopadhyay et al. 2018, eq. 19, with exp(score) gradients approximated as in
    # the paper's and pytorch-grad-cam's implementation; alpha = 0 where the gradient is 0.
    alpha = g2 / (2 * g2 + sum_a * g3 + 1e-6)
    alpha = torch.where(G != 0, alpha, torch.zeros_like(alpha))
    weights = (G.clamp(min=0) * alpha).sum(dim=(1, 2))
    return _result(ctx, (weights[:, None, None] * A).sum(0), cap, weights=weights.cpu().numpy())


@method("xgradcam", label="XGrad-CAM", family="cam", needs_layer=True, params=(), cost="instant",
        paper="https://arxiv.org/abs/2008.02312",
        description="Grad-CAM with weights normalised by each map's activation mass "
                    "(axiom-based: sensitivity and conservation).")
def xgradcam(ctx: Context) -> Result:
    cap, A, G = _pair(ctx)
    sum_a = A.sum(dim=(1, 2), keepdim=True)
    weights = (G * A / (sum_a + _EPS)).sum(dim=(1, 2))  # Fu et al. 2020, eq. 9
    return _result(ctx, (weights[:, None, None] * A).sum(0), cap, weights=weights.cpu().numpy())


@method("layercam", label="LayerCAM", family="cam", needs_layer=True, params=(), cost="instant",
        paper="https://ieeexplore.ieee.org/document/9462463",
        description="Each location weighted by its own positive gradient: finer maps, "
                    "usable on earlier layers.")
def layercam(ctx: Context) -> Result:
    cap, A, G = _pair(ctx)
    return _result(ctx, (G.clamp(min=0) * A).sum(0), cap)  # Jiang et al. 2021, eq. 4-5


@method("hirescam", label="HiResCAM", family="cam", needs_layer=True, params=(), cost="instant",
        paper="https://arxiv.org/abs/2011.08891",
        description="Element-wise gradient x activation summed over channels: provably "
                    "shows the locations the score used, for CNNs ending in one linear layer.")
def hirescam(ctx: Context) -> Result:
    cap, A, G = _pair(ctx)
    return _result(ctx, (G * A).sum(0), cap)  # Draelos & Carin 2020, eq. 4


@method("activation", label="Activations", family="activation", needs_layer=True,
        params=(Param("channel", "Channel (-1 = mean of all)", "int", -1, -1, 65535),),
        cost="instant", contrastive=False, paper="https://arxiv.org/abs/1311.2901",
        description="The layer's feature maps themselves (mean over channels, or one "
                    "channel): what the layer sees, regardless of the class.")
def activation(ctx: Context) -> Result:
    cap = ctx.capture()
    A = cap.activation[0].float()
    ch = int(ctx.params["channel"])
    if ch >= A.shape[0]:
        from ..errors import InputError

        raise InputError(f"Channel {ch} is out of range: layer '{ctx.layer}' has {A.shape[0]} channels (0-{A.shape[0] - 1}).")
    m = A.mean(0) if ch < 0 else A[ch]
    return Result(
        attribution=cap.activation.detach().cpu(),
        heatmap=signed_map_heatmap(m, ctx.size),
        extras={
            "channels": A.cpu().numpy(),
            "channel_means": A.mean(dim=(1, 2)).cpu().numpy(),
            "channel_maxes": A.amax(dim=(1, 2)).cpu().numpy(),
            "layer_shape": tuple(A.shape),
        },
    )


@method("eigencam", label="Eigen-CAM", family="cam_free", needs_layer=True, params=(),
        cost="instant", contrastive=False, paper="https://arxiv.org/abs/2008.00299",
        description="First principal component of the layer's maps: the dominant pattern, "
                    "with no gradient and so not class-specific.")
def eigencam(ctx: Context) -> Result:
    cap = ctx.capture()
    A = cap.activation[0].float()
    C, h, w = A.shape
    flat = A.reshape(C, h * w).T  # (hw, C), as pytorch-grad-cam's get_2d_projection
    flat = flat - flat.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    proj = (flat @ vh[0]).reshape(h, w)
    # the SVD sign is arbitrary; orient the component with the mean activation
    if torch.sum(proj * (A.mean(0) - A.mean())) < 0:
        proj = -proj
    return Result(attribution=proj[None, None].cpu(), heatmap=cam_heatmap(proj, ctx.size),
                  extras={"layer_shape": (C, h, w)})


@method("scorecam", label="Score-CAM", family="cam_free", needs_layer=True,
        params=(
            Param("max_channels", "Channels used (top by mean activation)", "int", 64, 1, 4096,
                  help="Each channel costs one forward pass of a masked image."),
            Param("batch_size", "Masked images per forward", "int", 16, 1, 256),
        ),
        cost="slow", paper="https://arxiv.org/abs/1910.01279",
        description="Each map masks the image; its weight is how much the masked image "
                    "alone raises the class score. No gradients; one forward per channel.")
def scorecam(ctx: Context) -> Result:
    cap = ctx.capture()
    A = cap.activation[0].float()
    C = A.shape[0]
    k = min(int(ctx.params["max_channels"]), C)
    idx = torch.topk(A.mean(dim=(1, 2)), k).indices
    maps = F.interpolate(A[idx][:, None], size=ctx.size, mode="bilinear", align_corners=False)[:, 0]
    lo = maps.flatten(1).min(1).values[:, None, None]
    hi = maps.flatten(1).max(1).values[:, None, None]
    masks = (maps - lo) / (hi - lo + _EPS)
    bs = int(ctx.params["batch_size"])
    scores = []
    ctx.report(0, k)
    for i in range(0, k, bs):
        m = masks[i:i + bs].to(ctx.x.device)
        scores.append(ctx.scores(ctx.x * m[:, None]).float().cpu())
        ctx.report(min(i + bs, k), k)
    # Wang et al. 2020, eq. 5-6; softmax over channel scores as in pytorch-grad-cam
    weights = torch.softmax(torch.cat(scores), dim=0)
    cam = (weights[:, None, None] * A[idx].cpu()).sum(0)
    return Result(attribution=cam[None, None], heatmap=cam_heatmap(cam, ctx.size),
                  extras={"channels_used": k, "forward_passes": (k + bs - 1) // bs,
                          "layer_shape": tuple(A.shape)})
