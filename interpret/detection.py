"""Object detectors: their output read as one tensor, the box target, feature
pyramids on one grid, and the mapping between the model's input and the photo.

A detector returns a variable number of boxes per image (torchvision: a list of
``{"boxes", "labels", "scores"}`` dicts, after its own non-maximum suppression;
Hugging Face: ``logits`` and ``pred_boxes`` per query).  :func:`pack` turns either into
one B x N x 6 tensor, ``(x0, y0, x1, y1, score, label)`` per row in the model input's
pixels, rows padded with score 0 and label -1, so that the rest of the package (the
recorded pass, batched perturbations, the trust curves) handles a detector as it
handles a classifier: the :class:`BoxTarget` turns that tensor into one score per
image.

Where the box score is taken (per family; see docs/detection.md):

* torchvision (Faster/Mask R-CNN, RetinaNet, FCOS, SSD, SSDlite): *after* the
  detector's own NMS.  NMS only selects; the kept detection's score is a
  differentiable function of the input (a softmax or sigmoid of the head's logits),
  so the gradient is meaningful and equals what pytorch-grad-cam's
  ``FasterRCNNBoxScoreTarget`` differentiates.  The price is paid by perturbation
  methods: a masked photo whose detection falls under the detector's own score
  threshold (``box_score_thresh``, 0.05 by default) counts 0, not its small score.
* Hugging Face DETR-like models: every query, before any threshold (they have no
  NMS): the query's best class probability (softmax without the "no object" class).

A feature pyramid (an ``OrderedDict`` of B x C_l x h_l x w_l maps, torchvision's
FPN) is brought to one grid by :class:`Pyramid`: every level interpolated
(bilinearly) to the grid of the finest level that has at most 64 x 64 cells and the
levels concatenated along the channels; gradients the same way.  That is
pytorch-grad-cam's ``fasterrcnn_reshape_transform`` without its ``abs`` (kept signs,
so that a gradient CAM is ``w . A`` of the activations themselves) and on a finer
grid (its grid is the coarsest level, 'pool', 5 x 5 cells at 320 pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .errors import InputError
from .targets import Target, escape

__all__ = ["Detection", "BoxTarget", "Pyramid", "pack", "is_detection_output", "box_iou",
           "input_box", "photo_box", "detections", "resolve_box", "pyramid_levels",
           "is_detector", "class_count", "MAX_GRID_CELLS", "no_match_sentence"]

#: a feature pyramid is brought to the finest level's grid with at most this many cells
MAX_GRID_CELLS = 64 * 64
#: the columns of a packed detection tensor
COLUMNS = 6


@dataclass(frozen=True)
class Detection:
    """One detection: ``box`` (x0, y0, x1, y1) in the photo's pixels, the class
    ``index`` and its ``label``, and the detector's ``score`` for it."""

    box: Tuple[float, float, float, float]
    index: int
    label: str
    score: float


# -- the output ------------------------------------------------------------------------

def _is_tv(out: Any) -> bool:
    return (isinstance(out, (list, tuple)) and len(out) > 0
            and all(isinstance(d, dict) and "boxes" in d and "scores" in d for d in out))


def _is_hf(out: Any) -> bool:
    return (isinstance(getattr(out, "pred_boxes", None), torch.Tensor)
            and isinstance(getattr(out, "logits", None), torch.Tensor))


def is_detection_output(out: Any) -> bool:
    """Whether ``out`` is a detector's output: torchvision's list of ``boxes/labels/
    scores`` dicts or a Hugging Face output with ``logits`` and ``pred_boxes``."""
    return _is_tv(out) or _is_hf(out)


