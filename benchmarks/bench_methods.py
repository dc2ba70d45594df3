"""Side-by-side timing of interpret's methods against pytorch-grad-cam and Captum.

One process, one input image per model, three groups of measurements:

* floor: a plain forward, the forward + backward to the input (the floor every ratio
  is taken against), the forward + ``.backward()`` into parameter gradients (what
  pytorch-grad-cam runs), interpret's capture of one layer's activation + gradient
  (no graph before the layer, backward to the layer only), the same with the input
  gradient (saliency's pass), and the forward-only layer maps of the Activations page;
* CAMs: the five gradient CAMs plus the activation view through ``interpret.explain``
  (one shared capture) against five pytorch-grad-cam calls on a deep copy of the model,
  and Score-CAM;
* attributions: Integrated Gradients (adaptive with nested nodes, and fixed 50 steps),
  occlusion (32x32 window, stride 16) and SmoothGrad against Captum's own classes.

Each row reports the median and minimum wall time, the median's ratio to the floor, the
peak extra resident memory (a background thread samples ``/proc/self/statm``; freed
heap is returned to the OS with ``malloc_trim`` before every run so that the delta is
not hidden by memory that an earlier measurement left mapped), and the number of
forward calls (images) seen by the model, which shows whether a method batches its
forwards, and the CPU pressure during the row's runs (``/proc/pressure/cpu``: the share
of the time a runnable task waited for a core; well above a few percent, other
processes were competing and the row's times are inflated).  A targets table closes
the report; it is judged on the minima, the best estimate of a method's own cost on a
shared machine.

    .venv/bin/python benchmarks/bench_methods.py --quick --models efficientnet_lite0
    .venv/bin/python benchmarks/bench_methods.py --out docs/benchmarks-run.md
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import datetime
import gc
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interpret  # noqa: E402
from interpret.capture import capture, layer_maps  # noqa: E402
from interpret.layers import check_layer  # noqa: E402

MODELS = ("resnet50", "efficientnet_lite0", "vit_b_16")
CAMS = ("gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam")
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024.0 ** 2


# ---------------------------------------------------------------------------------
# Memory and forward counting


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def cpu_wait_us() -> Optional[int]:
    """Total microseconds in which some runnable task waited for a CPU (the kernel's
    pressure-stall information), or None where the kernel does not provide it."""
    try:
        with open("/proc/pressure/cpu") as fh:
            return int(fh.readline().rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def release_memory() -> None:
    """Collect garbage and give freed heap back to the OS, so that the next RSS delta
    measures new memory rather than reuse of pages an earlier run left resident."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: deltas may then be underestimated
        pass


class PeakRSS:
    """Context manager: the peak resident memory above the level at entry, sampled
    every ``interval`` seconds by a background thread (torch releases the GIL while it
    computes, so the sampler runs alongside)."""

    def __init__(self, interval: float = 0.003):
        self.interval = interval
        self.base = self.peak = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / MB


class ForwardCounter:
    """Counts calls of the top-level modules (and the images they received) inside
    the block, with a forward pre-hook removed on exit."""

    def __init__(self, modules):
        self.modules = [m for m in modules if m is not None]
        self.calls = self.images = 0
        self._handles = []

    def _hook(self, mod, args):
        self.calls += 1
        if args and isinstance(args[0], torch.Tensor):
            self.images += int(args[0].shape[0])

    def __enter__(self) -> "ForwardCounter":
        self._handles = [m.register_forward_pre_hook(self._hook) for m in self.modules]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()


# ---------------------------------------------------------------------------------
# Measurements


@dataclass
class Row:
    group: str
    name: str
    ms: float = float("nan")
    min_ms: float = float("nan")
    runs: int = 0
    peak_mb: float = float("nan")
    calls: int = 0
    images: int = 0
    notes: str = ""
    info: Dict[str, Any] = field(default_factory=dict)
    times: List[float] = field(default_factory=list)
    waits: List[float] = field(default_factory=list)  # CPU pressure during each timed run
    skipped: str = ""


