"""Side-by-side timing of the model sources and of the vision-transformer methods.

One process, no downloads (random weights, files written to a temporary folder first):

* sources: for each way a model comes in (the bundled EfficientNet-Lite0, torchvision
  and timm by name, a torchvision and a timm state dict, a Hugging Face folder and its
  zip, an ONNX file converted by onnx2torch), the time to load it and then the time to
  the first Grad-CAM heatmap of a 224 x 224 photo (which includes the dry forward that
  lists the layers and finds the suggested one);
* ViT-B/16 (timm, random init): attention rollout, transformer attribution and LeGrad
  (all 12 blocks) against one recorded capture (what every gradient CAM costs) and
  against pytorch-grad-cam's Grad-CAM with its ``vit_reshape_transform``.

Every run starts from a fresh handle (empty caches), so nothing is reused between
runs; medians and minima over ``--repeats``.  ``--quick`` uses small models
(ResNet-18, ConvNeXt-atto, a 4-block ViT) and one repeat, to check that the script
works; the numbers for the docs come from a full run on a quiet machine:

    .venv/bin/python benchmarks/bench_sources.py --quick
    .venv/bin/python benchmarks/bench_sources.py --out docs/bench_sources-run.md
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interpret  # noqa: E402
from interpret.capture import capture  # noqa: E402


def timed(fn: Callable[[], object], repeats: int) -> Tuple[float, float, object]:
    """(median s, minimum s, last result) of ``fn`` run ``repeats`` times."""
    times, out = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def photo():
    from skimage import data
    from PIL import Image

    return Image.fromarray(data.chelsea()).convert("RGB")


# ---------------------------------------------------------------------------------
# sources


def prepare_files(root: Path, quick: bool) -> Dict[str, Tuple[str, dict]]:
    """Write the files the file-based sources load; returns name -> (source, kwargs)."""
    import timm
    import torchvision
    from safetensors.torch import save_file
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    tv_arch = "resnet18" if quick else "resnet50"
    timm_arch = "convnext_atto" if quick else "convnext_tiny"
    torch.manual_seed(0)
    tv = torchvision.models.get_model(tv_arch, weights=None, num_classes=10).eval()
    torch.save(tv.state_dict(), root / "tv.pth")
    tm = timm.create_model(timm_arch, pretrained=False, num_classes=10).eval()
    save_file(tm.state_dict(), str(root / "timm.safetensors"))
    cfg = ViTConfig(num_labels=10) if not quick else ViTConfig(
        hidden_size=192, num_hidden_layers=4, num_attention_heads=3, intermediate_size=768, num_labels=10)
    hf = ViTForImageClassification(cfg).eval()
    folder = root / "hf_vit"
    hf.save_pretrained(str(folder))
    ViTImageProcessor().save_pretrained(str(folder))
    import zipfile

    with zipfile.ZipFile(root / "hf_vit.zip", "w") as zf:
        for p in folder.iterdir():
            zf.write(p, p.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tv, (torch.zeros(1, 3, 224, 224),), str(root / "tv.onnx"), opset_version=17,
                          input_names=["input"], output_names=["logits"], dynamo=False,
                          dynamic_axes={"input": {0: "b"}, "logits": {0: "b"}})
    return {
        "bundled EfficientNet-Lite0": ("efficientnet_lite0", {}),
        f"torchvision:{tv_arch} (random init)": (f"torchvision:{tv_arch}", {"weights": None}),
        f"timm:{timm_arch} (random init)": (f"timm:{timm_arch}", {"weights": None}),
        f"{tv_arch} state dict (.pth)": (str(root / "tv.pth"), {"arch": tv_arch}),
        f"timm {timm_arch} safetensors": (str(root / "timm.safetensors"), {"arch": f"timm:{timm_arch}"}),
        f"Hugging Face ViT{'-B/16' if not quick else ' (4 blocks)'} folder": (str(folder), {}),
        "the same, zipped": (str(root / "hf_vit.zip"), {}),
        f"ONNX {tv_arch} (onnx2torch)": (str(root / "tv.onnx"), {}),
    }


def bench_sources(sources, repeats: int) -> List[Tuple[str, float, float, float, float, str]]:
    img = photo()
    rows = []
    for label, (src, kw) in sources.items():
        state = {}

        def load():
            state["h"] = interpret.load_model(src, **kw)
            return state["h"]

        def first():
            h = interpret.ModelHandle(state["h"].module, info=state["h"].info)  # empty caches
            return interpret.explain(h, img, "gradcam")

        lm, lmin, h = timed(load, repeats)
        fm, fmin, e = timed(first, repeats)
        rows.append((label, lm, lmin, fm, fmin, f"{e.layer} ({h.num_params / 1e6:.1f} M params)"))
        print(f"  {label}: load {lm:.2f} s, first heatmap {fm:.2f} s", file=sys.stderr)
        del state["h"]
    return rows


# ---------------------------------------------------------------------------------
# ViT methods


def bench_vit(quick: bool, repeats: int) -> List[Tuple[str, float, float]]:
    import timm
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform

    torch.manual_seed(0)
    kw = dict(depth=4) if quick else {}
    model = timm.create_model("vit_base_patch16_224", pretrained=False, **kw).eval()
    base = interpret.load_model(model)
    x = base.preprocess(photo())
    target = int(interpret.predict(base, x, top_k=1)[0].index)
    layer = interpret.default_layer(base)

    def fresh():
        return interpret.ModelHandle(model, info=base.info)

    rows = []
    m, mn, _ = timed(lambda: capture(fresh(), x, layer, target), repeats)
    rows.append((f"one capture at {layer} (what each gradient CAM costs)", m, mn))
    for method in ("gradcam", "attention_rollout", "transformer_attribution", "legrad"):
        m, mn, _ = timed(lambda: interpret.explain(fresh(), x, method, target=target), repeats)
        rows.append((f"interpret {method}", m, mn))
    twin = copy.deepcopy(model)

    def pgc():
        with GradCAM(model=twin, target_layers=[twin.blocks[-1].norm1],
                     reshape_transform=lambda t: vit_reshape_transform(t, 14, 14)) as cam:
            return cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])

    m, mn, _ = timed(pgc, repeats)
    rows.append(("pytorch-grad-cam GradCAM (vit_reshape_transform)", m, mn))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small models, one repeat: check the script")
    ap.add_argument("--repeats", type=int, default=None, help="runs per row (default 5, quick 1)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", type=Path, help="also write the markdown report here")
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.quick else 5)
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = [f"# Model sources and ViT methods ({datetime.date.today()})", "",
             f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, {repeats} run(s) per row"
             + (", --quick (small models)" if args.quick else ""), ""]
    with tempfile.TemporaryDirectory() as tmp:
        print("sources...", file=sys.stderr)
        rows = bench_sources(prepare_files(Path(tmp), args.quick), repeats)
    lines += ["| source | load (median) | load (min) | first Grad-CAM (median) | (min) | layer |",
              "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r[0]} | {r[1]:.2f} s | {r[2]:.2f} s | {r[3]:.2f} s | {r[4]:.2f} s | `{r[5]}` |" for r in rows]
    print("ViT methods...", file=sys.stderr)
    vit = bench_vit(args.quick, repeats)
    cap = vit[0][1]
    lines += ["", f"ViT-{'B/16' if not args.quick else 'B/16 with 4 blocks'} (timm, random init), one 224 x 224 photo:", "",
              "| what | median | min | x one capture |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {m * 1e3:.0f} ms | {mn * 1e3:.0f} ms | {m / cap:.2f}x |" for name, m, mn in vit]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
