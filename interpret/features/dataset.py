"""Dataset examples: over a set of images, which images and which image patches make a
channel respond most (Olah et al. 2017, "Dataset Examples"; OpenAI Microscope).

One batched pass over the set records, for every channel of the layer at once, each
image's maximum activation, where the maximum is, and the mean activation
(:func:`layer_statistics`), cached on the model handle per model and image set, so
browsing channels afterwards costs nothing.  The patch shown for an image is the
channel's receptive field around its maximum: the *effective* receptive field, the
square that holds most of the unit's input gradient (Luo et al. 2016), measured once
per layer (:func:`receptive_field`), because the theoretical one of a mid layer
often spans the whole input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..handle import ModelHandle
from ._common import (Progress, as_handle, as_maps, batches, check_int, map_shape, model_session,
                      record, report, tap_for)
from .imagesets import as_image_set

__all__ = ["LayerStatistics", "ReceptiveField", "Example", "layer_statistics",
           "receptive_field", "top_activating", "activation_means"]



@dataclass(frozen=True)
class LayerStatistics:
    """Per image and channel of ``layer`` (N x C arrays): ``max`` activation, ``argmax``
    (flat index into the ``map_size`` grid), ``mean`` activation.  Images went through
    the model's own preprocessing (``input_size``)."""

    layer: str
    names: Tuple[str, ...]
    max: np.ndarray = field(repr=False)
    argmax: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    map_size: Tuple[int, int]
    input_size: Tuple[int, int]
    seconds: float

    @property
    def channels(self) -> int:
        return int(self.max.shape[1])


