"""``dataset``: explain a whole labelled image set, store it, report what it found.

    python -m interpret dataset val/ --out runs/val [--ray [ADDRESS]] [--method gradcam ...]
    python -m interpret dataset runs/val            # what a stored (or stopped) run holds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

from .common import add_model_args, load_model as _model


def _pairs(values, what: str) -> dict:
    out = {}
    for v in values or []:
        if "=" not in v:
            raise SystemExit(f"error: {what} takes NAME=VALUE, got '{v}'")
        k, val = v.split("=", 1)
        out[k.strip()] = val.strip()
    return out


def _boxes(values) -> dict:
    from interpret.errors import InputError

    out = {}
    for k, v in _pairs(values, "--box").items():
        try:
            out[k] = tuple(float(x) for x in v.split(","))
        except ValueError:
            raise InputError(f"--box {k}={v}: the box must be x0,y0,x1,y1 (fractions).") from None
    return out


class _Printer:
    """Progress on stderr: a line every 5% or 10 seconds, with the rate and an ETA."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.monotonic()
        self.first = None
        self.last = (-1.0, 0.0)

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.first is None:
            self.first = (done, now)
        frac = done / total if total else 1.0
        if done < total and frac - self.last[0] < 0.05 and now - self.last[1] < 10:
            return
        self.last = (frac, now)
        d0, t0 = self.first
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else float("nan")
        eta = (total - done) / rate if rate and not math.isnan(rate) and rate > 0 else float("nan")
        extra = f", {rate:.1f} images/s, about {eta:.0f} s left" if not math.isnan(eta) and done < total else ""
        print(f"{done}/{total} images{extra}", file=sys.stderr, flush=True)


def _summary(r, as_json: bool) -> None:
    if as_json:
        per = r.class_summary()
        print(json.dumps({
            "out": str(r.out), "status": r.status, "done": r.done, "total": r.total,
            "accuracy": None if math.isnan(r.accuracy) else r.accuracy,
            "labels": [r.labels[i] for i in r.confusion_classes()],
            "confusion": r.confusion[:, r.confusion_classes()][r.confusion_classes()].tolist(),
            "classes": json.loads(per.to_json(orient="records")),
            "flags": [{"label": f.label, "kind": f.kind, "box": list(f.box), "sentence": f.sentence,
                       "share": f.share, "fraction": f.fraction} for f in r.flags],
            "skipped": [list(s) for s in r.skipped],
        }, indent=2))
        return
    print(r.describe())
    per = r.class_summary()
    if len(per):
        width = max(len(str(l)) for l in per["label"])
        print(f"\n{'class':<{width}}  images  accuracy  border  centre  most often confused with")
        for _, row in per.iterrows():
            conf = f"{row['confused_with']} ({row['confused_count']})" if row["confused_count"] else ""
            print(f"{row['label']:<{width}}  {row['images']:>6}  {row['accuracy']:>8.1%}  "
                  f"{row['border']:>6.0%}  {row['centre']:>6.0%}  {conf}")
    for name, reason in r.skipped[:20]:
        print(f"skipped {name}: {reason}")
    if len(r.skipped) > 20:
        print(f"... and {len(r.skipped) - 20} more skipped")


@contextlib.contextmanager
def _disk_errors(out: Path):
    """A full disk or a read-only folder met outside the store's own writes (a
    temporary folder, a copied zip) is said in one line, like the store's."""
    from interpret.dataset.store import _write_error

    try:
        yield
    except OSError as exc:
        err = _write_error(exc, out, "the results")
        if err is None:
            raise
        raise err from None


def cmd_dataset(args) -> int:
    import interpret
    from interpret.dataset.store import Store

    src = Path(args.source)
    if args.out is None and Store(src).exists():  # a stored run: show what it holds
        _summary(interpret.open_dataset(src), args.json)
        return 0
    if args.out is None:
        raise interpret.InputError("Give --out FOLDER for the results (or a stored run's folder alone "
                                   "to see what it holds).")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = _model(args)
    engine = "ray" if args.ray is not None else "local"
    with _disk_errors(Path(args.out)):
        result = interpret.analyze_dataset(
            model, src, methods=args.method or ["gradcam"], out=args.out, engine=engine,
            batch_size=args.batch_size, progress=_Printer(args.quiet or args.json), layer=args.layer,
            target=args.target, top_k=args.top_k, boxes=_boxes(args.box) or None, trust=args.trust,
            class_map=_pairs(args.class_map, "--class-map") or None,
            unmatched="skip" if args.skip_unmatched else "error",
            ray_address=None if args.ray in (None, "local") else args.ray, workers=args.workers,
            overwrite=args.overwrite, name=args.name)
    _summary(result, args.json)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="explain a labelled image set (folder, zip or CSV), stored and resumable",
                       description="Predict and explain every image of a labelled set, store the results "
                                   "in --out (Parquet; a stopped job resumes where it stopped), and report "
                                   "accuracy, confusions, where the evidence sits and shortcut flags. "
                                   "Without --out, SOURCE may be a stored run's folder: show what it holds.")
    p.add_argument("source", help="folder of class folders (ImageFolder), a .zip of one, a .csv of "
                                  "path,label, or a stored run's folder")
    p.add_argument("--out", help="folder for the results (created; reused to resume)")
    add_model_args(p)
    p.add_argument("--method", action="append",
                   help="method id, repeatable (default gradcam; the gradient CAMs run batched)")
    p.add_argument("--layer", help="layer for the CAMs (default: the model's suggestion)")
    p.add_argument("--target", choices=("label", "prediction"), default="label",
                   help="explain each image's true label (default) or the model's prediction")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--box", action="append", metavar="LABEL=x0,y0,x1,y1",
                   help="where a class's object is (fractions of the model's view), repeatable")
    p.add_argument("--trust", action="store_true", help="faithfulness figures per image (slow)")
    p.add_argument("--class-map", action="append", metavar="FOLDER=LABEL",
                   help="map a folder name to a model label, repeatable")
    p.add_argument("--skip-unmatched", action="store_true",
                   help="leave out folders whose name matches no label (default: refuse)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray: an address ('auto', 'ray://head:10001'), or nothing for "
                        "$RAY_ADDRESS or a local Ray")
    p.add_argument("--workers", type=int, help="Ray actors (default: one per CPU of the cluster)")
    p.add_argument("--threads", type=int, help="torch threads of the local engine (default: torch's; "
                                               "on a busy machine 1 is often fastest)")
    p.add_argument("--overwrite", action="store_true", help="replace another run stored in --out")
    p.add_argument("--name", help="a name for the run (default: the folder's)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_dataset)
