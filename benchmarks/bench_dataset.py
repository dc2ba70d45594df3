"""Dataset mode side by side: images per second for predictions + Grad-CAM over one
labelled set, with interpret's local engine (batched), a local Ray with 2 workers, and
pytorch-grad-cam (a plain loop of calls, one image each, and the same in batches); the
peak memory of each; and how the time grows from 100 to 1,000 images.

Every configuration runs in a fresh subprocess of its own, so that its peak resident
memory (``ru_maxrss``; for Ray, plus the peak of its worker processes, sampled from
/proc) is its own.  The set: random crops of the 40 photos of assets/dataset_sample
(5 ImageNet classes), saved as 256 px JPEGs, read from disk by every configuration;
the model: the bundled EfficientNet-Lite0 at its suggested layer (_blocks.15).  Each
image gets its top-5 predictions and its Grad-CAM for its true class; interpret also
stores everything (Parquet, thumbnails, features) as it goes, pytorch-grad-cam keeps
nothing.  Threads: 2 for the local engine and pytorch-grad-cam, 1 per Ray worker
(2 workers), on a 2-core machine: the same cores for everyone.

    .venv/bin/python benchmarks/bench_dataset.py --quick          # a check: 24 and 48 images
    .venv/bin/python benchmarks/bench_dataset.py --out docs/bench_dataset-run.md
    .venv/bin/python benchmarks/bench_dataset.py --trust      # faithfulness figures on the sample set

``--trust`` times the Dataset page's "Faithfulness figures" on the 40 photos of the
sample set: the analysis without them, with them batched across photos, and with them
one photo at a time (the code before issue 17), interleaved over ``--rounds``.
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "assets" / "dataset_sample"
CONFIGS = ("local", "ray", "gradcam_loop", "gradcam_batched")
LABELS = {"local": "interpret, local engine (batches of 32, 2 threads)",
          "ray": "interpret, local Ray (2 workers x 1 thread, batches of 32)",
          "gradcam_loop": "pytorch-grad-cam, a loop of one-image calls (2 threads)",
          "gradcam_batched": "pytorch-grad-cam, batches of 32 (2 threads)"}


def make_set(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` images in the sample set's class folders: random crops of its photos."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = sorted(SAMPLE.glob("*/*.jpg"))
    for k in range(n):
        src = photos[k % len(photos)]
        img = Image.open(src).convert("RGB")
        w, h = img.size
        s = rng.uniform(0.75, 1.0)
        cw, ch = int(w * s), int(h * s)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = img.crop((x0, y0, x0 + cw, y0 + ch)).resize((256, 256), Image.Resampling.BILINEAR)
        (root / src.parent.name).mkdir(parents=True, exist_ok=True)
        crop.save(root / src.parent.name / f"{k:05d}.jpg", quality=90)
    return root


class WorkerPeak:
    """The largest sum of resident memory of this machine's Ray dataset workers."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for f in glob.glob("/proc/[0-9]*/cmdline"):
                try:
                    if b"DatasetWorker" not in Path(f).read_bytes():
                        continue
                    status = Path(f).with_name("status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            self.peak = max(self.peak, total)
            self._stop.wait(0.1)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def run_one(config: str, folder: str, out: str) -> Dict:
    """One configuration in this process; returns its measurements."""
    import torch

    import interpret

    torch.set_num_threads(2)
    model = interpret.load_model()
    layer = interpret.default_layer(model)
    n = sum(1 for _ in Path(folder).glob("*/*.jpg"))
    times: List[float] = []
    result: Dict = {"config": config, "images": n}
    if config in ("local", "ray"):
        peak = WorkerPeak() if config == "ray" else None
        if config == "ray":
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
            result["ray_init_s"] = time.perf_counter() - t0

        def progress(done, total):
            times.append((time.perf_counter(), done))

        t0 = time.perf_counter()
        if peak is not None:
            peak.__enter__()
        try:
            r = interpret.analyze_dataset(model, folder, out=out, batch_size=32, engine=config,
                                          workers=2 if config == "ray" else None, progress=progress)
        finally:
            if peak is not None:
                peak.__exit__()
        result["seconds"] = time.perf_counter() - t0
        result["accuracy"] = r.accuracy
        # steady state: from the first finished batch to the last
        done_times = [(t, d) for t, d in times if d > 0]
        if len(done_times) >= 2:
            (t1, d1), (t2, d2) = done_times[0], done_times[-1]
            result["steady_images_per_s"] = (d2 - d1) / (t2 - t1) if t2 > t1 else float("nan")
        if peak is not None:
            result["worker_peak_mb"] = peak.peak / 2**20
    else:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        from interpret.dataset import read_source

        src = read_source(folder, model.labels)
        module = copy.deepcopy(model.module)
        target_layer = dict(module.named_modules())[layer]
        cam = GradCAM(model=module, target_layers=[target_layer])
        size = 1 if config == "gradcam_loop" else 32
        correct = 0
        t0 = time.perf_counter()
        for i in range(0, len(src.items), size):
            items = src.items[i:i + size]
            x = torch.cat([model.preprocess(interpret.load_image(src.file_path(it))) for it in items])
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(it.label_index) for it in items])
            probs = torch.softmax(cam.outputs.detach(), 1)
            top = torch.topk(probs, 5, dim=1).indices
            correct += int((top[:, 0] == torch.tensor([it.label_index for it in items])).sum())
            assert maps.shape[0] == len(items)
        result["seconds"] = time.perf_counter() - t0
        result["accuracy"] = correct / len(src.items)
    result["images_per_s"] = n / result["seconds"]
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure(config: str, folder: Path, tmp: Path) -> Dict:
    out = tmp / f"out-{config}-{folder.name}"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS="2")
    env.pop("RAY_ADDRESS", None)
    p = subprocess.run([sys.executable, __file__, "--one", config, str(folder), str(out)], env=env,
                       capture_output=True, text=True, timeout=7200)
    if p.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "n/a"


