"""``predict``, ``layers``, ``methods`` and ``explain``: one image, one model."""

from __future__ import annotations

import json
from pathlib import Path

from .common import add_explanation_args, add_model_args, load_model as _model, target_of


def cmd_predict(args) -> int:
    import interpret

    model = _model(args)
    preds = interpret.predict(model, interpret.load_image(args.image), top_k=args.top_k)
    if model.task == "embedding":
        v = preds.vector
        if args.json:
            print(json.dumps({"task": "embedding", "size": preds.size, "norm": preds.norm,
                              "vector": [float(f) for f in v]}))
        else:
            print(f"embedding of {preds.size} numbers, length {preds.norm:.4f}; first values "
                  + " ".join(f"{float(f):.4f}" for f in v[:8]))
        return 0
    if isinstance(preds, interpret.Segmentation):
        rows = preds.classes[:args.top_k] if args.top_k else preds.classes
        if args.json:
            print(json.dumps({"task": "segmentation", "classes": [c.__dict__ for c in rows]}, indent=2))
            return 0
        width = max(len(c.label) for c in rows)
        for c in rows:
            print(f"{c.index:>5}  {c.label:<{width}}  {c.share * 100:6.2f}% of the pixels")
        return 0
    if args.json:
        print(json.dumps([p.__dict__ for p in preds], indent=2))
    else:
        width = max(len(p.label) for p in preds)
        for p in preds:
            if p.probability is None:
                print(f"{p.index:>5}  {p.label:<{width}}  value {p.value:10.4f}")
            else:
                print(f"{p.index:>5}  {p.label:<{width}}  {p.probability * 100:6.2f}%  logit {p.logit:8.3f}")
    return 0


def cmd_layers(args) -> int:
    import interpret

    model = _model(args)
    layers = interpret.list_layers(model)
    default = interpret.default_layer(model)
    if args.spatial:
        layers = [l for l in layers if l.spatial]
    if args.json:
        print(json.dumps([{**l.__dict__, "default": l.name == default} for l in layers], indent=2))
        return 0
    for l in layers:
        shape = "x".join(map(str, l.output_shape[1:])) if l.output_shape else "-"
        mark = "  <- default for CAMs" if l.name == default else ""
        print(f"{'  ' * (l.depth - 1)}{l.name:<40} {l.kind:<24} {shape:<14} {l.num_params:>10,}{mark}")
    return 0


def cmd_methods(args) -> int:
    import interpret

    specs = interpret.methods()
    if args.json:
        print(json.dumps([
            {"name": s.name, "label": s.label, "family": s.family_label, "needs_layer": s.needs_layer,
             "speed": s.speed, "uses": s.uses, "progress": s.progress, "contrastive": s.contrastive,
             "paper": s.paper, "description": s.description,
             "params": [{"name": p.name, "kind": p.kind, "default": p.default, "min": p.min,
                         "max": p.max, "choices": list(p.choices)} for p in s.params]}
            for s in specs], indent=2))
        return 0
    for s in specs:
        params = ", ".join(f"{p.name}={p.default}" for p in s.params)
        layer = "layer" if s.needs_layer else "     "
        print(f"{s.name:<22} {s.family_label:<38} {layer}  {s.speed:<8} {params}")
    return 0


def _parse_param(text: str):
    if "=" not in text:
        raise SystemExit(f"error: --param takes NAME=VALUE, got '{text}'")
    k, v = text.split("=", 1)
    for cast in (int, float):
        try:
            return k, cast(v)
        except ValueError:
            pass
    return k, v


def cmd_explain(args) -> int:
    import interpret
    from interpret.overlay import heatmap_image

    model = _model(args)
    image = interpret.load_image(args.image)
    params = dict(_parse_param(p) for p in (args.param or []))
    target = target_of(args, model)
    contrast = None if isinstance(target, interpret.targets.Target) else args.contrast
    e = interpret.explain(model, image, args.method, layer=args.layer, target=target,
                          contrast=contrast, **params)
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise interpret.InputError(f"--out must end in .png, .jpg or .webp; got '{out.name}'.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.heatmap_only:
        img = heatmap_image(e.heatmap, args.colormap)
    else:
        img = interpret.overlay(image, e.heatmap, model, colormap=args.colormap,
                                opacity=args.opacity, resolution=args.resolution)
    img.save(out)
    summary = {
        "method": e.method, "layer": e.layer, "target": e.target, "target_label": e.target_label,
        "contrast": e.contrast, "contrast_label": e.contrast_label, "params": e.params,
        "explained": e.explained.describe(model.labels) if e.explained is not None else None,
        "score": e.score, "seconds": round(e.seconds, 4), "out": str(out),
        "extras": {k: v for k, v in e.extras.items() if isinstance(v, (int, float, str))},
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        what = e.explained.describe(model.labels)
        print(f"{e.method} for {what}" + (f" at layer {e.layer}" if e.layer else "")
              + f": wrote {out} ({e.seconds:.2f}s)")
    return 0



def register(sub) -> None:
    sp = sub.add_parser("predict", help="top-k predictions for an image")
    sp.add_argument("image")
    sp.add_argument("--top-k", type=int, default=5)
    sp.add_argument("--json", action="store_true")
    add_model_args(sp)
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("layers", help="the model's layers with output shapes")
    sp.add_argument("--spatial", action="store_true", help="only layers usable for CAMs")
    sp.add_argument("--json", action="store_true")
    add_model_args(sp)
    sp.set_defaults(func=cmd_layers)

    sp = sub.add_parser("methods", help="the available attribution methods")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_methods)

    sp = sub.add_parser("explain", help="explain a prediction and save the heatmap overlay")
    add_explanation_args(sp)
    sp.add_argument("--out", "-o", required=True, help="output image (.png)")
    sp.add_argument("--colormap", default="jet")
    sp.add_argument("--opacity", type=float, default=0.5)
    sp.add_argument("--resolution", choices=("input", "original"), default="input")
    sp.add_argument("--heatmap-only", action="store_true", help="save the coloured heatmap without the photo")
    sp.add_argument("--json", action="store_true", help="print a JSON summary")
    add_model_args(sp)
    sp.set_defaults(func=cmd_explain)

