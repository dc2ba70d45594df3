"""What is explained: a *target* turns a model's output into the one score every
method differentiates (or perturbs), and says how to draw, cache and describe it.

The idea is pytorch-grad-cam's target callables (``ClassifierOutputTarget``,
``BinaryClassifierOutputTarget``, ``SemanticSegmentationTarget``) and xplique's
per-task operators; here a target also carries a stable ``key`` for the caches, the
probability (or value) the trust curves are drawn in, the region it covers and a
sentence for people, and a region given in the photo's pixels is mapped through the
model's own resize and crop.

* :func:`classes` -- one class of a single-label classifier (softmax), optionally
  "A rather than B";
* :func:`label` -- one label of a multi-label model (its own sigmoid);
* :func:`output` -- a binary model's logit or a regressor's value; ``sign=-1``
  explains what lowers it;
* :func:`region` -- a segmentation model's class over a region: the class's mean
  logit over the pixels (mean, not sum, so that regions of different sizes compare).

A target built by these functions may name its class by label and its region in the
photo's pixels; :func:`resolve` makes it concrete for one model and one input (class
indices, the region as a boolean mask on the model's input grid).  A bare int or
label string means :func:`classes` for a classifier, :func:`label` for a multi-label
model, :func:`output` for a binary or regression model and :func:`region` for a
segmentation model.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .errors import InputError
from .words import a_task

__all__ = ["TASKS", "Target", "ClassTarget", "LabelTarget", "OutputTarget", "RegionTarget",
           "classes", "label", "output", "region", "box", "text", "similar_to", "resolve",
           "task_of_output", "check_task",
           "escape", "map_mask", "photo_mask"]

#: what a model's output means (``handle.task``)
TASKS = ("classification", "multilabel", "binary", "regression", "segmentation", "detection",
         "image-text", "embedding")

Index = Union[int, str]

_MD_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$])")


def escape(text: Any) -> str:
    """``text`` safe inside Markdown and HTML (a visitor's label ``**<b>x</b>**`` reads
    as those characters, never as formatting): the project's one escaping rule,
    :func:`interpret.words.text`, where that module exists; else HTML's special
    characters as entities and Markdown's own characters backslash-escaped."""
    try:
        from .words import text as _text
    except ImportError:  # pragma: no cover - before interpret.words existed
        _text = None
    if _text is not None:
        return _text(text)
    return _MD_SPECIALS.sub(r"\\\1", html.escape(str(text), quote=False).replace('"', "&quot;"))


def _name(labels: Optional[Sequence[str]], index: Index) -> str:
    if isinstance(index, str):
        return index
    if labels is not None and 0 <= int(index) < len(labels):
        return str(labels[int(index)])
    return f"class {int(index)}"


