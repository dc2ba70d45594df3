"""From raw attributions to display: min-max scaling, the heatmap rules of the
registry's methods, and tiling maps into one image.

Methods return raw, signed attributions; these helpers are the one place where they
are scaled for people (:func:`heatmap`), for figures and TensorBoard (:func:`minmax`,
:func:`tile`) and for Score-CAM's masks.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

Array = Union[np.ndarray, torch.Tensor]

#: how :func:`heatmap` turns each kind of attribution into a [0, 1] map
HEATMAP_RULES = {
    "cam": "ReLU, min-max scale, bilinear upsampling to the input (Grad-CAM's convention)",
    "maps": "min-max scale of a signed map, bilinear upsampling (activations)",
    "abs_max": "largest absolute value over colour channels, clipped at the 99th percentile",
    "abs_sum": "sum of absolute values over colour channels, clipped at the 99th percentile",
    "positive_sum": "positive part of the sum over colour channels, scaled by its maximum",
}


def minmax(a: Array, per_item: bool = False, eps: float = 1e-7) -> Array:
    """``(a - min) / (max - min)``, over the whole array or (``per_item``) over each
    entry of the first axis.  Constant inputs give zeros.  numpy in, numpy out; torch
    in, torch out."""
    if isinstance(a, torch.Tensor):
        t = a.float()
        if per_item:
            flat = t.reshape(t.shape[0], -1)
            shape = (t.shape[0],) + (1,) * (t.dim() - 1)
            lo, hi = flat.min(1).values.view(shape), flat.max(1).values.view(shape)
        else:
            lo, hi = t.min(), t.max()
        return ((t - lo) / (hi - lo + eps)).clamp(0, 1)
    m = np.asarray(a, dtype=np.float32)
    if per_item:
        flat = m.reshape(m.shape[0], -1)
        shape = (m.shape[0],) + (1,) * (m.ndim - 1)
        lo, hi = flat.min(1).reshape(shape), flat.max(1).reshape(shape)
    else:
        lo, hi = m.min(), m.max()
    return np.clip((m - lo) / (hi - lo + eps), 0, 1).astype(np.float32)


def upsample(m: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling (half-pixel centres, as OpenCV's resize) of an h x w map."""
    return F.interpolate(m[None, None].float(), size=tuple(size), mode="bilinear", align_corners=False)[0, 0]


def _percentile_scale(m: np.ndarray, percentile: float) -> np.ndarray:
    hi = float(np.percentile(m, percentile)) if m.size else 0.0
    if hi <= 0:
        hi = float(m.max()) if m.size and m.max() > 0 else 1.0
    return np.clip(m / hi, 0, 1).astype(np.float32)


def heatmap(attribution: torch.Tensor, rule: str, size: Tuple[int, int],
            percentile: float = 99.0) -> np.ndarray:
    """An H x W float32 map in [0, 1] at ``size`` from a raw attribution, by one of
    :data:`HEATMAP_RULES`: ``"cam"`` and ``"maps"`` take an h x w map (any leading
    singleton axes), the others a 1 x 3 x H x W input attribution.

    The CAM rule is Grad-CAM's and pytorch-grad-cam's (``scale_cam_image``), so maps are
    comparable across tools; clipping gradient maps at a percentile keeps a few extreme
    pixels from washing them out (the usual practice, e.g. Smilkov et al. 2017)."""
    a = attribution.detach().float()
    if rule in ("cam", "maps"):
        m = a.reshape(a.shape[-2:])
        if rule == "cam":
            m = m.clamp(min=0)
        return upsample(minmax(m), size).clamp(0, 1).cpu().numpy().astype(np.float32)
    x = a[0] if a.dim() == 4 else a
    if rule == "abs_max":
        m = x.abs().amax(0)
    elif rule == "abs_sum":
        m = x.abs().sum(0)
    elif rule == "positive_sum":
        m = x.sum(0).clamp(min=0)
        percentile = 100.0
    else:
        raise ValueError(f"unknown heatmap rule {rule!r}; one of {', '.join(HEATMAP_RULES)}")
    return _percentile_scale(m.cpu().numpy(), percentile)


def grid_shape(n: int, tile: Tuple[int, int] = (1, 1), cols: Optional[int] = None) -> Tuple[int, int]:
    """(rows, cols) for ``n`` tiles of ``tile`` (h, w): about square overall."""
    th, tw = tile
    if cols is None:
        cols = max(1, int(np.ceil(np.sqrt(n * th / max(tw, 1))))) if n else 1
    return max(1, int(np.ceil(n / cols))), int(cols)


def tile(tiles: Sequence[np.ndarray], cols: Optional[int] = None, gap: int = 2,
         fill: Tuple[int, int, int] = (255, 255, 255)) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Lay out equally sized h x w x 3 uint8 tiles row by row on one image, ``gap``
    pixels apart on a ``fill`` background.  Returns (image, (rows, cols))."""
    arr = np.asarray(tiles)
    n = int(arr.shape[0]) if arr.ndim == 4 else 0
    th, tw = (int(arr.shape[1]), int(arr.shape[2])) if n else (1, 1)
    rows, cols = grid_shape(n, (th, tw), cols)
    out = np.empty((rows * (th + gap) - gap, cols * (tw + gap) - gap, 3), np.uint8)
    out[:] = np.asarray(fill, np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * (th + gap), c * (tw + gap)
        out[y:y + th, x:x + tw] = arr[k]
    return out, (rows, cols)
