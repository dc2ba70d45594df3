"""Embeddings: a layer's features for a set of images (by default the penultimate
features, what the classifier sees), projected to 2-D with PCA, t-SNE or UMAP, with
the model's prediction for each image to colour the points by.

PCA is computed here (an SVD of the centred features, in float64); t-SNE
(scikit-learn) and UMAP (umap-learn) are used when those packages are installed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import torch

from ..errors import InputError
from ._common import (Progress, Tap, as_handle, as_maps, batches, check_int, model_session,
                      penultimate_tap, record, report, tap_for)
from .imagesets import as_image_set

__all__ = ["Embedding", "embed", "pca", "embedding_features", "METHODS"]

METHODS = ("pca", "tsne", "umap")


@dataclass(frozen=True)
class Embedding:
    """Unpacks as ``(features, coords)``: ``features`` N x D (float32), ``coords`` N x 2.
    Also ``predicted`` (N class indices), ``predicted_labels``, ``probabilities`` (of
    the predicted class), ``names`` of the images, ``layer`` (``"<name> (input)"`` for
    the penultimate features), ``method``, and for PCA ``explained_variance`` (the
    fraction of the variance each of the two axes holds)."""

    features: np.ndarray = field(repr=False)
    coords: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    predicted_labels: Tuple[str, ...] = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    names: Tuple[str, ...] = field(repr=False)
    layer: str = ""
    method: str = "pca"
    explained_variance: Optional[np.ndarray] = None
    seconds: float = 0.0

    def __iter__(self):
        return iter((self.features, self.coords))


def _pool(handle, t: torch.Tensor) -> torch.Tensor:
    """One vector per image: maps and token grids averaged over positions, vectors as
    they are, anything else flattened."""
    if t.dim() == 2:
        return t
    if t.dim() in (3, 4):
        try:
            return as_maps(handle, t).mean(dim=(2, 3))
        except InputError:
            pass
    return t.flatten(1)


def embedding_features(model, images, layer: Optional[str] = None, batch_size: int = 16,
                       progress: Optional[Progress] = None):
    """(features N x D float32, logits N x K float32, layer key, image set): the layer's
    output for every image (``layer=None``: the classifier's input), pooled over
    positions, in batches.  Cached on the handle per model, layer and image set."""
    handle = as_handle(model)
    iset = as_image_set(images)
    batch_size = check_int("The batch size", batch_size, 1, 512)
    tap: Tap = penultimate_tap(handle) if layer is None else tap_for(handle, layer)
    key = ("features.embed", handle.fingerprint_fast(), repr(handle.preprocessing), tap.key,
           iset.key)
    cached = handle.cache_get(key)
    if cached is not None:
        f, lg = cached
        return f, lg, tap.key, iset
    feats, logits = [], []
    n = len(iset)
    for lo, hi in batches(n, batch_size):
        x = torch.cat([handle.preprocess(im) for im in iset.images[lo:hi]], 0)
        with model_session(handle):  # held per batch: progress is reported outside
            rec = record(handle, x, [tap], logits=True)
        feats.append(_pool(handle, rec.values[tap.key]).float().cpu())
        logits.append(rec.logits.float().cpu())
        report(progress, hi, n)
    f = torch.cat(feats).numpy()
    lg = torch.cat(logits).numpy()
    handle.cache_put(key, (f, lg))
    return f, lg, tap.key, iset


def pca(x: np.ndarray, k: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """(coords N x k, explained-variance ratios k): the projection of the centred rows
    of ``x`` on their first ``k`` principal axes, from an SVD in float64.  Signs are
    fixed as scikit-learn's ``svd_flip`` does (the largest loading of each axis on the
    samples is positive), so the result does not depend on the SVD routine."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise InputError("PCA needs at least two feature vectors.")
    xc = x - x.mean(dim=0, keepdim=True)
    u, s, _ = torch.linalg.svd(xc, full_matrices=False)
    r = min(k, s.numel())
    u, s_k = u[:, :r], s[:r]
    signs = torch.sign(u[u.abs().argmax(dim=0), torch.arange(r)])
    signs[signs == 0] = 1.0
    coords = u * signs * s_k
    var = (s ** 2).sum()
    ratio = (s_k ** 2 / var) if float(var) > 0 else torch.zeros(r, dtype=torch.float64)
    if r < k:  # fewer samples or dimensions than axes: pad with zeros
        coords = torch.cat([coords, torch.zeros(coords.shape[0], k - r, dtype=coords.dtype)], 1)
        ratio = torch.cat([ratio, torch.zeros(k - r, dtype=ratio.dtype)])
    return coords.numpy(), ratio.numpy()


def _tsne(f: np.ndarray, seed: int, **kw) -> np.ndarray:
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise InputError("t-SNE needs scikit-learn: pip install scikit-learn (or use method='pca').") from None
    n = f.shape[0]
    if n < 3:
        raise InputError("t-SNE needs at least three images.")
    x = f
    if x.shape[1] > 50 and n > 50:  # the usual PCA pre-reduction (van der Maaten 2014)
        x, _ = pca(x, 50)
    params = {"n_components": 2, "perplexity": float(min(30.0, max(1.0, (n - 1) / 3.0))),
              "init": "pca", "random_state": int(seed), "learning_rate": "auto"}
    params.update(kw)
    return TSNE(**params).fit_transform(np.asarray(x, dtype=np.float64))


