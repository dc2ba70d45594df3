"""Activation maximization: optimise an image so that a channel, a unit, a layer or
a class logit responds strongly (Olah, Mordvintsev & Schubert, "Feature
Visualization", Distill 2017; the recipe of Lucid and Lucent's ``render_vis``).

Three composable pieces: a parameterization (:mod:`.param`: Fourier spectrum in a
decorrelated colour space, sigmoid to [0, 1]), a list of random transforms
(:mod:`.transforms`: pad, jitter, scale, rotate), and an objective
(:mod:`.objectives`).  Each step: parameterization -> RGB image in [0, 1] ->
transforms -> the model's own normalisation (``handle.mean`` / ``handle.std``) ->
forward -> objective -> ``torch.autograd.grad`` with respect to the image parameters
only -> one Adam step on them.  The model is never changed: no ``.backward()`` (so no
parameter ``.grad``), no ``.eval()``/``.train()``, hooks only within each forward and
only for the calling thread.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import InputError
from ._common import Progress, as_handle, check_int, model_session, record, report, tap_for
from .objectives import Activations, Objective, channel as channel_objective, diversity as diversity_objective
from .param import ImageParam
from .transforms import Transform, apply, describe, resolve_transforms

__all__ = ["FeatureVisualization", "optimize", "visualize_channel", "MIN_SIZE", "MAX_SIZE",
           "MAX_STEPS", "MAX_BATCH"]

MIN_SIZE = 32
MAX_SIZE = 512
MAX_STEPS = 10_000
MAX_BATCH = 16



@dataclass(frozen=True)
class FeatureVisualization:
    """The result of :func:`optimize` / :func:`visualize_channel`.

    ``images``: one RGB PIL image per batch element (``image`` is the first);
    ``tensor``: the same as a B x 3 x H x W float tensor in [0, 1] (CPU);
    ``trace``: the objective's value at each step done (measured on the transformed
    image the step optimised)."""

    images: Tuple[Image.Image, ...]
    tensor: torch.Tensor = field(repr=False)
    trace: Tuple[float, ...] = field(repr=False)
    objective: str
    size: Union[int, Tuple[int, int]]
    steps: int
    steps_done: int
    seed: int
    lr: float
    batch: int
    parameterization: str
    transforms: str
    seconds: float
    layer: Optional[str] = None
    channel: Optional[int] = None

    @property
    def image(self) -> Image.Image:
        return self.images[0]

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.seconds / max(1, self.steps_done)


def _size_pair(value, what: str) -> Tuple[int, int]:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (check_int(f"{what} height", value[0], MIN_SIZE, MAX_SIZE),
                check_int(f"{what} width", value[1], MIN_SIZE, MAX_SIZE))
    v = check_int(what, value, MIN_SIZE, MAX_SIZE)
    return v, v


def fixed_input_size(handle) -> bool:
    """Whether the model runs only at its own input size (vision transformers with fixed
    position embeddings): probed once, with one forward of a blank image 16 pixels
    larger than its input size (memoised on the handle)."""
    def probe() -> str:
        h, w = handle.input_size
        try:
            with model_session(handle):
                record(handle, torch.zeros(1, 3, h + 16, w + 16, device=handle.device), (), logits=True)
        except (RuntimeError, AssertionError, ValueError, InputError):
            return "fixed"
        return "any"

    return handle.memo("input_size_policy", probe) == "fixed"


def _to_pil(t: torch.Tensor) -> Image.Image:
    arr = (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).round()
    return Image.fromarray(arr.astype(np.uint8), "RGB")


def optimize(
    model,
    objective: Objective,
    size: Union[int, Tuple[int, int]] = 128,
    steps: int = 256,
    seed: int = 0,
    batch: int = 1,
    lr: float = 0.05,
    progress: Optional[Progress] = None,
    transforms: Union[str, None, Sequence[Transform]] = "standard",
    fft: bool = True,
    decorrelate: bool = True,
    resize_to: Union[int, Tuple[int, int], None] = None,
) -> FeatureVisualization:
    """Optimise ``batch`` images of ``size`` pixels for ``steps`` Adam steps (learning
    rate ``lr``) so that ``objective`` is as large as possible.

    ``seed`` fixes the start image and every random transform (nothing reads torch's
    global random state).  ``transforms``: ``"standard"`` (Lucid's pad / jitter / scale
    / rotate), ``None`` or a list of ``t(image, generator)`` callables.  ``fft`` /
    ``decorrelate``: the parameterization.  ``resize_to``: resize the transformed image
    to this size before the model, for models that need a fixed input size (vision
    transformers; by default the model's input size when it runs at no other size).  ``progress(step, total)`` is called after each step; raising
    :class:`interpret.Cancelled` in it stops the run (the model is left as it was).
    """
    handle = as_handle(model)
    if not isinstance(objective, Objective):
        raise InputError(
            "The objective must be an interpret.features objective, e.g. "
            "features.channel('_blocks.10', 7); got " + type(objective).__name__ + "."
        )
    h, w = _size_pair(size, "The image size")
    steps = check_int("The number of steps", steps, 1, MAX_STEPS)
    batch = check_int("The batch size", batch, 1, MAX_BATCH)
    seed = check_int("The seed", seed, 0, 2**63 - 1)
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        raise InputError(f"The learning rate must be a number; got {lr!r}.") from None
    if not 0.0 < lr <= 10.0 or not np.isfinite(lr):
        raise InputError(f"The learning rate must be in (0, 10]; got {lr}.")
    if resize_to is not None:
        resize_to = _size_pair(resize_to, "resize_to")
    elif fixed_input_size(handle):
        resize_to = tuple(handle.input_size)
    tfs = resolve_transforms(transforms)
    if progress is not None and not callable(progress):
        raise InputError("progress must be callable as progress(step, total).")
    handle.check_ready()
    objective.check(handle, batch)
    taps = [tap_for(handle, layer) for layer in objective.layers]

    device = handle.device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    param = ImageParam(batch, h, w, fft=fft, decorrelate=decorrelate, generator=gen, device=device)
    mean = torch.tensor(handle.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(handle.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    opt = torch.optim.Adam(param.params, lr=lr, maximize=True)

    trace = []
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        # the model is held (and guarded) for one step at a time, so that progress is
        # reported outside: it may use the model itself, or wait for another user of it
        with model_session(handle), torch.enable_grad():
            image = param()
            x = apply(tfs, image, gen) if tfs else image
            if resize_to is not None and tuple(x.shape[-2:]) != resize_to:
                x = F.interpolate(x, size=resize_to, mode="bilinear", align_corners=False)
            x = (x - mean) / std
            try:
                rec = record(handle, x, taps, logits=objective.logits, grad="keep")
                tensors, logits = rec.values, rec.logits
            except (RuntimeError, AssertionError) as exc:  # e.g. ViT's input-size assert
                raise InputError(
                    f"The model failed on a {x.shape[-2]}x{x.shape[-1]} image "
                    f"({str(exc).splitlines()[0][:200]}). If it needs a fixed input size, "
                    f"pass resize_to={tuple(handle.input_size)} (and/or transforms=None)."
                ) from None
            value = objective(Activations(handle, tensors, logits))
            if value.dim() != 0:
                raise InputError(f"The objective {objective.name} did not return a scalar.")
            v = float(value.detach())
            if not np.isfinite(v):
                raise InputError(
                    f"The objective became {v} at step {step}; try a smaller learning rate.")
            # gradients for the image parameters only: parameter .grad is never filled
            grads = torch.autograd.grad(value, param.params, allow_unused=True)
            if all(g is None for g in grads):
                raise InputError(f"The objective {objective.name} does not depend on the image.")
            for p, g in zip(param.params, grads):
                p.grad = torch.zeros_like(p) if g is None else g
            opt.step()
            opt.zero_grad(set_to_none=True)
            del value, tensors, logits, image, x, rec
        trace.append(v)
        report(progress, step, steps)
    with torch.no_grad():
        final = param().detach().float().cpu()
    seconds = time.perf_counter() - t0
    return FeatureVisualization(
        images=tuple(_to_pil(t) for t in final), tensor=final, trace=tuple(trace),
        objective=objective.name, size=h if h == w else (h, w), steps=steps,
        steps_done=len(trace), seed=seed, lr=lr, batch=batch,
        parameterization=param.describe(), transforms=describe(tfs), seconds=seconds,
    )


def visualize_channel(
    model,
    layer: str,
    channel: int,
    size: int = 128,
    steps: int = 256,
    seed: int = 0,
    progress: Optional[Progress] = None,
    *,
    batch: int = 1,
    diversity: float = 0.0,
    lr: float = 0.05,
    transforms: Union[str, None, Sequence[Transform]] = "standard",
    resize_to: Union[int, Tuple[int, int], None] = None,
) -> FeatureVisualization:
    """The image that makes channel ``channel`` of ``layer`` respond most (its mean
    activation), by :func:`optimize`.  With ``batch`` > 1 and ``diversity`` > 0,
    several images of the one channel pushed apart by the diversity term
    (``channel + diversity * diversity(layer)``), showing different facets of it.
    ``lr``, ``transforms`` and ``resize_to`` (for fixed-size models such as vision
    transformers) are passed to :func:`optimize`.

    >>> fv = interpret.visualize_channel(model, "_blocks.10", 7, size=128, steps=256)
    >>> fv.image, fv.trace[-1]
    """
    try:
        weight = float(diversity)
    except (TypeError, ValueError):
        raise InputError(f"diversity must be a number; got {diversity!r}.") from None
    if weight < 0 or not np.isfinite(weight):
        raise InputError(f"diversity must be zero or positive; got {diversity}.")
    obj = channel_objective(layer, channel)
    if weight > 0:
        obj = obj + weight * diversity_objective(layer)
    fv = optimize(model, obj, size=size, steps=steps, seed=seed, batch=batch, lr=lr,
                  progress=progress, transforms=transforms, resize_to=resize_to)
    return dataclasses.replace(fv, layer=layer, channel=int(channel))
