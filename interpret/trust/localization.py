"""Does the map point at the region a person marked?  The pointing game (Zhang et al.
2018, "Top-Down Neural Attention by Excitation Backprop", IJCV 126, section 5.1) and the
relevance mass (Arras et al. 2022, "CLEVR-XAI: A benchmark dataset for the ground truth
evaluation of neural network explanations", Information Fusion 81, eq. 2), with
Quantus's definitions (``PointingGame``, ``RelevanceMassAccuracy``): a hit when *any*
pixel of the map's maximum lies in the region; the mass is the map's sum inside the
region over its sum everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..methods.registry import Cost
from .registry import measure

__all__ = ["Localization", "localization", "box_mask"]

Box = Tuple[float, float, float, float]


def box_mask(shape: Tuple[int, int], box: Box) -> np.ndarray:
    """A boolean H x W mask of ``box = (x0, y0, x1, y1)`` in pixel-edge coordinates
    (the pixel in column j spans j..j+1, as PIL's crop boxes): the pixels whose centres
    lie inside the box, so an integer box (x0, y0, x1, y1) is rows y0..y1-1 and columns
    x0..x1-1."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"A box is four numbers (x0, y0, x1, y1); got {box!r}.") from None
    if not all(np.isfinite([x0, y0, x1, y1])):
        raise InputError(f"A box needs finite coordinates; got {box!r}.")
    h, w = int(shape[0]), int(shape[1])
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise InputError(f"The box {tuple(box)} lies outside the {w}x{h} map.")
    cols = (np.arange(w) + 0.5 >= x0) & (np.arange(w) + 0.5 <= x1)
    rows = (np.arange(h) + 0.5 >= y0) & (np.arange(h) + 0.5 <= y1)
    mask = rows[:, None] & cols[None, :]
    if not mask.any():
        raise InputError(f"The box {tuple(box)} contains no pixel centre; draw a larger one.")
    return mask


@dataclass(frozen=True)
class Localization:
    """``hit``: the map's maximum lies in the region (pointing game); ``mass``: the
    share of the map's total inside it (relevance mass, 0 to 1); ``area``: the share
    of the photo the region covers (a uniform map's mass); ``peak``: (row, column) of
    the map's first maximum."""

    hit: bool
    mass: float
    area: float
    peak: Tuple[int, int]

    @property
    def concentration(self) -> float:
        """``mass / area``: above 1 the map is concentrated in the region."""
        return self.mass / self.area if self.area > 0 else float("nan")

    def as_dict(self) -> dict:
        return {"hit": self.hit, "mass": self.mass, "area": self.area, "peak": list(self.peak)}


@measure("localization", label="Pointing game and relevance mass", kind="localisation",
         measures="Whether the map's hottest point lies in the region a person marked, and "
                  "what share of the map's total falls inside it.",
         paper="https://arxiv.org/abs/1608.00507",
         citation="Zhang et al. 2018 (pointing game); Arras et al. 2022 (relevance mass)",
         cost=lambda handle, params: Cost(0, 0, note="no forwards: reads the finished map"))
def localization(heatmap, box: Union[Box, Sequence[float], np.ndarray, None] = None) -> Localization:
    """The pointing game and relevance mass of a map (an H x W array, non-negative, or
    an :class:`~interpret.Explanation`, whose heatmap is used) for a region: a box
    ``(x0, y0, x1, y1)`` in map pixels (pixel-edge coordinates, see :func:`box_mask`) or
    a boolean H x W mask.  ``box=None``: the explanation's own region (a segment's,
    :func:`interpret.targets.region`): how much of the map lies on the segment explained."""
    from ..explain import Explanation

    if box is None:
        region = getattr(getattr(heatmap, "explained", None), "region", None)
        if region is None:
            raise InputError("Give a box or a mask: this explanation has no region of its own "
                             "(only a segmentation target, interpret.targets.region, has one).")
        box = region.detach().cpu().numpy().astype(bool)
    hm = heatmap.heatmap if isinstance(heatmap, Explanation) else heatmap
    a = np.asarray(hm, np.float64)
    if a.ndim != 2 or a.size == 0:
        raise InputError(f"A heatmap must be a 2-D H x W array; got shape {a.shape}.")
    if not np.isfinite(a).all():
        raise InputError("The heatmap contains NaN or infinite values.")
    if (a < 0).any():
        raise InputError("The relevance mass needs a non-negative map (a heatmap in [0, 1]); "
                         "this one has negative values.")
    arr = np.asarray(box)
    if arr.dtype == bool:
        if arr.shape != a.shape:
            raise InputError(f"The mask is {arr.shape[0]}x{arr.shape[1]} but the map is "
                             f"{a.shape[0]}x{a.shape[1]}.")
        mask = arr
        if not mask.any():
            raise InputError("The mask is empty: mark at least one pixel.")
    else:
        mask = box_mask(a.shape, box)
    total = float(a.sum())
    peak_mask = a == a.max()
    hit = bool((peak_mask & mask).any())  # Quantus: any maximal pixel on the object
    mass = float(a[mask].sum() / total) if total > 0 else 0.0
    r, c = np.unravel_index(int(np.argmax(a)), a.shape)
    return Localization(hit=hit, mass=mass, area=float(mask.mean()), peak=(int(r), int(c)))
