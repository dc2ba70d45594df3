"""Concepts across a labelled set (dataset mode): for each class, the concepts (channels
of a layer) its photos' decisions rest on most, and for a shortcut flag the concepts
that carry the relevance in the flagged region.

One LRP pass per batch (:func:`~interpret.concepts.crp.layer_relevance`, on the private
copy, under the writer lock) gives every channel's relevance map at the layer for each
photo's own explained class (a vision transformer: AttnLRP at a block's output tokens,
:func:`~interpret.concepts.vit.layer_relevance`, the patch tokens on their grid and the
class token's relevance counted in the photo's total but in no region).  From it:

* a class's concepts: each channel's share of a photo's layer relevance (its summed
  relevance over the sum of the absolute relevances of all channels, CRP's
  ``abs_norm``), averaged over the class's photos (:meth:`ReferenceTable.by_class`);
* a region's concepts: each channel's relevance *in a region* of the photo (the
  region's box, in fractions of the model's view, laid on the layer's grid with each
  cell weighted by the fraction of it inside the box), over the sum of the absolute
  in-region relevances of all channels, averaged over the flagged photos.  A
  concentration flag's region is the small region its maps concentrate in; an
  "outside the box" flag's region is everything outside the box given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError, Progress, report
from ..handle import session
from ..layers import check_layer
from .crp import ReferenceTable, checked, layer_relevance

__all__ = ["Region", "RegionConcepts", "DatasetConcepts", "dataset_concepts", "box_weights", "MAX_IMAGES"]

#: photos one call may analyse (bounded before any is run)
MAX_IMAGES = 500

Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class Region:
    """A region of some photos of the set whose relevance is to be split into concepts:
    ``name`` (for people), ``images`` (indices into the set), ``box`` (x0, y0, x1, y1
    in fractions of the model's view) and ``inside`` (False: everything outside the
    box)."""

    name: str
    images: Tuple[int, ...]
    box: Box
    inside: bool = True


@dataclass(frozen=True)
class RegionConcepts:
    """The concepts that carry a region's relevance: ``concepts`` ((channel, mean share
    of the in-region relevance), strongest first) over ``images`` photos;
    ``relevance_share``: the region's mean share of the photos' whole relevance at the
    layer (how much of the decision sits there)."""

    region: Region
    images: int
    relevance_share: float
    concepts: Tuple[Tuple[int, float], ...]


@dataclass(frozen=True)
class DatasetConcepts:
    """The result of :func:`dataset_concepts`: ``table`` (a :class:`ReferenceTable`
    whose ``classes`` are the classes explained: ``table.by_class(k)`` and
    ``table.patches(channel, cls=c)``), ``by_class`` (its ``by_class(k)``) and
    ``regions`` (one :class:`RegionConcepts` per region asked for)."""

    layer: str
    table: ReferenceTable
    by_class: Tuple[Tuple[int, int, Tuple[Tuple[int, float], ...]], ...]
    regions: Tuple[RegionConcepts, ...]
    seconds: float


def _overlap(lo: float, hi: float, n: int) -> np.ndarray:
    edges = np.arange(n + 1) / n
    return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None) * n


def box_weights(box: Box, size: Tuple[int, int], inside: bool = True) -> np.ndarray:
    """The h x w weights of a box on a layer's grid: each cell's fraction inside the box
    (``inside``) or outside it."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise InputError(f"A region's box must be 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1; got {box}.")
    h, w = size
    m = np.outer(_overlap(y0, y1, h), _overlap(x0, x1, w))
    return m if inside else 1.0 - m


