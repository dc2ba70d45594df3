"""Concept discovery without labels: a non-negative matrix factorisation of a layer's
activations over an image set (Deep Feature Factorization, Collins et al. ECCV 2018;
CRAFT, Fel et al. CVPR 2023), computed by scikit-learn's ``NMF``.

Every position of every image's feature maps is a row of C channel activations; NMF
writes the (positions x channels) matrix as W x H with k non-negative concepts: each
concept is a direction over the channels (a row of H), and each position gets a
non-negative amount of each concept (W), so a concept can be drawn on any photo and its
patches found where it is strongest.  Activations below zero (a layer before its ReLU)
are clipped at zero first: NMF needs non-negative data (``clipped`` says how much mass
that removed).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import torch
from PIL import Image

from ..errors import InputError, Progress, report
from ..handle import session
from ..hooks import record
from ..layers import as_maps, check_layer, tap as tap_for

__all__ = ["DiscoveredConcept", "Discovery", "discover_concepts", "MAX_DISCOVER_IMAGES", "MAX_CONCEPTS"]

MAX_DISCOVER_IMAGES = 500
MAX_CONCEPTS = 20
#: rows (image positions) the factorisation is fitted on at most; more are subsampled
MAX_ROWS = 60_000
#: activation values held for one factorisation (photos x channels x positions)
MAX_VALUES = 40_000_000


@dataclass(frozen=True)
class Patch:
    """Where a concept is strongest in one image: ``index`` into the image set,
    ``name``, ``amount`` (the concept's value there), ``position`` (y, x) on the
    layer's map, ``box`` in model-input pixels, ``patch`` (the crop)."""

    index: int
    name: str
    amount: float
    position: Tuple[int, int]
    box: Tuple[int, int, int, int]
    patch: Image.Image = field(repr=False)


@dataclass(frozen=True)
class DiscoveredConcept:
    """One factorised concept: ``weights`` over the layer's channels (C floats, unit
    sum), ``top_channels`` (the channels it weighs most), ``share`` (its part of the
    factorised activation over the set), ``patches`` (where it is strongest, one per
    image, strongest first)."""

    index: int
    weights: np.ndarray = field(repr=False)
    top_channels: Tuple[int, ...]
    share: float
    patches: Tuple[Patch, ...] = field(repr=False)


@dataclass(frozen=True)
class Discovery:
    """The result of :func:`discover_concepts`: the ``concepts`` (iterate, index,
    ``len``), the ``layer``, the fitted ``components`` (k x C), the fraction of the
    activations' mass the factorisation explains (``explained``: 1 - |V - WH|_F / |V|_F),
    ``clipped`` (the fraction of the activations' absolute mass below zero, removed)."""

    layer: str
    concepts: Tuple[DiscoveredConcept, ...]
    components: np.ndarray = field(repr=False)
    explained: float
    clipped: float
    images: int
    map_size: Tuple[int, int]
    seconds: float

    def __iter__(self):
        return iter(self.concepts)

    def __len__(self) -> int:
        return len(self.concepts)

    def __getitem__(self, i) -> DiscoveredConcept:
        return self.concepts[i]

    def maps(self, model, image) -> np.ndarray:
        """k x H x W: how much of each concept sits where on ``image`` (the model's
        activations for it projected on the concepts with the components fixed),
        upsampled to the model's input size."""
        from sklearn.decomposition import non_negative_factorization

        from ..explain import as_handle, input_tensor
        from ..scaling import upsample

        handle = as_handle(model)
        x = input_tensor(handle, image)
        a = _activations(handle, x, self.layer)[0]  # C x h x w
        C, h, w = a.shape
        v = np.clip(a.reshape(C, -1).T, 0, None).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            W, _, _ = non_negative_factorization(v, H=self.components.astype(np.float64), n_components=len(self),
                                                 init="custom", update_H=False, max_iter=400)
        m = torch.from_numpy(W.T.reshape(len(self), h, w).astype(np.float32))
        return np.stack([upsample(m[i], tuple(x.shape[-2:])).numpy() for i in range(len(self))])


def _activations(handle, x: torch.Tensor, layer: str) -> np.ndarray:
    tap = tap_for(handle, layer)
    with session(handle):
        values = record(handle, x, [tap], logits=False).values
    return as_maps(handle, values[tap.key], f"Layer '{layer}'").detach().float().cpu().numpy()


#: why no concepts are discovered in a vision transformer (NMF cannot hold its negative
#: token activations: clipping them would factorise a different layer)
NO_NMF_FOR_VIT = ("Discovered concepts are not offered for a vision transformer: they factorise the layer's "
                  "activations into non-negative parts (NMF), and a transformer block's token activations "
                  "take negative values too, which NMF cannot represent (they would be clipped away).")


def discover_concepts(model, images, layer: Optional[str] = None, k: int = 6, *, patches: int = 6,
                      batch_size: int = 16, seed: int = 0,
                      progress: Optional[Progress] = None) -> Discovery:
    """``k`` concepts of ``layer`` (default: the suggested layer) found by NMF of its
    activations over ``images`` (a list, a folder or a zip), each with its weights over
    the channels and its ``patches`` strongest patches.  ``progress(done, total)`` per
    batch of images (raise :class:`interpret.Cancelled` in it to stop).  Cached per
    model, layer, image set, k and seed."""
    from sklearn.decomposition import NMF

    from ..explain import as_handle
    from ..features.dataset import receptive_field
    from ..features.imagesets import as_image_set

    handle = as_handle(model)
    handle.check_ready()
    from .vit import covers

    if covers(handle):
        raise InputError(NO_NMF_FOR_VIT)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= MAX_CONCEPTS:
        raise InputError(f"k must be a whole number from 1 to {MAX_CONCEPTS}; got {k!r}.")
    k = int(k)
    iset = as_image_set(images)
    if len(iset) > MAX_DISCOVER_IMAGES:
        raise InputError(f"The image set has {len(iset)} photos; at most {MAX_DISCOVER_IMAGES} are used.")
    layer = check_layer(handle, layer)
    key = ("discover_concepts", handle.fingerprint_fast(), repr(handle.preprocessing), layer, iset.key,
           k, int(seed), int(patches))
    hit = handle.cache_get(key)
    if hit is not None:
        return hit
    t0 = time.perf_counter()
    acts = []
    n = len(iset)
    for lo in range(0, n, batch_size):
        x = torch.cat([handle.preprocess(im) for im in iset.images[lo:lo + batch_size]], 0)
        acts.append(_activations(handle, x, layer))
        per_image = int(np.prod(acts[0].shape[1:]))
        if per_image * n > MAX_VALUES:  # bounded before the rest of the set is paid for
            raise InputError(f"Layer '{layer}' has {per_image:,} values per photo: {n} photos would be "
                             f"{per_image * n:,}, more than {MAX_VALUES:,}. Pick a later layer or fewer photos.")
        report(progress, min(n, lo + batch_size), n + 1)
    a = np.concatenate(acts)  # N x C x h x w
    N, C, h, w = a.shape
    if k > C:
        raise InputError(f"Layer '{layer}' has {C} channels: ask for at most {C} concepts.")
    v = a.transpose(0, 2, 3, 1).reshape(-1, C).astype(np.float64)
    mass = float(np.abs(v).sum()) or 1.0
    clipped = float(-v[v < 0].sum()) / mass
    v = np.clip(v, 0, None)
    if not v.any():
        raise InputError(f"Layer '{layer}' is zero (or negative) everywhere on these photos: nothing to factorise.")
    rng = np.random.default_rng(seed)
    fit_rows = v if len(v) <= MAX_ROWS else v[rng.choice(len(v), MAX_ROWS, replace=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the fit is used as it is
        nmf = NMF(n_components=k, init="nndsvda", max_iter=400, random_state=seed)
        nmf.fit(fit_rows)
        W = nmf.transform(v)
    Hc = nmf.components_
    explained = 1.0 - float(np.linalg.norm(v - W @ Hc) / (np.linalg.norm(v) or 1.0))
    # order the concepts by their share of the factorised activation
    amount = W.sum(0) * Hc.sum(1)
    order = np.argsort(-amount)
    W, Hc, amount = W[:, order], Hc[order], amount[order]
    maps = W.reshape(N, h, w, k)
    rf = receptive_field(handle, layer)
    out = []
    for j in range(k):
        best = maps[..., j].reshape(N, -1)
        peak = best.max(1)
        imgs = np.argsort(-peak, kind="stable")[:max(0, int(patches))]
        ps = []
        for i in imgs:
            y, xx = divmod(int(best[i].argmax()), w)
            view = handle.preprocessing.model_view(iset.images[i])
            box = rf.box(y, xx, tuple(handle.input_size))
            ps.append(Patch(int(i), iset.names[i], float(peak[i]), (y, xx), box, view.crop(box)))
        wts = Hc[j] / (Hc[j].sum() or 1.0)
        out.append(DiscoveredConcept(index=j, weights=wts.astype(np.float32),
                                     top_channels=tuple(int(c) for c in np.argsort(-wts)[:5]),
                                     share=float(amount[j] / (amount.sum() or 1.0)), patches=tuple(ps)))
    report(progress, n + 1, n + 1)
    result = Discovery(layer=layer, concepts=tuple(out), components=Hc.astype(np.float32),
                       explained=explained, clipped=clipped, images=N, map_size=(h, w),
                       seconds=time.perf_counter() - t0)
    handle.cache_put(key, result)
    return result