def pack(out: Any, size: Optional[Sequence[int]] = None) -> torch.Tensor:
    """A detector's output as one B x N x 6 tensor ``(x0, y0, x1, y1, score, label)``
    in the model input's pixels (``size`` (h, w): the input's, needed for Hugging
    Face's normalised boxes), padded rows with score 0 and label -1.  Differentiable
    in the boxes and the scores."""
    if _is_tv(out):
        n = max(int(d["scores"].shape[0]) for d in out)
        ref = out[0]["scores"]
        rows = []
        for d in out:
            k = int(d["scores"].shape[0])
            labels = d.get("labels")
            lab = (labels.to(ref.dtype) if labels is not None else torch.zeros(k, dtype=ref.dtype,
                                                                              device=ref.device))
            r = torch.cat([d["boxes"].to(ref.dtype).reshape(k, 4), d["scores"][:, None],
                           lab[:, None]], dim=1)
            if k < n:
                pad = torch.zeros(n - k, COLUMNS, dtype=ref.dtype, device=ref.device)
                pad[:, 5] = -1
                r = torch.cat([r, pad], dim=0)
            rows.append(r)
        return torch.stack(rows, 0)
    if _is_hf(out):
        if size is None:
            raise InputError("A Hugging Face detector's boxes are fractions of the input: its size is needed.")
        h, w = (float(s) for s in size)
        probs = torch.softmax(out.logits, dim=-1)[..., :-1]  # the last class is "no object"
        score, label = probs.max(-1)
        cx, cy, bw, bh = out.pred_boxes.unbind(-1)
        boxes = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                             (cy + bh / 2) * h], -1)
        return torch.cat([boxes.to(score.dtype), score[..., None], label.to(score.dtype)[..., None]], -1)
    raise InputError(f"Not a detector's output ({type(out).__name__}).")


