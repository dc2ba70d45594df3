"""The public entry points: :func:`predict` (in the model's task's terms),
:func:`explain`, :func:`layer_maps`,
:func:`layer_summary`, :func:`estimate_cost` and :func:`model_input`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from .capture import LayerMaps, capture, layer_maps as _layer_maps, logits as _logits
from .detection import Detection, detections
from .errors import InputError, Progress
from .handle import ModelHandle, session
from .hooks import Tap, record
from .images import load_image
from .layers import check_layer, list_layers
from .methods.common import Context
from .methods.registry import get_method
from .models import load_model
from .scaling import heatmap as to_heatmap
from .targets import Target, resolve
from .tensors import tensor_key


@dataclass(frozen=True)
class Prediction:
    """One answer of a model, in its task's terms: ``probability`` is the softmax
    probability of a class (classification), a label's own sigmoid (multi-label; they
    need not sum to 1), the positive class's sigmoid (binary), and None for a
    regressor, whose answer is ``value``; ``logit`` is the raw output."""

    index: int
    label: str
    probability: Optional[float]
    logit: float
    value: Optional[float] = None
    task: str = "classification"


@dataclass(frozen=True)
class SegmentClass:
    """A class present in a segmentation: its index, label, number of pixels of the
    photo and their share of the pixels the model sees."""

    index: int
    label: str
    pixels: int
    share: float


@dataclass(frozen=True)
class Segmentation:
    """What a segmentation model says about a photo (see :func:`predict`).

    ``mask``: H x W class indices at the photo's size (-1 where the photo lies outside
    what the model sees, after its crop); ``classes``: each class present, with its
    share of the seen pixels, largest first; ``probabilities``: C x H x W softmax
    probabilities at the photo's size (computed when first read: C times the photo's
    pixels in float32); ``scores``: the model's own 1 x C x h x w output on its input
    grid; ``crop_box``: where that grid lies in the photo."""

    mask: np.ndarray = field(repr=False)
    classes: List[SegmentClass]
    labels: tuple = field(repr=False)
    scores: torch.Tensor = field(repr=False)
    crop_box: tuple = ()
    photo_size: tuple = ()

    @property
    def seen(self) -> np.ndarray:
        """H x W bool: the photo's pixels the model sees."""
        return self.mask >= 0

    @cached_property
    def probabilities(self) -> np.ndarray:
        p = torch.softmax(self.scores.float(), dim=1)
        return _to_photo(p, self.crop_box, self.photo_size, "bilinear")[0].numpy()

    def segment_at(self, x: float, y: float, whole_class: bool = False):
        """The :func:`interpret.targets.region` of the segment under photo pixel
        (``x``, ``y``): its connected region of one class (4-connected), or with
        ``whole_class`` every pixel of that class.  What a click on the mask means."""
        from scipy import ndimage

        from . import targets

        h, w = self.mask.shape
        col, row = int(x), int(y)
        if not (0 <= col < w and 0 <= row < h):
            raise InputError(f"({x:g}, {y:g}) is outside the photo ({w}x{h}).")
        cls = int(self.mask[row, col])
        if cls < 0:
            raise InputError("That point lies outside the part of the photo the model sees.")
        if whole_class:
            return targets.region(cls)
        comp, _ = ndimage.label(self.mask == cls)
        return targets.region(cls, mask=comp == comp[row, col])


def _to_photo(t: torch.Tensor, box, photo_size, mode: str) -> torch.Tensor:
    """A 1 x C x h x w map on the model's input grid placed on the photo: resized onto
    the crop box (in photo pixels) and padded (with -1 for masks, 0 else) outside it."""
    W, H = int(photo_size[0]), int(photo_size[1])
    l, t_, r, b = (int(round(v)) for v in box)
    l, t_, r, b = max(l, 0), max(t_, 0), min(r, W), min(b, H)
    bw, bh = max(1, int(round(box[2] - box[0]))), max(1, int(round(box[3] - box[1])))
    kw = dict(mode=mode, align_corners=False) if mode == "bilinear" else dict(mode=mode)
    inner = torch.nn.functional.interpolate(t.float(), size=(bh, bw), **kw)
    ox, oy = int(round(box[0])), int(round(box[1]))
    out = torch.full((t.shape[0], t.shape[1], H, W), -1.0 if mode == "nearest" else 0.0)
    out[..., t_:b, l:r] = inner[..., t_ - oy:b - oy, l - ox:r - ox]
    return out