@dataclass(frozen=True)
class Target:
    """What is explained (see the module's docstring).  ``index``: the class, label or
    output (an int once resolved); ``contrast``: "rather than" this class, or None.

    ``score(output)`` is the per-sample score the methods explain (differentiable);
    ``probability(output)`` what the trust curves are drawn in (``unit`` says whether
    it is a probability or a value); ``reduce(output)`` the small per-sample summary
    of an output that ``probability`` also reads (the trust measures keep only that);
    ``key`` a stable, hashable key for caches; ``region`` the H x W boolean mask on
    the model's input that the score covers (segmentation), else None."""

    index: Index
    contrast: Optional[Index] = None

    kind = "class"
    task = "classification"
    unit = "probability"

    # -- what every target answers ---------------------------------------------------
    @property
    def key(self) -> tuple:
        return (self.kind, self.index, self.contrast)

    @property
    def region(self) -> Optional[torch.Tensor]:
        return None

    @property
    def reduce_key(self) -> Optional[tuple]:
        """What :meth:`reduce` depends on besides the output (None: nothing, so reduced
        outputs are shared by every target of the model)."""
        return None

    @property
    def resolved(self) -> bool:
        return isinstance(self.index, int) and (self.contrast is None or isinstance(self.contrast, int))

    def score(self, output: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reduce(self, output: torch.Tensor) -> torch.Tensor:
        """A B x k summary of a batch of outputs from which :meth:`probability` can be
        read (the output itself for per-image outputs)."""
        return output

    def probability(self, output: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def describe(self, labels: Optional[Sequence[str]] = None) -> str:
        """The target in words, plain text (labels as they are: for a terminal)."""
        return self._words(lambda i: _name(labels, i))

    def sentence(self, labels: Optional[Sequence[str]] = None) -> str:
        """The target in words for a page (Markdown or HTML): every label escaped
        (labels are visitor-supplied)."""
        return self._words(lambda i: escape(_name(labels, i)))

    def _words(self, name) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _need(self, output: torch.Tensor, dims: int) -> None:
        if output.dim() != dims:
            what = "[batch, outputs]" if dims == 2 else "[batch, classes, height, width]"
            raise InputError(f"{type(self).__name__} needs a model output of shape {what}; "
                             f"this model returns {tuple(output.shape)}.")


@dataclass(frozen=True)
class ClassTarget(Target):
    """One class of a single-label classifier: the class's logit (minus the
    contrast's); drawn in its softmax probability (with a contrast, the probability
    that A beats B, ``sigmoid(logit_A - logit_B)``)."""

    kind = "class"
    task = "classification"

    def score(self, output):
        self._need(output, 2)
        s = output[:, self.index]
        return s - output[:, self.contrast] if self.contrast is not None else s

    def probability(self, output):
        output = output.float()
        if self.contrast is not None:
            return torch.sigmoid(output[:, self.index] - output[:, self.contrast])
        return torch.softmax(output, dim=1)[:, self.index]

    def _words(self, name):
        s = f"the class {name(self.index)}"
        return s + f" rather than {name(self.contrast)}" if self.contrast is not None else s


@dataclass(frozen=True)
class LabelTarget(Target):
    """One label of a multi-label model: its logit; drawn in its own sigmoid
    probability (labels are independent: the probabilities need not sum to 1)."""

    kind = "label"
    task = "multilabel"

    def score(self, output):
        self._need(output, 2)
        return output[:, self.index]

    def probability(self, output):
        return torch.sigmoid(output.float()[:, self.index])

    def _words(self, name):
        return f"the label {name(self.index)}"


@dataclass(frozen=True)
class OutputTarget(Target):
    """One raw output: a binary model's logit or a regressor's value, times ``sign``
    (-1: what lowers it).  Drawn, for a binary model, in the sigmoid probability of the
    side explained (the positive class for ``sign=+1``, the negative for -1); for a
    regressor in the value itself (times ``sign``)."""

    sign: int = 1
    regression: bool = False

    kind = "output"

    @property
    def task(self) -> str:  # type: ignore[override]
        return "regression" if self.regression else "binary"

    @property
    def unit(self) -> str:  # type: ignore[override]
        return "value" if self.regression else "probability"

    @property
    def key(self):
        return (self.kind, self.index, self.sign, self.regression)

    def score(self, output):
        self._need(output, 2)
        return self.sign * output[:, self.index]

    def probability(self, output):
        v = self.sign * output.float()[:, self.index]
        return v if self.regression else torch.sigmoid(v)

    def _words(self, name):
        if self.regression:
            return f"what {'raises' if self.sign > 0 else 'lowers'} the value of {name(self.index)}"
        return f"what {'raises' if self.sign > 0 else 'lowers'} the probability of {name(self.index)}"


@dataclass(frozen=True)
class RegionTarget(Target):
    """A segmentation model's class ``index`` over a region: the mean over the
    region's pixels of the class's logit (minus the contrast's).  ``mask``: what was
    asked (None: the pixels the model assigns to the class; an H x W boolean array or
    an ``(x0, y0, x1, y1)`` box in the photo's pixels); after :func:`resolve`,
    ``pixels`` is the region on the model's input grid (H x W bool tensor) and
    ``digest`` its content hash.  Drawn in the class's mean softmax probability over
    the region (with a contrast, the mean of ``sigmoid(logit_A - logit_B)``)."""

    mask: Any = field(default=None, compare=False, repr=False)
    pixels: Optional[torch.Tensor] = field(default=None, compare=False, repr=False)
    digest: Optional[str] = None
    how: str = "class"  # "class" (mask None), "mask" or "box"

    kind = "region"
    task = "segmentation"

    @property
    def key(self):
        return (self.kind, self.index, self.contrast, self.how, self.digest)

    @property
    def region(self):
        return self.pixels

    @property
    def reduce_key(self):
        return self.key

    @property
    def resolved(self):
        return super().resolved and self.pixels is not None

    def _weights(self, output: torch.Tensor) -> torch.Tensor:
        if self.pixels is None:
            raise InputError("This region target is not resolved yet: pass it to interpret.explain "
                             "(or interpret.targets.resolve) with the model and the photo.")
        m = self.pixels.to(device=output.device, dtype=output.dtype)
        if tuple(m.shape) != tuple(output.shape[-2:]):
            raise InputError(f"The region is {m.shape[0]}x{m.shape[1]} but the model's output is "
                             f"{output.shape[-2]}x{output.shape[-1]}.")
        return m / m.sum().clamp(min=1)

    def _diff(self, output):
        s = output[:, self.index]
        return s - output[:, self.contrast] if self.contrast is not None else s

    def score(self, output):
        self._need(output, 4)
        return (self._diff(output) * self._weights(output)).sum(dim=(-2, -1))

    def reduce(self, output):
        if output.dim() == 2:
            return output
        out = output.float()
        if self.contrast is not None:
            p = torch.sigmoid(self._diff(out))
        else:
            p = torch.softmax(out, dim=1)[:, self.index]
        return (p * self._weights(out)).sum(dim=(-2, -1))[:, None]

    def probability(self, output):
        return self.reduce(output)[:, 0]

    def _words(self, name):
        s = {"class": f"the pixels the model calls {name(self.index)}",
             "box": f"the class {name(self.index)} inside the chosen box",
             "mask": f"the class {name(self.index)} over the chosen region"}[self.how]
        return s + f", rather than {name(self.contrast)}" if self.contrast is not None else s


# -- the public constructors ------------------------------------------------------------

def _check_index(v, what: str) -> Index:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer, str)):
        raise InputError(f"A {what} must be a class index or a label, not {type(v).__name__}.")
    return int(v) if isinstance(v, (int, np.integer)) else v


