"""Where the evidence sits, per image and per class, and the shortcut flags.

Every region measure is a share of a map's *mass*: the map (a CAM after its ReLU,
Grad-CAM's convention) is upsampled bilinearly from the layer's resolution to the
model's input size, exactly as it is drawn, and divided by its sum; the share of a
region is then the sum over that region's pixels.  Regions are boxes (x0, y0, x1, y1)
in fractions of the image as the model sees it, so every query is four look-ups in an
integral image.

Shortcut flags ("Clever Hans" evidence, Lapuschkin et al. 2019,
https://doi.org/10.1038/s41467-019-08987-4):

* **concentration**: a class whose maps put at least ``concentration`` of their mass
  in the same small region (where the class's mean map is at least ``hot`` = 0.3 of
  its maximum, at most ``max_area`` of the image, not the image centre, where objects are usually
  photographed) in at least ``consistency`` of its images;
* **outside the box**: a class with a box given by a person (or per-image boxes) whose
  maps put at least ``outside`` of their mass outside that box in at least
  ``outside_consistency`` of its images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..words import region, where

Box = Tuple[float, float, float, float]

__all__ = ["Flag", "FlagRules", "upsampled", "box_shares", "grid_boxes", "hot_box", "region_name",
           "normalise", "find_flags", "BORDER", "CENTRE"]

#: Width of the border band, as a fraction of the image's side.
BORDER = 0.125
#: The centre region: the middle half of the image in each direction.
CENTRE: Box = (0.25, 0.25, 0.75, 0.75)
CHUNK = 64


@dataclass(frozen=True)
class Flag:
    """A class whose evidence looks like a shortcut.  ``label``: the class; ``box``:
    where its maps concentrate, (x0, y0, x1, y1) in fractions of the model's view;
    ``sentence``: for people; ``kind``: ``"concentration"`` or ``"outside_box"``;
    ``share``: the mean share of map mass in ``box`` (concentration) or outside the
    given box (outside_box); ``fraction``: of the class's images that meet the rule;
    ``paths``: those images, strongest first; ``given_box``: the person's box."""

    label: str
    box: Box
    sentence: str
    kind: str = "concentration"
    share: float = float("nan")
    fraction: float = float("nan")
    images: int = 0
    paths: Tuple[str, ...] = field(default=(), repr=False)
    given_box: Optional[Box] = None


@dataclass(frozen=True)
class FlagRules:
    """The thresholds of :func:`find_flags` (see the module docstring)."""

    min_images: int = 5
    hot: float = 0.3
    concentration: float = 0.5
    consistency: float = 0.8
    max_area: float = 0.2
    outside: float = 0.5
    outside_consistency: float = 0.5


