"""Box scores read *before* a torchvision detector's non-maximum suppression.

A torchvision detector returns its detections after its own NMS and its own score
threshold (``box_score_thresh`` / ``score_thresh``, 0.05 by default), and
:class:`interpret.detection.BoxTarget` reads the box's score from those
(docs/detection.md).  That is the right score for a gradient (NMS only selects: the
kept detection's score is a differentiable function of the input), but a perturbation
method or a trust curve that masks the photo until the detection falls under the
threshold reads 0, not its small score.

:func:`before_nms` gives a handle on the same model whose forward returns every
candidate the detector scores before its NMS and its score threshold, in torchvision's
own output format (``boxes``, ``labels``, ``scores`` per image, in the input's pixels),
so that the box target (matched by IoU as always) reads the box's score wherever it is:

* Faster R-CNN, Mask R-CNN (``GeneralizedRCNN``): every proposal of the model's own
  region proposal network (after *its* NMS: the proposals are the detector's
  candidates) times every class but the background: the box predictor's softmax over
  the classes for that proposal, with the proposal's box decoded for that class and
  clipped to the image, as ``RoIHeads.postprocess_detections`` computes them before it
  drops small boxes, low scores and runs NMS.
* RetinaNet: every (anchor, class) pair among the best ``topk_candidates`` (1000) of
  its level, the sigmoid of the head's class logit, the anchor's decoded box clipped.
* FCOS: the same with FCOS's score, ``sqrt(sigmoid(class) * sigmoid(centerness))``.

  For both, a pair the model keeps is among its level's best ``topk_candidates`` of
  all pairs (it is among the best of those above the threshold, and those are above
  every pair under it), so it is here with the same score; a pair outside its level's
  best ``topk_candidates`` counts 0 (bounded: a detector of 91 classes has some 1.7
  million pairs at 320 pixels).
* SSD, SSDlite: refused with a sentence (not computed here).
* Ultralytics YOLO and Hugging Face detectors are already scored before any NMS or
  threshold: the handle is returned as it is.

The model is never changed: the wrapper's forward runs the model's own submodules
(``transform``, ``backbone``, ``rpn``, ``roi_heads.box_roi_pool`` / ``box_head`` /
``box_predictor`` / ``box_coder``; ``head``, ``anchor_generator``, ``box_coder``) and
reads their thresholds; no attribute of the model or its submodules is set.  The
wrapper registers the same submodules under the same names, so a layer is named as on
the model (``backbone.fpn``) and a hook on it is a hook on the model's own submodule
(removed as every hook of this package is).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List

import torch
from torch import nn

from .errors import InputError

__all__ = ["before_nms", "BeforeNMS", "family", "SUFFIX", "original", "offered"]

#: added to the model's name on the before-NMS view
SUFFIX = " (scores before NMS)"


def family(module) -> str:
    """``"rcnn"`` (Faster/Mask R-CNN), ``"retinanet"``, ``"fcos"``, ``"ssd"``,
    ``"before"`` (already scored before NMS: YOLO, Hugging Face, a :class:`BeforeNMS`)
    or ``"other"``."""
    if isinstance(module, BeforeNMS):
        return "before"
    names = {c.__name__ for c in type(module).__mro__}
    if "GeneralizedRCNN" in names:
        return "rcnn"
    if "RetinaNet" in names:
        return "retinanet"
    if "FCOS" in names:
        return "fcos"
    if "SSD" in names:
        return "ssd"
    if names & {"YOLODetector", "YOLOExport"} or type(module).__name__.endswith("ForObjectDetection"):
        return "before"
    return "other"


class BeforeNMS(nn.Module):
    """A torchvision detector's candidates before its NMS and score threshold (see the
    module's docstring).  Holds the detector's own submodules under their own names;
    sets nothing on them.  ``detection_nms_iou``: the detector's own NMS IoU, so that
    :func:`interpret.predict` on this handle applies the same per-class NMS."""

    before_nms = True

    def __init__(self, model: nn.Module):
        super().__init__()
        kind = family(model)
        if kind not in ("rcnn", "retinanet", "fcos"):
            raise InputError(_refusal(model, kind))
        self.kind = kind
        for name, child in model.named_children():  # the same objects, the same names
            self.add_module(name, child)
        self.training = model.training
        heads = getattr(model, "roi_heads", None)
        # read, never written: the model's numbers as they are when the view is made
        # (a model whose thresholds are changed later needs a new view)
        self.detection_nms_iou = float(heads.nms_thresh if kind == "rcnn" else model.nms_thresh)
        self.topk_candidates = None if kind == "rcnn" else int(model.topk_candidates)
        self._model_class = type(model).__name__
        # the model's own box coder (a plain object, not a module), only read
        self.box_coder = None if kind == "rcnn" else model.box_coder

    def extra_repr(self) -> str:
        return f"{self._model_class}, before NMS"

    # -- the forward ---------------------------------------------------------------
    def forward(self, images):
        if self.training:
            raise InputError("A detector's scores before NMS are read in eval mode only.")
        original = [tuple(int(s) for s in img.shape[-2:]) for img in images]
        images, _ = self.transform(images)
        features = self.backbone(images.tensors)
        if isinstance(features, torch.Tensor):
            features = OrderedDict([("0", features)])
        if self.kind == "rcnn":
            dets = self._rcnn(images, features)
        else:
            dets = self._dense(images, list(features.values()))
        return self.transform.postprocess(dets, images.image_sizes, original)

    def _rcnn(self, images, features) -> List[Dict[str, torch.Tensor]]:
        from torchvision.ops import boxes as box_ops

        proposals, _ = self.rpn(images, features)
        rh = self.roi_heads
        feats = rh.box_head(rh.box_roi_pool(features, proposals, images.image_sizes))
        class_logits, box_regression = rh.box_predictor(feats)
        num_classes = class_logits.shape[-1]
        pred_boxes = rh.box_coder.decode(box_regression, proposals)
        pred_scores = torch.softmax(class_logits, -1)
        per_image = [int(p.shape[0]) for p in proposals]
        out = []
        for boxes, scores, shape in zip(pred_boxes.split(per_image, 0), pred_scores.split(per_image, 0),
                                        images.image_sizes):
            boxes = box_ops.clip_boxes_to_image(boxes, shape)
            labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
            # the background (class 0) is no detection
            out.append({"boxes": boxes[:, 1:].reshape(-1, 4), "scores": scores[:, 1:].reshape(-1),
                        "labels": labels[:, 1:].reshape(-1)})
        return out

    def _dense(self, images, features: List[torch.Tensor]) -> List[Dict[str, torch.Tensor]]:
        from torchvision.ops import boxes as box_ops

        head = self.head(features)
        anchors = self.anchor_generator(images, features)
        hw = [int(f.size(2) * f.size(3)) for f in features]
        per_level = [n * (int(head["cls_logits"].size(1)) // sum(hw)) for n in hw]
        split = {k: list(v.split(per_level, dim=1)) for k, v in head.items()}
        out = []
        for i, shape in enumerate(images.image_sizes):
            boxes_all, scores_all, labels_all = [], [], []
            levels = zip(split["bbox_regression"], split["cls_logits"], anchors[i].split(per_level))
            for lvl, (reg, logits, anc) in enumerate(levels):
                reg, logits = reg[i], logits[i]
                num_classes = int(logits.shape[-1])
                if self.kind == "fcos":
                    s = torch.sqrt(torch.sigmoid(logits) * torch.sigmoid(split["bbox_ctrness"][lvl][i])).flatten()
                else:
                    s = torch.sigmoid(logits).flatten()
                k = min(int(self.topk_candidates), int(s.shape[0]))
                s, idx = s.topk(k)
                a = torch.div(idx, num_classes, rounding_mode="floor")
                if self.kind == "fcos":
                    b = self.box_coder.decode(reg[a], anc[a])
                else:
                    b = self.box_coder.decode_single(reg[a], anc[a])
                boxes_all.append(box_ops.clip_boxes_to_image(b, shape))
                scores_all.append(s)
                labels_all.append(idx % num_classes)
            out.append({"boxes": torch.cat(boxes_all), "scores": torch.cat(scores_all),
                        "labels": torch.cat(labels_all)})
        return out


def _refusal(model, kind: str) -> str:
    name = type(model).__name__
    if kind == "ssd":
        return (f"Box scores before NMS are not offered for {name} (SSD, SSDlite): its box is "
                "scored after its own NMS and score threshold (0 under the threshold).")
    return (f"Box scores before NMS are offered for torchvision's Faster/Mask R-CNN, RetinaNet and "
            f"FCOS; {name} is none of them.")


def before_nms(handle):
    """A handle on the same model whose box scores are read before the detector's NMS
    and score threshold (see this module's docstring): for perturbation methods
    (occlusion, D-RISE) and the trust curves, so that a masked photo's detection counts
    its own small score, not 0.  Ultralytics YOLO and Hugging Face detectors (already
    scored before NMS) come back as they are; SSD and other models are refused with an
    :class:`~interpret.InputError`.  The model is not changed."""
    from .handle import ModelHandle

    kind = family(handle.module)
    if kind == "before":
        return handle
    if getattr(handle, "scripted", False):
        raise InputError("Box scores before NMS need the detector's submodules; a TorchScript "
                         "model has none to run.")
    import dataclasses

    wrapper = BeforeNMS(handle.module)
    notes = tuple(handle.info.notes) + ("Box scores read before the detector's NMS and score threshold.",)
    # its own name, so that its content fingerprint (which hashes the name with the
    # weights) and every result cached under it differ from the model's after NMS
    view = ModelHandle(wrapper, info=dataclasses.replace(handle.info, name=handle.name + SUFFIX, notes=notes))
    # the model's own readers/writer lock: a method that holds the model alone (exclusive)
    # holds it against the view too, since both run the same submodules
    view.runtime.rwlock = handle.runtime.rwlock
    view.original = handle  # the model's own handle: the boxes a person sees and picks
    return view


def original(handle):
    """The model's own handle behind a before-NMS view (:func:`before_nms`), else
    ``handle``."""
    return getattr(handle, "original", None) or handle


def offered(handle) -> bool:
    """Whether :func:`before_nms` gives ``handle`` a view of its own (torchvision
    Faster/Mask R-CNN, RetinaNet, FCOS, not a TorchScript model)."""
    return family(handle.module) in ("rcnn", "retinanet", "fcos") and not getattr(handle, "scripted", False)
