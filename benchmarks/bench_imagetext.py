"""A text prompt's five gradient CAMs on open_clip ViT-B/32 (random init): interpret
(one recorded pass shared by all five; the prompt's text embedding computed once and
cached) against five pytorch-grad-cam calls with its tutorial's cosine-similarity
target (``SimilarityToConceptTarget``) and ``vit_reshape_transform`` on the same layer
(the last block's ``ln_1``), side by side in one process.

Each round runs every measurement once (interpret's result cache cleared first; the
text embedding stays cached, as it does in the app), rounds alternate, and the table
gives medians and minima.

    .venv/bin/python benchmarks/bench_imagetext.py [--rounds 5] [--threads N] [--out table.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import interpret
from interpret import targets

CAMS = ("gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam")


class SimilarityToConceptTarget:  # pytorch-grad-cam's CLIP tutorial
    def __init__(self, features):
        self.features = features

    def __call__(self, model_output):
        return torch.nn.CosineSimilarity(dim=0)(model_output, self.features)


def bench(rounds: int):
    import open_clip
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
    from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform

    torch.manual_seed(0)
    h = interpret.load_model("open_clip:ViT-B-32", weights=None, prompts=["a photo of a cat", "a photo of a dog"])
    visual = h.module.visual  # the same tower both sides explain
    layer = interpret.default_layer(h)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    prompt = "a photo of a cat"
    target = targets.text(prompt)
    with torch.no_grad():
        concept = h.module.text_features([prompt])[0]
    peer_layer = dict(h.module.named_modules())[layer]

    def ours():
        h.cache.clear()
        return [interpret.explain(h, x, m, target=target).heatmap for m in CAMS]

    def peer():
        out = []
        for cls_ in (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, HiResCAM):
            with cls_(visual, [peer_layer], reshape_transform=lambda t: vit_reshape_transform(t, 7, 7)) as cam:
                out.append(cam(x.clone(), targets=[SimilarityToConceptTarget(concept)])[0])
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
    r = [float(np.corrcoef(p.ravel(), q.ravel())[0, 1]) if p.std() > 0 and q.std() > 0 else float("nan")
         for p, q in zip(a, b)]
    return {"layer": layer, "ours_med": statistics.median(t_ours), "ours_min": min(t_ours),
            "peer_med": statistics.median(t_peer), "peer_min": min(t_peer), "r": r}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = bench(args.rounds)
    sp_min, sp_med = r["peer_min"] / r["ours_min"], r["peer_med"] / r["ours_med"]
    lines = [f"- {time.strftime('%Y-%m-%dT%H:%M:%S')}, {platform.processor() or platform.machine()}, "
             f"torch {torch.__version__} ({torch.get_num_threads()} threads), input 224x224, "
             f"{args.rounds} rounds after a warm-up",
             "",
             "| model | layer | interpret: 5 CAMs (ms, median / min) | pytorch-grad-cam: 5 calls (ms, median / min) | speed-up (min / median) | Pearson r with the peer's map (Grad-CAM, ++, XGrad, Layer, HiRes) |",
             "|---|---|---:|---:|---:|---|",
             f"| open_clip ViT-B-32 (random init), prompt 'a photo of a cat' | `{r['layer']}` | "
             f"{r['ours_med'] * 1e3:,.0f} / {r['ours_min'] * 1e3:,.0f} | {r['peer_med'] * 1e3:,.0f} / {r['peer_min'] * 1e3:,.0f} | "
             f"{sp_min:.1f}x / {sp_med:.1f}x | {' '.join(f'{d:.3f}' for d in r['r'])} |"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
