"""Eigen-CAM: the first principal component of a layer's maps (no gradient)."""

from __future__ import annotations

import torch

from .common import Context, Result
from .registry import method


@method("eigencam", label="Eigen-CAM", family="cam_free", needs_layer=True, params=(),
        speed="instant", uses="maps", heatmap="cam", contrastive=False, order=10,
        paper="https://arxiv.org/abs/2008.00299",
        description="First principal component of the layer's maps: the dominant pattern, "
                    "with no gradient and so not class-specific.")
def eigencam(ctx: Context) -> Result:
    A = ctx.maps().activation[0].float()
    C, h, w = A.shape
    flat = A.reshape(C, h * w).T  # (hw, C), as pytorch-grad-cam's get_2d_projection
    flat = flat - flat.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    proj = (flat @ vh[0]).reshape(h, w)
    # the SVD sign is arbitrary; orient the component with the mean activation
    if torch.sum(proj * (A.mean(0) - A.mean())) < 0:
        proj = -proj
    return Result(attribution=proj[None, None].cpu(), extras={"layer_shape": (C, h, w)})
