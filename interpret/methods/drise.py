"""D-RISE (Petsiuk et al. 2021, "Black-box Explanation of Object Detectors via
Saliency Maps", arXiv:2012.05374): random masks, each weighted by how much the masked
photo's detections still look like the explained one.

For mask ``M_i`` the weight is ``w_i = max_j s(d_t, d_j)`` over the masked photo's
detections ``d_j`` (eq. 2-3), with ``s = IoU x objectness x class similarity``; the
map is ``sum_i w_i M_i`` (eq. 4).  torchvision's detectors return, per kept
detection, one class score (no objectness, no class-probability vector), so here
``s = IoU(d_t, d_j) x score_j`` for the detections of the explained class and 0 for
the others (the cosine of a one-hot class vector with the detection's, as far as the
detector tells it).  The masks are the paper's (RISE's): a ``grid`` x ``grid`` binary
grid, each cell kept with probability ``p``, upsampled bilinearly to a cell larger
than the input and shifted by a random offset; masked pixels become black.

Batched like occlusion: ``batch_size`` masked photos per forward.  The masks come from
a generator seeded with ``seed``, so a batched run and a loop of single forwards give
the same masks (and, but for floating point, the same map).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..detection import BoxTarget, box_iou, clip_boxes
from ..errors import InputError
from ..words import a_task
from .common import Context, Result, baseline
from .registry import Cost, Param, method


def _cost(handle, layer, params) -> Cost:
    n = int(params["masks"])
    return Cost(n, -(-n // int(params["batch_size"])))


def _applies(handle) -> "str | None":
    try:
        task = handle.task
    except InputError as exc:
        return str(exc)
    if task != "detection":
        return f"D-RISE explains an object detector's box; this is {a_task(task)}."
    return None


def masks(n: int, size, grid: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """``n`` RISE masks (n x 1 x H x W in [0, 1]): a ``grid`` x ``grid`` grid of cells
    kept with probability ``p``, upsampled bilinearly to ``(grid + 1)`` cells' size and
    cropped at a random offset within one cell (Petsiuk et al. 2018, section 3.2)."""
    H, W = int(size[0]), int(size[1])
    ch, cw = -(-H // grid), -(-W // grid)
    cells = (torch.rand(n, 1, grid, grid, generator=generator) < p).float()
    up = F.interpolate(cells, size=((grid + 1) * ch, (grid + 1) * cw), mode="bilinear", align_corners=False)
    dy = torch.randint(0, ch, (n,), generator=generator)
    dx = torch.randint(0, cw, (n,), generator=generator)
    return torch.stack([up[i, :, int(dy[i]):int(dy[i]) + H, int(dx[i]):int(dx[i]) + W] for i in range(n)])


def similarity(target: BoxTarget, output: torch.Tensor) -> torch.Tensor:
    """Per image of a packed detector output (B x N x 6), ``max_j IoU(box, d_j) x
    score_j`` over the detections of the explained class (0 when there is none)."""
    box = torch.tensor(target.pixels, dtype=output.dtype, device=output.device)
    iou = box_iou(box, clip_boxes(output[..., :4], target.input_hw))  # as BoxTarget.match
    same = (output[..., 5].round() == int(target.index)).to(output.dtype)
    s = iou * output[..., 4] * same
    return s.max(dim=1).values if s.shape[1] else torch.zeros(output.shape[0], dtype=output.dtype)


@method("drise", label="D-RISE", family="path", needs_layer=False,
        params=(
            Param("masks", "Random masks", "int", 1000, 8, 10000),
            Param("grid", "Mask grid (cells per side)", "int", 16, 2, 64),
            Param("p", "Share of cells kept", "float", 0.5, 0.05, 0.95),
            Param("batch_size", "Masked images per forward", "int", 16, 1, 256),
            Param("seed", "Random seed", "int", 0, 0, 2 ** 31 - 1),
        ),
        preview={"masks": 8, "grid": 4, "batch_size": 4},
        speed="slow", heatmap="maps", progress=True, cost=_cost, order=25, applies=_applies,
        paper="https://arxiv.org/abs/2012.05374",
        description="Masks the photo at random many times and keeps the masks under which the "
                    "detector still finds this box: made for detectors, needs no gradient.")
def drise(ctx: Context) -> Result:
    t = ctx.target
    if not isinstance(t, BoxTarget) or not t.resolved:
        raise InputError("D-RISE explains one detection: give a box target (interpret.targets.box).")
    if t.contrast is not None:  # its weights are one class's (IoU x score): never a silent half answer
        raise InputError("D-RISE weighs each mask by one class's detection, so it cannot explain \"this box "
                         "rather than that label\"; use a gradient method (Grad-CAM, saliency) or occlusion.")
    n, bs = int(ctx.params["masks"]), int(ctx.params["batch_size"])
    g = torch.Generator().manual_seed(int(ctx.params["seed"]))
    x = ctx.x.detach()
    base = baseline(ctx, "black")
    total = -(-n // bs)
    sal = torch.zeros(ctx.size, dtype=torch.float32)
    weights = []
    for b, start in enumerate(range(0, n, bs)):
        m = masks(min(bs, n - start), ctx.size, int(ctx.params["grid"]), float(ctx.params["p"]), g)
        m = m.to(x.device, x.dtype)
        batch = x * m + base * (1 - m)
        with torch.no_grad():
            from ..tensors import check_output, task_output

            raw = ctx.handle.module(batch)
            w = similarity(t, check_output(task_output(raw, ctx.size), raw)).float().cpu()
        sal += (w[:, None, None] * m[:, 0].float().cpu()).sum(0)
        weights.append(w)
        ctx.report(b + 1, total)
    w = torch.cat(weights)
    # eq. 4 averaged over the masks and divided by the keep rate, as RISE does, so the
    # scale reads as "the expected similarity when a pixel is kept"
    sal = sal / (n * float(ctx.params["p"]))
    return Result(attribution=sal[None, None], extras={"masks": n, "mean_weight": float(w.mean()),
                                                       "weights_nonzero": int((w > 0).sum())})