@dataclass(frozen=True)
class Explanation:
    """The result of :func:`explain`.

    ``heatmap``: float32 H x W in [0, 1] at the model-input resolution, for display.
    ``attribution``: the raw signed tensor before any normalisation (1x3xHxW for input
    methods, 1x1xhxw for CAMs, 1xCxhxw for activations).  ``score``: the explained
    score (target logit, minus the contrast's), NaN for class-independent methods.
    ``extras``: method-specific values (steps used, convergence delta...).
    ``explained``: the whole :class:`~interpret.targets.Target` (``target`` is its
    class, label or output index; a region's pixels are in ``explained.region``).
    """

    method: str
    layer: Optional[str]
    target: int
    target_label: str
    contrast: Optional[int]
    contrast_label: Optional[str]
    params: Dict[str, Any]
    heatmap: np.ndarray
    attribution: torch.Tensor
    score: float
    seconds: float
    extras: Dict[str, Any] = field(default_factory=dict, repr=False)
    explained: Optional[Target] = field(default=None, repr=False)


def as_handle(model) -> ModelHandle:
    if isinstance(model, ModelHandle):
        return model
    if isinstance(model, (nn.Module, str)):
        return load_model(model)
    raise InputError(f"Expected a model (ModelHandle or nn.Module), got {type(model).__name__}.")


def input_tensor(handle: ModelHandle, image) -> torch.Tensor:
    """The 1 x 3 x H x W tensor the model receives for a photo (PIL image, path, bytes)
    or a tensor given as it is."""
    if isinstance(image, torch.Tensor):
        x = image if image.dim() == 4 else image[None]
        if x.shape[0] != 1 or x.shape[1] != 3:
            raise InputError(f"An input tensor must be 1x3xHxW; got {tuple(image.shape)}.")
        if x.requires_grad:
            x = x.detach()
        # the same tensor object when nothing needs converting, so its content hash
        # (remembered on the object) is computed once across calls
        return x.to(handle.device).float()
    if isinstance(image, Image.Image):
        return handle.preprocess_cached(image)
    return handle.preprocess(load_image(image))


@dataclass(frozen=True)
class ModelInput:
    """What a model receives for a photo (see :func:`model_input`).

    ``image``: the photo resized and cropped as the model sees it (RGB, ``size``);
    ``values``: the 3 x H x W float32 numbers the model receives (normalised);
    ``seen``: those numbers de-normalised, H x W x 3 float32 in [0, 1], to look at;
    ``crop_box``: the region (left, top, right, bottom) of the original photo the model
    keeps, in its pixels; ``photo_size``: the original (width, height)."""

    image: Image.Image
    values: np.ndarray = field(repr=False)
    seen: np.ndarray = field(repr=False)
    crop_box: tuple
    photo_size: tuple

    @property
    def size(self) -> tuple:
        """(height, width) of the model's input."""
        return tuple(int(s) for s in self.values.shape[1:])


def model_input(model, image) -> ModelInput:
    """Exactly what ``model`` receives for ``image`` (a PIL image, path or bytes): the
    resized and cropped photo, the normalised numbers, the same de-normalised, and the
    crop's place in the original.  What the Input page shows."""
    handle = as_handle(model)
    if not isinstance(image, Image.Image):
        image = load_image(image)
    pre = handle.preprocessing
    x = input_tensor(handle, image).detach().float().cpu()
    return ModelInput(image=pre.model_view(image.convert("RGB")), values=x[0].numpy().copy(),
                      seen=pre.denormalize(x).astype(np.float32), crop_box=pre.crop_box(image.size),
                      photo_size=tuple(image.size))