@dataclass
class Plan:
    """Repeat policy: fast methods get a warm-up and several runs; slow ones (seconds
    each) run after the model-wide warm-up, repeated only within a time budget."""

    warmup: int
    repeats: int
    budget_s: float


@dataclass
class Spec:
    """One measurement: ``fn`` is timed, ``setup`` runs untimed before each call,
    ``count`` are the modules whose forward calls are counted, ``describe(result)``
    turns the first run's result into notes (untimed)."""

    group: str
    name: str
    fn: Callable[[], Any]
    count: tuple = ()
    setup: Optional[Callable[[], None]] = None
    describe: Optional[Callable[[Any], Dict[str, Any]]] = None


def run_once(spec: Spec, row: Row, first: bool, timed: bool = True,
             track_memory: bool = True) -> Any:
    """One call of ``spec.fn``: its time (if ``timed``) and peak extra memory (if
    ``track_memory``) go into ``row``; on the ``first`` call, forwards are counted and
    ``describe`` runs."""
    if spec.setup:
        spec.setup()
    release_memory()
    counter = ForwardCounter(spec.count if first else ())
    mem = PeakRSS() if track_memory else contextlib.nullcontext()
    wait0 = cpu_wait_us()
    with mem, counter:
        t0 = time.perf_counter()
        out = spec.fn()
        dt = time.perf_counter() - t0
    wait1 = cpu_wait_us()
    if timed:
        row.times.append(dt)
        if wait0 is not None and wait1 is not None:
            row.waits.append(min(1.0, (wait1 - wait0) / 1e6 / dt))
    if track_memory:
        row.peak_mb = mem.extra_mb if math.isnan(row.peak_mb) else max(row.peak_mb, mem.extra_mb)
    if first:
        row.calls, row.images = counter.calls, counter.images
        if spec.describe is not None:
            row.info = spec.describe(out) or {}
            row.notes = row.info.pop("notes", "")
    return out


def finish(row: Row) -> Row:
    row.ms = statistics.median(row.times) * 1000
    row.min_ms = min(row.times) * 1000
    row.runs = len(row.times)
    runs = " ".join(f"{t * 1000:.0f}" for t in row.times)
    waits = " ".join(f"{w:.0%}" for w in row.waits)
    print(f"  {row.group:<6} {row.name:<62} {row.ms:>10.1f} ms [{runs}] wait [{waits}] "
          f"{row.peak_mb:>6.0f} MB  {row.calls} fwd ({row.images} img)  {row.notes}",
          flush=True)
    return row


def measure_rounds(specs: List[Spec], plan: Plan) -> List[Row]:
    """Fast methods, round-robin: after a warm-up of each, every round runs each method
    once, so that a change in machine load hits all of them alike and the ratios
    between them stay meaningful on a shared machine."""
    rows = [Row(s.group, s.name) for s in specs]
    for s in specs:
        for _ in range(plan.warmup):
            if s.setup:
                s.setup()
            s.fn()
    t_start = time.perf_counter()
    for r in range(plan.repeats):
        for s, row in zip(specs, rows):
            run_once(s, row, first=r == 0, track_memory=False)
        if time.perf_counter() - t_start > plan.budget_s * len(specs):
            break
    # memory in one more, untimed run: the sampling thread costs a millisecond or two
    # of GIL hand-overs, which is noise for slow methods but not for a 30 ms forward
    for s, row in zip(specs, rows):
        run_once(s, row, first=False, timed=False)
    return [finish(row) for row in rows]


def measure(spec: Spec, plan: Plan) -> Row:
    """Slow methods, one after the other: repeated while within the time budget."""
    row = Row(spec.group, spec.name)
    for _ in range(plan.warmup):
        if spec.setup:
            spec.setup()
        spec.fn()
    t_start = time.perf_counter()
    while len(row.times) < plan.repeats:
        run_once(spec, row, first=not row.times)
        if time.perf_counter() - t_start > plan.budget_s:
            break
    return finish(row)


# ---------------------------------------------------------------------------------
# The benchmark of one model


