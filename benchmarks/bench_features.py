"""Timing of feature visualization on the bundled EfficientNet-Lite0.

Optimises one channel (``_blocks.10``, channel 7 by default) of a 128 x 128 image for
256 steps with the standard recipe (Fourier + decorrelated colour parameterization,
pad / jitter / scale / rotate transforms, Adam), and reports the total time and the
time per step next to two floors measured in the same process on inputs of the size
the optimiser feeds (128 + 24 padding - 11 jitter = 141 px):

* a forward to the output plus ``torch.autograd.grad`` to the input (what each step
  would cost if it ran the whole network);
* the same, stopped at the layer (what each step needs: ``interpret`` stops the
  forward once the layer has run).

Wall time and process CPU time (all threads) are reported per step; the floors are
measured before and after the run, and the load average is printed before and after:
other jobs on the machine slow every number down, so on a shared machine read the
CPU times and the ratios rather than the absolute wall times.

    .venv/bin/python benchmarks/bench_features.py
    .venv/bin/python benchmarks/bench_features.py --steps 64 --size 96
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interpret  # noqa: E402
from interpret.features._common import run_taps, tap_for  # noqa: E402


def _floor(handle, layer: str, side: int, repeats: int, stop_at_layer: bool):
    """Median (wall, CPU) seconds of one forward + input gradient at ``side`` pixels."""
    tap = tap_for(handle, layer)
    g = torch.Generator().manual_seed(0)
    walls, cpus = [], []
    for i in range(repeats + 2):
        x = torch.randn((1, 3, side, side), generator=g).requires_grad_(True)
        t0, c0 = time.perf_counter(), time.process_time()
        if stop_at_layer:
            tensors, _ = run_taps(handle, x, [tap], False)
            value = tensors[tap.key][:, 7].mean()
        else:
            value = handle.module(x)[0, 0]
        torch.autograd.grad(value, [x])
        if i >= 2:  # the first calls allocate
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="_blocks.10")
    ap.add_argument("--channel", type=int, default=7)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", help="also write the table to this markdown file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    load_before = os.getloadavg()
    handle = interpret.load_model("efficientnet_lite0")
    interpret.list_layers(handle)  # the dry forward, outside the timings

    side = args.size + 24 - 11
    floors = {}
    for when in ("before", "after"):
        if when == "after":
            stamps = [time.perf_counter()]
            c0 = time.process_time()
            fv = interpret.visualize_channel(handle, args.layer, args.channel, size=args.size,
                                             steps=args.steps, seed=0,
                                             callback=lambda s, t, v: stamps.append(time.perf_counter()))
            cpu_step = (time.process_time() - c0) / fv.steps_done
            per_step = sorted(b - a for a, b in zip(stamps, stamps[1:]))
            median_step = statistics.median(per_step)
            p90_step = per_step[int(0.9 * (len(per_step) - 1))]
        floors[("full", when)] = _floor(handle, args.layer, side, 8, stop_at_layer=False)
        floors[("layer", when)] = _floor(handle, args.layer, side, 8, stop_at_layer=True)
    load_after = os.getloadavg()
    ms_step = fv.ms_per_step

    def floor_row(kind: str, label: str) -> str:
        (wb, cb), (wa, ca) = floors[(kind, "before")], floors[(kind, "after")]
        return (f"| floor: {label}, {side} px (before / after) | - | {1000 * wb:.0f} / {1000 * wa:.0f} "
                f"| {1000 * cb:.0f} / {1000 * ca:.0f} |")

    layer_cpu = min(floors[("layer", "before")][1], floors[("layer", "after")][1])
    layer_wall = min(floors[("layer", "before")][0], floors[("layer", "after")][0])

    lines = [
        f"# Feature visualization timing ({datetime_now()})",
        "",
        f"EfficientNet-Lite0, `{args.layer}` channel {args.channel}, {args.size}x{args.size}, "
        f"{args.steps} steps, seed 0; {fv.parameterization}; transforms: {fv.transforms}.",
        "",
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
        f"load average before {fmt_load(load_before)}, after {fmt_load(load_after)}.",
        "",
        "| measurement | total wall (s) | wall per step (ms) | CPU per step (ms) |",
        "|---|---:|---:|---:|",
        f"| visualize_channel, {args.steps} steps: mean | {fv.seconds:.1f} | {ms_step:.0f} | {1000 * cpu_step:.0f} |",
        f"| visualize_channel: median / 90th percentile step | - | {1000 * median_step:.0f} / {1000 * p90_step:.0f} | - |",
        floor_row("full", "forward + input grad, whole network"),
        floor_row("layer", f"forward + input grad, stopped at `{args.layer}`"),
        "",
        f"Objective: {fv.trace[0]:.2f} at step 1, {fv.trace[-1]:.2f} at step {fv.steps_done}; "
        f"median step / layer floor (wall, lower of before and after) = "
        f"{median_step / layer_wall:.2f}; CPU per step / layer floor (CPU) = {cpu_step / layer_cpu:.2f}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


def fmt_load(load) -> str:
    return "/".join(f"{v:.2f}" for v in load)


def datetime_now() -> str:
    import datetime

    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M")


if __name__ == "__main__":
    raise SystemExit(main())