def classes(index_or_label: Index, contrast: Optional[Index] = None) -> ClassTarget:
    """One class of a single-label classifier (softmax), "rather than ``contrast``"
    when one is given.  What a bare int or label passed as ``target=`` means for a
    classifier."""
    return ClassTarget(_check_index(index_or_label, "class"),
                       None if contrast is None else _check_index(contrast, "contrast class"))


def label(index_or_label: Index) -> LabelTarget:
    """One label of a multi-label model; its probability is its own sigmoid."""
    return LabelTarget(_check_index(index_or_label, "label"))


def output(index: int = 0, sign: int = +1) -> OutputTarget:
    """A binary model's logit or a regressor's value (output ``index``); ``sign=-1``
    explains what lowers it."""
    if sign not in (1, -1):
        raise InputError(f"sign is +1 (what raises the output) or -1 (what lowers it); got {sign!r}.")
    return OutputTarget(_check_index(index, "output"), None, int(sign))


def region(label: Index, mask=None, contrast: Optional[Index] = None) -> RegionTarget:
    """A segmentation model's class ``label`` over a region: ``mask=None`` the pixels
    the model assigns to the class; an H x W boolean mask or an ``(x0, y0, x1, y1)``
    box in the photo's pixels (mapped through the model's resize and crop).  The score
    is the class's mean logit over the region, minus ``contrast``'s when given."""
    how = "class"
    if mask is not None:
        if isinstance(mask, (tuple, list)) and len(mask) == 4 and all(
                isinstance(v, (int, float, np.integer, np.floating)) for v in mask):
            x0, y0, x1, y1 = (float(v) for v in mask)
            if not (x1 > x0 and y1 > y0):
                raise InputError(f"A box is (x0, y0, x1, y1) with x1 > x0 and y1 > y0; got {tuple(mask)}.")
            mask, how = (x0, y0, x1, y1), "box"
        else:
            arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
            if arr.ndim != 2:
                raise InputError(f"A region mask is an H x W array; got shape {arr.shape}.")
            mask, how = arr.astype(bool), "mask"
    digest = None
    if how == "box":
        digest = "box:" + ",".join(f"{v:g}" for v in mask)
    elif how == "mask":  # the asked region's own content, until resolve() maps it
        digest = "photo:" + hashlib.blake2b(np.packbits(mask).tobytes() + str(mask.shape).encode(),
                                            digest_size=12).hexdigest()
    return RegionTarget(_check_index(label, "class"),
                        None if contrast is None else _check_index(contrast, "contrast class"),
                        mask=mask, how=how, digest=digest)


