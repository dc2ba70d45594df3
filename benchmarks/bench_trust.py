"""Side-by-side timing of interpret's trust measures against Quantus and pytorch-grad-cam.

One process, one photo, one model (the bundled EfficientNet-Lite0), one Grad-CAM map,
the same settings on both sides:

* deletion: our deletion *and* insertion curves (batched, the photo's logits from the
  recorded pass, the random maps' curves computed once and then shared) against
  Quantus 0.6's ``PixelFlipping`` (deletion only, one image per forward), at the same
  number of points per curve and the same black baseline;
* ROAD: ours (conjugate-gradient imputation, batched forwards) against pytorch-grad-cam's
  ``ROADMostRelevantFirstAverage`` + ``ROADLeastRelevantFirstAverage`` (SciPy
  ``spsolve`` per image and level, two forwards per level), the same nine levels;
* the sanity check: ours (cascading randomisation on a deep copy) against Quantus's
  ``MPRT`` with the same explanation function (saliency: Quantus stops with an
  AssertionError when a randomised model gives an all-zero map, as Grad-CAM does here),
  at Quantus's granularity (every parameterised module) and at ours (blocks).

Each row: median and minimum wall time over ``--repeats`` runs, images through the
model (counted by a thin wrapper around the module) and the CPU pressure during the row
(``/proc/pressure/cpu``; well above a few percent, other processes competed and the
times are inflated).  Fresh handles each run: nothing is reused between runs.

    .venv/bin/python benchmarks/bench_trust.py --quick
    .venv/bin/python benchmarks/bench_trust.py --out docs/bench-trust-run.md
"""

from __future__ import annotations

import argparse
import copy
import datetime
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interpret  # noqa: E402


