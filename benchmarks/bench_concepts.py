"""Side-by-side timing of interpret's concepts and LRP against zennit-crp and zennit.

One process, one photo (skimage's ``chelsea`` cat), torchvision ResNet-18 and ResNet-50
(random weights; timing does not depend on them), EpsilonPlusFlat with the ResNet
canonizer on both sides:

* concepts: ``interpret.concepts(model, photo, layer, target, k)`` (one forward, one
  backward to the layer, one batched backward below it for the k heatmaps) against
  zennit-crp's ``CondAttribution`` with the same k conditions ``{layer: [c], "y":
  [class]}`` (the photo repeated k times, one forward and backward), and against
  zennit-crp's whole recipe for the top-k concepts: a first call that records the
  layer's relevance to rank the channels, then the call with the k conditions;
* LRP: ``interpret.explain(model, photo, "lrp")`` against zennit's ``Gradient``
  attributor with the same composite on a copy of the model.

Both sides compute the same numbers (tests/test_concepts.py, tests/test_lrp.py); ours
also skips the z+ rule's negative-input half where a layer's input has none (every
convolution after a ReLU: that half is exactly zero, ``interpret.methods.lrp._zplus_fast``),
which zennit computes anyway.

Each row: median and minimum CPU time of the process over ``--repeats`` runs, the sides
interleaved (``--threads 1``, the default: CPU time is then the work done, whatever else
runs on the machine);
our caches are cleared before each run (the private canonised copy is kept, as in the
app).  ``torch.set_num_threads(--threads)``.

    .venv/bin/python benchmarks/bench_concepts.py --quick
    .venv/bin/python benchmarks/bench_concepts.py --out /tmp/bench-concepts.md
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interpret  # noqa: E402


def photo():
    from skimage import data
    from PIL import Image

    return Image.fromarray(data.chelsea())


def pressure() -> str:
    """``some avg60`` of /proc/pressure/cpu: the share of time some task waited for a CPU
    (well above a few percent: other processes competed and the times are inflated)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return line.split("avg60=")[1].split()[0] + "%"
    except (OSError, IndexError):
        return "unknown"


def timed(fn, repeats):
    """CPU seconds of this process per run (``time.process_time``): on a shared machine
    the wall time mostly measures the other processes; with one thread, the CPU time is
    the work done."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return times


def run(name, model, layer, k, repeats, rows, size=224):
    from crp.attribution import CondAttribution
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer

    handle = interpret.load_model(model.eval(), preprocessing=interpret.Preprocessing(size, size))
    x = handle.preprocess(photo())
    target = interpret.predict(handle, x, top_k=1)[0].index
    ref_model = copy.deepcopy(model).eval()
    attribution = CondAttribution(ref_model)
    channels = interpret.concepts(handle, x, layer, target, k).channels  # warm: the copy, the layer list

    def ours():
        handle.runtime.cache.clear()
        interpret.concepts(handle, x, layer, target, k)

    def crp_conditions():
        xx = x.clone().requires_grad_(True)
        attribution(xx, [{layer: [c], "y": [target]} for c in channels], EpsilonPlusFlat([ResNetCanonizer()]))

    def crp_recipe():
        xx = x.clone().requires_grad_(True)
        r = attribution(xx, [{"y": [target]}], EpsilonPlusFlat([ResNetCanonizer()]), record_layer=[layer])
        rel = r.relevances[layer][0].sum(dim=(1, 2))
        top = [int(c) for c in torch.argsort(rel, descending=True)[:k]]
        xx = x.clone().requires_grad_(True)
        attribution(xx, [{layer: [c], "y": [target]} for c in top], EpsilonPlusFlat([ResNetCanonizer()]))

    def lrp_ours():
        handle.runtime.cache.clear()
        interpret.explain(handle, x, "lrp", target=target)

    zmodel = copy.deepcopy(model).eval()

    def lrp_zennit():
        with torch.no_grad():
            out = zmodel(x)
        init = torch.zeros_like(out)
        init[0, target] = out[0, target]
        with Gradient(model=zmodel, composite=EpsilonPlusFlat([ResNetCanonizer()])) as attributor:
            attributor(x.clone(), init)

    results = {f: [] for f in ("ours", "crp_conditions", "crp_recipe", "lrp_ours", "lrp_zennit")}
    for _ in range(repeats):  # interleaved, so that load from other processes hits both sides
        for f, fn in (("ours", ours), ("crp_conditions", crp_conditions), ("crp_recipe", crp_recipe),
                      ("lrp_ours", lrp_ours), ("lrp_zennit", lrp_zennit)):
            results[f] += timed(fn, 1)
    med = {f: statistics.median(v) for f, v in results.items()}
    mn = {f: min(v) for f, v in results.items()}
    rows.append((name, layer, k, med, mn))
    print(f"{name} {layer} k={k}: " + ", ".join(f"{f} {med[f]:.3f}s" for f in med), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--size", type=int, default=224, help="input side in pixels")
    ap.add_argument("--out", type=str, default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else args.repeats
    from torchvision.models import resnet18, resnet50

    torch.manual_seed(0)
    rows = []
    run("ResNet-18", resnet18(), "layer2", args.k, repeats, rows, args.size)
    run("ResNet-18", resnet18(), "layer3", args.k, repeats, rows, args.size)
    run("ResNet-18", resnet18(), "layer4", args.k, repeats, rows, args.size)
    if not args.quick:
        run("ResNet-50", resnet50(), "layer3", args.k, repeats, rows, args.size)
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, CPU seconds, median (min) of {repeats} runs, "
        f"{args.size}x{args.size}; CPU pressure during the run: {pressure()}.",
        "",
        "| model | layer | k | interpret.concepts | CondAttribution, k conditions | speed-up | "
        "zennit-crp recipe (rank + k conditions) | speed-up | LRP: explain(\"lrp\") | zennit Gradient | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, layer, k, med, mn in rows:
        lines.append(
            f"| {name} | {layer} | {k} | {med['ours']:.3f} s ({mn['ours']:.3f}) | "
            f"{med['crp_conditions']:.3f} s ({mn['crp_conditions']:.3f}) | {med['crp_conditions'] / med['ours']:.1f}x | "
            f"{med['crp_recipe']:.3f} s ({mn['crp_recipe']:.3f}) | {med['crp_recipe'] / med['ours']:.1f}x | "
            f"{med['lrp_ours']:.3f} s ({mn['lrp_ours']:.3f}) | {med['lrp_zennit']:.3f} s ({mn['lrp_zennit']:.3f}) | "
            f"{med['lrp_ours'] / med['lrp_zennit']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", "utf-8")


if __name__ == "__main__":
    main()