def box(detection_or_box, label: Optional[Index] = None, iou_threshold: float = 0.5,
        with_iou: bool = False, contrast: Optional[Index] = None):
    """An object detector's detection: a :class:`interpret.detection.Detection` (from
    :func:`interpret.predict`) or a box ``(x0, y0, x1, y1)`` in the photo's pixels, of
    class ``label`` (None: the detection's own class, or for a bare box the class of
    the detection that matches it best).  The score is that of the detection of the
    same class whose IoU with the box is largest above ``iou_threshold`` (after the
    detector's own NMS for torchvision detectors: docs/detection.md); ``with_iou`` adds
    that IoU, as pytorch-grad-cam's ``FasterRCNNBoxScoreTarget`` does.  When nothing
    matches on the photo, explaining it raises an :class:`InputError` that says what is
    closest (never a flat map).  ``contrast``: "this box rather than that label", the
    box's score minus the score of class ``contrast`` in the same box (matched by IoU
    the same way; 0, and the target's sentence says so, when the detector keeps no
    detection of it there above its own score threshold)."""
    from .detection import box as _box

    return _box(detection_or_box, label, iou_threshold, with_iou, contrast)


def text(prompt, contrast=None):
    """A text prompt of an image-text model (any text, among the model's prompts or not;
    an int: the index of one of them), "rather than ``contrast``" when given: the score
    is the prompt's zero-shot logit ``logit_scale * cos(image, text)`` (minus the
    contrast's), drawn in its probability over the prompts (:mod:`interpret.imagetext`)."""
    from .imagetext import text as _text

    return _text(prompt, contrast)


def similar_to(image, name=None):
    """The cosine similarity of the photo's embedding to the reference photo ``image``'s
    (an embedding model, or an image-text model's image tower): "why does the model find
    these two alike?" (:mod:`interpret.imagetext`)."""
    from .imagetext import similar_to as _similar_to

    return _similar_to(image, name)


# -- tasks --------------------------------------------------------------------------------

def task_of_output(shape: Tuple[int, ...], told: Optional[str] = None) -> str:
    """The task an output of ``shape`` (the task output: B x C or B x C x H x W) means,
    or the task ``told`` if it fits; an :class:`InputError` that describes the output
    when it does not."""
    if told is not None and told not in TASKS:
        raise InputError(f"Unknown task '{told}'; one of {', '.join(TASKS)}.")
    shape = tuple(int(s) for s in shape)
    if told in ("image-text", "embedding"):  # said by the loader or the caller, never guessed
        if len(shape) != 2:
            raise InputError(f"The model returns a tensor of shape {shape}, not one embedding vector "
                             f"per photo, so it is not an {told} model.")
        return told
    if len(shape) == 3 and shape[-1] == 6:  # a detector's boxes, packed (interpret.detection)
        if told not in (None, "detection"):
            raise InputError(f"The model returns boxes (an object detector), not {told}.")
        return "detection"
    if told == "detection":
        raise InputError(f"The model returns a tensor of shape {shape}, not boxes: it is not an "
                         "object detector.")
    if len(shape) == 4:
        if told not in (None, "segmentation"):
            raise InputError(f"The model returns a map of class scores per pixel (shape {shape}: "
                             f"batch, {shape[1]} classes, {shape[2]}x{shape[3]} pixels), which is "
                             f"segmentation, not {told}.")
        return "segmentation"
    if len(shape) != 2:
        raise InputError(f"The model's output has shape {shape}: expected scores of shape "
                         "[batch, outputs] or a segmentation map [batch, classes, height, width].")
    n = shape[1]
    if told == "segmentation":
        raise InputError(f"The model returns {n} score{'s' if n != 1 else ''} per image (shape "
                         f"{shape}), not a map per pixel, so it is not a segmentation model.")
    if n == 1:
        if told in ("classification", "multilabel"):
            raise InputError(f"The model returns one number per image (shape {shape}): a softmax "
                             "over one class is always 100%. It is a binary classifier (one "
                             "logit) or a regressor; say task='binary' or task='regression'.")
        return told or "binary"
    if told == "binary":
        raise InputError(f"The model returns {n} scores per image (shape {shape}); a binary "
                         "model returns one logit. Use 'classification' (softmax over the "
                         "classes) or 'multilabel' (a sigmoid per label).")
    return told or "classification"