def normalise(maps: np.ndarray, kind: str = "cam") -> np.ndarray:
    """N x h x w maps as mass: ReLU (CAMs) and divided by the sum (NaN where a map
    has no positive mass)."""
    m = np.asarray(maps, dtype=np.float64)
    if kind == "cam":
        m = np.maximum(m, 0.0)
    else:
        m = np.clip(m, 0.0, None)
    s = m.reshape(m.shape[0], -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = m / s[:, None, None]
    out[s <= 0] = np.nan
    return out


def upsampled(maps: np.ndarray, size: Tuple[int, int]) -> torch.Tensor:
    """N x h x w mass maps -> N x H x W (bilinear, half-pixel centres, as drawn),
    renormalised to sum 1."""
    t = torch.from_numpy(np.nan_to_num(np.asarray(maps, dtype=np.float32)))
    up = F.interpolate(t[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    up = up.clamp(min=0).double()
    s = up.flatten(1).sum(1).clamp(min=1e-30)
    return up / s[:, None, None]


def _pixels(box: Box, size: Tuple[int, int]) -> Tuple[int, int, int, int]:
    H, W = size
    x0, y0, x1, y1 = box
    c0, c1 = int(round(x0 * W)), int(round(x1 * W))
    r0, r1 = int(round(y0 * H)), int(round(y1 * H))
    c1, r1 = max(c1, c0 + 1), max(r1, r0 + 1)
    return max(0, r0), max(0, c0), min(H, r1), min(W, c1)


def box_shares(maps: np.ndarray, boxes: Sequence[Box], size: Tuple[int, int],
               per_image: Optional[np.ndarray] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(N x Q shares of each map's mass in each of ``boxes``, N shares in each image's
    own box of ``per_image`` (N x 4, NaN rows: none) or None).  Maps: N x h x w mass
    (:func:`normalise`); NaN maps give NaN shares.  Computed in chunks, with one
    integral image per map."""
    maps = np.asarray(maps)
    n = maps.shape[0]
    out = np.full((n, len(boxes)), np.nan)
    own = np.full(n, np.nan) if per_image is not None else None
    pix = [_pixels(b, size) for b in boxes]
    valid = ~np.isnan(maps.reshape(n, -1)).any(1) if n else np.zeros(0, bool)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        up = upsampled(maps[lo:hi], size)
        ii = F.pad(up.cumsum(1).cumsum(2), (1, 0, 1, 0))  # integral image, (H+1) x (W+1)

        def mass(r0, c0, r1, c1):
            return (ii[:, r1, c1] - ii[:, r0, c1] - ii[:, r1, c0] + ii[:, r0, c0]).numpy()

        for q, (r0, c0, r1, c1) in enumerate(pix):
            out[lo:hi, q] = mass(r0, c0, r1, c1)
        if own is not None:
            for j in range(lo, hi):
                b = per_image[j]
                if b is not None and not np.isnan(np.asarray(b, dtype=np.float64)).any():
                    r0, c0, r1, c1 = _pixels(tuple(float(v) for v in b), size)
                    own[j] = float(ii[j - lo, r1, c1] - ii[j - lo, r0, c1] - ii[j - lo, r1, c0]
                                   + ii[j - lo, r0, c0])
    out[~valid] = np.nan
    if own is not None:
        own[~valid] = np.nan
    return np.clip(out, 0.0, 1.0), (np.clip(own, 0.0, 1.0) if own is not None else None)


def grid_boxes(grid: int) -> List[Box]:
    """The ``grid`` x ``grid`` cells, row by row from the top-left."""
    e = np.linspace(0.0, 1.0, grid + 1)
    return [(float(e[c]), float(e[r]), float(e[c + 1]), float(e[r + 1]))
            for r in range(grid) for c in range(grid)]


def hot_box(mean_map: np.ndarray, size: Tuple[int, int], threshold: float = 0.3) -> Box:
    """The bounding box (fractions) of the pixels of an upsampled mean mass map at or
    above ``threshold`` of its maximum."""
    up = upsampled(np.asarray(mean_map)[None], size)[0].numpy()
    H, W = up.shape
    peak = up.max()
    if not np.isfinite(peak) or peak <= 0:
        return (0.0, 0.0, 1.0, 1.0)
    ys, xs = np.nonzero(up >= threshold * peak)
    return (float(xs.min() / W), float(ys.min() / H), float((xs.max() + 1) / W), float((ys.max() + 1) / H))


def region_name(box: Box) -> str:
    """Where a box sits, in words: "top-right corner", "left edge", "centre"..."""
    return where(box)


def contains_centre(box: Box) -> bool:
    x0, y0, x1, y1 = box
    return x0 <= 0.5 <= x1 and y0 <= 0.5 <= y1


def _fmt_box(b: Box) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in b) + ")"


def find_flags(labels: Sequence[str], paths: Sequence[str], maps: np.ndarray, size: Tuple[int, int],
               order: Sequence[str], class_boxes: Optional[Dict[str, Box]] = None,
               image_boxes: Optional[np.ndarray] = None, rules: FlagRules = FlagRules(),
               method_label: str = "Grad-CAM") -> List[Flag]:
    """The shortcut flags of a set: ``labels`` and ``paths`` per image, ``maps`` N x h
    x w mass maps (:func:`normalise`), ``order``: the classes in label order;
    ``class_boxes`` {label: box} and ``image_boxes`` (N x 4, NaN: none) given by people."""
    labels = np.asarray(labels, dtype=object)
    paths = np.asarray(paths, dtype=object)
    class_boxes = dict(class_boxes or {})
    flags: List[Flag] = []
    for lab in order:
        idx = np.nonzero(labels == lab)[0]
        if idx.size == 0:
            continue
        m = maps[idx]
        good = ~np.isnan(m.reshape(len(idx), -1)).any(1)
        idx, m = idx[good], m[good]
        n = len(idx)
        if n < rules.min_images:
            continue
        mean = m.mean(0)
        hot = hot_box(mean, size, rules.hot)
        inside = box_shares(m, [hot], size)[0][:, 0]
        area = (hot[2] - hot[0]) * (hot[3] - hot[1])
        frac = float(np.mean(inside >= rules.concentration))
        if area <= rules.max_area and not contains_centre(hot) and frac >= rules.consistency:
            k = int(np.sum(inside >= rules.concentration))
            where = region_name(hot)
            order_i = np.argsort(-inside, kind="stable")
            flags.append(Flag(
                label=lab, box=hot, kind="concentration", share=float(inside.mean()), fraction=frac,
                images=n, paths=tuple(paths[idx[order_i]]),
                sentence=(f"'{lab}': in {k} of {n} images at least {rules.concentration:.0%} of the "
                          f"{method_label} map lies in the same small region, the {where} "
                          f"({area:.0%} of the image; on average {inside.mean():.0%} of the map). "
                          "Check whether the class's objects really sit there, or whether something "
                          "else does: a watermark, a border, a background.")))
        given = np.full((n, 4), np.nan)
        if lab in class_boxes:
            given[:] = np.asarray(class_boxes[lab], dtype=np.float64)
        if image_boxes is not None:
            own = np.asarray(image_boxes, dtype=np.float64)[idx]
            has = ~np.isnan(own).any(1)
            given[has] = own[has]
        has_box = ~np.isnan(given).any(1)
        if has_box.sum() >= rules.min_images:
            _, ins = box_shares(m[has_box], [], size, per_image=given[has_box])
            out = 1.0 - ins
            frac_out = float(np.mean(out >= rules.outside))
            if frac_out >= rules.outside_consistency:
                k = int(np.sum(out >= rules.outside))
                nb = int(has_box.sum())
                gb = tuple(float(v) for v in given[has_box][0]) if lab in class_boxes else None
                order_o = np.argsort(-out, kind="stable")
                flags.append(Flag(
                    label=lab, box=hot, kind="outside_box", share=float(out.mean()), fraction=frac_out,
                    images=nb, paths=tuple(paths[idx[has_box][order_o]]), given_box=gb,
                    sentence=(f"'{lab}': in {k} of {nb} images at least {rules.outside:.0%} of the "
                              f"{method_label} map falls outside the object's box"
                              + (f" {_fmt_box(gb)}" if gb else "")
                              + f" (on average {out.mean():.0%} outside); the evidence sits mostly in "
                              f"{region(hot)}.")))
    return flags
