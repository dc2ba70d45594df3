"""The public entry points: :func:`predict` and :func:`explain`."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from .capture import tensor_key
from .errors import InputError
from .images import load_image
from .layers import check_layer
from .methods.common import Context
from .methods.registry import get_method
from .models import ModelHandle, _first_tensor, load_model


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float
    logit: float


@dataclass(frozen=True)
class Explanation:
    """The result of :func:`explain`.

    ``heatmap``: float32 H x W in [0, 1] at the model-input resolution, for display.
    ``attribution``: the raw signed tensor before any normalisation (1x3xHxW for input
    methods, 1x1xhxw for CAMs, 1xCxhxw for activations).  ``extras``: method-specific
    values (per-channel maps, steps used, convergence delta...).
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


def as_handle(model) -> ModelHandle:
    if isinstance(model, ModelHandle):
        return model
    if isinstance(model, nn.Module):
        return load_model(model)
    if isinstance(model, str):
        return load_model(model)
    raise InputError(f"Expected a model (ModelHandle or nn.Module), got {type(model).__name__}.")


def _input_tensor(handle: ModelHandle, image) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        x = image if image.dim() == 4 else image[None]
        if x.shape[0] != 1 or x.shape[1] != 3:
            raise InputError(f"An input tensor must be 1x3xHxW; got {tuple(image.shape)}.")
        return x.detach().to(handle.device).float()
    if isinstance(image, Image.Image):
        return handle.preprocess_cached(image)
    return handle.preprocess(load_image(image))


def _logits(handle: ModelHandle, x: torch.Tensor) -> torch.Tensor:
    key = ("logits", handle.fingerprint_fast(), tensor_key(x))
    out = handle.cache_get(key)
    if out is None:
        with torch.no_grad():
            out = _first_tensor(handle.module(x))
        if out is None or out.dim() != 2:
            raise InputError("The model must return class scores of shape [batch, classes].")
        out = out.detach()
        handle.cache_put(key, out)
    return out


def predict(model, image, top_k: int = 5) -> List[Prediction]:
    """Top-k predictions (all classes with ``top_k=None``), most likely first."""
    handle = as_handle(model)
    handle.check_ready()
    x = _input_tensor(handle, image)
    with _model_guard(handle):
        logits = _logits(handle, x)[0].float().cpu()
    probs = torch.softmax(logits, 0)
    k = logits.numel() if top_k is None else max(1, min(int(top_k), logits.numel()))
    vals, idx = torch.topk(probs, k)
    return [Prediction(int(i), handle.label(int(i)), float(p), float(logits[i])) for p, i in zip(vals, idx)]


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


@contextlib.contextmanager
def _model_guard(handle: ModelHandle):
    """Safety net around every call: afterwards (success or failure) no parameter .grad
    appeared, and training / requires_grad flags are as before.  Our code never changes
    them; this catches third-party code (Captum) and is cheap."""
    module = handle.module
    params = list(module.parameters())
    grads = [p.grad for p in params]
    req = [p.requires_grad for p in params]
    modes = [m.training for m in module.modules()]
    try:
        yield
    finally:
        for p, g, r in zip(params, grads, req):
            if p.grad is not g:
                p.grad = g
            if p.requires_grad != r:
                p.requires_grad_(r)
        for m, t in zip(module.modules(), modes):
            if m.training != t:
                m.training = t  # restore the flag only; never call .train()/.eval()