_FITS = {"class": ("classification",), "label": ("multilabel",),
         "output": ("binary", "regression"), "region": ("segmentation",), "box": ("detection",),
         "text": ("image-text",), "similar": ("embedding", "image-text")}


def check_task(target: Target, task: str) -> None:
    """Refuse a target that does not fit the model's task, with what would."""
    if task not in _FITS[target.kind]:
        hint = {"classification": "targets.classes", "multilabel": "targets.label",
                "binary": "targets.output", "regression": "targets.output",
                "segmentation": "targets.region", "detection": "targets.box",
                "image-text": "targets.text", "embedding": "targets.similar_to"}[task]
        raise InputError(f"A {type(target).__name__} ({target.kind}) does not fit {a_task(task)}; "
                         f"use {hint}(...).")


# -- regions in the photo's pixels ---------------------------------------------------------

def photo_mask(mask, photo_size: Tuple[int, int]) -> np.ndarray:
    """A region (H x W bool mask or ``(x0, y0, x1, y1)`` box) as an H x W bool mask of
    a photo of ``photo_size`` (width, height)."""
    w, h = int(photo_size[0]), int(photo_size[1])
    if isinstance(mask, tuple):
        x0, y0, x1, y1 = mask
        out = np.zeros((h, w), dtype=bool)
        c0, c1 = max(0, int(np.floor(x0))), min(w, int(np.ceil(x1)))
        r0, r1 = max(0, int(np.floor(y0))), min(h, int(np.ceil(y1)))
        if c1 > c0 and r1 > r0:
            out[r0:r1, c0:c1] = True
        return out
    arr = np.asarray(mask, dtype=bool)
    if arr.shape != (h, w):
        raise InputError(f"The region mask is {arr.shape[1]}x{arr.shape[0]} (width x height) but the "
                         f"photo is {w}x{h}.")
    return arr


def map_mask(preprocessing, mask: np.ndarray) -> np.ndarray:
    """A mask in a photo's pixels, resized (nearest) and centre-cropped exactly as the
    photo is for the model: an H x W bool mask on the model's input grid."""
    from PIL import Image

    img = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255, mode="L")
    view = preprocessing.model_view(img, resample="nearest")
    return np.asarray(view) >= 128


def _resolve_index(handle, v, x, what):
    from .explain import resolve_target

    return resolve_target(handle, v, x, what)