def _photo(image):
    """(what input_tensor takes, the photo's (width, height) or None for a tensor)."""
    if isinstance(image, torch.Tensor):
        return image, None
    if not isinstance(image, Image.Image):
        image = load_image(image)
    return image, tuple(image.size)


def predict(model, image, top_k: Optional[int] = 5, threshold: float = 0.5
            ) -> Union[List[Prediction], Segmentation, List[Detection]]:
    """What the model says, in its task's terms (``handle.task``):

    * classification: the top-k classes by softmax probability (all with
      ``top_k=None``), most likely first;
    * multi-label: the top-k labels by their own sigmoid probability;
    * binary: one :class:`Prediction`, the positive class's sigmoid probability (a
      one-logit model never gets a softmax);
    * regression: one :class:`Prediction` per output, its ``value`` (no probability);
    * segmentation: a :class:`Segmentation` (mask and probabilities at the photo's size,
      the classes present with their share of the pixels);
    * detection: every :class:`~interpret.detection.Detection` scoring at least
      ``threshold``, best first, its box in the photo's pixels (``top_k`` does not
      apply: a photo has as many objects as it has); a Mask R-CNN's detections carry
      their instance mask over the box (``Detection.mask``).
    """
    handle = as_handle(model)
    image, photo_size = _photo(image)
    x = input_tensor(handle, image)
    with session(handle):
        out = _logits(handle, x).float().cpu()
    task = handle.task
    if task == "segmentation":
        return _segmentation(handle, out, x, image, photo_size)
    if task in ("image-text", "embedding"):
        from .imagetext import Embedding, prompt_logits, zero_shot

        if task == "embedding":
            v = out[0].float()
            return Embedding(v.numpy().copy(), float(v.norm()))
        probs, z = zero_shot(handle, out)[0], prompt_logits(handle, out)[0]
        k = probs.numel() if top_k is None else max(1, min(int(top_k), probs.numel()))
        vals, idx = torch.topk(probs, k)
        return [Prediction(int(i), handle.label(int(i)), float(p), float(z[i]), None, task)
                for p, i in zip(vals, idx)]
    if task == "detection":
        hw = (int(x.shape[-2]), int(x.shape[-1]))
        from .detection import instance_masks

        with session(handle):  # Mask R-CNN: its boxes and masks from one more forward, together
            inst = instance_masks(handle.module, x)
        masks = None
        if inst is not None:
            out, masks = inst
        from .detection import nms_iou

        return detections(out[0], handle.label, float(threshold), handle.preprocessing, photo_size, hw,
                          masks=masks, nms_iou=nms_iou(handle.module))  # YOLO: NMS here (before: every anchor)
    out = out[0]
    if task == "regression":
        return [Prediction(i, handle.label(i), None, float(v), float(v), task) for i, v in enumerate(out)]
    if task == "binary":
        return [Prediction(0, handle.label(0), float(torch.sigmoid(out[0])), float(out[0]), None, task)]
    probs = torch.softmax(out, 0) if task == "classification" else torch.sigmoid(out)
    k = out.numel() if top_k is None else max(1, min(int(top_k), out.numel()))
    vals, idx = torch.topk(probs, k)
    return [Prediction(int(i), handle.label(int(i)), float(p), float(out[i]), None, task)
            for p, i in zip(vals, idx)]