def explain(
    model,
    image,
    method: str = "gradcam",
    layer: Optional[str] = None,
    target: Union[int, str, None] = None,
    contrast: Union[int, str, None] = None,
    progress: Optional[Callable[[int, int], Any]] = None,
    **params,
) -> Explanation:
    """Explain the model's score for ``target`` (default: the top prediction) on ``image``.

    ``method`` is a registry id (see :func:`interpret.methods`); ``layer`` a module name
    (default: the suggested layer, for methods that need one); ``contrast`` a second class
    to explain "target rather than contrast" (the logit difference); ``progress(done,
    total)`` is called during long methods (raise :class:`interpret.Cancelled` in it to
    stop); further keyword arguments are the method's parameters.
    """
    spec = get_method(method)
    handle = as_handle(model)
    handle.check_ready()
    resolved = spec.resolve_params(params)
    x = _input_tensor(handle, image)
    if spec.needs_layer:
        layer = check_layer(handle, layer)
    elif layer is not None:
        if spec.name in ("saliency", "input_x_gradient"):
            layer = check_layer(handle, layer)  # allowed: shares the capture with CAMs
        else:
            layer = None
    if contrast is not None and not spec.contrastive:
        raise InputError(f"{spec.label} does not depend on a class, so a contrast class has no effect.")
    lock = handle.rwlock.write() if spec.exclusive else handle.rwlock.read()
    t0 = time.perf_counter()
    with lock, _model_guard(handle), handle.pinned_fingerprint():
        con = resolve_target(handle, contrast, x, "contrast") if contrast is not None else None
        if target is None and spec.cost == "instant" and handle.cache_get(
                ("logits", handle.fingerprint_fast(), tensor_key(x))) is None:
            # the capture's own forward finds the top class: one forward, not two
            from .capture import capture

            tgt = capture(handle, x, layer, None, con).target
        else:
            tgt = resolve_target(handle, target, x)
        if con is not None and con == tgt:
            raise InputError("The contrast class must differ from the target class.")
        ctx = Context(handle, x, layer, tgt, con, resolved, progress)
        result = spec.fn(ctx)
        cap = handle.cache_get(("capture", handle.fingerprint_fast(),
                                tensor_key(x), layer, tgt, con))
        score = cap.score if cap is not None else float(
            ctx.scores(x)[0]) if spec.family != "activation" else float("nan")
    return Explanation(
        method=spec.name, layer=layer, target=tgt, target_label=handle.label(tgt),
        contrast=con, contrast_label=handle.label(con) if con is not None else None,
        params=resolved, heatmap=result.heatmap, attribution=result.attribution,
        score=score, seconds=time.perf_counter() - t0, extras=result.extras,
    )


def estimate_cost(model, method: str, layer: Optional[str] = None, **params) -> Dict[str, Any]:
    """How many forward passes a method will run, before running it (for the UI)."""
    spec = get_method(method)
    handle = as_handle(model)
    p = spec.resolve_params(params)
    h, w = handle.input_size
    if spec.name == "scorecam":
        from .layers import list_layers, to_spatial

        layer = check_layer(handle, layer)
        info = {i.name: i for i in list_layers(handle)}[layer]
        C = to_spatial(torch.empty(info.output_shape, device="meta"), handle.channels_last_tokens).shape[1]
        k = min(p["max_channels"], C)
        return {"forwards": k, "batches": -(-k // p["batch_size"]), "channels": C}
    if spec.name == "occlusion":
        n = ((h - p["window"]) // p["stride"] + 1) * ((w - p["window"]) // p["stride"] + 1)
        return {"forwards": n, "batches": -(-n // p["batch_size"])}
    if spec.name == "integrated_gradients":
        return {"forwards": p["n_steps"], "batches": -(-p["n_steps"] // p["internal_batch_size"]),
                "note": "adaptive: usually far fewer" if p["adaptive"] else ""}
    if spec.name == "smoothgrad":
        return {"forwards": p["samples"], "batches": -(-p["samples"] // p["batch_size"])}
    return {"forwards": 1, "batches": 1}


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


def layer_summary(model, image) -> List[LayerSummary]:
    """Mean, std, min, max and fraction of exact zeros of every module's output, from
    ONE forward pass (no gradients), in forward order.  For a chart of how activations
    evolve through the network; cached on the handle per image.  Modules called several
    times report their last call, as :func:`explain` does."""
    from .hooks import hooks
    from .layers import list_layers

    handle = as_handle(model)
    handle.check_ready()
    if handle.scripted:
        raise InputError("This is a TorchScript model: its layers cannot be observed (no hooks).")
    x = _input_tensor(handle, image)
    key = ("layer_summary", handle.fingerprint_fast(), tensor_key(x))
    cached = handle.cache_get(key)
    if cached is not None:
        return cached
    infos = [i for i in list_layers(handle) if i.calls > 0]
    modules = dict(handle.module.named_modules())
    stats: Dict[str, tuple] = {}
    with handle.rwlock.read(), _model_guard(handle), hooks() as hs:
        for info in infos:
            def rec(mod, inp, out, name=info.name):
                t = _first_tensor(out)
                if t is None or not t.is_floating_point() or t.numel() == 0:
                    return None
                # numpy: its reductions are single-threaded and much faster than
                # torch's on a busy multi-core CPU for tensors of this size
                a = t.detach().float().cpu().numpy()
                stats[name] = (tuple(t.shape), float(a.mean()), float(a.std()), float(a.min()),
                               float(a.max()), 1.0 - float(np.count_nonzero(a)) / a.size)
                return None
            hs.forward(modules[info.name], rec)
        with torch.no_grad():
            handle.module(x)
    out = [LayerSummary(i.name, i.kind, *stats[i.name]) for i in infos if i.name in stats]
    handle.cache_put(key, out)
    return out