def report(rows: List[Dict], sizes: List[int]) -> str:
    import torch

    lines = [f"# Dataset benchmark ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"EfficientNet-Lite0 at _blocks.15, top-5 predictions + Grad-CAM for the true class. "
             f"CPU pressure at the end: `{pressure()}`.", "",
             "| configuration | images | seconds | images/s | steady images/s | peak memory (driver + workers) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        mem = f"{r['peak_mb']:.0f} MB" + (f" + {r['worker_peak_mb']:.0f} MB" if "worker_peak_mb" in r else "")
        steady = f"{r['steady_images_per_s']:.1f}" if "steady_images_per_s" in r else "-"
        extra = f" (+ {r['ray_init_s']:.0f} s to start Ray, not counted)" if "ray_init_s" in r else ""
        lines.append(f"| {LABELS[r['config']]}{extra} | {r['images']} | {r['seconds']:.1f} | "
                     f"{r['images_per_s']:.1f} | {steady} | {mem} |")
    small, big = sizes
    lines += ["", f"Growth from {small} to {big} images ({big // small}x the images):", "",
              "| configuration | time ratio | peak memory ratio |", "|---|---:|---:|"]
    for c in CONFIGS:
        a = [r for r in rows if r["config"] == c and r["images"] == small]
        b = [r for r in rows if r["config"] == c and r["images"] == big]
        if a and b:
            ma = a[0]["peak_mb"] + a[0].get("worker_peak_mb", 0)
            mb = b[0]["peak_mb"] + b[0].get("worker_peak_mb", 0)
            lines.append(f"| {LABELS[c]} | {b[0]['seconds'] / a[0]['seconds']:.2f}x | {mb / ma:.2f}x |")
    accs = {f"{r['config']}@{r['images']}": round(r["accuracy"], 4) for r in rows}
    lines += ["", f"Top-1 accuracy per run (all configurations see the same images): `{accs}`"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------
# Faithfulness figures (issue 17): batched across photos, against no figures and against
# one photo at a time (the code before), on the 40 photos of the sample set


TRUST_LABELS = {"none": "analysis, no faithfulness figures",
                "batched": "analysis + faithfulness, perturbed images batched across photos",
                "single": "analysis + faithfulness, one photo at a time (before issue 17)"}


def _one_photo_at_a_time(model, xs, explanations, steps, baseline, batch_size=None, progress=None, **kw):
    """faithfulness() per photo, as interpret.dataset.batch did before the batched call."""
    import interpret

    return [interpret.faithfulness(model, x, e, steps=steps, baseline=baseline) for x, e in zip(xs, explanations)]


def _subset(root: Path, per_class: int) -> Path:
    """The first ``per_class`` photos of each class of the sample set, copied under ``root``."""
    for cdir in sorted(p for p in SAMPLE.iterdir() if p.is_dir()):
        (root / cdir.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(cdir.glob("*.jpg"))[:per_class]:
            shutil.copy(f, root / cdir.name / f.name)
    return root


def trust_bench(rounds: int, steps: int, threads: int, batch_size: int = 16, photos: int = 0) -> str:
    """Rounds of the three configurations, interleaved (a change of machine load hits
    all three alike); each run on a fresh handle (no cached curves) into a new folder."""
    import statistics

    import torch

    import interpret

    fmod = sys.modules["interpret.trust.faithfulness"]
    batched = fmod.faithfulness_many
    torch.set_num_threads(threads)
    base = interpret.load_model()
    tmp_set = tempfile.mkdtemp(prefix="bench-trust-set-")
    folder = _subset(Path(tmp_set), max(1, photos // 5)) if photos else SAMPLE
    n = sum(1 for _ in folder.glob("*/*.jpg"))
    seconds: Dict[str, List[float]] = {c: [] for c in TRUST_LABELS}
    cpu: Dict[str, List[float]] = {c: [] for c in TRUST_LABELS}
    reports: Dict[str, List[int]] = {c: [] for c in TRUST_LABELS}
    gaps: Dict[str, List[float]] = {c: [] for c in TRUST_LABELS}
    with tempfile.TemporaryDirectory(prefix="bench-trust-") as tmp:
        for k in range(rounds):
            for c in TRUST_LABELS:
                fmod.faithfulness_many = _one_photo_at_a_time if c == "single" else batched
                stamps: List[float] = []
                c0 = time.process_time()
                t0 = time.perf_counter()
                interpret.analyze_dataset(base.with_info(), folder, out=Path(tmp) / f"{c}-{k}",
                                          batch_size=batch_size, trust=c != "none", trust_steps=steps,
                                          progress=lambda d, t: stamps.append(time.perf_counter()))
                seconds[c].append(time.perf_counter() - t0)
                cpu[c].append(time.process_time() - c0)
                reports[c].append(len(stamps))
                gaps[c].append(max(b - a for a, b in zip([t0] + stamps, stamps + [time.perf_counter()])))
                print(f"round {k + 1}: {c:>8} {seconds[c][-1]:7.1f} s ({cpu[c][-1]:.1f} s of CPU), "
                      f"{len(stamps)} progress reports", flush=True)
    fmod.faithfulness_many = batched
    none, none_cpu = min(seconds["none"]), min(cpu["none"])
    lines = [f"# Dataset faithfulness benchmark ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {threads} torch threads, "
             f"torch {torch.__version__}; the bundled EfficientNet-Lite0, {n} photos of "
             f"assets/dataset_sample, Grad-CAM at _blocks.15, batches of {batch_size} photos (the dashboard's), "
             f"faithfulness with {steps} steps and 3 random maps per photo; {rounds} rounds, interleaved. "
             f"CPU seconds are this process's (user + system, all threads): on a busy machine they move "
             f"less than wall time. CPU pressure at the end: `{pressure()}`.", "",
             "| configuration | wall s (min) | wall s (median) | x no figures (wall) | CPU s (min) | "
             "x no figures (CPU) | progress reports | longest wait between reports |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c, label in TRUST_LABELS.items():
        lines.append(f"| {label} | {min(seconds[c]):.1f} | {statistics.median(seconds[c]):.1f} | "
                     f"{min(seconds[c]) / none:.1f}x | {min(cpu[c]):.1f} | {min(cpu[c]) / none_cpu:.1f}x | "
                     f"{reports[c][0]} | {min(gaps[c]):.1f} s |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="24 and 48 images: a check that it all runs")
    ap.add_argument("--sizes", default=None, help="two set sizes, e.g. 100,1000 (the default)")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--out", help="also write the report (markdown) here")
    ap.add_argument("--trust", action="store_true",
                    help="the faithfulness figures on the sample set: batched, one photo at a time, none")
    ap.add_argument("--rounds", type=int, default=3, help="with --trust: rounds of the three (default 3)")
    ap.add_argument("--trust-steps", type=int, default=20, help="with --trust: points per curve (default 20)")
    ap.add_argument("--threads", type=int, default=2, help="with --trust: torch threads (default 2)")
    ap.add_argument("--photos", type=int, default=0,
                    help="with --trust: only this many photos of the sample set (a fifth per class; 0: all 40)")
    ap.add_argument("--one", nargs=3, metavar=("CONFIG", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.trust:
        text = trust_bench(1 if args.quick else args.rounds, args.trust_steps, args.threads, photos=args.photos)
        print(text)
        if args.out:
            Path(args.out).write_text(text)
        return 0
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return 0
    sizes = [int(s) for s in (args.sizes or ("24,48" if args.quick else "100,1000")).split(",")]
    configs = [c for c in args.configs.split(",") if c]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        tmp = Path(tmp)
        for n in sizes:
            folder = make_set(tmp / f"set{n}", n)
            for c in configs:
                r = measure(c, folder, tmp)
                print(f"{c:>16} {n:>5} images: {r['seconds']:7.1f} s, {r['images_per_s']:5.1f} images/s, "
                      f"peak {r['peak_mb']:.0f} MB" + (f" + workers {r['worker_peak_mb']:.0f} MB"
                                                       if "worker_peak_mb" in r else ""), flush=True)
                rows.append(r)
    text = report(rows, sizes)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
