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
  threshold (``box_score_thresh``, 0.05 by default) counts 0, not its small score;
  :func:`interpret.detection_prenms.before_nms` gives a handle that reads it before the
  NMS and the threshold instead (Faster/Mask R-CNN, RetinaNet, FCOS).
* Hugging Face DETR-like models: every query, before any threshold (they have no
  NMS), scored as the model's own image processor scores it (:data:`HF_SCORING`):
  DETR, YOLOS: the query's best class probability (softmax without the "no object"
  class); Conditional/Deformable DETR, RT-DETR: a sigmoid per (query, class), the best
  100 (RT-DETR: as many as the queries) pairs.
* Ultralytics YOLO (:mod:`interpret.sources.ultralytics`): *before* NMS.  The module
  returns every anchor as a row (its box, its best class's sigmoid, that class), as the
  head computes them before Ultralytics' ``non_max_suppression``; :func:`detections`
  applies that NMS (:func:`nms_iou`: per class, IoU 0.7, at most 300) for
  ``interpret.predict``.  The box target's score is the sigmoid of the anchor whose
  (clipped, :func:`clip_boxes`) box matches best; on the photo itself that is the kept
  detection's own anchor (IoU 1, ties broken by the score), so the gradient is that of
  the detection's score, and a perturbed photo's score is its best-matching anchor's
  (0 only when no anchor whose best class is the box's overlaps it by more than the IoU
  threshold; never because a score threshold dropped it).  End-to-end heads (YOLOv10, YOLO26 with
  ``end2end`` set) need no NMS: every anchor of the one-to-one branch, as Ultralytics'
  top-k reads them.

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

__all__ = ["Detection", "BoxTarget", "Pyramid", "pack", "is_detection_output", "box_iou", "clip_boxes",
           "nms_iou",
           "input_box", "photo_box", "detections", "resolve_box", "pyramid_levels",
           "is_detector", "class_count", "MAX_GRID_CELLS", "no_match_sentence", "mask_origin",
           "photo_mask", "score_threshold", "instance_masks"]

#: a feature pyramid is brought to the finest level's grid with at most this many cells
MAX_GRID_CELLS = 64 * 64
#: the columns of a packed detection tensor
COLUMNS = 6
#: at most this many detections after an NMS applied here (Ultralytics' ``max_det``)
MAX_DETECTIONS = 300


@dataclass(frozen=True)
class Detection:
    """One detection: ``box`` (x0, y0, x1, y1) in the photo's pixels, the class
    ``index`` and its ``label``, and the detector's ``score`` for it."""

    box: Tuple[float, float, float, float]
    index: int
    label: str
    score: float
    #: an instance mask (Mask R-CNN), or None: a boolean array over the box's pixels in
    #: the photo, rows ``floor(y0)..ceil(y1)-1`` and columns ``floor(x0)..ceil(x1)-1``
    #: (:func:`mask_origin`), True where the model's mask probability is above one half
    mask: Optional[Any] = field(default=None, compare=False, repr=False)


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


#: how each Hugging Face detector's image processor scores its queries
#: (``post_process_object_detection`` in transformers 5): the output class's name ->
#: ("softmax", None): softmax over the classes, the last ("no object") dropped, each
#: query's best class; ("sigmoid", k): a sigmoid per (query, class) (focal loss, no
#: "no object" class), the best k pairs over all queries and classes (k None: as many as
#: the queries).  No NMS in any of them: every query (pair) is a candidate.
HF_SCORING = {
    "DetrObjectDetectionOutput": ("softmax", None),
    "YolosObjectDetectionOutput": ("softmax", None),
    "TableTransformerObjectDetectionOutput": ("softmax", None),
    "ConditionalDetrObjectDetectionOutput": ("sigmoid", 100),
    "DeformableDetrObjectDetectionOutput": ("sigmoid", 100),
    "RTDetrObjectDetectionOutput": ("sigmoid", None),
    "RTDetrV2ObjectDetectionOutput": ("sigmoid", None),
}


def hf_scoring(out: Any) -> Tuple[str, Optional[int]]:
    """How a Hugging Face detector's output is scored (:data:`HF_SCORING`): by its
    class; an output that is not a ``transformers`` class (a wrapper's own) is read as
    DETR's.  A ``transformers`` detector outside the table is an :class:`InputError`,
    never scored by a rule that is not its own."""
    name = type(out).__name__
    if name in HF_SCORING:
        return HF_SCORING[name]
    if type(out).__module__.startswith("transformers."):
        known = ", ".join(sorted(n.replace("ObjectDetectionOutput", "") for n in HF_SCORING))
        raise InputError(f"This Hugging Face detector's output ({escape(name)}) is not one whose "
                         f"scoring is known here (known: {known}); its boxes cannot be scored as "
                         "its own image processor would.")
    return ("softmax", None)


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
        cx, cy, bw, bh = out.pred_boxes.unbind(-1)
        # clipped to the input, as torchvision's detectors clip theirs: a box is what the
        # model marks on the photo, and a photo box asked for (clipped) matches its own
        boxes = torch.stack([((cx - bw / 2) * w).clamp(0, w), ((cy - bh / 2) * h).clamp(0, h),
                             ((cx + bw / 2) * w).clamp(0, w), ((cy + bh / 2) * h).clamp(0, h)], -1)
        kind, top_k = hf_scoring(out)
        if kind == "softmax":
            probs = torch.softmax(out.logits, dim=-1)[..., :-1]  # the last class is "no object"
            score, label = probs.max(-1)
        else:  # sigmoid per (query, class), the best top_k pairs: a query may hold two classes
            classes = int(out.logits.shape[-1])
            flat = torch.sigmoid(out.logits).flatten(1)
            k = min(int(top_k or out.logits.shape[1]), int(flat.shape[1]))
            score, pair = torch.topk(flat, k, dim=1)
            label = pair % classes
            boxes = boxes.gather(1, (pair // classes)[..., None].expand(-1, -1, 4))
        return torch.cat([boxes.to(score.dtype), score[..., None], label.to(score.dtype)[..., None]], -1)
    raise InputError(f"Not a detector's output ({type(out).__name__}).")


def clip_boxes(boxes: torch.Tensor, hw: Optional[Sequence[int]]) -> torch.Tensor:
    """``boxes`` (..., 4) clipped to the model input (``hw``: its height and width; None:
    as they are), as a :class:`Detection`'s box is clipped to the photo: so that a
    detection whose box reaches past the image (a YOLO anchor's often does: Ultralytics
    clips after its NMS) still matches its own row with IoU 1."""
    if hw is None:
        return boxes
    h, w = float(hw[0]), float(hw[1])
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0.clamp(0, w), y0.clamp(0, h), x1.clamp(0, w), y1.clamp(0, h)], -1)


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
               photo_size=None, input_hw=None, masks: Optional[torch.Tensor] = None,
               nms_iou: Optional[float] = None) -> List[Detection]:
    """The rows of one image's packed output (N x 6) scoring at least ``threshold``,
    best first, as :class:`Detection` (boxes in the photo's pixels when
    ``photo_size`` is given, else in the input's).  ``masks``: the detector's instance
    masks for those rows (Mask R-CNN's ``masks``, N x 1 x H x W probabilities on the
    model's input), given to each detection over its box (:func:`photo_mask`).
    ``nms_iou``: for a detector whose rows are before NMS (a YOLO's anchors,
    :func:`nms_iou`), the rows kept by per-class NMS at that IoU
    (``torchvision.ops.batched_nms``, at most :data:`MAX_DETECTIONS`, as Ultralytics'
    ``non_max_suppression``)."""
    rows = packed.detach().float().cpu()
    keep = (rows[:, 5] >= 0) & (rows[:, 4] >= float(threshold))
    if nms_iou is not None and bool(keep.any()):
        from torchvision.ops import batched_nms

        idx = torch.nonzero(keep)[:, 0]
        kept = batched_nms(rows[idx, :4], rows[idx, 4], rows[idx, 5].long(), float(nms_iou))
        keep = torch.zeros_like(keep)
        keep[idx[kept[:MAX_DETECTIONS]]] = True
    order = torch.nonzero(keep)[:, 0]
    order = order[torch.argsort(-rows[order, 4], stable=True)]
    out = []
    for i in order.tolist():
        r = rows[i].tolist()
        b = tuple(r[:4])
        if photo_size is not None:
            b = photo_box(preprocessing, b, photo_size, input_hw)
        b = tuple(float(v) for v in b)
        mask = None
        if masks is not None and i < int(masks.shape[0]):
            m = masks[i].detach().float().cpu().reshape(masks.shape[-2:])
            mask = (photo_mask(preprocessing, m, b, photo_size, input_hw) if photo_size is not None
                    else photo_mask(None, m, b, None, tuple(m.shape)))
        out.append(Detection(b, int(r[5]), labels_of(int(r[5])), float(r[4]), mask))
    return out


