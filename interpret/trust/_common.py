"""What the trust measures share: reading an explanation (its map, class and grid),
the class probability every curve is drawn in, batched perturbed forwards with
progress, the reference images, rank statistics (Spearman, SSIM) and a small
per-model cache.

Nothing here changes the model: forwards run under ``torch.inference_mode`` with no
hooks, inside the caller's :func:`interpret.handle.session`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError, Progress, report
from ..handle import ModelHandle
from ..scaling import heatmap as to_heatmap
from .. import targets as _targets
from ..tensors import check_output, task_output

__all__ = ["Target", "MapInput", "read_map", "probabilities", "reference", "BASELINES",
           "order_of", "rankdata", "spearman", "ssim", "Forwards", "cache"]

#: the reference images a removed pixel is replaced with (see :func:`reference`)
BASELINES = ("blur", "mean", "constant")

#: a box blur this wide (pixels at 224 x 224) removes objects but keeps colours and
#: layout; the same kernel as the path methods' "blur" baseline
BLUR_KERNEL = 31


def Target(index, contrast: Optional[int] = None) -> _targets.Target:
    """What a measure follows: an :class:`interpret.targets.Target` (a class, a label,
    an output, a segment's region).  ``Target(index, contrast)`` is a classifier's class
    ``index`` ("rather than ``contrast``"), as before targets had kinds; a Target is
    returned as it is."""
    if isinstance(index, _targets.Target):
        return index
    return _targets.ClassTarget(int(index), None if contrast is None else int(contrast))


@dataclass(frozen=True)
class MapInput:
    """An explanation as the measures read it.

    ``heatmap``: H x W float32 at the model-input size (the order pixels are removed
    in); ``grid``: (h, w) of the values the map is made of (the layer's grid for a CAM,
    the input's for a gradient map); ``rule``: how such a grid becomes a heatmap (a
    key of :data:`interpret.scaling.HEATMAP_RULES`); ``method``: the method's id, or
    None for a bare array."""

    heatmap: np.ndarray
    grid: Tuple[int, int]
    rule: str
    target: Target
    method: Optional[str]
    label: str

    @property
    def key(self) -> str:
        """A content hash of the heatmap (for caches)."""
        return hashlib.blake2b(np.ascontiguousarray(self.heatmap).tobytes(), digest_size=12).hexdigest()


def _grid_of(explanation, size: Tuple[int, int], rule: str) -> Tuple[int, int]:
    """The grid an explanation's values live on: a CAM's attribution is 1 x 1 x h x w
    (the layer's grid); occlusion moves its window by ``stride`` pixels; every other
    input method has one value per pixel."""
    a = explanation.attribution
    if rule in ("cam", "maps") and a is not None and a.dim() >= 2:
        return int(a.shape[-2]), int(a.shape[-1])
    stride = explanation.params.get("stride") if explanation.method == "occlusion" else None
    if stride:
        return max(1, -(-size[0] // int(stride))), max(1, -(-size[1] // int(stride)))
    return size


def read_map(handle: ModelHandle, x: torch.Tensor, explanation, target=None) -> MapInput:
    """An :class:`~interpret.Explanation` or an H x W array (any size; upsampled
    bilinearly to the input, its own shape is then its grid) as a :class:`MapInput`.
    ``target``: the class to follow (an array: default the top class; an explanation:
    default its own class and contrast; another class asks how much the map's order
    matters to *that* class, e.g. the espresso's map for the cat; any
    :mod:`interpret.targets` target: a label, an output, a segment's region)."""
    from ..explain import Explanation

    size = (int(x.shape[-2]), int(x.shape[-1]))
    if isinstance(explanation, Explanation):
        from ..methods.registry import get_method

        hm = np.asarray(explanation.heatmap, dtype=np.float32)
        if hm.shape != size:
            raise InputError(
                f"The explanation's heatmap is {hm.shape[0]}x{hm.shape[1]} but the model's input "
                f"is {size[0]}x{size[1]}: was it made with another model or photo?")
        rule = get_method(explanation.method).heatmap
        if target is not None:
            tgt = _targets.resolve(handle, target, x)
        elif getattr(explanation, "explained", None) is not None:
            tgt = explanation.explained
        else:
            tgt = _targets.resolve(handle, explanation.target, x, contrast=explanation.contrast)
        return MapInput(hm, _grid_of(explanation, size, rule), rule, tgt, explanation.method,
                        explanation.method)
    if isinstance(explanation, torch.Tensor):
        explanation = explanation.detach().float().cpu().numpy()
    if not isinstance(explanation, np.ndarray):
        raise InputError(
            f"Expected an Explanation (from interpret.explain) or an H x W array, got "
            f"{type(explanation).__name__}.")
    arr = np.asarray(explanation, dtype=np.float32)
    arr = arr.reshape(arr.shape[-2:]) if arr.ndim > 2 and all(s == 1 for s in arr.shape[:-2]) else arr
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise InputError(f"A heatmap must be a 2-D H x W array; got shape {tuple(np.shape(explanation))}.")
    if not np.isfinite(arr).all():
        raise InputError("The heatmap contains NaN or infinite values.")
    grid = (int(arr.shape[0]), int(arr.shape[1]))
    hm = arr if grid == size else to_heatmap(torch.from_numpy(arr), "maps", size)
    tgt = _targets.resolve(handle, target, x)
    return MapInput(hm.astype(np.float32), grid, "maps" if grid != size else "abs_max",
                    tgt, None, "map")


def random_heatmap(m: MapInput, size: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random map with ``m``'s granularity: uniform values on its grid, made into a
    heatmap by the same rule (a CAM's 7 x 7 random grid is upsampled bilinearly as the
    CAM was).  Per-pixel random orders are off-distribution noise that destroys the
    score as fast as removing the object does, so they would flatter every map."""
    vals = rng.random(m.grid, dtype=np.float64).astype(np.float32)
    if m.grid == tuple(size):
        return vals
    rule = m.rule if m.rule in ("cam", "maps") else "maps"
    return to_heatmap(torch.from_numpy(vals), rule, size)


def order_of(heatmap: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each pixel's place (0 = most relevant) when pixels are sorted by ``heatmap``,
    most relevant first; ties (the zeros of a ReLU'd CAM) in a seeded random order,
    so that no corner of the photo is favoured.  Returns an H x W int64 array."""
    flat = np.asarray(heatmap, dtype=np.float64).ravel()
    tie = np.random.default_rng(seed).random(flat.size)
    order = np.lexsort((tie, -flat))  # primary key last: -value, then the tie-breaker
    rank = np.empty(flat.size, np.int64)
    rank[order] = np.arange(flat.size)
    return rank.reshape(np.shape(heatmap))


def probabilities(logits: torch.Tensor, target) -> torch.Tensor:
    """What every curve is drawn in: the target's own probability
    (:meth:`interpret.targets.Target.probability`): the softmax probability of a class,
    or, for "A rather than B", the probability that A beats B, ``sigmoid(logit_A -
    logit_B)`` (the logistic of the explained score); a label's sigmoid; a binary
    model's sigmoid; a regressor's value; a segment's mean class probability.
    ``logits``: model outputs or their :meth:`~interpret.targets.Target.reduce`.

    A regressor's curves are in its value (``unit`` "value"; times the target's sign,
    so the curves rise with what is explained), never a percentage: the areas are in
    the value's unit and the verdict's yardstick is the value's change from the photo to
    the reference image (:func:`interpret.trust.faithfulness.verdict`)."""
    t = Target(target)
    return t.probability(logits)


def reference(handle: ModelHandle, x: torch.Tensor, kind: str, constant: float = 0.0) -> torch.Tensor:
    """The image removed pixels are replaced with (normalised like ``x``):

    * ``"blur"``: a 31-pixel box blur of the photo (shapes gone, colours kept; the
      least off-distribution of the three, as in Petsiuk et al. 2018's insertion);
    * ``"mean"``: the data set's mean colour (0 after normalisation);
    * ``"constant"``: every pixel ``constant`` (in [0, 1] pixel units; 0 = black).
    """
    if kind == "blur":
        k = max(3, int(round(BLUR_KERNEL * min(x.shape[-2:]) / 224)) | 1)
        return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)
    if kind == "mean":
        return torch.zeros_like(x)
    if kind in ("constant", "black"):
        if not 0.0 <= float(constant) <= 1.0:
            raise InputError(f"A constant baseline is a pixel value in [0, 1]; got {constant}.")
        return handle.preprocessing.normalize(torch.full_like(x, float(constant)))
    raise InputError(f"Unknown baseline '{kind}'; one of {', '.join(BASELINES)}.")


class Forwards:
    """Batched, hook-free forwards for the perturbation measures, with progress in
    images (``progress(done, total)``; raising :class:`interpret.Cancelled` stops).
    ``count`` is how many images went through the model."""

    def __init__(self, handle: ModelHandle, target: Optional[Target], batch_size: int,
                 total: int, progress: Optional[Progress] = None):
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be at least 1; got {batch_size}.")
        self.handle, self.target = handle, target
        self.batch_size = int(batch_size)
        self.total, self.progress = int(total), progress
        self.count = 0

    def run(self, n: int, build: Callable[[int, int], torch.Tensor]) -> torch.Tensor:
        """The logits (n x classes, float32, on the CPU; for a segmentation model the
        target's :meth:`~interpret.targets.Target.reduce` of its maps) of ``n`` images,
        ``build(start, stop)`` making images ``start..stop-1`` as one batch (so that no
        more than ``batch_size`` perturbed images exist at once)."""
        import time

        out = []
        speed = seconds_per_image(self.handle)
        for start in range(0, int(n), self.batch_size):
            batch = build(start, min(int(n), start + self.batch_size))
            t0 = time.perf_counter()
            with torch.inference_mode():
                raw = self.handle.module(batch)
                logits = check_output(task_output(raw, batch.shape[-2:]), raw)
                if logits.dim() != 2 and self.target is not None:
                    logits = self.target.reduce(logits)  # a segment: its summary, not the map
            speed.update((time.perf_counter() - t0) / max(1, int(batch.shape[0])))
            out.append(logits.detach().float().cpu().clone())
            self.count += int(batch.shape[0])
            report(self.progress, min(self.count, self.total), self.total)
        return torch.cat(out) if out else torch.zeros(0, 0)


class _Speed:
    """Seconds per image through one model, as measured by the measures' own batches
    (an exponential mean, so it follows the server's load)."""

    def __init__(self):
        self.value: Optional[float] = None
        self._lock = threading.Lock()

    def update(self, seconds: float) -> None:
        with self._lock:
            self.value = seconds if self.value is None else 0.7 * self.value + 0.3 * seconds


def seconds_per_image(handle: ModelHandle) -> _Speed:
    """The model's measured speed (see :class:`_Speed`), kept on its runtime."""
    return handle.memo("trust.speed", _Speed)


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the values of ``a`` (flattened), ties given their average rank
    (scipy.stats.rankdata's "average" method)."""
    arr = np.ravel(np.asarray(a, dtype=np.float64))
    sorter = np.argsort(arr, kind="mergesort")
    inv = np.empty(sorter.size, np.intp)
    inv[sorter] = np.arange(sorter.size)
    s = arr[sorter]
    obs = np.r_[True, s[1:] != s[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (Pearson's on average ranks); NaN when
    either is constant (it has no order to compare)."""
    if np.size(a) != np.size(b):
        raise InputError(f"Maps of different sizes ({np.shape(a)} and {np.shape(b)}) cannot be compared.")
    return _pearson(rankdata(a), rankdata(b))


def _gaussian_window(sigma: float = 1.5, truncate: float = 3.5) -> torch.Tensor:
    """The 1-D Gaussian (11 taps at sigma 1.5); the 2-D window is its outer product."""
    r = int(truncate * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(t * t) / (2 * sigma * sigma))
    return g / g.sum()


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity of two H x W maps (Wang et al. 2004, eq. 13, with their
    11 x 11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03), averaged over the
    positions where the window fits: scikit-image's ``structural_similarity(...,
    gaussian_weights=True, use_sample_covariance=False)``.  The window is separable:
    the five local moments are filtered together, rows then columns (22 taps a pixel
    instead of 121)."""
    x = torch.as_tensor(np.asarray(a, dtype=np.float64))
    y = torch.as_tensor(np.asarray(b, dtype=np.float64))
    if x.shape != y.shape:
        raise InputError(f"Maps of different sizes ({np.shape(a)} and {np.shape(b)}) cannot be compared.")
    g = _gaussian_window()
    moments = torch.stack([x, y, x * x, y * y, x * y])[None]  # 1 x 5 x H x W
    if min(x.shape[-2:]) >= g.numel():
        k = g.numel()
        moments = F.conv2d(moments, g.view(1, 1, k, 1).expand(5, 1, k, 1).contiguous(), groups=5)
        moments = F.conv2d(moments, g.view(1, 1, 1, k).expand(5, 1, 1, k).contiguous(), groups=5)
    mx, my, xx, yy, xy = moments[0]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    sxx, syy, sxy = xx - mx * mx, yy - my * my, xy - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


class _LRU:
    """A small thread-safe LRU (the measures' results per model)."""

    def __init__(self, size: int = 64):
        self._d: "OrderedDict[Any, Any]" = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, key):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


def cache(handle: ModelHandle) -> _LRU:
    """The trust measures' own cache on a model's runtime (separate from the capture
    cache, so that curves never push a recorded pass out)."""
    return handle.memo("trust.cache", lambda: _LRU())


def percent(p: float) -> str:
    """A probability for people: "41%", "3%", "0.4%", "<0.1%"."""
    v = 100.0 * float(p)
    if v >= 0.95:
        return f"{v:.0f}%"
    if v >= 0.1:
        return f"{v:.1f}%"
    return "<0.1%"