@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of ``layer`` looks, in model-input pixels: ``size`` is the side of
    the square around the unit holding ``mass`` of its input-gradient magnitude (the
    effective receptive field); ``theoretical`` (h, w) the extent of every input pixel
    with any gradient; ``stride`` (y, x) input pixels per map step; ``centre`` the
    input position of the centre unit ``centre_unit`` of the map."""

    layer: str
    size: int
    theoretical: Tuple[int, int]
    stride: Tuple[float, float]
    centre: Tuple[float, float]
    centre_unit: Tuple[int, int]
    mass: float

    def box(self, y: int, x: int, input_size: Tuple[int, int]) -> Tuple[int, int, int, int]:
        """(left, top, right, bottom) of the square patch for map position (y, x),
        shifted to lie inside the input (so every patch has the same size)."""
        H, W = input_size
        s = min(self.size, H, W)
        cy = self.centre[0] + (y - self.centre_unit[0]) * self.stride[0]
        cx = self.centre[1] + (x - self.centre_unit[1]) * self.stride[1]
        top = int(round(min(max(cy - s / 2.0, 0), H - s)))
        left = int(round(min(max(cx - s / 2.0, 0), W - s)))
        return left, top, left + s, top + s


@dataclass(frozen=True)
class Example:
    """One dataset example.  Unpacks as ``(index, score, patch)``; also ``name``,
    ``position`` (y, x) of the maximum in the layer's map, ``box`` of the patch in
    model-input pixels, and ``image``: the whole image as the model saw it."""

    index: int
    score: float
    patch: Image.Image
    name: str
    position: Tuple[int, int]
    box: Tuple[int, int, int, int]
    image: Image.Image = field(repr=False)

    def __iter__(self):
        return iter((self.index, self.score, self.patch))


def _batch_tensor(handle: ModelHandle, images: List[Image.Image]) -> torch.Tensor:
    return torch.cat([handle.preprocess(im) for im in images], 0)


def layer_statistics(model, images, layer: str, batch_size: int = 16,
                     progress: Optional[Progress] = None) -> LayerStatistics:
    """Max, position of the max and mean of every channel of ``layer`` for every image
    of ``images`` (see :func:`as_image_set`), in batches of ``batch_size``.
    ``progress(done, total)`` after each batch (raise :class:`interpret.Cancelled` in
    it to stop).  Cached on
    the handle per model, layer and image set."""
    handle = as_handle(model)
    iset = as_image_set(images)
    batch_size = check_int("The batch size", batch_size, 1, 512)
    tap = tap_for(handle, layer)
    map_shape(handle, layer)  # a clear error for layers without channels
    key = ("features.layer_statistics", handle.fingerprint_fast(), repr(handle.preprocessing),
           layer, iset.key)
    cached = handle.cache_get(key)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    maxes, argmaxes, means = [], [], []
    map_size = None
    n = len(iset)
    for lo, hi in batches(n, batch_size):
        x = _batch_tensor(handle, list(iset.images[lo:hi]))
        with model_session(handle):  # held per batch: progress is reported outside
            tensors = record(handle, x, [tap], logits=False).values
            m = as_maps(handle, tensors[tap.key], f"Layer '{layer}'").float()
        map_size = (int(m.shape[2]), int(m.shape[3]))
        flat = m.flatten(2)
        mx, am = flat.max(dim=2)
        maxes.append(mx.cpu())
        argmaxes.append(am.cpu())
        means.append(flat.mean(dim=2).cpu())
        report(progress, hi, n)
    stats = LayerStatistics(
        layer=layer, names=iset.names, max=torch.cat(maxes).numpy(),
        argmax=torch.cat(argmaxes).numpy().astype(np.int64), mean=torch.cat(means).numpy(),
        map_size=map_size, input_size=tuple(handle.input_size),
        seconds=time.perf_counter() - t0)
    handle.cache_put(key, stats)
    return stats


def receptive_field(model, layer: str, mass: float = 0.9, samples: int = 4,
                    seed: int = 0) -> ReceptiveField:
    """Measure the receptive field of the centre unit of ``layer`` from the gradient
    of its activation (summed over channels) with respect to ``samples`` random
    normal inputs (seeded): the extent of any gradient is the theoretical field, the
    centred square holding ``mass`` of the gradient magnitude the effective one.
    Cached on the handle per layer."""
    handle = as_handle(model)
    if not 0.0 < float(mass) <= 1.0:
        raise InputError(f"mass must be in (0, 1]; got {mass}.")
    samples = check_int("samples", samples, 1, 64)
    tap = tap_for(handle, layer)
    key = ("features.receptive_field", handle.fingerprint_fast(), layer, float(mass), samples, seed)
    cached = handle.cache_get(key)
    if cached is not None:
        return cached
    H, W = handle.input_size
    g = torch.Generator().manual_seed(int(seed))
    x = torch.randn((samples, 3, H, W), generator=g).to(handle.device).requires_grad_(True)
    with model_session(handle):
        tensors = record(handle, x, [tap], logits=False, grad="keep").values
        m = as_maps(handle, tensors[tap.key], f"Layer '{layer}'")
        h, w = int(m.shape[2]), int(m.shape[3])
        cy, cx = h // 2, w // 2
        if not m.requires_grad:
            raise InputError(f"Layer '{layer}' does not depend on the input (no gradient).")
        (grad,) = torch.autograd.grad(m[:, :, cy, cx].sum(), [x], allow_unused=True)
    stride = (H / h, W / w)
    if grad is None or float(grad.abs().sum()) == 0.0 or (h == 1 and w == 1):
        rf = ReceptiveField(layer, min(H, W), (H, W), stride, (H / 2.0, W / 2.0), (cy, cx), float(mass))
        handle.cache_put(key, rf)
        return rf
    gmap = grad.detach().abs().sum(dim=(0, 1)).double().cpu().numpy()
    total = gmap.sum()
    rows = np.nonzero(gmap.sum(1) > total * 1e-9)[0]
    cols = np.nonzero(gmap.sum(0) > total * 1e-9)[0]
    theoretical = (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))
    ys, xs = np.mgrid[0:H, 0:W]
    centre_y = float((gmap * (ys + 0.5)).sum() / total)
    centre_x = float((gmap * (xs + 0.5)).sum() / total)
    # grow a centred square until it holds `mass` of the gradient (summed-area table)
    sat = np.pad(gmap.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    size = max(H, W)
    for s in range(2, max(H, W) + 1):
        t = int(round(min(max(centre_y - s / 2.0, 0), max(H - s, 0))))
        l = int(round(min(max(centre_x - s / 2.0, 0), max(W - s, 0))))
        b, r = min(H, t + s), min(W, l + s)
        inside = sat[b, r] - sat[t, r] - sat[b, l] + sat[t, l]
        if inside >= float(mass) * total:
            size = s
            break
    rf = ReceptiveField(layer, int(size), theoretical, stride, (centre_y, centre_x), (cy, cx), float(mass))
    handle.cache_put(key, rf)
    return rf


def top_activating(model, images, layer: str, channel: int, k: int = 9, *, by: str = "max",
                   batch_size: int = 16, progress: Optional[Progress] = None) -> List[Example]:
    """The ``k`` images of ``images`` (a list, an :class:`ImageSet`, a folder or a zip;
    see :func:`as_image_set`) on which channel ``channel`` of ``layer`` responds most,
    best first, each with the patch of the image around the channel's maximum (the
    layer's effective receptive field, :func:`receptive_field`).

    ``by="max"`` ranks by the strongest single position (the patch is what it
    responds to); ``by="mean"`` by the mean over the image.  Unpack each result as
    ``(image_index, score, patch)``; the index is into the image set.
    """
    handle = as_handle(model)
    if by not in ("max", "mean"):
        raise InputError(f"by must be 'max' or 'mean'; got {by!r}.")
    k = check_int("k", k, 1, 10_000)
    tap_for(handle, layer)
    n_channels, _ = map_shape(handle, layer)
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
        raise InputError(f"A channel must be a whole number; got {channel!r}.")
    if not 0 <= int(channel) < n_channels:
        raise InputError(
            f"Channel {channel} is out of range: layer '{layer}' has {n_channels} channels "
            f"(0-{n_channels - 1}).")
    c = int(channel)
    iset = as_image_set(images)
    stats = layer_statistics(handle, iset, layer, batch_size=batch_size, progress=progress)
    rf = receptive_field(handle, layer)
    scores = stats.max[:, c] if by == "max" else stats.mean[:, c]
    order = np.argsort(-scores, kind="stable")[:k]
    h, w = stats.map_size
    out = []
    for i in order:
        pos = divmod(int(stats.argmax[i, c]), w)
        view = handle.preprocessing.model_view(iset.images[i])
        box = rf.box(pos[0], pos[1], stats.input_size)
        out.append(Example(int(i), float(scores[i]), view.crop(box), iset.names[i], pos, box, view))
    return out


def activation_means(model, images, layer: str, channel: Optional[int] = None, *,
                     native: bool = False, batch_size: int = 16) -> np.ndarray:
    """The mean activation of each channel of ``layer`` (N x C), or of ``channel`` only
    (N), for each image.  ``native``: feed each image at its own size, only scaled and
    normalised (as :func:`optimize` feeds its images), instead of the model's resize
    and crop."""
    handle = as_handle(model)
    iset = as_image_set(images)
    n_channels, _ = map_shape(handle, layer)
    if channel is not None and not 0 <= int(channel) < n_channels:
        raise InputError(
            f"Channel {channel} is out of range: layer '{layer}' has {n_channels} channels "
            f"(0-{n_channels - 1}).")
    if not native:
        means = layer_statistics(handle, iset, layer, batch_size=batch_size).mean
    else:
        tap = tap_for(handle, layer)
        pre = handle.preprocessing
        rows = []
        with model_session(handle):
            for im in iset.images:
                x = pre.normalize(pre.scale(im))
                tensors = record(handle, x.to(handle.device), [tap], logits=False).values
                m = as_maps(handle, tensors[tap.key], f"Layer '{layer}'")
                rows.append(m.float().mean(dim=(2, 3))[0].cpu())
        means = torch.stack(rows).numpy()
    return means if channel is None else means[:, int(channel)]