def mask_origin(box) -> Tuple[int, int, int, int]:
    """(column, row, width, height) of the pixels a :class:`Detection`'s ``mask`` covers:
    the integer box around ``box`` (floor of its top-left corner, ceiling of its
    bottom-right), at least one pixel each way."""
    import math

    x0, y0, x1, y1 = (float(v) for v in box)
    c0, r0 = int(math.floor(x0)), int(math.floor(y0))
    return c0, r0, max(1, int(math.ceil(x1)) - c0), max(1, int(math.ceil(y1)) - r0)


def photo_mask(preprocessing, mask: torch.Tensor, box, photo_size, input_hw):
    """A mask on the model's input (H x W probabilities) read at the centres of the
    photo's pixels inside ``box`` (photo pixels; :func:`mask_origin`), bilinearly,
    through the resize and crop (edges clamped: what ``F.interpolate(...,
    mode="bilinear", align_corners=False)`` of the whole mask to the photo gives), a
    boolean array, True above one half.  Reading only
    the box keeps a detection's mask as small as its box (a photo of 4000 x 3000 with
    a hundred detections would otherwise hold a hundred full-size masks)."""
    import numpy as np

    c0, r0, w, h = mask_origin(box)
    if preprocessing is None:
        l, t, sx, sy = 0.0, 0.0, 1.0, 1.0
    else:
        l, t, sx, sy = _frame(preprocessing, photo_size, input_hw)
    H, W = int(mask.shape[-2]), int(mask.shape[-1])
    u = (torch.arange(c0, c0 + w, dtype=torch.float32) + 0.5 - l) / sx  # input-pixel coordinates
    v = (torch.arange(r0, r0 + h, dtype=torch.float32) + 0.5 - t) / sy
    gx, gy = 2 * u / W - 1, 2 * v / H - 1  # align_corners=False: a pixel's centre is (i + 0.5)
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
    vals = F.grid_sample(mask.float()[None, None], grid, mode="bilinear", padding_mode="border",
                         align_corners=False)[0, 0]
    return np.ascontiguousarray((vals > 0.5).numpy())


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
    curves) in that score, which is the detector's probability.

    ``contrast``: "this box rather than that label": the score of class ``index`` in
    the box minus the score of class ``contrast`` in the same box (its detection
    matched by IoU as above; 0 when the detector keeps no detection of it there, i.e.
    none above the detector's own score threshold).  After :func:`resolve_box`,
    ``contrast_found`` says whether the photo has one and ``contrast_score`` its score
    (0 when not), so that every sentence about the target can say "counted 0";
    ``detector_threshold`` is the detector's own score threshold, when it has one, and
    ``box_score`` the box's own score on the photo.
    With a contrast, the trust curves follow that difference (``unit`` "value": a
    difference of two probabilities, -1 to 1, not a probability)."""

    box: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    iou_threshold: float = 0.5
    with_iou: bool = False
    pixels: Optional[Tuple[float, float, float, float]] = None
    input_hw: Optional[Tuple[int, int]] = None
    contrast_found: Optional[bool] = None
    contrast_score: Optional[float] = None
    detector_threshold: Optional[float] = None
    box_score: Optional[float] = None

    kind = "box"
    task = "detection"

    @property
    def unit(self) -> str:
        return "probability" if self.contrast is None else "value"

    @property
    def key(self):
        p = None if self.pixels is None else tuple(round(float(v), 3) for v in self.pixels)
        return (self.kind, self.index, p, float(self.iou_threshold), bool(self.with_iou), self.contrast)

    @property
    def resolved(self):
        return (isinstance(self.index, int) and self.pixels is not None
                and (self.contrast is None or (isinstance(self.contrast, int) and self.contrast_found is not None)))

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

    def match(self, output: torch.Tensor, label: Optional[int] = None
              ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(found B bool, index B long, iou B) of the matching detection per image (of
        class ``label``; None: the target's own class)."""
        if self.pixels is None:
            raise InputError("This box target is not resolved yet: pass it to interpret.explain "
                             "(or interpret.targets.resolve) with the model and the photo.")
        if output.dim() != 3 or output.shape[-1] != COLUMNS:
            raise InputError(f"A box target needs a detector's output; this model returns "
                             f"{tuple(output.shape)}.")
        box = torch.tensor(self.pixels, device=output.device, dtype=output.dtype)
        iou = box_iou(box, clip_boxes(output[..., :4], self.input_hw))
        want = int(self.index) if label is None else int(label)
        ok = (output[..., 5].round() == want) & (iou > float(self.iou_threshold))
        cand = torch.where(ok, iou.detach(), torch.full_like(iou, -1.0))
        # the largest IoU; among equal ones (rows before NMS, boxes clipped alike) the best score
        top = cand >= cand.max(dim=1, keepdim=True).values - 1e-6
        idx = torch.where(ok & top, output[..., 4].detach(), torch.full_like(iou, -2.0)).argmax(dim=1)
        found = ok.any(dim=1)
        return found, idx, iou.gather(1, idx[:, None])[:, 0]

    def class_score(self, output: torch.Tensor, label: Optional[int] = None) -> torch.Tensor:
        """Per image, the score of the detection of class ``label`` (None: the
        target's) that matches the box, 0 where there is none."""
        found, idx, _ = self.match(output, label)
        s = output[..., 4].gather(1, idx[:, None])[:, 0]
        return torch.where(found, s, torch.zeros_like(s))

    def score(self, output):
        found, idx, iou = self.match(output)
        s = output[..., 4].gather(1, idx[:, None])[:, 0]
        if self.with_iou:
            s = s + iou
        s = torch.where(found, s, torch.zeros_like(s))
        if self.contrast is not None:
            s = s - self.class_score(output, int(self.contrast))
        return s

    def reduce(self, output):
        if output.dim() == 2:
            return output
        s = self.class_score(output.float())
        if self.contrast is not None:
            s = s - self.class_score(output.float(), int(self.contrast))
        return s[:, None]

    def probability(self, output):
        return self.reduce(output)[:, 0]

    def _words(self, name):
        from .words import box_target

        return box_target(name(self.index), self.box,
                          None if self.contrast is None else name(self.contrast), self.contrast_found)


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


def box(detection_or_box, label=None, iou_threshold: float = 0.5, with_iou: bool = False,
        contrast=None) -> BoxTarget:
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
    if contrast is not None and (isinstance(contrast, bool) or not isinstance(contrast, (int, np.integer, str))):
        raise InputError(f"A box's contrast is a class index or a label, not {type(contrast).__name__}.")
    con = int(contrast) if isinstance(contrast, (int, np.integer)) else contrast
    return BoxTarget(index if index is not None else -1, con, b, float(iou_threshold), bool(with_iou))


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
    if isinstance(target, BoxTarget) and target.pixels is not None and isinstance(target.index, int):
        return _with_contrast(handle, target, x, out)  # resolved but for its contrast
    if not isinstance(target, BoxTarget):
        want = None if target is None else resolve_target(handle, target, x, "class")
        cand = valid & ((rows[:, 5].round() == want) if want is not None else valid)
        if not bool(cand.any()):
            what = "anything" if want is None else escape(handle.label(want))
            raise InputError(f"The model detects {'nothing' if want is None else 'no ' + what} in this "
                             "photo, so there is no detection to explain; pick a class it detects "
                             "(interpret.predict lists them) or another photo.")
        i = int(torch.where(cand, rows[:, 4], torch.full_like(rows[:, 4], -1.0)).argmax())
        pix = tuple(float(v) for v in clip_boxes(rows[i, :4], hw))
        shown = (photo_box(handle.preprocessing, pix, photo_size, hw) if photo_size is not None else pix)
        return BoxTarget(int(rows[i, 5]), None, shown, 0.5, False, pix, hw)
    pix = (input_box(handle.preprocessing, target.box, photo_size, hw) if photo_size is not None
           else tuple(target.box))
    if target.index == -1:  # no label given: the best-matching detection's
        iou = box_iou(torch.tensor(pix), clip_boxes(rows[:, :4], hw))
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
        iou = box_iou(torch.tensor(pix), clip_boxes(rows[:, :4], hw))
        best = None
        if bool(valid.any()):
            j = int(torch.where(valid, iou, torch.full_like(iou, -1.0)).argmax())
            best = (max(0.0, float(iou[j])), escape(handle.label(int(rows[j, 5]))), float(rows[j, 4]))
        raise InputError(no_match_sentence(escape(handle.label(idx)), target.iou_threshold, best))
    return _with_contrast(handle, t, x, out)


def _with_contrast(handle, t: BoxTarget, x: torch.Tensor, out: torch.Tensor) -> BoxTarget:
    """``t`` with its contrast class resolved, and whether the photo has a detection of
    it in the box (its score, 0 when not) and the detector's own threshold, for the
    sentences."""
    if t.contrast is None:
        return t
    from .explain import resolve_target

    con = resolve_target(handle, t.contrast, x, "class")
    if con == t.index:
        raise InputError(f"A box cannot be explained as {escape(handle.label(con))} rather than itself: "
                         "pick another label to contrast.")
    t = replace(t, contrast=int(con))
    found, _, _ = t.match(out[:1].detach().float(), int(con))
    s = float(t.class_score(out[:1].detach().float(), int(con))[0])
    own = float(t.class_score(out[:1].detach().float())[0])
    return replace(t, contrast_found=bool(found[0]), contrast_score=s if bool(found[0]) else 0.0,
                   detector_threshold=score_threshold(handle.module), box_score=own)


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
    FCOS, SSD), a Hugging Face object-detection model or an Ultralytics YOLO
    (:mod:`interpret.sources.ultralytics`)."""
    names = {c.__name__ for c in type(module).__mro__}
    return bool(names & {"GeneralizedRCNN", "RetinaNet", "FCOS", "SSD", "YOLODetector", "YOLOExport",
                         "BeforeNMS"}) or \
        type(module).__name__.endswith("ForObjectDetection")


def nms_iou(module) -> Optional[float]:
    """The IoU of the NMS that :func:`interpret.predict` applies to a detector whose
    packed rows are before NMS (a YOLO's every anchor: 0.7, Ultralytics' default); None
    for detectors that apply their own (torchvision) or need none (DETR, end-to-end
    YOLO heads)."""
    v = getattr(module, "detection_nms_iou", None)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def score_threshold(module) -> Optional[float]:
    """The score under which the detector drops a detection (torchvision's
    ``box_score_thresh`` / ``score_thresh``), or None when it has none it says (a
    :class:`~interpret.detection_prenms.BeforeNMS` view: its scores are read before it)."""
    if getattr(module, "before_nms", False) is True:
        return None
    for path in ("roi_heads.score_thresh", "score_thresh"):
        obj = module
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if isinstance(obj, (int, float)) and not isinstance(obj, bool):
            return float(obj)
    return None


def instance_masks(module, x: torch.Tensor) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """A Mask R-CNN's answer for input ``x`` (1 x 3 x H x W) with its instance masks,
    from one forward without gradient: (its :func:`pack`, N x 1 x H x W mask
    probabilities, one per row, in the same order), so that each mask goes with its
    own box; None for a detector without masks.  The caller holds the model's
    session."""
    heads = getattr(module, "roi_heads", None)
    if heads is None or not callable(getattr(heads, "has_mask", None)) or not heads.has_mask():
        return None
    with torch.inference_mode():
        out = module(x)
    if not (isinstance(out, (list, tuple)) and out and isinstance(out[0], dict) and "masks" in out[0]):
        return None
    return pack(out).detach().float().cpu(), out[0]["masks"].detach().float().cpu()


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
    if {c.__name__ for c in type(module).__mro__} & {"YOLODetector", "YOLOExport"}:
        return int(module.num_classes)
    return None
