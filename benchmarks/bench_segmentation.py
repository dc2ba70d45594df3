"""Five gradient CAMs for one segment: interpret (one recorded pass shared by all five)
against five pytorch-grad-cam calls with ``SemanticSegmentationTarget`` on the same
layer and mask, side by side in one process.

Models (random init, no downloads): torchvision DeepLabV3-MobileNetV3-Large (21
classes) and a SegFormer-B0-sized ``SegformerForSemanticSegmentation`` (its logits are
a quarter of the input; both sides upsample them to the input, pytorch-grad-cam through
a wrapper).  The region is the pixels the model assigns to its most frequent class within the
central half of the input.
Each round runs every measurement once (interpret's cache cleared first), rounds
alternate, and the table gives medians and minima; the target is >= 8x by the minima.

    .venv/bin/python benchmarks/bench_segmentation.py [--size 320] [--rounds 5] [--out docs_table.md]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import numpy as np
import torch
from torch import nn

import interpret
from interpret import Preprocessing, targets

CAMS = ("gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam")


class Logits(nn.Module):
    """What pytorch-grad-cam needs: a module returning B x C x H x W at the input size."""

    def __init__(self, m: nn.Module, size):
        super().__init__()
        self.m, self.size = m, size

    def forward(self, x):
        out = self.m(x)
        t = out["out"] if isinstance(out, dict) and "out" in out else getattr(out, "logits", out)
        if tuple(t.shape[-2:]) != tuple(self.size):
            t = nn.functional.interpolate(t, size=self.size, mode="bilinear", align_corners=False)
        return t


def deeplab():
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    torch.manual_seed(0)
    return deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21).eval(), "backbone.16"


def segformer():
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    cfg = SegformerConfig(num_labels=21)  # the B0 sizes: hidden 32, 64, 160, 256
    return SegformerForSemanticSegmentation(cfg).eval(), "decode_head.linear_fuse"


def bench(name, build, size: int, rounds: int):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    module, layer = build()
    h = interpret.load_model(module, preprocessing=Preprocessing((size, size), None))
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    seg = interpret.predict(h, x)
    cls = seg.classes[0].index
    box = np.zeros_like(seg.mask, dtype=bool)
    box[size // 4:3 * size // 4, size // 4:3 * size // 4] = True
    mask = (seg.mask == cls) & box  # a segment, not the whole photo (random init may give one class)
    target = targets.region(cls, mask=mask)
    peer_model = Logits(copy.deepcopy(module), (size, size))
    peer_layer = dict(peer_model.named_modules())["m." + layer]
    peer_classes = (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, HiResCAM)

    def ours():
        h.cache.clear()
        return [interpret.explain(h, x, m, layer=layer, target=target).heatmap for m in CAMS]

    def peer():
        out = []
        for cls_ in peer_classes:
            with cls_(peer_model, [peer_layer]) as cam:
                out.append(cam(x.clone(), targets=[SemanticSegmentationTarget(cls, mask.astype(np.float32))])[0])
        return out

    ours(), peer()  # warm-up
    t_ours, t_peer = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        a = ours()
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = peer()
        t_peer.append(time.perf_counter() - t0)
    diffs = [float(np.corrcoef(p.ravel(), q.ravel())[0, 1]) if p.std() > 0 and q.std() > 0 else float("nan")
             for p, q in zip(a, b)]
    return {"model": name, "layer": layer, "size": size, "class": cls, "pixels": int(mask.sum()),
            "ours_med": statistics.median(t_ours), "ours_min": min(t_ours),
            "peer_med": statistics.median(t_peer), "peer_min": min(t_peer), "diffs": diffs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [bench("DeepLabV3-MobileNetV3-Large", deeplab, args.size, args.rounds),
            bench("SegFormer (B0 sizes)", segformer, args.size, args.rounds)]
    import pytorch_grad_cam  # noqa: F401

    lines = [f"- {time.strftime('%Y-%m-%dT%H:%M:%S')}, {platform.processor() or platform.machine()}, "
             f"torch {torch.__version__} ({torch.get_num_threads()} threads), input {args.size}x{args.size}, "
             f"{args.rounds} rounds after a warm-up",
             "",
             "| model | layer | region | interpret: 5 CAMs (ms, median / min) | pytorch-grad-cam: 5 calls (ms, median / min) | speed-up (min / median) | Pearson r with the peer's map (Grad-CAM, ++, XGrad, Layer, HiRes) | >= 8x |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        sp_min, sp_med = r["peer_min"] / r["ours_min"], r["peer_med"] / r["ours_med"]
        lines.append(
            f"| {r['model']} | `{r['layer']}` | class {r['class']}, {r['pixels']:,} px | "
            f"{r['ours_med'] * 1e3:,.0f} / {r['ours_min'] * 1e3:,.0f} | {r['peer_med'] * 1e3:,.0f} / {r['peer_min'] * 1e3:,.0f} | "
            f"{sp_min:.1f}x / {sp_med:.1f}x | {' '.join(f'{d:.3f}' for d in r['diffs'])} | "
            f"{'yes' if sp_min >= 8 else '**no**'} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
