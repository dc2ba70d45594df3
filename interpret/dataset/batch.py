"""One batch of a dataset analysis: decode the images, one forward of the whole batch,
one ``torch.autograd.grad`` to the layer, every chosen CAM for every image, and the
rows that go to the store.

:func:`run_batch` is the whole computation, and both engines call it: the local
engine in this process, the Ray engine in its actors.  So their results are the same
numbers (bit for bit on a CPU, with the same batch and thread count).

The forward records the layer with :func:`interpret.hooks.record` in ``"taps"`` mode:
no autograd graph before the layer, and the backward stops at it, so a batch of CAMs
costs about a forward and a half of the network after the layer.  The score
back-propagated is the sum over the batch of each image's target logit; the images do
not interact in an eval-mode network, so each image's gradient is its own.  The CAM
weight functions of :mod:`interpret.methods.cam` (written for one image, C x h x w)
are vectorised over the batch with :func:`torch.func.vmap`.  Methods that are not
gradient CAMs run through :func:`interpret.explain` one image at a time.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from ..handle import ModelHandle, session
from ..hooks import Tap, record
from ..images import load_image
from ..layers import as_maps, map_shape, tap
from ..methods.cam import (gradcam_plus_plus_weights, gradcam_weights, hirescam_weights,
                           layercam_weights, xgradcam_weights)
from ..methods.registry import get_method
from ..scaling import heatmap as to_heatmap

__all__ = ["JobSettings", "BATCHED_CAMS", "Payload", "run_batch", "decode_map", "decode_maps",
           "TRUST_FIELDS", "check_methods", "LABEL_TASKS", "PREDICTED_AT", "image_targets"]

#: The tasks whose sets hold several (multi-label) or one (binary) independent
#: sigmoid labels per image, analysed per label.
LABEL_TASKS = ("multilabel", "binary")
#: A label counts as predicted when its sigmoid probability is at least this (the maps
#: of ``target="prediction"``; the precision and recall take their own threshold).
PREDICTED_AT = 0.5

#: The gradient CAMs computed for a whole batch from one recorded pass: their weight
#: functions (C x h x w in, weights out), as registered in interpret.methods.cam.
BATCHED_CAMS: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "gradcam": gradcam_weights,
    "gradcam_plus_plus": gradcam_plus_plus_weights,
    "xgradcam": xgradcam_weights,
    "layercam": layercam_weights,
    "hirescam": hirescam_weights,
}

#: The trust figures stored per image (from :func:`interpret.faithfulness`).
TRUST_FIELDS = ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc")

TARGETS = ("label", "prediction")
#: Perturbed images per forward for the faithfulness figures, across the batch's images
#: (None: DeletionInsertion's choice, 4 on a CPU, where larger batches cost more per
#: image (measured on EfficientNet-Lite0: 40 ms of CPU per image at 4, 69 at 32), 32 on
#: a GPU).
TRUST_BATCH = None


@dataclass(frozen=True)
class JobSettings:
    """What a dataset analysis computes, besides the model and the images: the results
    of two runs with equal settings are interchangeable (the store serves them).

    ``methods``: registry ids, the first one the "primary" map (trust figures, flags);
    ``layer``: the layer the CAMs read; ``target``: explain each image's true ``"label"``
    or the model's ``"prediction"``; ``top_k``: predictions kept per image; ``thumb``:
    side of the stored thumbnail of the model's view (0: none); ``features``: keep the
    classifier's input features (pooled, float16) for the embedding; ``trust``:
    faithfulness figures of the primary map (:func:`interpret.faithfulness`, slow:
    many forwards per image), with ``trust_steps`` and ``trust_baseline``."""

    methods: Tuple[str, ...] = ("gradcam",)
    layer: str = ""
    target: str = "label"
    top_k: int = 5
    thumb: int = 112
    features: bool = True
    trust: bool = False
    trust_steps: int = 20
    trust_baseline: str = "blur"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["methods"] = list(self.methods)
        return d

    @staticmethod
    def from_dict(d: dict) -> "JobSettings":
        d = dict(d)
        d["methods"] = tuple(d.get("methods", ("gradcam",)))
        return JobSettings(**{k: v for k, v in d.items() if k in JobSettings.__dataclass_fields__})


def check_methods(methods: Sequence[str]) -> Tuple[str, ...]:
    """The methods as a tuple of registry ids (unknown ones: InputError naming them);
    each must produce a map (methods without a layer are allowed: their heatmap is
    pooled to the layer's resolution)."""
    if isinstance(methods, str):
        methods = (methods,)
    out = []
    for m in methods:
        get_method(m)  # InputError for unknown names, with the list
        if m not in out:
            out.append(m)
    if not out:
        raise InputError("Choose at least one method (e.g. 'gradcam').")
    return tuple(out)


@dataclass(frozen=True)
class Payload:
    """One image of a batch as it travels to a worker: its identity, label, optional
    box, and the raw file bytes (or why they could not be read)."""

    key: str
    path: str
    label: str
    label_index: int
    box: Optional[Tuple[float, float, float, float]]
    data: Optional[bytes]
    error: Optional[str] = None
    truth: Tuple[int, ...] = ()


def encode_map(m: torch.Tensor) -> bytes:
    """An h x w map as little-endian float32 bytes (Parquet compresses the column)."""
    return np.ascontiguousarray(m.detach().cpu().numpy(), dtype="<f4").tobytes()


def decode_map(b: bytes, shape: Tuple[int, int]) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4").reshape(shape)


def decode_maps(b: bytes, shape: Tuple[int, int]) -> np.ndarray:
    """K x h x w: the maps of a multi-label or binary row (one per explained label)."""
    return np.frombuffer(b or b"", dtype="<f4").reshape((-1, *shape))


def image_targets(task: str, truth: Sequence[int], probabilities: Sequence[float], target: str) -> list:
    """What is explained in one image of a multi-label or binary set (a list of
    :mod:`interpret.targets` targets): multi-label, each label present
    (``target="label"``) or predicted (probability >= :data:`PREDICTED_AT`,
    ``target="prediction"``), as ``targets.label(i)``; binary, the positive class
    (``targets.output(0, sign=+1)``) when the image is positive (or predicted so), else
    what lowers it (``sign=-1``)."""
    from .. import targets as T

    if task == "binary":
        pos = bool(truth) if target == "label" else float(probabilities[0]) >= PREDICTED_AT
        return [T.output(0, sign=+1 if pos else -1)]
    idx = (list(truth) if target == "label"
           else [i for i, p in enumerate(probabilities) if float(p) >= PREDICTED_AT])
    return [T.label(int(i)) for i in idx]


def _thumbnail(handle: ModelHandle, img: Image.Image, side: int) -> Optional[bytes]:
    if side <= 0:
        return None
    view = handle.preprocessing.model_view(img.convert("RGB"))
    view = view.resize((side, max(1, round(side * view.size[1] / view.size[0]))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    view.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _features_tap(handle: ModelHandle) -> Tap:
    from ..features._common import penultimate_tap

    return penultimate_tap(handle)


def _pooled(handle: ModelHandle, t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 2:
        return t
    try:
        return as_maps(handle, t).mean(dim=(2, 3))
    except InputError:
        return t.flatten(1)


def _empty_row(p: Payload, batch: str, reason: str) -> dict:
    row = {"item": p.key, "path": p.path, "label": p.label, "label_index": p.label_index,
           "status": "skipped", "reason": reason, "box": list(p.box) if p.box else None,
           "batch": batch}
    if p.label_index < 0:  # a multi-label or binary set: its parts carry the label columns
        row["truth"] = list(p.truth)
    return row


def _trust_rows(handle: ModelHandle, xs: Sequence[torch.Tensor], explanations: Sequence, s: JobSettings,
                progress: Optional[Callable[[int], None]] = None) -> List[dict]:
    """The faithfulness figures of the batch's primary maps, one dict per image
    (:func:`interpret.trust.faithfulness.faithfulness_many`: the perturbed images of the
    whole batch share the model's batches), or NaN and the reason when they cannot be
    computed.  ``progress(k)``: k images of the batch have their figures, called after
    every batch of perturbed images."""
    from ..trust.faithfulness import faithfulness_many

    try:
        results = faithfulness_many(
            handle, xs, explanations, steps=s.trust_steps, baseline=s.trust_baseline,
            batch_size=TRUST_BATCH, progress=(lambda done, total: progress(done)) if progress else None)
    except InputError as exc:
        return [{"verdict": "error", "trust_sentence": str(exc)} for _ in xs]
    rows = []
    for f in results:
        row = {k: float(getattr(f, k)) for k in TRUST_FIELDS}
        row["verdict"] = str(f.verdict)
        row["trust_sentence"] = str(f.sentence)
        rows.append(row)
    return rows


def run_batch(handle: ModelHandle, s: JobSettings, payload: Sequence[Payload], batch: str,
              progress: Optional[Callable[[int], None]] = None) -> List[dict]:
    """The stored rows (one dict per image, in ``payload`` order) of one batch: images
    that cannot be decoded become ``status="skipped"`` rows with the reason; the rest
    go through the model in one batch.  ``progress(k)``: with ``trust``, k of the
    batch's images have their faithfulness figures (called as the perturbed images'
    batches finish: those are most of the time).  Nothing in the model changes."""
    rows: List[Optional[dict]] = [None] * len(payload)
    images: List[Image.Image] = []
    tensors: List[torch.Tensor] = []
    ok: List[int] = []
    for i, p in enumerate(payload):
        if p.data is None:
            rows[i] = _empty_row(p, batch, p.error or "unreadable")
            continue
        try:
            img = load_image(p.data)
            x = handle.preprocess(img)
        except InputError as exc:
            rows[i] = _empty_row(p, batch, str(exc))
            continue
        images.append(img)
        tensors.append(x)
        ok.append(i)
    if not ok:
        return rows  # type: ignore[return-value]
    x = torch.cat(tensors, 0)
    del tensors
    layer_tap = tap(handle, s.layer)
    taps = [layer_tap]
    ftap = _features_tap(handle) if s.features else None
    if ftap is not None:
        taps.append(ftap)
    cams = [m for m in s.methods if m in BATCHED_CAMS]
    h, w = map_shape(handle, s.layer)[1]
    task = handle.task
    if task in LABEL_TASKS:
        return _run_label_batch(handle, s, payload, batch, rows, images, x, ok, taps, layer_tap, ftap,
                                cams, (h, w), task)
    labels_t = torch.tensor([payload[i].label_index for i in ok], device=x.device)
    with session(handle):
        rec = record(handle, x, taps, logits=True, grad="taps" if cams else "none")
        logits = rec.logits.detach().float()
        targets = labels_t if s.target == "label" else logits.argmax(1)
        maps: Dict[str, torch.Tensor] = {}
        if cams:
            A = rec.values[layer_tap.key]
            if not A.requires_grad:
                raise InputError(f"Layer '{s.layer}' is not on the path to the output (no gradient).")
            score = rec.logits.gather(1, targets.view(-1, 1)).sum()
            (G,) = torch.autograd.grad(score, [A], allow_unused=True)
            G = torch.zeros_like(A) if G is None else G
            A_s = handle.tokens.to_spatial(A.detach())
            G_s = handle.tokens.to_spatial(G.detach())
            if A_s is None or G_s is None:
                raise InputError(f"Layer '{s.layer}' has output shape {tuple(A.shape)}, which has "
                                 "no spatial layout.")
            A_s, G_s = A_s.float(), G_s.float()
            for m in cams:
                wts = torch.func.vmap(BATCHED_CAMS[m])(A_s, G_s)
                maps[m] = (wts * A_s).sum(1)
            del A, G, A_s, G_s
        feats = _pooled(handle, rec.values[ftap.key].detach()).float() if ftap is not None else None
        del rec
    probs = torch.softmax(logits, 1)
    k = max(1, min(int(s.top_k), probs.shape[1]))
    topv, topi = torch.topk(probs, k, dim=1)
    # methods that are not batched CAMs: one explanation per image (outside our session:
    # explain() holds the model's lock itself), pooled to the layer's resolution
    for m in s.methods:
        if m in maps:
            continue
        per = []
        for j in range(len(ok)):
            e = _explain_one(handle, x[j:j + 1], m, s.layer, int(targets[j]))
            per.append(F.adaptive_avg_pool2d(torch.from_numpy(e.heatmap)[None, None], (h, w))[0, 0])
        maps[m] = torch.stack(per)
    primary = s.methods[0]
    trust_rows: List[dict] = []
    if s.trust:
        spec = get_method(primary)
        size = tuple(x.shape[-2:])
        expl = []
        for j in range(len(ok)):
            raw = maps[primary][j]
            hm = (to_heatmap(raw, spec.heatmap, size) if primary in BATCHED_CAMS else
                  F.interpolate(raw[None, None].float(), size=size, mode="bilinear",
                                align_corners=False)[0, 0].clamp(0, 1).numpy())
            t = int(targets[j])
            expl.append(_explanation(handle, primary, s.layer, t, raw, hm, float(logits[j, t])))
        trust_rows = _trust_rows(handle, [x[j:j + 1] for j in range(len(ok))], expl, s, progress)
    for j, i in enumerate(ok):
        p = payload[i]
        t = int(targets[j])
        pred = int(topi[j, 0])
        row = {
            "item": p.key, "path": p.path, "label": p.label, "label_index": p.label_index,
            "status": "ok", "reason": None,
            "prediction_index": pred, "prediction": handle.label(pred),
            "probability": float(topv[j, 0]), "label_probability": float(probs[j, p.label_index]),
            "correct": pred == p.label_index,
            "topk_index": [int(v) for v in topi[j]], "topk_probability": [float(v) for v in topv[j]],
            "target_index": t, "score": float(logits[j, t]),
            "box": list(p.box) if p.box else None,
            "thumb": _thumbnail(handle, images[j], s.thumb),
            "features": (feats[j].to(torch.float16).cpu().numpy().astype("<f2").tobytes()
                         if feats is not None else None),
            "batch": batch,
        }
        for m in s.methods:
            row[f"map_{m}"] = encode_map(maps[m][j])
        if s.trust:
            row.update(trust_rows[j])
        rows[i] = row
    return rows  # type: ignore[return-value]


def _spatial(handle: ModelHandle, s: JobSettings, A: torch.Tensor, G: Optional[torch.Tensor]):
    G = torch.zeros_like(A) if G is None else G
    A_s = handle.tokens.to_spatial(A.detach())
    G_s = handle.tokens.to_spatial(G.detach())
    if A_s is None or G_s is None:
        raise InputError(f"Layer '{s.layer}' has output shape {tuple(A.shape)}, which has "
                         "no spatial layout.")
    return A_s.float(), G_s.float()


def _run_label_batch(handle: ModelHandle, s: JobSettings, payload: Sequence[Payload], batch: str,
                     rows: List[Optional[dict]], images: List[Image.Image], x: torch.Tensor,
                     ok: List[int], taps, layer_tap, ftap, cams: List[str], hw: Tuple[int, int],
                     task: str) -> List[dict]:
    """:func:`run_batch` for a multi-label or binary model: every label's sigmoid
    probability, and one map per explained label of each image
    (:func:`image_targets`).  The batch's CAMs come from one recorded pass and one
    ``autograd.grad`` per round: round r explains the r-th target of every image that
    has one (the images do not interact, so each image's gradient is its own)."""
    h, w = hw
    with session(handle):
        rec = record(handle, x, taps, logits=True, grad="taps" if cams else "none")
        logits = rec.logits.detach().float()
        probs = torch.sigmoid(logits)
        tgts = [image_targets(task, payload[i].truth, probs[j].tolist(), s.target) for j, i in enumerate(ok)]
        rounds = max((len(t) for t in tgts), default=0)
        per: Dict[str, List[List[torch.Tensor]]] = {m: [[] for _ in ok] for m in s.methods}
        if cams and rounds:
            A = rec.values[layer_tap.key]
            if not A.requires_grad:
                raise InputError(f"Layer '{s.layer}' is not on the path to the output (no gradient).")
            for r in range(rounds):
                score = sum(t[r].score(rec.logits[j:j + 1]).sum() for j, t in enumerate(tgts) if len(t) > r)
                (G,) = torch.autograd.grad(score, [A], allow_unused=True, retain_graph=r < rounds - 1)
                A_s, G_s = _spatial(handle, s, A, G)
                for m in cams:
                    wts = torch.func.vmap(BATCHED_CAMS[m])(A_s, G_s)
                    mm = (wts * A_s).sum(1)
                    for j, t in enumerate(tgts):
                        if len(t) > r:
                            per[m][j].append(mm[j])
                del G, A_s, G_s
            del A
        feats = _pooled(handle, rec.values[ftap.key].detach()).float() if ftap is not None else None
        del rec
    for m in s.methods:
        if m in cams:
            continue
        for j, t in enumerate(tgts):
            for tg in t:
                e = _explain_one(handle, x[j:j + 1], m, s.layer, tg)
                per[m][j].append(F.adaptive_avg_pool2d(torch.from_numpy(e.heatmap)[None, None], (h, w))[0, 0])
    labels = handle.labels
    k = max(1, min(int(s.top_k), probs.shape[1]))
    topv, topi = torch.topk(probs, k, dim=1)
    for j, i in enumerate(ok):
        p = payload[i]
        pj = probs[j]
        if task == "binary":
            pos = float(pj[0]) >= PREDICTED_AT
            pred_set = (0,) if pos else ()
            prediction = labels[0] if pos else f"not {labels[0]}"
            probability = float(pj[0]) if pos else 1.0 - float(pj[0])
            label_probability = float(pj[0]) if p.truth else 1.0 - float(pj[0])
        else:
            pred_set = tuple(int(v) for v in torch.nonzero(pj >= PREDICTED_AT).flatten())
            prediction = ";".join(labels[v] for v in pred_set)
            probability = float(topv[j, 0])
            label_probability = float("nan")
        t = tgts[j]
        scores = [float(tg.score(logits[j:j + 1])[0]) for tg in t]
        row = {
            "item": p.key, "path": p.path, "label": p.label, "label_index": -1,
            "status": "ok", "reason": None,
            "prediction_index": -1, "prediction": prediction,
            "probability": probability, "label_probability": label_probability,
            "correct": set(pred_set) == set(p.truth),
            "topk_index": [int(v) for v in topi[j]], "topk_probability": [float(v) for v in topv[j]],
            "target_index": int(t[0].index) if t else -1, "score": scores[0] if t else float("nan"),
            "box": list(p.box) if p.box else None,
            "truth": [int(v) for v in p.truth], "probabilities": [float(v) for v in pj],
            "target_indices": [int(tg.index) for tg in t],
            "target_signs": [int(getattr(tg, "sign", 1)) for tg in t], "scores": scores,
            "thumb": _thumbnail(handle, images[j], s.thumb),
            "features": (feats[j].to(torch.float16).cpu().numpy().astype("<f2").tobytes()
                         if feats is not None else None),
            "batch": batch,
        }
        for m in s.methods:
            row[f"map_{m}"] = b"".join(encode_map(v) for v in per[m][j])
        rows[i] = row
    return rows  # type: ignore[return-value]


def _explain_one(handle: ModelHandle, x: torch.Tensor, method: str, layer: str, target):
    from ..explain import explain

    spec = get_method(method)
    return explain(handle, x, method, layer=layer if (spec.needs_layer or spec.accepts_layer) else None,
                   target=target)


def _explanation(handle: ModelHandle, method: str, layer: str, target: int, raw: torch.Tensor,
                 heatmap: np.ndarray, score: float):
    """An :class:`interpret.Explanation` of one image's map from the batch, for the
    trust measures."""
    from ..explain import Explanation

    return Explanation(method=method, layer=layer, target=target, target_label=handle.label(target),
                       contrast=None, contrast_label=None, params={}, heatmap=heatmap,
                       attribution=raw[None, None].detach().cpu(), score=score, seconds=0.0)


def map_size(handle: ModelHandle, layer: str) -> Tuple[int, int]:
    """(h, w) of ``layer``'s maps at the model's input size."""
    return map_shape(handle, layer)[1]