def resolve(handle, target=None, x: Optional[torch.Tensor] = None, *, contrast=None,
            photo_size: Optional[Tuple[int, int]] = None, output: Optional[torch.Tensor] = None
            ) -> Target:
    """``target`` made concrete for ``handle`` and the input ``x``: class indices for
    labels, the region on the model's input grid.  ``target`` is a :class:`Target`, an
    int or a label (the task's own kind of target), or None (the top class, label or
    the output; for segmentation, the class covering most pixels).  ``photo_size``:
    the (width, height) of the photo a region mask or box is given in (None: the mask
    is on the model's input grid).  ``output``: the model's output for ``x`` if the
    caller has it (else it is computed, cached)."""
    task = handle.task
    if task in ("image-text", "embedding"):  # a prompt or a reference photo (interpret.imagetext)
        from .imagetext import resolve as _resolve_imagetext

        return _resolve_imagetext(handle, target, x, contrast, output)
    if task == "detection" and (target is None or not isinstance(target, Target) or target.kind == "box"):
        if contrast is not None:  # "this box rather than that label" (interpret.detection.BoxTarget)
            if not (isinstance(target, Target) and target.kind == "box"):
                raise InputError("A contrast label applies to one box: give targets.box(detection, "
                                 "contrast=label).")
            if target.contrast is not None and target.contrast != contrast:
                raise InputError("The contrast is given twice (in the target and as contrast=).")
            target = replace(target, contrast=contrast, contrast_found=None)
        from .detection import resolve_box

        if x is None:
            raise InputError("A box target needs the input to find its detection.")
        return resolve_box(handle, target, x, photo_size, output)
    if isinstance(target, Target):
        if contrast is not None:
            if target.contrast is not None:
                raise InputError("The contrast is given twice (in the target and as contrast=).")
            if target.kind not in ("class", "region"):
                raise InputError(f"A contrast applies to a class or a region, not to a {target.kind} target.")
            target = replace(target, contrast=contrast)
        check_task(target, task)
    else:
        if contrast is not None and task not in ("classification", "segmentation"):
            raise InputError(f"A contrast class applies to classification and segmentation models, "
                             f"not to {a_task(task)}.")
        if target is None:
            if x is None:
                raise InputError("No target given.")
            if task in ("binary", "regression"):
                target = 0
            else:
                out = output if output is not None else _output(handle, x)
                if task == "segmentation":
                    target = int(torch.bincount(out[0].argmax(0).flatten(), minlength=out.shape[1]).argmax())
                else:
                    target = int(out[0].argmax())
        if task == "classification":
            target = classes(target, contrast)
        elif task == "multilabel":
            target = label(target)
        elif task in ("binary", "regression"):
            if not isinstance(target, (int, np.integer)) and isinstance(target, str) and not target.strip().lstrip("-").isdigit():
                idx = _resolve_index(handle, target, x, "output")
            else:
                idx = int(target)
            target = OutputTarget(int(idx), None, 1, task == "regression")
        else:
            target = region(target, None, contrast)
    idx = _resolve_index(handle, target.index, x, "target")
    con = _resolve_index(handle, target.contrast, x, "contrast") if target.contrast is not None else None
    if con is not None and con == idx:
        raise InputError("The contrast class must differ from the target class.")
    if isinstance(target, OutputTarget):
        return replace(target, index=idx, regression=task == "regression")
    if not isinstance(target, RegionTarget):
        return replace(target, index=idx, contrast=con)
    if target.pixels is not None:
        return replace(target, index=idx, contrast=con)
    if x is None:
        raise InputError("A region target needs the input to find its pixels.")
    size = (int(x.shape[-2]), int(x.shape[-1]))
    name = handle.label(idx)
    if target.how == "class":
        out = output if output is not None else _output(handle, x)
        pix = (out[0].argmax(0) == idx).cpu()
        if not bool(pix.any()):
            raise InputError(f"The model assigns no pixel of this photo to '{name}'; pick a class it "
                             "finds in the photo, or give a mask or a box.")
    else:
        if photo_size is None:
            photo = photo_mask(target.mask, (size[1], size[0]))
            pix_np = photo
        else:
            pix_np = map_mask(handle.preprocessing, photo_mask(target.mask, photo_size))
        if pix_np.shape != size:
            raise InputError(f"The region is {pix_np.shape[1]}x{pix_np.shape[0]} on the model's input, "
                             f"which is {size[1]}x{size[0]}.")
        if not pix_np.any():
            raise InputError("The region lies outside the part of the photo the model sees "
                             "(after its resize and crop), or is empty.")
        pix = torch.from_numpy(np.ascontiguousarray(pix_np))
    digest = hashlib.blake2b(np.packbits(pix.numpy()).tobytes() + str(tuple(pix.shape)).encode(),
                             digest_size=12).hexdigest()
    return replace(target, index=idx, contrast=con, pixels=pix, digest=digest)


def _output(handle, x):
    from .capture import logits

    return logits(handle, x)
