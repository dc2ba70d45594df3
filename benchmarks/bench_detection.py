"""Object detection, side by side in one process (random init, no downloads):

1. five gradient CAMs for one Faster R-CNN box: interpret (one recorded pass shared by
   the five; the backward stops at the layer) against five pytorch-grad-cam calls with
   ``FasterRCNNBoxScoreTarget`` on the same layer (one FPN level's output convolution:
   pytorch-grad-cam records no gradient for the whole FPN, whose output is a dict);
   target >= 4x;
2. D-RISE: interpret's batched masks against a plain loop of one masked forward each
   (the same masks, the same map); target >= 2x.

Each round runs every measurement once (interpret's cache cleared first); medians and
minima.  The paper's mask count is 5000 (Petsiuk et al. 2021), the default of
``--masks``.  ``--only drise`` skips the CAMs; ``--chunk`` runs D-RISE as several calls
of that many masks, each with its own seed and compared with the loop on the same masks,
and ``--budget-s`` stops after that time (5000 masks and their loop took 53 minutes on
the shared 2-core CPU, docs/detection.md), scaling both times to ``--masks`` and saying so.  The two D-RISE maps must agree (largest difference at most ``--tolerance`` of
the map's largest value) or the script fails: a faster wrong map is no result.

    .venv/bin/python benchmarks/bench_detection.py [--arch fasterrcnn_mobilenet_v3_large_320_fpn]
        [--rounds 3] [--masks 5000] [--batch 32] [--device cpu] [--only cams|drise]
        [--tolerance 1e-4] [--chunk 500] [--budget-s 3600]
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
    ap.add_argument("--only", choices=("cams", "drise"), default=None)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--chunk", type=int, default=0,
                    help="masks per D-RISE call (each chunk its own seed; 0: one call)")
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="stop D-RISE after this many seconds and scale the times to --masks "
                         "(said in the output)")
    a = ap.parse_args()
    do_cams, do_drise = a.only in (None, "cams"), a.only in (None, "drise")
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
    rows = {}
    if do_cams:
        rows.update({"interpret: 5 CAMs": [], "pytorch-grad-cam: 5 CAMs": []})
    if do_drise:
        rows.update({f"interpret: D-RISE batched ({a.masks} masks)": [],
                     f"plain loop: D-RISE, one masked forward each ({a.masks} masks)": []})
    ours, loop = (f"interpret: D-RISE batched ({a.masks} masks)",
                  f"plain loop: D-RISE, one masked forward each ({a.masks} masks)")
    from interpret.methods.drise import masks as rise_masks, similarity

    errs, masks_done = [], []
    for r in range(a.rounds):
        h.cache.clear()
        if do_cams:
            t0 = time.perf_counter()
            for m in CAMS:
                interpret.explain(h, x, m, layer=LAYER, target=t)
            rows["interpret: 5 CAMs"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for cls in peers:
                with cls(twin, [layer_mod]) as cam:
                    cam(x.clone(), targets=[FasterRCNNBoxScoreTarget([label], [own["boxes"][i].cpu().numpy()])])
            rows["pytorch-grad-cam: 5 CAMs"].append(time.perf_counter() - t0)
        if not do_drise:
            continue
        chunk = a.chunk or a.masks
        done, t_ours, t_loop = 0, 0.0, 0.0
        ours_map, loop_map = torch.zeros(side), torch.zeros(side)
        w_ours, w_loop = [], []
        started = time.perf_counter()
        for c, n in enumerate(min(chunk, a.masks - s) for s in range(0, a.masks, chunk)):
            if a.budget_s and time.perf_counter() - started > a.budget_s:
                print(f"round {r}: time budget spent after {done} of {a.masks} masks", flush=True)
                break
            seed = r * 100_003 + c
            t0 = time.perf_counter()
            e = interpret.explain(h, x, "drise", target=t, masks=n, batch_size=a.batch, seed=seed)
            t_ours += time.perf_counter() - t0
            t0 = time.perf_counter()
            # the same masks as interpret's (one generator, drawn batch by batch in the
            # same order), made a batch at a time: 5000 masks of 320 x 320 are 2 GB
            gen = torch.Generator().manual_seed(seed)
            sal = torch.zeros(side)
            for s in range(0, n, a.batch):
                for mk in rise_masks(min(a.batch, n - s), side, 16, 0.5, gen):
                    mk = mk.to(a.device)
                    with torch.no_grad():
                        out = task_output(module(x * mk), side)
                    w_loop.append(float(similarity(e.explained, out)[0]))
                    sal += w_loop[-1] * mk[0].cpu()
            t_loop += time.perf_counter() - t0
            w_ours.append(e.extras["mean_weight"] * n)
            ours_map += e.attribution[0, 0].float().cpu() * n
            loop_map += sal / 0.5
            done += n
            print(f"  {done} masks: batched {t_ours:.1f} s, loop {t_loop:.1f} s", flush=True)
        rows[ours].append(t_ours * a.masks / max(done, 1))
        rows[loop].append(t_loop * a.masks / max(done, 1))
        masks_done.append(done)
        ours_map, loop_map = ours_map / max(done, 1), loop_map / max(done, 1)
        err = float((loop_map - ours_map).abs().max() / loop_map.abs().max().clamp(min=1e-12))
        print(f"round {r}: {done} masks, batched {t_ours:.1f} s, loop {t_loop:.1f} s; max relative "
              f"difference of the maps {err:.2e}; mean mask weight {sum(w_ours) / max(done, 1):.6f} "
              f"batched, {statistics.mean(w_loop or [0.0]):.6f} loop", flush=True)
        errs.append(err)
    dev = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else platform.processor() or platform.machine()
    print(f"\n{a.arch}, input {side[0]}x{side[1]}, {a.masks} masks, batch {a.batch}, {dev}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}\n")
    if do_drise and min(masks_done) < a.masks:
        print(f"D-RISE stopped at {min(masks_done)} of {a.masks} masks (--budget-s); its times below "
              f"are measured on those masks and scaled to {a.masks}\n")
    print("| measurement | median s | min s |\n|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {statistics.median(v):.3f} | {min(v):.3f} |")
    said = []
    worst = max(errs, default=0.0)
    if do_cams:
        cam = min(rows["pytorch-grad-cam: 5 CAMs"]) / min(rows["interpret: 5 CAMs"])
        said.append(f"CAMs: {cam:.1f}x pytorch-grad-cam (target >= 4x)")
    if do_drise:
        dr = min(rows[loop]) / min(rows[ours])
        said.append(f"D-RISE at {a.masks} masks: {dr:.1f}x a plain loop (target >= 2x), the maps' "
                    f"largest difference {worst:.1e} of their scale (allowed: {a.tolerance:g})")
    print("\n" + "; ".join(said))
    assert worst <= a.tolerance, f"D-RISE batched and the loop differ by {worst:.2e} of the map's scale"

if __name__ == "__main__":
    main()
