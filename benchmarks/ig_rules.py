"""Completeness error of Integrated Gradients against the number of nodes, per rule.

For the benchmark's photo, target and black baseline, the path derivative
``h'(a) = sum((x - b) * grad f(b + a (x - b)))`` is evaluated once per distinct node and
every rule is scored from the same values: the completeness error
``|sum_k w_k h'(a_k) - (f(x) - f(b))| / |f(x) - f(b)|`` is exactly the error of the
attribution's sum, so no attribution maps are needed.  Rules: Fejér's second rule at
the nested levels interpret's adaptive mode uses (7, 15, 31, ...) and at 50 nodes;
Captum's default, 50 Gauss-Legendre nodes; and the dyadic midpoint rule (nested at every
node, so that an adaptive search could stop after any batch) at 64, 128 and 256 nodes.

It explains the "adaptive IG at Captum's 50-step error in half its time" row of
``bench_methods.py``'s targets (docs/benchmarks.md): on piecewise-linear networks the
error jumps with the node count instead of falling steadily.

    .venv/bin/python benchmarks/ig_rules.py --models resnet50,efficientnet_lite0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_methods import MODELS, load, test_image  # noqa: E402
from interpret.methods.integrated_gradients import fejer2  # noqa: E402

FEJER = (7, 15, 31, 63, 127, 255)
MIDPOINTS = (64, 128, 256)


def errors(name: str, batch: int) -> Dict[str, float]:
    handle = load(name)
    model = handle.module
    x = test_image(handle)
    with torch.no_grad():
        target = int(model(x)[0].argmax())
        base = handle.preprocessing.normalize(torch.zeros_like(x))
        diff = float(model(x)[0, target] - model(base)[0, target])
    d = x - base
    seen: Dict[float, float] = {}

    def derivative(alphas: List[float]) -> np.ndarray:
        todo = [a for a in dict.fromkeys(alphas) if a not in seen]
        for i in range(0, len(todo), batch):
            chunk = todo[i:i + batch]
            a = torch.tensor(chunk, dtype=x.dtype).view(-1, 1, 1, 1)
            xi = (base + a * d).requires_grad_(True)
            (g,) = torch.autograd.grad(model(xi)[:, target].sum(), xi)
            for j, aj in enumerate(chunk):
                seen[aj] = float((g[j] * d[0]).sum())
        return np.array([seen[a] for a in alphas])

    def err(value: float) -> float:
        return abs(value - diff) / abs(diff)

    out: Dict[str, float] = {}
    for n in (*FEJER, 50):
        rule = fejer2(n)
        nodes, weights = [a for _, a, _ in rule], np.array([w for _, _, w in rule])
        out[f"fejer{n}"] = err(float((derivative(nodes) * weights).sum()))
    g, w = np.polynomial.legendre.leggauss(50)
    out["gl50"] = err(float((derivative(list((g + 1) / 2)) * w / 2).sum()))
    for n in MIDPOINTS:
        nodes = [(2 * j + 1) / (2 * n) for j in range(n)]
        out[f"mid{n}"] = err(float(derivative(nodes).mean()))
    out["evaluations"] = len(seen)
    return out


def pct(e: float) -> str:
    return f"{100 * e:.2g}%" if e < 0.01 else f"{100 * e:.2f}%" if e < 1 else f"{100 * e:.0f}%"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="resnet50,efficientnet_lite0",
                    help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--batch", type=int, default=16, help="images per backward pass")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(MODELS)}")
    res = {}
    for m in models:
        print(f"{m}: evaluating ...", file=sys.stderr, flush=True)
        res[m] = errors(m, args.batch)
    rows = [(f"Fejér-2, {n} nodes" + (" (nested level)" if n in FEJER else " (not nested)"), f"fejer{n}")
            for n in sorted((*FEJER, 50))]
    rows.insert(0, ("Captum default: Gauss-Legendre, 50 nodes", "gl50"))
    rows += [(f"dyadic midpoints, {n} nodes (nested at every node)", f"mid{n}") for n in MIDPOINTS]
    print("| rule | " + " | ".join(models) + " |")
    print("|---|" + "---:|" * len(models))
    for label, key in rows:
        print(f"| {label} | " + " | ".join(pct(res[m][key]) for m in models) + " |")
    print("\nGradient evaluations: " + ", ".join(f"{m} {res[m]['evaluations']}" for m in models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