def load(name: str):
    torch.manual_seed(0)  # random-init models: the same weights on every run
    if name == "efficientnet_lite0":
        return interpret.load_model("efficientnet_lite0")
    handle = interpret.load_model(f"torchvision:{name}", weights=None)
    head = getattr(getattr(handle.module, "heads", None), "head", None)
    if isinstance(head, torch.nn.Linear) and not head.weight.any():
        # torchvision initialises the ViT head to zeros: every logit would be 0, every
        # gradient 0 and the completeness error undefined.  Give it random weights.
        with torch.no_grad():
            torch.nn.init.normal_(head.weight, std=0.02)
    return handle


def test_image(handle) -> torch.Tensor:
    try:
        from PIL import Image
        from skimage.data import chelsea

        return handle.preprocess(Image.fromarray(chelsea()))
    except ImportError:
        g = torch.Generator().manual_seed(0)
        return torch.randn((1, 3) + tuple(handle.input_size), generator=g)


def token_reshape(t: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam's ``reshape_transform`` for ViT tokens (class token dropped)."""
    n = int(round(math.sqrt(t.shape[1] - 1)))
    return t[:, 1:, :].reshape(t.shape[0], n, n, t.shape[2]).permute(0, 3, 1, 2)


def relative_error(total: float, diff: float) -> float:
    return abs(total - diff) / max(abs(diff), 1e-12)


def pct(err: float) -> str:
    """A relative error as a percentage with two significant digits."""
    return f"{100 * err:.2g}%"


def bench_model(name: str, fast: Plan, slow: Plan, quick: bool) -> Dict[str, Any]:
    from captum.attr import IntegratedGradients, NoiseTunnel, Occlusion, Saliency
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    started = load_line()
    handle = load(name)
    model = handle.module
    x = test_image(handle)
    layer = check_layer(handle, None)
    with torch.no_grad():
        target = int(model(x)[0].argmax())
    raw = next(i for i in interpret.list_layers(handle) if i.name == layer).output_shape
    tokens = len(raw) == 3
    gc_model = copy.deepcopy(model)  # pytorch-grad-cam calls zero_grad()/backward() on it
    gc_layer = dict(gc_model.named_modules())[layer]
    layer_module = dict(model.named_modules())[layer]
    base = handle.preprocessing.normalize(torch.zeros_like(x))  # "black"
    with torch.no_grad():
        diff = float(model(x)[0, target] - model(base)[0, target])
    print(f"\n## {name}: layer {layer} {tuple(raw)}, target class {target} "
          f"({handle.label(target)}), f(x) - f(black) = {diff:.4g}", flush=True)

    # model-wide warm-up: batches of 1 and 16, with gradients and without
    for b in (1, 16):
        xb = x.expand(b, -1, -1, -1).clone().requires_grad_(True)
        torch.autograd.grad(model(xb)[:, target].sum(), xb)
        with torch.no_grad():
            model(xb)
    del xb
    ours = (model,)

    def cold():
        handle.cache.clear()

    # -- (c) floor and (a) CAMs: fast, measured round-robin ---------------------------
    def forward_only():
        with torch.no_grad():
            return model(x)

    def floor():
        xin = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xin)[0, target], xin)
        return g

    def layer_only():
        store = {}
        hook = layer_module.register_forward_hook(lambda m, i, o: store.update(act=o))
        try:
            score = model(x)[0, target]
        finally:
            hook.remove()
        (g,) = torch.autograd.grad(score, store["act"])
        return g

    def param_backward():
        gc_model.zero_grad(set_to_none=True)
        gc_model(x)[0, target].backward()
        gc_model.zero_grad(set_to_none=True)

    def ours_cams(tgt=target):
        out = {m: interpret.explain(handle, x, m, layer=layer, target=tgt) for m in CAMS}
        out["activation"] = interpret.explain(handle, x, "activation", layer=layer, target=tgt)
        return out

    gc_classes = (("gradcam", GradCAM), ("gradcam_plus_plus", GradCAMPlusPlus),
                  ("xgradcam", XGradCAM), ("layercam", LayerCAM), ("hirescam", HiResCAM))

    def gradcam_lib():
        out = {}
        for key, cls in gc_classes:
            with cls(model=gc_model, target_layers=[gc_layer],
                     reshape_transform=token_reshape if tokens else None) as cam:
                out[key] = cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]
        gc_model.zero_grad(set_to_none=True)
        return out

    ours_maps = {}

    def describe_ours(out):
        ours_maps.update({k: v.heatmap for k, v in out.items()})
        return {}

    def describe_lib(out):
        d = {k: float(np.abs(out[k] - ours_maps[k]).max()) for k in CAMS}
        return {"notes": "max abs(heatmap - ours): " + " ".join(f"{v:.3f}" for v in d.values()),
                "max_diff": d}

    rows = measure_rounds([
        Spec("floor", "forward (no grad)", forward_only, ours),
        Spec("floor", "forward + backward to input (floor)", floor, ours),
        Spec("floor", "forward + backward to the layer only (all a CAM needs)", layer_only, ours),
        Spec("floor", "forward + .backward() into parameter .grad", param_backward, (gc_model,)),
        Spec("floor", "interpret capture: layer activation + gradient (backward to the layer only)",
             lambda: capture(handle, x, layer, target), ours, setup=cold),
        Spec("floor", "interpret capture with the input gradient too (saliency's pass)",
             lambda: capture(handle, x, layer, target, input_grad=True), ours, setup=cold),
        Spec("floor", "interpret layer maps (Activations page: forward to the layer, no graph)",
             lambda: layer_maps(handle, x, layer), ours, setup=cold),
        Spec("cam", "interpret: 5 gradient CAMs + activation (explain x6)", ours_cams, ours,
             setup=cold, describe=describe_ours),
        Spec("cam", "interpret: the same with target=None (top class)", lambda: ours_cams(None),
             ours, setup=cold),
        Spec("cam", "pytorch-grad-cam: GradCAM, ++, XGradCAM, LayerCAM, HiResCAM", gradcam_lib,
             (gc_model,), describe=describe_lib),
    ], fast)

    # -- slow methods, one after the other ----------------------------------------------
    rows.append(measure(Spec(
        "cam", "interpret: Score-CAM (64 channels, batches of 16)",
        lambda: interpret.explain(handle, x, "scorecam", layer=layer, target=target), ours,
        setup=cold,
        describe=lambda e: {"notes": f"{e.extras['channels_used']} masked images in "
                                     f"{e.extras['forward_passes']} batches"}), slow))

    # -- (b) attributions ---------------------------------------------------------------
    def ig_describe_ours(e):
        return {"err": e.extras["relative_error"], "steps": e.extras["steps_used"],
                "evals": e.extras["evaluations"],
                "notes": f"nodes {e.extras['steps_used']} ({e.extras['evaluations']} gradient "
                         f"evaluations), completeness error {pct(e.extras['relative_error'])}"}

    def ig_describe_captum(attr):
        err = relative_error(float(attr.sum()), diff)
        return {"err": err, "notes": f"completeness error {pct(err)}"}

    def captum_ig(batch):
        return lambda: IntegratedGradients(model).attribute(
            x, baselines=base, target=target, n_steps=50, method="gausslegendre",
            internal_batch_size=batch)

    def ours_ig(**params):
        return lambda: interpret.explain(handle, x, "integrated_gradients", target=target,
                                         baseline="black", **params)

    def ig(label, fn, describe=ig_describe_ours, setup=cold):
        rows.append(measure(Spec("ig", label, fn, ours, setup=setup, describe=describe), slow))
        return rows[-1]

    cap16 = ig("Captum IG, 50 steps, internal_batch_size=16", captum_ig(16), ig_describe_captum,
               setup=None)
    ig("interpret IG, adaptive (defaults: tol 1%, up to 63 nodes)", ours_ig())
    tol = min(max(cap16.info["err"], 1e-4), 0.5)  # the parameter's range
    clamped = " (the smallest allowed)" if tol > cap16.info["err"] else ""
    ig(f"interpret IG, adaptive, tol = Captum-50 error ({pct(tol)}{clamped}), up to 255 nodes",
       ours_ig(tolerance=tol, n_steps=255)).info["tol"] = tol
    ig("interpret IG, fixed 50 steps", ours_ig(adaptive=False, n_steps=50))
    ig("interpret IG, fixed 50 steps, internal_batch_size=8",
       ours_ig(adaptive=False, n_steps=50, internal_batch_size=8))

    wsize, stride = 32, 16
    rows.append(measure(Spec(
        "occl", f"Captum Occlusion {wsize}x{wsize} stride {stride}, perturbations_per_eval=1",
        lambda: Occlusion(model).attribute(
            x, sliding_window_shapes=(3, wsize, wsize), strides=(3, stride, stride),
            baselines=base, target=target, perturbations_per_eval=1), ours), slow))
    rows.append(measure(Spec(
        "occl", f"interpret occlusion {wsize}x{wsize} stride {stride} (batches of 16)",
        lambda: interpret.explain(handle, x, "occlusion", target=target, window=wsize,
                                  stride=stride, baseline="black"), ours, setup=cold), slow))

    samples, noise = 25, 0.15
    sigma = noise * float(x.max() - x.min())  # ours: noise x the input's range

    def captum_sg(batch):
        return lambda: NoiseTunnel(Saliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=samples, nt_samples_batch_size=batch,
            stdevs=sigma, target=target, abs=False)

    for label, batch in (("one batch", None), ("batches of 8", 8)):
        rows.append(measure(Spec(
            "sg", f"Captum NoiseTunnel(Saliency) smoothgrad, {samples} samples, {label}",
            captum_sg(batch), ours), slow))
    rows.append(measure(Spec(
        "sg", f"interpret SmoothGrad, {samples} samples (batches of 8)",
        lambda: interpret.explain(handle, x, "smoothgrad", target=target, samples=samples,
                                  noise=noise), ours, setup=cold), slow))

    # last: the most memory-hungry measurement
    one_batch = "Captum IG, 50 steps, one batch"
    avail = _mem_available_mb()
    estimate = cap16.peak_mb * 50 / 16
    if quick:
        rows.append(Row("ig", one_batch, skipped="skipped (--quick)"))
    elif avail is not None and estimate > 0.7 * avail:
        rows.append(Row("ig", one_batch, skipped=f"skipped: needs ~{estimate:,.0f} MB, "
                                                 f"{avail:,.0f} MB available"))
    else:
        ig(one_batch, captum_ig(None), ig_describe_captum, setup=None)
    handle.cache.clear()
    return {"name": name, "layer": layer, "layer_shape": tuple(raw), "target": target,
            "label": handle.label(target), "rows": rows,
            "load": f"at start: {started}; at end: {load_line()}"}


