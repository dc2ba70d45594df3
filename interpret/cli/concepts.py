"""``concepts``: which learnt concepts a decision rests on, concepts discovered in a photo
set, and whether the model uses a concept named by example photos.

    python -m interpret concepts top cat.jpg [--layer L] [--target C] [--k 6]
           [--composite epsilon_plus_flat] [--references FOLDER|ZIP] [--store DIR] [--json]
    python -m interpret concepts name --layer L --channel 12 --store DIR "striped fur"
    python -m interpret concepts discover FOLDER|ZIP [--layer L] [--k 6] [--json]
    python -m interpret concepts tcav --class-photos DIR --concept DIR --random DIR
           [--layer L] [--target C] [--runs 10] [--seed 0] [--json]

Progress goes to stderr; Ctrl-C stops a long run with one line (the model is left as it was).
"""

from __future__ import annotations

import json
import sys

from .common import add_model_args, load_model as _model


def _progress(label: str):
    def report(done: int, total: int) -> None:
        print(f"\r{label}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return report


def _method(cs) -> str:
    """How the concepts were traced: AttnLRP for a vision transformer, else zennit's LRP
    with its composite and canonizers."""
    if cs.composite == "attnlrp":
        return "AttnLRP, Achtibat et al. 2024"
    return f"LRP {cs.composite}{', ' + ', '.join(cs.canonizers) if cs.canonizers else ''}"


def cmd_top(args) -> int:
    import interpret
    from interpret.concepts import concept_label, concept_sentence

    model = _model(args)
    image = interpret.load_image(args.image)
    cs = interpret.concepts(model, image, layer=args.layer, target=args.target, k=args.k,
                            composite=args.composite, progress=_progress("concept heatmaps"), store=args.store)
    refs = None
    if args.references:
        refs = interpret.reference_patches(model, args.references, layer=cs.layer, composite=args.composite,
                                           progress=_progress("reference patches"), store=args.store)
    from interpret.explain import as_handle

    handle = as_handle(model)

    def label(c) -> str:
        """Its name, else its channel and the classes of its top reference photos."""
        where = [handle.label(k) for k in refs.where(c.channel, 4)] if refs is not None else []
        return concept_label(c.channel, c.name, where)
    if args.json:
        print(json.dumps({
            "layer": cs.layer, "target": cs.target.index, "target_label": cs.target_label,
            "score": cs.score, "layer_relevance": cs.total, "composite": cs.composite,
            "canonizers": list(cs.canonizers),
            "concepts": [{"channel": c.channel, "name": c.name, "share": c.relevance, "relevance": c.value,
                          "references": [{"image": r.name, "share": r.relevance, "box": list(r.box)}
                                         for r in refs.patches(c.channel, 6)] if refs is not None else None}
                         for c in cs],
        }, indent=2))
        return 0
    print(concept_sentence(f"'{cs.target_label}'", [(label(c), c.relevance) for c in cs]))
    print(f"  layer {cs.layer}: relevance {cs.total:.4g} for a score of {cs.score:.4g} "
          f"({_method(cs)})")
    for c in cs:
        line = f"  channel {c.channel:5d}: {c.relevance:7.1%} of the layer's relevance"
        if c.name:
            line += f" ({c.name})"
        if refs is not None:
            names = [r.name for r in refs.patches(c.channel, 3)]
            line += "; most relevant in " + (", ".join(names) if names else "no photo of the set")
        print(line)
    return 0


def cmd_name(args) -> int:
    import interpret

    model = _model(args)
    kept = interpret.name_concept(model, args.layer, args.channel, args.name, store=args.store)
    print(f"channel {args.channel} of {args.layer}: " + (f"named '{kept}'" if kept else "no name"))
    return 0


def cmd_discover(args) -> int:
    import interpret

    model = _model(args)
    found = interpret.discover_concepts(model, args.images, layer=args.layer, k=args.k,
                                        progress=_progress("activations"))
    if args.json:
        print(json.dumps({
            "layer": found.layer, "images": found.images, "explained": found.explained, "clipped": found.clipped,
            "concepts": [{"share": c.share, "top_channels": list(c.top_channels),
                          "weights": [float(w) for w in c.weights],
                          "patches": [{"image": p.name, "amount": p.amount, "box": list(p.box)} for p in c.patches]}
                         for c in found],
        }, indent=2))
        return 0
    print(f"{len(found)} concepts of {found.layer} over {found.images} photos "
          f"(the factorisation explains {found.explained:.0%} of the activations)")
    for i, c in enumerate(found, 1):
        print(f"  concept {i}: {c.share:.0%} of the activation, mostly channels "
              f"{', '.join(map(str, c.top_channels[:3]))}; strongest in "
              f"{', '.join(p.name for p in c.patches[:3])}")
    return 0


def cmd_tcav(args) -> int:
    import interpret
    from interpret.concepts import significance_sentence

    model = _model(args)
    r = interpret.tcav(model, args.class_photos, args.concept, args.random, layer=args.layer,
                       target=args.target, runs=args.runs, seed=args.seed, progress=_progress("CAVs"))
    if args.json:
        print(json.dumps({"layer": r.layer, "target": r.target, "target_label": r.target_label,
                          "score": r.score, "p_value": r.p_value, "scores": list(r.scores),
                          "random_scores": list(r.random_scores), "runs": r.runs, "set_size": r.set_size,
                          "seed": r.seed}, indent=2))
        return 0
    print(significance_sentence(r.score, r.random_score, r.p_value, r.runs, concept="the concept",
                                target=f"'{r.target_label}'"))
    return 0


def register(sub) -> None:
    sp = sub.add_parser("concepts", help="concepts behind a decision (CRP), discovered concepts (NMF), TCAV")
    inner = sp.add_subparsers(dest="concepts_command", required=True)

    top = inner.add_parser("top", help="the layer's concepts a decision rests on, with their shares")
    top.add_argument("image")
    top.add_argument("--layer")
    top.add_argument("--target", help="class index or label (default: the top prediction)")
    top.add_argument("--k", type=int, default=6, help="how many concepts (channels)")
    top.add_argument("--composite", default="epsilon_plus_flat",
                     choices=("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1"))
    top.add_argument("--references", metavar="FOLDER|ZIP",
                     help="photos in which to find each concept's reference patches")
    top.add_argument("--store", metavar="DIR",
                     help="the concept store: the concepts' names, and the reference patches kept there")
    top.add_argument("--json", action="store_true")
    add_model_args(top)
    top.set_defaults(func=cmd_top)

    nm = inner.add_parser("name", help="name a concept (a channel of a layer) in the concept store")
    nm.add_argument("name", help="the name (blank: remove it)")
    nm.add_argument("--layer", required=True)
    nm.add_argument("--channel", type=int, required=True)
    nm.add_argument("--store", metavar="DIR", required=True, help="the concept store's folder")
    add_model_args(nm)
    nm.set_defaults(func=cmd_name)

    dis = inner.add_parser("discover", help="k concepts of a layer found by NMF over a photo set")
    dis.add_argument("images", help="a folder or a zip of photos")
    dis.add_argument("--layer")
    dis.add_argument("--k", type=int, default=6)
    dis.add_argument("--json", action="store_true")
    add_model_args(dis)
    dis.set_defaults(func=cmd_discover)

    tc = inner.add_parser("tcav", help="does the model use a concept shown by example photos (TCAV)")
    tc.add_argument("--class-photos", required=True, help="photos of the class (folder or zip)")
    tc.add_argument("--concept", required=True, help="photos of the concept (folder or zip)")
    tc.add_argument("--random", required=True, help="unrelated photos (folder or zip)")
    tc.add_argument("--layer")
    tc.add_argument("--target", help="class index or label (default: the class most class photos get)")
    tc.add_argument("--runs", type=int, default=10)
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--json", action="store_true")
    add_model_args(tc)
    tc.set_defaults(func=cmd_tcav)
