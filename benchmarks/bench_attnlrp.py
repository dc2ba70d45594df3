"""What AttnLRP's rules cost: ``explain(model, photo, "attnlrp")`` against
``explain(model, photo, "input_x_gradient")`` (one plain forward and backward on the
model itself) on timm ViT-Ti/16 and ViT-S/16 and torchvision's ViT-B/16 at 224 x 224
(random weights; timing does not depend on them; a head initialised to zero gets small
random weights so that the score is not 0).

AttnLRP runs the same one forward and one backward, on a private copy whose attention
is computed explicitly (no fused ``scaled_dot_product_attention``) with the rules'
extra detached terms; the copy is built once per model state and kept, as in the app.
Each row: median and minimum CPU time of the process over ``--repeats`` runs, the two
sides interleaved, with ``torch.set_num_threads(--threads)`` (1 by default: CPU time is
then the work done, whatever else runs on the machine).

    .venv/bin/python benchmarks/bench_attnlrp.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interpret  # noqa: E402
from interpret import Preprocessing  # noqa: E402


def models(quick: bool):
    import timm
    from torchvision.models import vit_b_16

    out = [("timm ViT-Ti/16", lambda: timm.create_model("vit_tiny_patch16_224", pretrained=False))]
    if not quick:
        out += [("timm ViT-S/16", lambda: timm.create_model("vit_small_patch16_224", pretrained=False)),
                ("torchvision ViT-B/16", lambda: vit_b_16())]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    print(f"Measured {datetime.date.today()} on {platform.machine()}, {args.threads} thread(s), "
          f"torch {torch.__version__}, CPU seconds, median (min) of {args.repeats} runs, 224x224.\n")
    print("| model | explain(\"attnlrp\") | explain(\"input_x_gradient\") | ratio | conservation_error |")
    print("|---|---|---|---|---|")
    for name, build in models(args.quick):
        torch.manual_seed(0)
        model = build().eval()
        with torch.no_grad():  # torchvision starts its head at zero: every score would be 0
            for n, p in model.named_parameters():
                if ("head" in n) and n.endswith("weight") and float(p.abs().max()) == 0:
                    p.normal_(0, 0.02)
        handle = interpret.load_model(model, preprocessing=Preprocessing(224, 224))
        e = interpret.explain(handle, x, "attnlrp", target=1)  # builds the private copy once
        times = {"attnlrp": [], "input_x_gradient": []}
        for _ in range(args.repeats):
            for m in times:
                handle.runtime.cache.clear()
                t0 = time.process_time()
                interpret.explain(handle, x, m, target=1)
                times[m].append(time.process_time() - t0)
        a, b = times["attnlrp"], times["input_x_gradient"]
        print(f"| {name} | {statistics.median(a):.3f} s ({min(a):.3f}) | {statistics.median(b):.3f} s "
              f"({min(b):.3f}) | {statistics.median(a) / statistics.median(b):.2f}x | "
              f"{e.extras['conservation_error']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
