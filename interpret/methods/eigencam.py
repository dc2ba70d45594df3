"""Eigen-CAM: the first principal component of a layer's maps (no gradient).

The sign of a principal component is arbitrary (the SVD may return ``v`` or ``-v``).
It is fixed here by the **activation norm per location**: the component is oriented so
that it correlates positively with ``||A[:, i, j]||``, the length of the layer's
activation vector at each location.  Where the network responds strongly, the
projection is then high.  The rule it replaces (match the layer's *mean* activation,
averaged over channels) picked the wrong sign on the espresso photo with the bundled
model: the map lit the saucer, not the cup, at -0.92 rank correlation with Grad-CAM;
oriented by the norm it reads +0.91 (tests/test_cam_numbers.py checks the sign on
several photos and layers against Grad-CAM).  pytorch-grad-cam leaves the sign as the
SVD returns it."""

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
    # the SVD sign is arbitrary: orient the component with the activation norm per location
    norm = torch.linalg.vector_norm(A.reshape(C, h * w), dim=0).reshape(h, w)
    if torch.sum(proj * (norm - norm.mean())) < 0:
        proj = -proj
    return Result(attribution=proj[None, None].cpu(), extras={"layer_shape": (C, h, w)})
