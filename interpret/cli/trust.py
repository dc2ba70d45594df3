"""``trust``: how far to trust one method's map of one photo.

    python -m interpret trust cat.jpg --method gradcam [--sanity] [--road] [--json]
           [--steps 20] [--baseline blur|mean|constant] [--box x0,y0,x1,y1]
           [--report trust.html|trust.pdf]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import add_explanation_args, add_model_args, load_model as _model, target_of


def _parse_box(text: str):
    import interpret

    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4:
        raise interpret.InputError(f"--box takes x0,y0,x1,y1 (four numbers, model-input pixels); got '{text}'.")
    return vals


def _params(items):
    from .inspect import _parse_param

    return dict(_parse_param(p) for p in (items or []))


def cmd_trust(args) -> int:
    import interpret
    from interpret.methods.registry import get_method

    box = _parse_box(args.box) if args.box else None  # bad arguments before the slow part
    spec = get_method(args.method)
    if args.report and Path(args.report).suffix.lower() not in (".html", ".htm", ".pdf"):
        raise interpret.InputError(f"--report must end in .html or .pdf; got '{Path(args.report).name}'.")
    model = _model(args)
    image = interpret.load_image(args.image)

    def progress(label):
        if args.json or not sys.stderr.isatty():
            return None

        def report(done, total):
            print(f"\r{label}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr)
        return report

    target = target_of(args, model)
    e = interpret.explain(model, image, args.method, layer=args.layer, target=target,
                          contrast=None if isinstance(target, interpret.targets.Target) else args.contrast,
                          **_params(args.param))
    f = interpret.faithfulness(model, image, e, steps=args.steps, baseline=args.baseline,
                               seeds=args.seeds, road=args.road,
                               progress=progress("deletion and insertion"))
    sanity = None
    if args.sanity:
        sanity = interpret.sanity_check(model, image, e, layers=args.sanity_layers, seed=args.seed,
                                        progress=progress("sanity check"))
    loc = interpret.localization(e.heatmap, box) if box is not None else None
    if loc is None and e.explained is not None and e.explained.region is not None:
        loc = interpret.localization(e)  # a segment: measured on its own region
    written = None
    if args.report:
        out = Path(args.report)
        out.parent.mkdir(parents=True, exist_ok=True)
        written = interpret.report(model, image, [e], out, faithfulness={e.method: f},
                                   sanity={e.method: sanity} if sanity is not None else None, box=box)
    if args.json:
        print(json.dumps({
            "method": e.method, "layer": e.layer, "target": e.target, "target_label": e.target_label,
            "contrast": e.contrast, "contrast_label": e.contrast_label,
            "explained": e.explained.describe(model.labels) if e.explained is not None else None,
            "faithfulness": f.as_dict(),
            "sanity_check": sanity.as_dict() if sanity is not None else None,
            "localization": loc.as_dict() if loc is not None else None,
            "report": str(written) if written is not None else None,
        }, indent=2))
        return 0
    what = "'" + e.target_label + (f" rather than {e.contrast_label}" if e.contrast_label else "") + "'"
    if e.explained is not None and e.explained.kind != "class":  # a label, an output, a segment
        what = e.explained.describe(model.labels)
    print(f"{spec.label} for {what}" + (f" at layer {e.layer}" if e.layer else "") + f": {f.verdict}")
    print(f"  {f.sentence}")
    print(f"  deletion area {f.deletion_auc:.3f} (random maps {f.random_deletion_auc:.3f} "
          f"± {f.random_deletion_auc_std:.3f}), insertion area {f.insertion_auc:.3f} (random maps "
          f"{f.random_insertion_auc:.3f} ± {f.random_insertion_auc_std:.3f}); {f.steps} steps, "
          f"{f.baseline} baseline, {f.forwards} forwards, {f.seconds:.1f} s")
    for r in f.reasons:
        print(f"  - {r}")
    if f.road is not None:
        amt = (lambda v: f"{v:.4g}") if f.unit == "value" else (lambda v: f"{v:.1%}")
        print(f"  ROAD: most relevant removed first {amt(f.road.morf_mean)}, least relevant first "
              f"{amt(f.road.lerf_mean)} (gap {f.road.gap:+.3f})")
    if sanity is not None:
        print(f"  sanity check {sanity.status}: mean rank correlation {sanity.mean_correlation:.2f} over "
              f"{len(sanity.steps)} randomised blocks, {sanity.correlation:.2f} after the full cascade "
              f"(threshold {sanity.threshold:.2f}); {sanity.seconds:.1f} s")
    else:
        print("  sanity check not run (add --sanity)")
    if loc is not None and box is None:
        print(f"  on the segment explained: pointing game {'hit' if loc.hit else 'miss'}, relevance "
              f"mass {loc.mass:.0%} on it and {1 - loc.mass:.0%} on context outside it (the segment "
              f"is {loc.area:.0%} of the photo)")
    elif loc is not None:
        print(f"  region {box}: pointing game {'hit' if loc.hit else 'miss'}, relevance mass "
              f"{loc.mass:.0%} (the region is {loc.area:.0%} of the photo)")
    if written is not None:
        print(f"  wrote {written}")
    return 0


def register(sub) -> None:
    sp = sub.add_parser("trust", help="how far to trust a method's map: faithfulness, sanity check, report")
    add_explanation_args(sp)
    sp.add_argument("--steps", type=int, default=20, help="points per deletion/insertion curve")
    sp.add_argument("--baseline", default="blur", choices=("blur", "mean", "constant"),
                    help="what hidden pixels become")
    sp.add_argument("--seeds", type=int, default=3, help="random maps to compare with")
    sp.add_argument("--road", action="store_true", help="add ROAD (Rong et al. 2022; slower)")
    sp.add_argument("--sanity", action="store_true",
                    help="run the weight-randomisation sanity check (Adebayo et al. 2018; slow)")
    sp.add_argument("--sanity-layers", type=int, default=None,
                    help="randomise only the top N blocks (default: all, the full cascade)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the sanity check's random weights")
    sp.add_argument("--box", help="a region x0,y0,x1,y1 in model-input pixels: adds pointing game and mass")
    sp.add_argument("--report", help="write a report (.html, or .pdf via Chromium)")
    sp.add_argument("--json", action="store_true", help="print the results as JSON")
    add_model_args(sp)
    sp.set_defaults(func=cmd_trust)
