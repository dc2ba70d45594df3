"""Score-CAM: each of the layer's maps masks the image; its weight is how much the
masked image alone raises the class score.  No gradients; batched forwards of masked
inputs (no hooks on them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..layers import map_shape
from ..scaling import minmax
from .common import Context, Result
from .registry import Cost, Param, method


def _cost(handle, layer, params) -> Cost:
    from ..layers import check_layer

    C, _ = map_shape(handle, check_layer(handle, layer))
    k = min(int(params["max_channels"]), C)
    return Cost(k, -(-k // int(params["batch_size"])), channels=C)


@method("scorecam", label="Score-CAM", family="cam_free", needs_layer=True,
        params=(
            Param("max_channels", "Channels used (top by mean activation)", "int", 64, 1, 4096,
                  help="Each channel costs one forward pass of a masked image."),
            Param("batch_size", "Masked images per forward", "int", 16, 1, 256),
        ),
        preview={"max_channels": 4, "batch_size": 2},
        speed="slow", uses="own", heatmap="cam", progress=True, cost=_cost, order=20,
        paper="https://arxiv.org/abs/1910.01279",
        description="Each map masks the image; its weight is how much the masked image "
                    "alone raises the class score. No gradients; one forward per channel.")
def scorecam(ctx: Context) -> Result:
    A = ctx.maps().activation[0].float()
    C = A.shape[0]
    k = min(int(ctx.params["max_channels"]), C)
    idx = torch.topk(A.mean(dim=(1, 2)), k).indices
    maps = F.interpolate(A[idx][:, None], size=ctx.size, mode="bilinear", align_corners=False)[:, 0]
    masks = minmax(maps, per_item=True)
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
    return Result(attribution=cam[None, None],
                  extras={"channels_used": k, "forward_passes": (k + bs - 1) // bs,
                          "layer_shape": tuple(A.shape)})