def _mem_available_mb() -> Optional[float]:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------------
# Report


def load_line() -> str:
    """The load average, and the kernel's CPU pressure (the share of time some runnable
    task waited for a CPU, over the last minute) where available: on a shared machine
    a high value means that other processes were competing for the cores."""
    text = "load average (1, 5, 15 min) " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    try:
        with open("/proc/pressure/cpu") as fh:
            some = dict(kv.split("=") for kv in fh.readline().split()[1:])
        text += f"; CPU pressure (some, avg60) {float(some['avg60']):.0f}%"
    except (OSError, KeyError, ValueError):
        pass
    return text


def machine(threads: int) -> List[str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            names = [l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    import captum
    import torchvision
    from importlib.metadata import version

    try:
        gcv = version("grad-cam")
    except Exception:  # noqa: BLE001 - any metadata problem: just say so
        gcv = "unknown"
    mem = _mem_available_mb()
    return [
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- CPU: {cpu}; {os.cpu_count()} logical cores ({len(os.sched_getaffinity(0))} usable)",
        f"- memory available at start: {mem / 1024:.1f} GiB" if mem else "- memory: unknown",
        f"- torch {torch.__version__} ({torch.get_num_threads()} threads, --threads {threads}), "
        f"torchvision {torchvision.__version__}, captum {captum.__version__}, grad-cam {gcv}, "
        f"interpret {interpret.__version__}, Python {platform.python_version()}",
        f"- at start: {load_line()}",
    ]


def fmt_ms(ms: float) -> str:
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}"


def model_table(res: Dict[str, Any]) -> List[str]:
    rows = res["rows"]
    floor = next(r.ms for r in rows if r.name.endswith("(floor)"))
    out = [f"### {res['name']}",
           "",
           f"Layer `{res['layer']}` (output {res['layer_shape']}), target class "
           f"{res['target']} ({res['label']}). Machine {res['load']}.",
           "",
           "| group | method | ms (median) | min ms | runs | x floor | CPU wait | peak extra MB "
           "| forwards (images) | notes |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r.skipped:
            out.append(f"| {r.group} | {r.name} | - | - | 0 | - | - | - | - | {r.skipped} |")
            continue
        wait = f"{statistics.median(r.waits):.0%}" if r.waits else "-"
        out.append(f"| {r.group} | {r.name} | {fmt_ms(r.ms)} | {fmt_ms(r.min_ms)} | {r.runs} | "
                   f"{r.ms / floor:.2f} | {wait} | "
                   f"{r.peak_mb:,.0f} | {r.calls} ({r.images}) | {r.notes} |")
    return out + [""]


def targets_table(results: List[Dict[str, Any]]) -> List[str]:
    out = ["### Targets", "",
           "Judged on the minimum time of each measurement: when other processes compete for "
           "the cores a run is slowed, never sped up, so the minimum is the best estimate of "
           "the method's own cost (fast methods ran round-robin, so both sides of a ratio had "
           "the same chances of a quiet moment).", "",
           "| model | target | measured | met |", "|---|---|---|---|"]

    def yes(ok):
        return "yes" if ok else "**no**"

    def s(ms):
        return f"{ms / 1000:.1f} s"

    ig_batch = interpret.get_method("integrated_gradients").defaults()["internal_batch_size"]
    for res in results:
        rows = [r for r in res["rows"] if not r.skipped]
        m = res["name"]

        def find(prefix):
            return next(r for r in rows if r.name.startswith(prefix))

        capt, cams = find("interpret capture: layer"), find("interpret: 5 gradient")
        lib, plain = find("pytorch-grad-cam"), find("forward (no grad)")
        maps = find("interpret layer maps")
        ratio = cams.min_ms / capt.min_ms
        out.append(f"| {m} | 5 CAMs + activation <= 1.1x one layer capture | {ratio:.2f}x "
                   f"({cams.min_ms:.0f} vs {capt.min_ms:.0f} ms) | {yes(ratio <= 1.1)} |")
        speed = lib.min_ms / cams.min_ms
        out.append(f"| {m} | 5 CAMs + activation >= 10x faster than five pytorch-grad-cam calls | "
                   f"{speed:.1f}x ({lib.min_ms:.0f} vs {cams.min_ms:.0f} ms) | "
                   + (yes(speed >= 10) if m in ("resnet50", "vit_b_16") else f"(target for ResNet-50 and ViT-B/16; {yes(speed >= 10)})")
                   + " |")
        mratio = maps.min_ms / plain.min_ms
        out.append(f"| {m} | Activations page's maps <= 1.1x one plain forward | {mratio:.2f}x "
                   f"({maps.min_ms:.0f} vs {plain.min_ms:.0f} ms) | {yes(mratio <= 1.1)} |")
        ours_ig = [r for r in rows if r.name.startswith("interpret IG")]
        c16 = find("Captum IG, 50 steps, internal")
        c1 = next((r for r in rows if r.name.startswith("Captum IG, 50 steps, one")), None)
        fastest = c16 if c1 is None or c16.min_ms <= c1.min_ms else c1
        which = "batches of 16" if fastest is c16 else "one batch"
        defaults = max(r.peak_mb for r in ours_ig if "internal_batch_size=8" not in r.name)
        small = find("interpret IG, fixed 50 steps, internal_batch_size=8").peak_mb
        memo = (f"ours up to {defaults:,.0f} MB (internal_batch_size={ig_batch}, the default), "
                f"{small:,.0f} MB in batches of 8; Captum {c16.peak_mb:,.0f} MB in batches of 16"
                + (f", {c1.peak_mb:,.0f} MB in one batch" if c1 else ""))
        out.append(f"| {m} | IG bounded memory (< 1 GB extra on ResNet-50) | {memo} | "
                   + (yes(defaults < 1024) if m == "resnet50" else "(target for ResNet-50)")
                   + " |")
        fixed, ada = find("interpret IG, fixed 50 steps"), find("interpret IG, adaptive (defaults")
        matched = find("interpret IG, adaptive, tol")
        other = f"; one batch {s(c1.min_ms)}" if c1 else ""
        out.append(f"| {m} | IG fixed 50 steps no slower than Captum's batched 50 steps (within 5%) | "
                   f"{s(fixed.min_ms)} vs {s(c16.min_ms)} (batches of 16){other} | "
                   f"{yes(fixed.min_ms <= 1.05 * c16.min_ms)} |")
        out.append(f"| {m} | IG adaptive (defaults) no slower than Captum's 50 steps | "
                   f"{s(ada.min_ms)} ({ada.info['steps']} steps, error {pct(ada.info['err'])}) "
                   f"vs {s(fastest.min_ms)} ({which}, error {pct(c16.info['err'])}) | "
                   f"{yes(ada.min_ms <= 1.05 * fastest.min_ms)} |")
        reached = matched.info["err"] <= max(c16.info["err"], matched.info["tol"])
        ok = reached and matched.min_ms <= 0.5 * fastest.min_ms and matched.peak_mb < 1024
        out.append(f"| {m} | adaptive IG reaches Captum's 50-step error in half its time, "
                   f"< 1 GB extra | {s(matched.min_ms)} ({matched.info['steps']} nodes, "
                   f"{matched.info['evals']} gradient evaluations, error {pct(matched.info['err'])}, "
                   f"{matched.peak_mb:,.0f} MB) vs {s(fastest.min_ms)} ({which}, 50 evaluations, "
                   f"error {pct(c16.info['err'])}) | {yes(ok)} |")
        occ, sc = find("interpret occlusion"), find("interpret: Score-CAM")
        cocc = find("Captum Occlusion")
        out.append(f"| {m} | occlusion and Score-CAM batch their forwards | occlusion "
                   f"{occ.calls} forwards for {occ.images} images ({s(occ.min_ms)} vs Captum's "
                   f"{cocc.calls} forwards, {s(cocc.min_ms)}); Score-CAM {sc.calls} for "
                   f"{sc.images} | "
                   f"{yes(occ.calls * 4 <= occ.images and sc.calls * 4 <= sc.images)} |")
    return out + [""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats; skip Captum's one-batch Integrated Gradients")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--out", type=Path, help="also write the report (markdown) to this file")
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    if args.quick:
        fast, slow = Plan(1, 3, 10.0), Plan(0, 1, 0.0)
    else:
        fast, slow = Plan(1, 7, 30.0), Plan(0, 3, 40.0)
    import captum.attr  # noqa: F401  (imported here so that no timing includes it)
    import pytorch_grad_cam  # noqa: F401

    header = ["# interpret benchmark", "", *machine(args.threads),
              f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
              f"- repeats: fast methods {fast.warmup} warm-up + median of {fast.repeats}; "
              f"slow methods median of up to {slow.repeats} runs within {slow.budget_s:.0f} s "
              "(after a model-wide warm-up)", ""]
    print("\n".join(header), flush=True)
    results = []
    t0 = time.perf_counter()
    for m in models:
        results.append(bench_model(m, fast, slow, args.quick))
        gc.collect()
    lines = header + [line for r in results for line in model_table(r)] + targets_table(results)
    lines.append(f"Total benchmark time {time.perf_counter() - t0:.0f} s; at the end: "
                 f"{load_line()}.")
    report = "\n".join(lines) + "\n"
    print("\n" + report, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