def box_iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of one ``box`` (4,) with ``boxes`` (..., 4), all (x0, y0, x1, y1)."""
    box = box.to(boxes.dtype)
    x0 = torch.maximum(boxes[..., 0], box[0])
    y0 = torch.maximum(boxes[..., 1], box[1])
    x1 = torch.minimum(boxes[..., 2], box[2])
    y1 = torch.minimum(boxes[..., 3], box[3])
    inter = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
    area = (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)
    own = (box[2] - box[0]).clamp(min=0) * (box[3] - box[1]).clamp(min=0)
    return inter / (area + own - inter).clamp(min=1e-9)


# -- the photo and the model's input ------------------------------------------------------

def _frame(preprocessing, photo_size, input_hw):
    """(left, top, sx, sy): photo = (left + u * sx, top + v * sy) for input pixel (u, v)."""
    l, t, r, b = preprocessing.crop_box(tuple(photo_size))
    h, w = input_hw
    return l, t, (r - l) / float(w), (b - t) / float(h)


def photo_box(preprocessing, box, photo_size, input_hw) -> Tuple[float, float, float, float]:
    """A box in the model input's pixels mapped to the photo's (through the resize and
    crop), clipped to the photo."""
    l, t, sx, sy = _frame(preprocessing, photo_size, input_hw)
    W, H = photo_size
    x0, y0, x1, y1 = (float(v) for v in box)
    out = (l + x0 * sx, t + y0 * sy, l + x1 * sx, t + y1 * sy)
    return (min(max(out[0], 0.0), W), min(max(out[1], 0.0), H), min(max(out[2], 0.0), W),
            min(max(out[3], 0.0), H))


def input_box(preprocessing, box, photo_size, input_hw) -> Tuple[float, float, float, float]:
    """A box in the photo's pixels mapped to the model input's pixels."""
    l, t, sx, sy = _frame(preprocessing, photo_size, input_hw)
    x0, y0, x1, y1 = (float(v) for v in box)
    return ((x0 - l) / sx, (y0 - t) / sy, (x1 - l) / sx, (y1 - t) / sy)


def detections(packed: torch.Tensor, labels_of, threshold: float = 0.0, preprocessing=None,
               photo_size=None, input_hw=None) -> List[Detection]:
    """The rows of one image's packed output (N x 6) scoring at least ``threshold``,
    best first, as :class:`Detection` (boxes in the photo's pixels when
    ``photo_size`` is given, else in the input's)."""
    rows = packed.detach().float().cpu()
    keep = (rows[:, 5] >= 0) & (rows[:, 4] >= float(threshold))
    rows = rows[keep]
    rows = rows[torch.argsort(-rows[:, 4], stable=True)]
    out = []
    for r in rows.tolist():
        b = tuple(r[:4])
        if photo_size is not None:
            b = photo_box(preprocessing, b, photo_size, input_hw)
        out.append(Detection(tuple(float(v) for v in b), int(r[5]), labels_of(int(r[5])), float(r[4])))
    return out


# -- the target ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BoxTarget(Target):
    """A detection: the score the detector gives to class ``index`` in the box.

    ``box``: (x0, y0, x1, y1) as asked, in the photo's pixels (or the input's when no
    photo size is known); after :func:`resolve_box`, ``pixels`` is the box in the
    model input's pixels.  Per image, ``score`` is the score of the detection of the
    same class whose IoU with the box is largest among those above
    ``iou_threshold``; 0 when none is (the detection is gone: what a perturbation
    method reads as "the evidence was removed").  ``with_iou`` adds that IoU, as
    pytorch-grad-cam's ``FasterRCNNBoxScoreTarget`` does (then the map also explains
    *where* the box is, not only *that* the class is there); off by default, because
    the question asked is "why does the model see a cat here".  Drawn (trust
    curves) in that score, which is the detector's probability."""

    box: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    iou_threshold: float = 0.5
    with_iou: bool = False
    pixels: Optional[Tuple[float, float, float, float]] = None
    input_hw: Optional[Tuple[int, int]] = None

    kind = "box"
    task = "detection"
    unit = "probability"

    @property
    def key(self):
        p = None if self.pixels is None else tuple(round(float(v), 3) for v in self.pixels)
        return (self.kind, self.index, p, float(self.iou_threshold), bool(self.with_iou))

    @property
    def resolved(self):
        return isinstance(self.index, int) and self.pixels is not None

    @property
    def reduce_key(self):
        return self.key

    @property
    def region(self) -> Optional[torch.Tensor]:
        """The box as an H x W boolean mask of the model's input (cells the box
        touches)."""
        if self.pixels is None or self.input_hw is None:
            return None
        h, w = self.input_hw
        m = torch.zeros(h, w, dtype=torch.bool)
        x0, y0, x1, y1 = self.pixels
        c0, c1 = max(0, int(x0)), min(w, int(-(-x1 // 1)))
        r0, r1 = max(0, int(y0)), min(h, int(-(-y1 // 1)))
        if c1 > c0 and r1 > r0:
            m[r0:r1, c0:c1] = True
        return m

    def match(self, output: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(found B bool, index B long, iou B) of the matching detection per image."""
        if self.pixels is None:
            raise InputError("This box target is not resolved yet: pass it to interpret.explain "
                             "(or interpret.targets.resolve) with the model and the photo.")
        if output.dim() != 3 or output.shape[-1] != COLUMNS:
            raise InputError(f"A box target needs a detector's output; this model returns "
                             f"{tuple(output.shape)}.")
        box = torch.tensor(self.pixels, device=output.device, dtype=output.dtype)
        iou = box_iou(box, output[..., :4])
        ok = (output[..., 5].round() == int(self.index)) & (iou > float(self.iou_threshold))
        idx = torch.where(ok, iou.detach(), torch.full_like(iou, -1.0)).argmax(dim=1)
        found = ok.any(dim=1)
        return found, idx, iou.gather(1, idx[:, None])[:, 0]

    def score(self, output):
        found, idx, iou = self.match(output)
        s = output[..., 4].gather(1, idx[:, None])[:, 0]
        if self.with_iou:
            s = s + iou
        return torch.where(found, s, torch.zeros_like(s))

    def reduce(self, output):
        if output.dim() == 2:
            return output
        found, idx, _ = self.match(output)
        s = output.float()[..., 4].gather(1, idx[:, None])[:, 0]
        return torch.where(found, s, torch.zeros_like(s))[:, None]

    def probability(self, output):
        return self.reduce(output)[:, 0]

    def _words(self, name):
        x0, y0, x1, y1 = (int(round(v)) for v in self.box)
        return f"the detection of {name(self.index)} in the box ({x0}, {y0})-({x1}, {y1})"


def no_match_sentence(name: str, iou_threshold: float, best: Optional[Tuple[float, str, float]]) -> str:
    """Why a box target cannot be explained on this photo (numbers in, words out):
    ``best`` is (IoU, label, score) of the detection that overlaps the box most, or
    None when the model detects nothing.  ``name`` is escaped by the caller."""
    if best is None:
        return (f"The model detects nothing in this photo, so there is no detection of {name} "
                "to explain; lower the detector's score threshold or pick another photo.")
    iou, other, score = best
    if iou <= 0:
        return (f"No detection of {name} overlaps this box (no detection touches it); "
                "pick a box the model finds (interpret.predict lists them).")
    return (f"No detection of {name} overlaps this box by more than IoU {iou_threshold:.2f}: the "
            f"closest detection is {other} (score {score:.2f}) at IoU {iou:.2f}. Pick a box the model "
            "finds (interpret.predict lists them), or lower iou_threshold.")


def box(detection_or_box, label=None, iou_threshold: float = 0.5, with_iou: bool = False) -> BoxTarget:
    """See :func:`interpret.targets.box`."""
    import numpy as np

    d = detection_or_box
    if isinstance(d, Detection):
        b = d.box
        label = d.index if label is None else label
    elif isinstance(d, (tuple, list)) and len(d) == 4 and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in d):
        b = tuple(float(v) for v in d)
    else:
        raise InputError("targets.box takes a Detection (from interpret.predict) or a box "
                         f"(x0, y0, x1, y1); got {type(d).__name__}.")
    b = tuple(float(v) for v in b)
    if not all(np.isfinite(b)) or not (b[2] > b[0] and b[3] > b[1]):
        raise InputError(f"A box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0; got {b}.")
    if not 0.0 <= float(iou_threshold) < 1.0:
        raise InputError(f"iou_threshold is in [0, 1); got {iou_threshold!r}.")
    if label is not None and (isinstance(label, bool) or not isinstance(label, (int, np.integer, str))):
        raise InputError(f"A box's label is a class index or a label, not {type(label).__name__}.")
    index = int(label) if isinstance(label, (int, np.integer)) else label
    return BoxTarget(index if index is not None else -1, None, b, float(iou_threshold), bool(with_iou))


def resolve_box(handle, target, x: torch.Tensor, photo_size=None, output=None) -> BoxTarget:
    """``target`` (a :class:`BoxTarget`, None, a class index or a label) made concrete
    for ``handle`` and ``x``: None means the top detection, a class the top detection
    of that class, a box its matching detection (the label: the best match's when none
    was given).  An :class:`InputError` with a sentence when nothing matches."""
    from .capture import logits as _logits
    from .explain import resolve_target

    out = output if output is not None else _logits(handle, x)
    rows = out[0].detach().float().cpu()
    valid = rows[:, 5] >= 0
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    if isinstance(target, BoxTarget) and target.resolved:
        return target
    if not isinstance(target, BoxTarget):
        want = None if target is None else resolve_target(handle, target, x, "class")
        cand = valid & ((rows[:, 5].round() == want) if want is not None else valid)
        if not bool(cand.any()):
            what = "anything" if want is None else escape(handle.label(want))
            raise InputError(f"The model detects {'nothing' if want is None else 'no ' + what} in this "
                             "photo, so there is no detection to explain; pick a class it detects "
                             "(interpret.predict lists them) or another photo.")
        i = int(torch.where(cand, rows[:, 4], torch.full_like(rows[:, 4], -1.0)).argmax())
        pix = tuple(float(v) for v in rows[i, :4])
        shown = (photo_box(handle.preprocessing, pix, photo_size, hw) if photo_size is not None else pix)
        return BoxTarget(int(rows[i, 5]), None, shown, 0.5, False, pix, hw)
    pix = (input_box(handle.preprocessing, target.box, photo_size, hw) if photo_size is not None
           else tuple(target.box))
    if target.index == -1:  # no label given: the best-matching detection's
        iou = box_iou(torch.tensor(pix), rows[:, :4])
        iou = torch.where(valid, iou, torch.full_like(iou, -1.0))
        idx = None
        if valid.any() and float(iou.max()) > target.iou_threshold:
            idx = int(rows[int(iou.argmax()), 5])
        if idx is None:
            best = None
            if bool(valid.any()):
                j = int(iou.argmax())
                best = (max(0.0, float(iou[j])), escape(handle.label(int(rows[j, 5]))), float(rows[j, 4]))
            raise InputError(no_match_sentence("any class", target.iou_threshold, best))
    else:
        idx = resolve_target(handle, target.index, x, "class")
    t = replace(target, index=idx, pixels=tuple(float(v) for v in pix), input_hw=hw)
    found, _, _ = t.match(out[:1].detach().float())
    if not bool(found[0]):
        iou = box_iou(torch.tensor(pix), rows[:, :4])
        best = None
        if bool(valid.any()):
            j = int(torch.where(valid, iou, torch.full_like(iou, -1.0)).argmax())
            best = (max(0.0, float(iou[j])), escape(handle.label(int(rows[j, 5]))), float(rows[j, 4]))
        raise InputError(no_match_sentence(escape(handle.label(idx)), target.iou_threshold, best))
    return t


# -- feature pyramids -----------------------------------------------------------------------

def pyramid_levels(output: Any) -> Optional[Dict[str, torch.Tensor]]:
    """The levels of a feature pyramid (a dict of 4-D tensors with the same
    batch size), or None."""
    if not isinstance(output, dict) or len(output) < 1:
        return None
    if not all(isinstance(v, torch.Tensor) and v.dim() == 4 for v in output.values()):
        return None
    if len({int(v.shape[0]) for v in output.values()}) != 1:
        return None
    return dict(output)


def pyramid_grid(shapes: Sequence[Tuple[int, int]]) -> Tuple[int, int]:
    """The grid the levels are brought to: the finest with at most
    :data:`MAX_GRID_CELLS` cells, else the coarsest."""
    ok = [s for s in shapes if s[0] * s[1] <= MAX_GRID_CELLS]
    if ok:
        return max(ok, key=lambda s: s[0] * s[1])
    return min(shapes, key=lambda s: s[0] * s[1])


def combine(levels: Sequence[torch.Tensor]) -> torch.Tensor:
    """Levels (B x C_l x h_l x w_l) interpolated bilinearly to one grid
    (:func:`pyramid_grid`) and concatenated along the channels."""
    grid = pyramid_grid([tuple(int(s) for s in t.shape[-2:]) for t in levels])
    out = [t if tuple(t.shape[-2:]) == grid else
           F.interpolate(t, size=grid, mode="bilinear", align_corners=False) for t in levels]
    return torch.cat(out, dim=1)


@dataclass
class Pyramid:
    """A tapped feature pyramid, kept level by level so that the gradient of each level
    can be taken (a combined tensor is not on the path to the output): ``levels`` the
    tensors as recorded (leaves with ``record(grad="taps")``)."""

    levels: Dict[str, torch.Tensor] = field(repr=False)

    @property
    def tensors(self) -> List[torch.Tensor]:
        return list(self.levels.values())

    @property
    def requires_grad(self) -> bool:
        return any(t.requires_grad for t in self.levels.values())

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(combine([t.detach() for t in self.tensors]).shape)

    def combined(self, tensors: Optional[Sequence[Optional[torch.Tensor]]] = None) -> torch.Tensor:
        """The levels (or same-shaped ``tensors``, e.g. their gradients; None: zeros) on
        one grid."""
        ts = self.tensors if tensors is None else [
            g if g is not None else torch.zeros_like(t) for g, t in zip(tensors, self.tensors)]
        return combine(ts)


# -- models ----------------------------------------------------------------------------------

def is_detector(module) -> bool:
    """Whether ``module`` is a torchvision detection model (GeneralizedRCNN, RetinaNet,
    FCOS, SSD) or a Hugging Face object-detection model."""
    names = {c.__name__ for c in type(module).__mro__}
    return bool(names & {"GeneralizedRCNN", "RetinaNet", "FCOS", "SSD"}) or \
        type(module).__name__.endswith("ForObjectDetection")


def class_count(module) -> Optional[int]:
    """The number of classes a detector scores (background included where the
    detector has one), read from its head, or None."""
    for path in ("roi_heads.box_predictor.cls_score", ):
        try:
            return int(module.get_submodule(path).out_features)
        except AttributeError:
            pass
    head = getattr(getattr(module, "head", None), "classification_head", None)
    n = getattr(head, "num_classes", getattr(head, "num_columns", None))
    if n is not None:
        return int(n)
    cfg = getattr(module, "config", None)
    if cfg is not None and getattr(cfg, "num_labels", None):
        return int(cfg.num_labels)
    return None