def dataset_concepts(model, images, targets: Sequence[int], layer: Optional[str] = None, *,
                     regions: Sequence[Region] = (), k: int = 3, composite: str = "epsilon_plus_flat",
                     batch_size: int = 8, progress: Optional[Progress] = None) -> DatasetConcepts:
    """Dataset mode: ``images`` (a list, a folder or a zip: at most :data:`MAX_IMAGES`),
    each explained for its class in ``targets`` (class indices, one per image: the
    label or the prediction, as the dataset run explained it); each class's ``k`` most
    relevant concepts of ``layer`` and, for each :class:`Region`, the ``k`` concepts
    that carry its relevance.  ``progress(done, total)`` per batch (raise
    :class:`interpret.Cancelled` in it to stop)."""
    from ..features.imagesets import as_image_set

    handle, composite = checked(model, "Concepts", composite)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= 64:
        raise InputError(f"k must be a whole number from 1 to 64; got {k!r}.")
    iset = as_image_set(images)
    n = len(iset)
    if n == 0:
        raise InputError("The set has no photos.")
    if n > MAX_IMAGES:
        raise InputError(f"The set has {n} photos; at most {MAX_IMAGES} are analysed at once.")
    tg = np.asarray(list(targets))
    if tg.shape != (n,) or tg.dtype.kind not in "iu":
        raise InputError(f"Give one class index per photo: {n} photos, {tg.size} classes.")
    regions = tuple(regions)
    for r in regions:
        if not r.images or any(not 0 <= int(i) < n for i in r.images):
            raise InputError(f"Region '{r.name}' names photos that are not in the set.")
        box_weights(r.box, (2, 2), r.inside)  # checks the box
    from . import vit

    tokens = composite == vit.COMPOSITE  # a ViT: AttnLRP on the block's tokens
    layer = vit._resolve_layer(handle, layer) if tokens else check_layer(handle, layer)
    t0 = time.perf_counter()
    shares, argmaxes, classes = [], [], []
    in_region = {j: {} for j in range(len(regions))}  # region -> image -> (C in-region relevance, fraction)
    map_size = None
    report(progress, 0, n)
    for lo in range(0, n, batch_size):
        x = torch.cat([handle.preprocess(im) for im in iset.images[lo:lo + batch_size]], 0)
        with session(handle, exclusive=True):
            given = torch.as_tensor(tg[lo:lo + len(x)])
            if tokens:  # patch tokens on their grid; the prefix tokens' relevance beside them
                rel, extra, cls = vit.layer_relevance(handle, x, layer, given)
                extra = extra.cpu().numpy()
            else:
                (rel, cls), extra = layer_relevance(handle, x, layer, composite, given), 0.0
        rel = rel.cpu().numpy()
        map_size = (int(rel.shape[2]), int(rel.shape[3]))
        per = rel.sum((2, 3)) + extra
        shares.append(per / (np.abs(per).sum(1, keepdims=True) + 1e-12))
        argmaxes.append(rel.reshape(rel.shape[0], rel.shape[1], -1).argmax(2))
        classes.append(cls.numpy())
        for j, r in enumerate(regions):
            wts = None
            for i in r.images:
                if lo <= int(i) < lo + len(x):
                    if wts is None:
                        wts = box_weights(r.box, map_size, r.inside)
                    cin = (rel[int(i) - lo] * wts).sum((1, 2))
                    whole = float(np.abs(per[int(i) - lo]).sum())
                    in_region[j][int(i)] = (cin, float(cin.sum()) / whole if whole > 0 else float("nan"))
        report(progress, min(n, lo + batch_size), n)
    table = ReferenceTable(layer=layer, names=iset.names, share=np.concatenate(shares),
                           argmax=np.concatenate(argmaxes).astype(np.int64),
                           classes=np.concatenate(classes).astype(np.int64), map_size=map_size,
                           composite=composite, seconds=time.perf_counter() - t0,
                           _images=tuple(iset.images), _handle=handle,
                           target="the targets given")  # the classes explained, not the photos' own
    out_regions: List[RegionConcepts] = []
    for j, r in enumerate(regions):
        rows = [in_region[j][int(i)] for i in r.images]
        cin = np.stack([c for c, _ in rows])
        norm = cin / (np.abs(cin).sum(1, keepdims=True) + 1e-12)
        mean = norm.mean(0)
        top = np.argsort(-mean, kind="stable")[:int(k)]
        out_regions.append(RegionConcepts(
            region=r, images=len(rows), relevance_share=float(np.nanmean([f for _, f in rows])),
            concepts=tuple((int(c), float(mean[c])) for c in top)))
    by_class = tuple((c, m, tuple(top)) for c, m, top in table.by_class(int(k)))
    return DatasetConcepts(layer=layer, table=table, by_class=by_class, regions=tuple(out_regions),
                           seconds=time.perf_counter() - t0)


def flag_regions(flags, paths: Sequence[str]) -> List[Region]:
    """The regions of shortcut flags (:class:`interpret.dataset.Flag`) over a set whose
    photos are ``paths`` (a flag's photos not among them are left out; a flag with none
    left is dropped): a concentration flag's small region, or outside the box given of
    an "outside the box" flag (its concentrated region when the boxes were per photo)."""
    where = {p: i for i, p in enumerate(paths)}
    out = []
    for f in flags:
        idx = tuple(where[p] for p in f.paths if p in where)
        if not idx:
            continue
        if f.kind == "outside_box" and f.given_box is not None:
            out.append(Region(f"{f.label}: outside the box given", idx, tuple(f.given_box), inside=False))
        else:
            out.append(Region(f"{f.label}: the flagged region", idx, tuple(f.box), inside=True))
    return out
