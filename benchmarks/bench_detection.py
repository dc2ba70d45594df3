"""Object detection, side by side in one process (random init, no downloads):

1. five gradient CAMs for one Faster R-CNN box: interpret (one recorded pass shared by
   the five; the backward stops at the layer) against five pytorch-grad-cam calls with
   ``FasterRCNNBoxScoreTarget`` on the same layer (one FPN level's output convolution:
   pytorch-grad-cam records no gradient for the whole FPN, whose output is a dict);
   target >= 4x;
2. D-RISE: interpret's batched masks against a plain loop of one masked forward each
   (the same masks, the same map); target >= 2x.

Each round runs every measurement once (interpret's cache cleared first); medians and
minima.  The paper's mask count is 5000 (Petsiuk et al. 2021); ``--masks`` sets it
(a CPU run uses fewer and says so).

    .venv/bin/python benchmarks/bench_detection.py [--arch fasterrcnn_mobilenet_v3_large_320_fpn]
        [--rounds 3] [--masks 5000] [--batch 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch

import interpret
from interpret import targets
from interpret.tensors import task_output

CAMS = ("gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam")
LAYER = "backbone.fpn.layer_blocks.0"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="fasterrcnn_mobilenet_v3_large_320_fpn")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--masks", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from torchvision.models import get_model

    torch.manual_seed(0)
    module = get_model(a.arch, weights=None, weights_backbone=None, box_score_thresh=0.0).eval().to(a.device)
    h = interpret.load_model(module)
    g = torch.Generator().manual_seed(0)
    side = h.input_size
    x = torch.rand(1, 3, *side, generator=g).to(a.device)
    with torch.no_grad():
        own = module(x)[0]
    i = int(own["scores"].argmax())
    box, label = tuple(own["boxes"][i].tolist()), int(own["labels"][i])
    t = targets.box(box, label, with_iou=True)
    twin = copy.deepcopy(module)
    layer_mod = twin.get_submodule(LAYER)
    peers = (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, HiResCAM)
    rows = {"interpret: 5 CAMs": [], "pytorch-grad-cam: 5 CAMs": [], "interpret: D-RISE batched": [],
            "plain loop: D-RISE": []}
    from interpret.methods.drise import masks as rise_masks, similarity

    for r in range(a.rounds):
        h.cache.clear()
        t0 = time.perf_counter()
        for m in CAMS:
            interpret.explain(h, x, m, layer=LAYER, target=t)
        rows["interpret: 5 CAMs"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for cls in peers:
            with cls(twin, [layer_mod]) as cam:
                cam(x.clone(), targets=[FasterRCNNBoxScoreTarget([label], [own["boxes"][i].cpu().numpy()])])
        rows["pytorch-grad-cam: 5 CAMs"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        e = interpret.explain(h, x, "drise", target=t, masks=a.masks, batch_size=a.batch, seed=r)
        rows["interpret: D-RISE batched"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(r)
        ms = torch.cat([rise_masks(min(a.batch, a.masks - s), side, 16, 0.5, gen) for s in range(0, a.masks, a.batch)])
        sal = torch.zeros(side)
        for mk in ms:
            mk = mk.to(a.device)
            with torch.no_grad():
                out = task_output(module(x * mk), side)
            sal += float(similarity(e.explained, out)[0]) * mk[0].cpu()
        sal /= a.masks * 0.5
        rows["plain loop: D-RISE"].append(time.perf_counter() - t0)
        err = float((sal - e.attribution[0, 0]).abs().max() / sal.abs().max().clamp(min=1e-12))
        print(f"round {r}: D-RISE batched vs loop, max relative difference {err:.2e}")
    dev = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else platform.processor() or platform.machine()
    print(f"\n{a.arch}, input {side[0]}x{side[1]}, {a.masks} masks, batch {a.batch}, {dev}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}\n")
    print("| measurement | median s | min s |\n|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {statistics.median(v):.3f} | {min(v):.3f} |")
    cam = min(rows["pytorch-grad-cam: 5 CAMs"]) / min(rows["interpret: 5 CAMs"])
    dr = min(rows["plain loop: D-RISE"]) / min(rows["interpret: D-RISE batched"])
    print(f"\nCAMs: {cam:.1f}x pytorch-grad-cam (target >= 4x); D-RISE: {dr:.1f}x a plain loop (target >= 2x)")


if __name__ == "__main__":
    main()