def _umap(f: np.ndarray, seed: int, **kw) -> np.ndarray:
    try:
        import umap
    except ImportError:
        raise InputError("UMAP needs umap-learn: pip install umap-learn (or use method='pca').") from None
    n = f.shape[0]
    if n < 4:
        raise InputError("UMAP needs at least four images.")
    params = {"n_components": 2, "n_neighbors": int(min(15, n - 1)), "random_state": int(seed)}
    params.update(kw)
    return umap.UMAP(**params).fit_transform(np.asarray(f, dtype=np.float32))


def embed(model, images, layer: Optional[str] = None, method: str = "pca", *,
          batch_size: int = 16, seed: int = 0, progress: Optional[Progress] = None,
          **method_params) -> Embedding:
    """The features of ``layer`` (default: the penultimate features, the classifier's
    input) for every image of ``images`` (a list, an :class:`ImageSet`, a folder or a
    zip), and their 2-D projection by ``method``: ``"pca"``, ``"tsne"`` (needs
    scikit-learn) or ``"umap"`` (needs umap-learn); extra keyword arguments go to
    the t-SNE / UMAP constructor.  Maps are averaged over positions.

    >>> feats, coords = interpret.embed(model, images)
    >>> e = interpret.embed(model, images); e.predicted_labels  # colour by class
    """
    handle = as_handle(model)
    m = str(method).lower().replace("-", "")
    if m not in METHODS:
        raise InputError(f"Unknown projection '{method}'; choose one of {', '.join(METHODS)}.")
    if m == "pca" and method_params:
        raise InputError(f"PCA takes no parameters; got {', '.join(method_params)}.")
    t0 = time.perf_counter()
    f, logits, key, iset = embedding_features(handle, images, layer, batch_size=batch_size, progress=progress)
    if f.shape[0] < 2:
        raise InputError("An embedding needs at least two images.")
    explained = None
    if m == "pca":
        coords, explained = pca(f, 2)
    elif m == "tsne":
        coords = _tsne(f, seed, **method_params)
    else:
        coords = _umap(f, seed, **method_params)
    pred, labels, conf = predicted_points(handle, torch.from_numpy(logits))
    return Embedding(
        features=f, coords=np.asarray(coords, dtype=np.float64), predicted=pred,
        predicted_labels=labels, probabilities=conf, names=iset.names, layer=key, method=m,
        explained_variance=explained, seconds=time.perf_counter() - t0)


def predicted_points(handle, logits: torch.Tensor) -> Tuple[np.ndarray, Tuple[str, ...], np.ndarray]:
    """(index, label, probability) of what the model says for each row of ``logits``,
    in the task's own terms (never a softmax of what is not one): a classifier's softmax;
    a segmenter's class with the largest mean pixel probability; a multi-label model's
    most probable label by its own sigmoid; a binary model's positive class or "not" it,
    by the sigmoid; a regressor's value as its label (no probability: NaN); other tasks
    (embeddings, prompts, boxes) no prediction (empty label, NaN)."""
    task = getattr(handle, "task", "classification")
    n = logits.shape[0]
    nan = np.full(n, np.nan)
    if task in ("classification", "segmentation") and logits.dim() in (2, 4):
        probs = torch.softmax(logits.float(), dim=1)
        if probs.dim() == 4:  # N x C x H x W: each class's mean probability over the pixels
            probs = probs.mean(dim=(2, 3))
        conf, pred = probs.max(dim=1)
        return pred.numpy(), tuple(handle.label(int(i)) for i in pred), conf.numpy()
    if task == "multilabel":
        conf, pred = torch.sigmoid(logits.float()).max(dim=1)
        return pred.numpy(), tuple(handle.label(int(i)) for i in pred), conf.numpy()
    if task == "binary":
        p = torch.sigmoid(logits.float()[:, 0]).numpy()
        name = handle.label(0)
        return (np.zeros(n, dtype=np.int64), tuple(name if q >= 0.5 else f"not {name}" for q in p),
                np.maximum(p, 1.0 - p))
    if task == "regression":
        v = logits.float()[:, 0].numpy()
        return np.zeros(n, dtype=np.int64), tuple(f"{x:.4g}" for x in v), nan
    return np.zeros(n, dtype=np.int64), ("",) * n, nan


def model_views(model, images, side: int = 64) -> np.ndarray:
    """Each image of the set as the model sees it (its resize and crop), ``side`` pixels
    square, as one N x side x side x 3 uint8 array: thumbnails for an embedding plot."""
    from PIL import Image

    handle = as_handle(model)
    side = check_int("side", side, 8, 512)
    iset = as_image_set(images)
    if len(iset) == 0:
        return np.zeros((0, side, side, 3), np.uint8)
    return np.stack([np.asarray(handle.preprocessing.model_view(im.convert("RGB"))
                                .resize((side, side), Image.Resampling.LANCZOS))
                     for im in iset.images])