def _segmentation(handle: ModelHandle, out: torch.Tensor, x: torch.Tensor, image, photo_size) -> Segmentation:
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if photo_size is None:
        photo_size, box = (w, h), (0.0, 0.0, float(w), float(h))
    else:
        box = handle.preprocessing.crop_box(photo_size)
    grid = out.argmax(1, keepdim=True).float()
    mask = _to_photo(grid, box, photo_size, "nearest")[0, 0].numpy().astype(np.int64)
    seen = mask >= 0
    n_seen = max(1, int(seen.sum()))
    counts = np.bincount(mask[seen].ravel(), minlength=out.shape[1])
    present = [SegmentClass(int(i), handle.label(int(i)), int(counts[i]), float(counts[i] / n_seen))
               for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    return Segmentation(mask=mask, classes=present, labels=tuple(handle.labels), scores=out,
                        crop_box=tuple(float(v) for v in box), photo_size=tuple(photo_size))


def resolve_target(handle: ModelHandle, target, x: Optional[torch.Tensor] = None, what: str = "target") -> int:
    """A class index from an int, a label (exact or unique case-insensitive match) or None
    (the top prediction for ``x``)."""
    n = len(handle.labels)
    if target is None:
        if x is None:
            raise InputError(f"No {what} class given.")
        return int(_logits(handle, x)[0].argmax())
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        t = int(target)
        if not 0 <= t < n:
            raise InputError(f"Class index {t} is out of range: this model has {n} classes (0-{n - 1}).")
        return t
    if isinstance(target, str):
        s = target.strip()
        if s.lstrip("-").isdigit():
            return resolve_target(handle, int(s), x, what)
        labels = handle.labels
        exact = [i for i, l in enumerate(labels) if l == s]
        if exact:
            return exact[0]
        low = s.lower()
        exact_ci = [i for i, l in enumerate(labels) if l.lower() == low]
        if len(exact_ci) == 1:
            return exact_ci[0]
        part = [i for i, l in enumerate(labels) if low in l.lower()]
        if len(part) == 1:
            return part[0]
        if part:
            names = ", ".join(f"'{labels[i]}'" for i in part[:5])
            raise InputError(f"'{target}' matches several classes ({names}{', ...' if len(part) > 5 else ''}); be more specific or give the index.")
        raise InputError(f"No class is labelled '{target}'.")
    raise InputError(f"A {what} must be a class index or a label, not {type(target).__name__}.")


def explain(
    model,
    image,
    method: str = "gradcam",
    layer: Optional[str] = None,
    target: Union[int, str, Target, None] = None,
    contrast: Union[int, str, None] = None,
    progress: Optional[Progress] = None,
    **params,
) -> Explanation:
    """Explain the model's score for ``target`` on ``image``.

    ``target``: an :mod:`interpret.targets` target (``targets.classes``, ``label``,
    ``output``, ``region``: a segment given in the photo's pixels), or a class index or
    label (meaning the model's task's own kind), or None (the top class; for a binary
    or regression model its output; for segmentation the class covering most pixels).
    ``method`` is a registry id (see :func:`interpret.methods`); ``layer`` a module name
    (default: the suggested layer, for methods that need one); ``contrast`` a second class
    to explain "target rather than contrast" (the logit difference); ``progress(done,
    total)`` is called during long methods (raise :class:`interpret.Cancelled` in it to
    stop); further keyword arguments are the method's parameters.
    """
    spec = get_method(method)
    handle = as_handle(model)
    handle.check_ready()
    why = spec.unavailable(handle)
    if why:
        raise InputError(f"{spec.label} cannot run on '{handle.name}': {why}")
    resolved = spec.resolve_params(params)
    image, photo_size = _photo(image)
    x = input_tensor(handle, image)
    if spec.needs_layer or (layer is not None and spec.accepts_layer):
        layer = check_layer(handle, layer)
    else:
        layer = None
    if (contrast is not None or getattr(target, "contrast", None) is not None) and not spec.contrastive:
        raise InputError(f"{spec.label} does not depend on a class, so a contrast class has no effect.")
    t0 = time.perf_counter()
    with session(handle, exclusive=spec.exclusive):
        fp, tkey = handle.fingerprint_fast(), tensor_key(x)
        if (not isinstance(target, Target) and spec.uses in ("layer", "input")
                and handle.cache_get(("logits", fp, tkey)) is None
                and "detection" not in (handle.info.task, handle.runtime.memos.get("task"))):
            # (the task as far as it is known without a forward of its own: reading
            # handle.task here would cost a probe forward on a fresh handle)
            # the capture's own forward resolves the target (the top class, the task):
            # one forward, not two
            goal = capture(handle, x, layer, target, contrast, input_grad=spec.uses == "input").explained
        else:
            goal = resolve(handle, target, x, contrast=contrast, photo_size=photo_size)
        if goal.contrast is not None and goal.contrast == goal.index:
            raise InputError("The contrast class must differ from the target class.")
        ctx = Context(handle, x, layer, goal, goal.contrast, resolved, progress)
        result = spec.fn(ctx)
        if ctx.captured is not None:
            score = ctx.captured.score
        elif spec.contrastive:
            score = float(goal.score(_logits(handle, x))[0])
        else:
            score = float("nan")
    shown = result.display if result.display is not None else result.attribution
    con = goal.contrast
    return Explanation(
        method=spec.name, layer=layer, target=goal.index, target_label=handle.label(goal.index),
        contrast=con, contrast_label=handle.label(con) if con is not None else None,
        params=resolved, heatmap=to_heatmap(shown, spec.heatmap, tuple(x.shape[-2:])),
        attribution=result.attribution, score=score, seconds=time.perf_counter() - t0,
        extras=result.extras, explained=goal,
    )


def estimate_cost(model, method: str, layer: Optional[str] = None, **params) -> Dict[str, Any]:
    """How many images a method will put through the model, and in how many passes,
    before running it (for the UI): ``{"forwards": n, "batches": m, ...}``."""
    spec = get_method(method)
    return spec.estimate(as_handle(model), layer, params).as_dict()


def layer_maps(model, image, layer: Optional[str] = None) -> LayerMaps:
    """The feature maps of ``layer`` (default: the suggested layer) for ``image``: one
    forward with no gradients, stopped at the layer, cached per (model, image, layer).
    Class-independent; what the Activations page draws."""
    handle = as_handle(model)
    x = input_tensor(handle, image)
    layer = check_layer(handle, layer)
    with session(handle):
        return _layer_maps(handle, x, layer)


@dataclass(frozen=True)
class LayerSummary:
    """Statistics of one module's output for one image (see :func:`layer_summary`)."""

    name: str
    kind: str
    shape: tuple
    mean: float
    std: float
    min: float
    max: float
    zero_fraction: float


def _stats(t: torch.Tensor):
    if not t.is_floating_point() or t.numel() == 0:
        return None
    # numpy: its reductions are single-threaded and much faster than torch's on a busy
    # multi-core CPU for tensors of this size
    a = t.detach().float().cpu().numpy()
    return (tuple(t.shape), float(a.mean()), float(a.std()), float(a.min()), float(a.max()),
            1.0 - float(np.count_nonzero(a)) / a.size)


def layer_summary(model, image) -> List[LayerSummary]:
    """Mean, std, min, max and fraction of exact zeros of every module's output, from
    ONE forward pass (no gradients), in forward order.  For a chart of how activations
    evolve through the network; cached on the handle per image.  Modules called several
    times report their last call, as :func:`explain` does."""
    handle = as_handle(model)
    if handle.scripted:
        raise InputError("This is a TorchScript model: its layers cannot be observed (no hooks).")
    x = input_tensor(handle, image)
    with session(handle):
        key = ("layer_summary", handle.fingerprint_fast(), tensor_key(x))
        cached = handle.cache_get(key)
        if cached is not None:
            return cached
        infos = [i for i in list_layers(handle) if i.calls > 0]
        modules = dict(handle.module.named_modules())
        taps = [Tap(i.name, modules[i.name], reduce=_stats) for i in infos]
        stats = record(handle, x, taps, logits=False, grad="none").values
    out = [LayerSummary(i.name, i.kind, *stats[i.name]) for i in infos if stats.get(i.name)]
    handle.cache_put(key, out)
    return out
