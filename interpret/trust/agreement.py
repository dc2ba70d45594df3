"""How much several maps of one photo and class agree: Spearman's rank correlation of
every pair (the similarity Adebayo et al. 2018 use to compare maps) and the overlap of
their top-k% pixels (Quantus's ``TopKIntersection``, Theiner et al. 2021, "Interpretable
semantic photo geolocation", arXiv:2104.14995, used here between two maps instead of a
map and a mask)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..methods.registry import Cost
from ._common import rankdata
from .registry import measure

__all__ = ["Agreement", "agreement", "top_k_mask"]


def top_k_mask(heatmap: np.ndarray, fraction: float) -> np.ndarray:
    """The ``fraction`` of pixels with the highest values (ties at the threshold broken
    by position, so that exactly round(fraction * n) pixels are chosen)."""
    flat = np.asarray(heatmap, np.float64).ravel()
    k = max(1, int(round(float(fraction) * flat.size)))
    idx = np.argsort(-flat, kind="stable")[:k]
    mask = np.zeros(flat.size, bool)
    mask[idx] = True
    return mask.reshape(np.shape(heatmap))


@dataclass(frozen=True)
class Agreement:
    """``labels``: the maps, in the order given; ``matrix``: n x n Spearman rank
    correlations (1 on the diagonal; NaN where a map is constant); ``top_k``: n x n
    fraction of the top ``fraction`` pixels two maps share (1 = the same pixels)."""

    labels: Tuple[str, ...]
    matrix: np.ndarray
    top_k: np.ndarray
    fraction: float

    def mean_agreement(self) -> np.ndarray:
        """Each map's mean rank correlation with the others."""
        n = len(self.labels)
        if n < 2:
            return np.full(n, np.nan)
        m = self.matrix.copy()
        np.fill_diagonal(m, np.nan)
        return np.nanmean(m, axis=1)

    def as_dict(self) -> dict:
        return {"labels": list(self.labels), "matrix": np.round(self.matrix, 4).tolist(),
                "top_k": np.round(self.top_k, 4).tolist(), "fraction": self.fraction}


def _heatmaps(explanations) -> Tuple[Tuple[str, ...], list, set]:
    from ..explain import Explanation

    labels, maps, targets = [], [], set()
    items = explanations.items() if isinstance(explanations, dict) else enumerate(explanations)
    for key, e in items:
        if isinstance(e, Explanation):
            labels.append(str(key) if isinstance(explanations, dict) else e.method)
            maps.append(np.asarray(e.heatmap, np.float64))
            targets.add((e.target, e.contrast))
        else:
            arr = np.asarray(e, np.float64)
            if arr.ndim != 2:
                raise InputError(f"Map {key!r} must be an H x W array; got shape {arr.shape}.")
            labels.append(str(key) if isinstance(explanations, dict) else f"map {key}")
            maps.append(arr)
    return tuple(labels), maps, targets


@measure("agreement", label="Method agreement", kind="agreement",
         measures="How similarly several methods rank the photo's pixels for the same class, "
                  "and how many of their most important pixels they share.",
         paper="https://arxiv.org/abs/1810.03292",
         citation="Adebayo et al. 2018 (rank correlation between maps); Quantus's Top-K intersection",
         cost=lambda handle, params: Cost(0, 0, note="no forwards: compares finished maps"))
def agreement(explanations: Sequence, top_k: float = 0.1) -> Agreement:
    """The agreement of maps of the same photo and class: ``explanations`` is a list of
    :class:`~interpret.Explanation` (or H x W arrays), or a dict label -> map.
    ``.matrix[i, j]`` is the Spearman rank correlation of maps i and j, in the order
    given; ``.top_k[i, j]`` the share of their top ``top_k`` (10%) pixels in common."""
    labels, maps, targets = _heatmaps(explanations)
    if not maps:
        raise InputError("agreement() needs at least one map.")
    if len(targets) > 1:
        raise InputError("The explanations are for different classes (or contrasts); agreement "
                         "compares maps of the same photo and class.")
    shapes = {m.shape for m in maps}
    if len(shapes) > 1:
        raise InputError(f"The maps have different sizes ({', '.join(f'{a}x{b}' for a, b in sorted(shapes))}); "
                         "were they made for the same model and photo?")
    if not 0.0 < float(top_k) <= 1.0:
        raise InputError(f"top_k is a fraction of the pixels in (0, 1]; got {top_k}.")
    n = len(maps)
    ranks = [rankdata(m) for m in maps]
    centred = []
    for r in ranks:
        c = r - r.mean()
        norm = float(np.sqrt((c * c).sum()))
        centred.append(c / norm if norm > 0 else None)
    masks = [top_k_mask(m, top_k).ravel() for m in maps]
    k = float(masks[0].sum())
    mat = np.eye(n)
    inter = np.eye(n)
    for i in range(n):
        if centred[i] is None:
            mat[i, i] = np.nan
        for j in range(i + 1, n):
            rho = np.nan if centred[i] is None or centred[j] is None else float(centred[i] @ centred[j])
            mat[i, j] = mat[j, i] = rho
            inter[i, j] = inter[j, i] = float((masks[i] & masks[j]).sum()) / k
    mat.setflags(write=False)
    inter.setflags(write=False)
    return Agreement(labels, mat, inter, float(top_k))