class Counting(nn.Module):
    """The model, counting the images it sees (no hooks: a wrapper)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.images = 0
        self.training = inner.training  # the wrapper itself only; the model is not touched

    def forward(self, x):
        self.images += int(x.shape[0])
        return self.inner(x)


def cpu_wait_us() -> Optional[int]:
    try:
        with open("/proc/pressure/cpu") as fh:
            return int(fh.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def timed(fn: Callable[..., int], repeats: int, prepare: Optional[Callable[[], object]] = None) -> dict:
    """Run ``fn`` (it returns the images, or explanations, it used) ``repeats`` times;
    ``prepare()`` (untimed) makes its argument for each run."""
    times, images = [], 0
    w0, t0 = cpu_wait_us(), time.perf_counter()
    for _ in range(repeats):
        arg = prepare() if prepare is not None else None
        start = time.perf_counter()
        images = fn(arg) if prepare is not None else fn()
        times.append(time.perf_counter() - start)
    w1, t1 = cpu_wait_us(), time.perf_counter()
    pressure = None if w0 is None or w1 is None else (w1 - w0) / 1e6 / max(1e-9, t1 - t0)
    return {"median": statistics.median(times), "min": min(times), "images": images, "pressure": pressure}


def handle_for(module: nn.Module, like: interpret.ModelHandle) -> interpret.ModelHandle:
    return interpret.ModelHandle(module, like.name, labels=like.labels,
                                 preprocessing=like.preprocessing, source=like.source)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 96x96 input, one run per row, fewer rows")
    ap.add_argument("--size", type=int, default=None, help="input side (default 224, --quick 96)")
    ap.add_argument("--repeats", type=int, default=None, help="runs per row (default 3, --quick 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = ap.parse_args()
    size = args.size or (96 if args.quick else 224)
    repeats = args.repeats or (1 if args.quick else 3)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    import quantus
    from pytorch_grad_cam.metrics.road import (ROADLeastRelevantFirstAverage,
                                               ROADMostRelevantFirstAverage)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
    from skimage import data
    from PIL import Image

    from interpret.trust._common import order_of

    base = interpret.load_model("efficientnet_lite0")
    photo = Image.fromarray(data.chelsea())
    x = F.interpolate(base.preprocess(photo), size=(size, size), mode="bilinear", align_corners=False)
    e = interpret.explain(base, x, "gradcam")
    target = e.target
    n = size * size
    # distinct values: both tools then remove exactly the same pixels in the same order
    hm = ((n - 1 - order_of(e.heatmap)) / n).astype(np.float32)
    black = float(base.preprocessing.normalize(torch.zeros(1, 3, 1, 1))[0, 0, 0, 0])
    rows: List[tuple] = []

    # -- deletion ------------------------------------------------------------------
    # Quantus flips features_in_step values of the map broadcast over the colour
    # channels and needs H * W to be a multiple of it: the divisor closest to 20 points
    fis = min((k for k in range(1, n + 1) if n % k == 0), key=lambda k: abs(3 * n / k - 20))
    points = -(-3 * n // fis)

    def fresh(cached_random: bool):
        def prepare():
            wrapped = Counting(base.module)
            h = handle_for(wrapped, base)
            if cached_random:  # another map of the same grid first: the random maps are shared
                interpret.faithfulness(h, x, hm[::-1].copy(), steps=points, baseline="constant",
                                       target=target)
            wrapped.images = 0
            return wrapped, h
        return prepare

    def ours_di(arg) -> int:
        wrapped, h = arg
        interpret.faithfulness(h, x, hm, steps=points, baseline="constant", target=target)
        return wrapped.images

    def quantus_pf() -> int:
        wrapped = Counting(copy.deepcopy(base.module))
        metric = quantus.PixelFlipping(features_in_step=fis, normalise=False, abs=False,
                                       perturb_baseline=black, disable_warnings=True)
        metric(model=wrapped, x_batch=x.numpy(), y_batch=np.array([target]), a_batch=hm[None, None],
               channel_first=True, softmax=True, device="cpu")
        return wrapped.images

    rows.append(("deletion + insertion, ours (map + 3 random maps)", timed(ours_di, repeats, fresh(False))))
    rows.append(("deletion + insertion, ours (map only; random maps shared)", timed(ours_di, repeats, fresh(True))))
    rows.append(("deletion only, Quantus PixelFlipping", timed(quantus_pf, repeats)))

    # -- ROAD ----------------------------------------------------------------------
    levels = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

    def ours_road() -> int:
        wrapped = Counting(base.module)
        h = handle_for(wrapped, base)
        interpret.road(h, x, hm, fractions=levels, target=target)
        return wrapped.images

    def gradcam_road() -> int:
        wrapped = Counting(copy.deepcopy(base.module))
        targets = [ClassifierOutputSoftmaxTarget(target)]
        pct = [int(round(100 * (1 - f))) for f in levels]
        ROADMostRelevantFirstAverage(pct)(x, hm[None], targets, wrapped)
        ROADLeastRelevantFirstAverage(pct)(x, hm[None], targets, wrapped)
        return wrapped.images

    rows.append(("ROAD (MoRF + LeRF, 9 levels), ours", timed(ours_road, repeats)))
    rows.append(("ROAD (MoRF + LeRF, 9 levels), pytorch-grad-cam", timed(gradcam_road, repeats)))

    # -- sanity check ----------------------------------------------------------------
    # saliency, not Grad-CAM: Quantus's MPRT stops (AssertionError) as soon as a randomised
    # model gives an all-zero map, which Grad-CAM does on this model once a batch norm is reset
    sal = interpret.explain(base, x, "saliency", target=target)
    n_modules = sum(1 for _, m in base.module.named_modules() if hasattr(m, "reset_parameters"))

    def ours_sanity(layers) -> Callable[[], int]:
        def run() -> int:
            wrapped = Counting(base.module)
            h = handle_for(wrapped, base)
            s = interpret.sanity_check(h, x, "saliency", layers=layers, target=target)
            return -(len(s.steps) + 1)  # explanations (on the copy; the original's on the model)
        return run

    def quantus_mprt() -> int:
        wrapped = Counting(copy.deepcopy(base.module))

        def ef(model, inputs, targets, **kw):
            h = handle_for(model, base)
            return np.stack([interpret.explain(h, torch.from_numpy(np.asarray(xi))[None], "saliency",
                                               target=int(t)).heatmap
                             for xi, t in zip(inputs, targets)])[:, None]

        quantus.MPRT(seed=42, layer_order="top_down", disable_warnings=True)(
            model=wrapped, x_batch=x.numpy(), y_batch=np.array([target]), a_batch=sal.heatmap[None, None],
            explain_func=ef, channel_first=True, device="cpu")
        return -(n_modules + 1)  # explanations, on Quantus's own copies

    rows.append(("sanity check (saliency), ours, 21 blocks", timed(ours_sanity(None), repeats)))
    if not args.quick:
        rows.append(("sanity check (saliency), ours, every module (99, Quantus's granularity)",
                     timed(ours_sanity("modules"), repeats)))
    rows.append(("MPRT (saliency), Quantus, every module (99)", timed(quantus_mprt, 1 if args.quick else repeats)))

    # -- report --------------------------------------------------------------------
    now = datetime.datetime.now().isoformat(timespec="seconds")
    lines = [f"# Trust measures: interpret vs Quantus {quantus.__version__} and pytorch-grad-cam",
             "", f"{now}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{args.threads} threads, input {size}x{size}, {repeats} run(s) per row, "
             f"{points} points per deletion curve.", "",
             "| measure | median | min | images through the model (or explanations) | CPU pressure |",
             "|---|---:|---:|---:|---:|"]
    for name, r in rows:
        pressure = "n/a" if r["pressure"] is None else f"{r['pressure']:.0%}"
        images = f"{-r['images']} explanations" if r["images"] < 0 else str(r["images"])
        lines.append(f"| {name} | {r['median']:.2f} s | {r['min']:.2f} s | {images} | {pressure} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
