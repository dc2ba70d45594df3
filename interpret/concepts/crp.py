"""Concept Relevance Propagation (Achtibat et al., Nature Machine Intelligence 2023,
arXiv:2206.03208) on our terms: which channels of a layer carry a decision, and where
each one sits in the photo.

zennit-crp's ``CondAttribution`` computes one conditional heatmap per condition
``{"layer": [channel], "y": [class]}`` by running the whole model forward and backward
once per condition (the photo repeated in a batch).  Every conditional heatmap of one
photo, layer and class shares the forward pass and the backward from the output down to
the layer: the relevance at the layer, R, is the same for all of them, and each
heatmap is the LRP backward from the layer of R masked to one channel.  So here the
model runs forward once, the relevance is taken to the layer once, and only the part
below the layer is run again per concept (on the retained graph): the same numbers as
``CondAttribution`` (tested), at a fraction of the cost (benchmarks/bench_concepts.py).

Everything runs on the LRP method's private copy of the model (zennit's hooks and
BatchNorm merges never touch the caller's module), under the handle's writer lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError, Progress, report
from ..handle import ModelHandle, session
from ..layers import check_layer
from ..methods.common import Context
from ..methods.lrp import COMPOSITES, initial_relevance, lrp_copy, make_composite, unsupported
from ..tensors import first_tensor, tensor_key

__all__ = ["Concept", "ConceptSet", "checked", "concepts", "conditional_relevance", "Reference", "ReferenceTable",
           "reference_patches", "layer_relevance"]

MAX_K = 64
#: conditional heatmaps per batched backward (bounds the memory of one backward)
CHUNK = 8


@dataclass(frozen=True)
class Concept:
    """One concept (a channel of the layer) of a decision.

    ``channel``: its index in the layer; ``relevance``: its share of the layer's
    relevance, its summed relevance divided by the sum of the absolute relevances of
    all the layer's channels (zennit-crp's ``ChannelConcept.attribute(abs_norm=True)``;
    negative: evidence against); ``value``: its summed relevance in score units;
    ``heatmap``: its conditional relevance on the input, H x W at the model's input
    size (float32, signed; sums to about ``value`` where the rules conserve);
    ``name``: the name the team gave it (:func:`interpret.name_concept`), or None;
    ``where``: the classes the model gives the photos of its top reference patches in a
    photo set (:meth:`ConceptSet.named` with a table; () when none is known)."""

    channel: int
    relevance: float
    value: float
    heatmap: np.ndarray = field(repr=False)
    name: Optional[str] = None
    where: Tuple[str, ...] = ()


@dataclass(frozen=True)
class ConceptSet:
    """The result of :func:`concepts`: the top concepts (iterate, index, ``len``), the
    ``layer``, the explained ``target`` (a resolved target) and its ``target_label``,
    the explained ``score``, ``total`` (the layer's whole relevance, the sum over its
    channels; about the score where the rules conserve), ``channel_relevance`` (every
    channel's summed relevance, C floats), the LRP ``composite`` and ``canonizers``."""

    layer: str
    target: object
    target_label: str
    score: float
    total: float
    channel_relevance: np.ndarray = field(repr=False)
    concepts: Tuple[Concept, ...]
    composite: str
    canonizers: Tuple[str, ...]
    seconds: float

    def __iter__(self):
        return iter(self.concepts)

    def __len__(self) -> int:
        return len(self.concepts)

    def __getitem__(self, i) -> Concept:
        return self.concepts[i]

    @property
    def channels(self) -> List[int]:
        return [c.channel for c in self.concepts]

    @property
    def absolute_total(self) -> float:
        return float(np.abs(self.channel_relevance).sum())

    def named(self, names, references: Optional["ReferenceTable"] = None, n: int = 4) -> "ConceptSet":
        """This result with each concept's ``name`` from ``names`` ({(layer, channel):
        name}, :func:`interpret.concepts.concept_names`; None where it has none) and,
        given the ``references`` of a photo set at this layer, its ``where``: the labels
        of the classes of its ``n`` top reference photos (:meth:`ReferenceTable.where`)."""
        from dataclasses import replace

        def where(c: int) -> Tuple[str, ...]:
            if references is None or references.layer != self.layer or references._handle is None:
                return ()
            return tuple(references._handle.label(k) for k in references.where(c, n))

        return replace(self, concepts=tuple(
            replace(c, name=names.get((self.layer, c.channel)), where=where(c.channel)) for c in self.concepts))


def _resolve(handle: ModelHandle, target, x: torch.Tensor):
    from ..targets import resolve

    return resolve(handle, target, x)


def _check_composite(composite: str) -> str:
    if composite not in COMPOSITES:
        raise InputError(f"Unknown LRP composite '{composite}'; one of {', '.join(COMPOSITES)}.")
    return composite


def checked(model, what: str, composite: str) -> Tuple[ModelHandle, str]:
    """(the handle of ``model``, the composite) once the model is ready, LRP's rules cover
    it and ``composite`` is one of :data:`COMPOSITES`; else the InputError saying which:
    "``what`` cannot be computed for '<model>': <why>." (``what``: "Concepts",
    "Reference patches").  A vision transformer AttnLRP covers is taken with the
    composite ``"attnlrp"`` (:mod:`interpret.concepts.vit`)."""
    from ..explain import as_handle

    from . import vit

    handle = as_handle(model)
    handle.check_ready()
    if vit.covers(handle):  # a ViT: AttnLRP's rules on its tokens (vit.py), not zennit's
        if composite != vit.COMPOSITE:
            _check_composite(composite)
        return handle, vit.COMPOSITE
    why = unsupported(handle)
    if why:
        raise InputError(f"{what} cannot be computed for '{handle.name}': {why}.")
    return handle, _check_composite(composite)


def _layer_module(twin, layer: str):
    try:
        return twin.get_submodule(layer)
    except AttributeError:
        raise InputError(f"The model has no layer '{layer}'.") from None


def checked_k(k, channels: Optional[Sequence[int]]) -> Optional[Tuple[int, ...]]:
    """``channels`` as a tuple (None stays None) after checking ``k`` and their count."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= MAX_K:
        raise InputError(f"k must be a whole number from 1 to {MAX_K}; got {k!r}.")
    if channels is None:
        return None
    channels = tuple(int(c) for c in channels)
    if not channels or len(channels) > MAX_K:
        raise InputError(f"Give 1 to {MAX_K} channels.")
    return channels


def pick_channels(per_channel: torch.Tensor, channels: Optional[Sequence[int]], k: int,
                  layer: str) -> List[int]:
    """The channels whose heatmaps are computed: ``channels`` as given (each checked
    against the layer's ``len(per_channel)`` channels), or the ``k`` with the most
    relevance ``per_channel``."""
    if channels is None:
        k = max(1, min(int(k), per_channel.numel()))
        return [int(c) for c in torch.argsort(per_channel, descending=True)[:k]]
    channels = [int(c) for c in channels]
    bad = [c for c in channels if not 0 <= c < per_channel.numel()]
    if bad:
        raise InputError(f"Channel {bad[0]} is out of range: layer '{layer}' has {per_channel.numel()} channels.")
    return channels


def conditional_relevance(handle: ModelHandle, x: torch.Tensor, layer: str, goal,
                          channels: Optional[Sequence[int]] = None, k: int = 6,
                          composite: str = "epsilon_plus_flat",
                          progress: Optional[Progress] = None):
    """(R: the layer's relevance for ``goal``, 1 x C x h x w; score; canonizer names;
    the channels whose heatmaps were computed; their conditional input relevances,
    n x H x W summed over colour) for the batch-1 input ``x``.  ``channels`` None: the
    ``k`` most relevant.  One forward, one backward to the layer, then one backward of
    the part below the layer per channel.  The caller holds the writer lock."""
    twin, names = lrp_copy(handle)
    comp = make_composite(composite, x, handle)
    module = _layer_module(twin, layer)
    seen = {}

    def keep(mod, inp, out):
        seen["a"] = out  # the last call, as everywhere else

    ctx = Context(handle, x, None, goal, getattr(goal, "contrast", None), {})
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), comp.context(twin) as modified:
        hd = module.register_forward_hook(keep)
        try:
            raw = modified(xin)
        finally:
            hd.remove()
        a = seen.get("a")
        if not isinstance(a, torch.Tensor) or a.dim() != 4 or a.grad_fn is None:
            raise InputError(f"Layer '{layer}' has no B x C x h x w maps that depend on the input; "
                             "pick a convolutional layer.")
        out = first_tensor(raw)
        score = ctx.score_of(raw)
        init = initial_relevance(out, score)
        scale = float(init.abs().amax().clamp(min=torch.finfo(init.dtype).tiny))
        (rel,) = torch.autograd.grad(out, [a], grad_outputs=[init / scale], retain_graph=True)
        per_channel = rel[0].detach().double().sum(dim=(1, 2)) * scale
        channels = pick_channels(per_channel, channels, k, layer)
        maps = []
        n = len(channels)
        report(progress, 0, n)
        for lo in range(0, n, CHUNK):
            part = channels[lo:lo + CHUNK]
            # the layer's relevance masked to one channel per row: zennit-crp's
            # ChannelConcept.mask, all of a chunk in one batched backward (vmap over
            # the retained graph: the rules' own forwards run once, not once a row)
            g = torch.zeros((len(part),) + tuple(rel.shape), dtype=rel.dtype, device=rel.device)
            for i, c in enumerate(part):
                g[i, :, c] = rel[:, c]
            last = lo + CHUNK >= n
            (hx,) = torch.autograd.grad(a, [xin], grad_outputs=[g], retain_graph=not last,
                                        is_grads_batched=True)
            maps.extend((hx.detach()[:, 0].double().sum(1) * scale).float())
            report(progress, min(n, lo + CHUNK), n)
    return (rel.detach() * scale, float(score.detach().double().sum()), names, channels,
            torch.stack(maps) if maps else torch.zeros((0,) + tuple(x.shape[-2:])))


def concepts(model, image, layer: Optional[str] = None, target=None, k: int = 6, *,
             composite: str = "epsilon_plus_flat", channels: Optional[Sequence[int]] = None,
             progress: Optional[Progress] = None, store=None) -> ConceptSet:
    """The ``k`` channels of ``layer`` (default: the suggested layer) most relevant to
    ``target`` (a class index or label, an :mod:`interpret.targets` target, or None for
    the top class) on ``image``, by Concept Relevance Propagation with the LRP
    ``composite``: each with its share of the layer's relevance and its own heatmap
    on the photo.  ``channels``: these channels instead of the top ``k``.
    ``progress(done, total)`` after each concept's heatmap (raise
    :class:`interpret.Cancelled` in it to stop).  Cached per model, photo, layer,
    target and composite.  Each concept's ``name`` is the one given to it
    (:func:`interpret.name_concept`; in this process, or in ``store``, a folder)."""
    from ..explain import input_tensor
    from .store import concept_names

    from ..explain import as_handle
    from . import vit

    vh = as_handle(model)
    vh.check_ready()
    if vit.covers(vh):  # a vision transformer: AttnLRP's rules on its tokens, not zennit's
        if composite != vit.COMPOSITE:
            _check_composite(composite)
        return vit.concepts(vh, image, layer, target, k, channels=channels, progress=progress, store=store)
    handle, composite = checked(model, "Concepts", composite)
    channels = checked_k(k, channels)
    x = input_tensor(handle, image)
    layer = check_layer(handle, layer)
    t0 = time.perf_counter()
    with session(handle, exclusive=True):
        goal = _resolve(handle, target, x)
        key = ("concepts", handle.fingerprint_fast(), tensor_key(x), layer, goal.key, composite,
               int(k), channels)
        hit = handle.cache_get(key)
        if hit is not None:
            return hit.named(concept_names(handle, layer, store=store))
        rel, score, names, chosen, maps = conditional_relevance(
            handle, x, layer, goal, channels, int(k), composite, progress)
    per_channel = rel[0].double().sum(dim=(1, 2)).cpu().numpy()
    result = concept_set(handle, layer, goal, score, per_channel, chosen, maps, composite, tuple(names), t0)
    handle.cache_put(key, result)
    return result.named(concept_names(handle, layer, store=store))


def concept_set(handle: ModelHandle, layer: str, goal, score: float, per_channel: np.ndarray,
                chosen: Sequence[int], maps, composite: str, canonizers: Tuple[str, ...],
                t0: float) -> "ConceptSet":
    """The result of :func:`concepts` (CNN and ViT paths alike): each chosen channel's
    share of the layer's absolute relevance ``per_channel``, its value and its heatmap
    (``maps`` in the order of ``chosen``)."""
    denom = float(np.abs(per_channel).sum()) or 1.0
    items = tuple(Concept(channel=c, relevance=float(per_channel[c] / denom), value=float(per_channel[c]),
                          heatmap=maps[i].cpu().numpy().astype(np.float32))
                  for i, c in enumerate(chosen))
    index = goal.index if isinstance(goal.index, int) else None
    return ConceptSet(layer=layer, target=goal, target_label=handle.label(index) if index is not None else str(goal.index),
                      score=score, total=float(per_channel.sum()), channel_relevance=per_channel,
                      concepts=items, composite=composite, canonizers=canonizers,
                      seconds=time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------
# reference patches: where each channel is most relevant across an image set


@dataclass(frozen=True)
class Reference:
    """One reference patch of a channel: ``index`` into the image set, ``name``,
    ``relevance`` (the channel's share of the image's relevance at the layer),
    ``position`` (y, x) of its most relevant unit on the layer's map, ``box`` in
    model-input pixels and ``patch`` (the crop of the image as the model saw it)."""

    index: int
    name: str
    relevance: float
    position: Tuple[int, int]
    box: Tuple[int, int, int, int]
    patch: object = field(repr=False)


@dataclass(frozen=True)
class ReferenceTable:
    """Per image and channel of ``layer`` (N x C): the channel's relevance share for
    the image's explained class (``share``: CRP's ``reference_sampling`` with
    ``max_target="sum"`` and ``abs_norm``), the position of its most relevant unit
    (``argmax``, flat on the ``map_size`` grid) and each image's explained class
    (``classes``).  :meth:`patches` gives a channel's reference patches (relevance
    maximisation, Achtibat et al. 2023, Sec. 4.2), of one class's photos with ``cls``;
    :meth:`by_class` each class's most relevant concepts across the set; :meth:`where`
    the classes the model gives the photos of a channel's reference patches."""

    layer: str
    names: Tuple[str, ...]
    share: np.ndarray = field(repr=False)
    argmax: np.ndarray = field(repr=False)
    classes: np.ndarray = field(repr=False)
    map_size: Tuple[int, int]
    composite: str
    seconds: float
    _images: tuple = field(repr=False, compare=False, default=())
    _handle: object = field(repr=False, compare=False, default=None)
    #: the target the table explains (None: each photo's own top class, so that
    #: ``classes`` are the model's predictions)
    target: object = None

    def by_class(self, k: int = 3) -> List[Tuple[int, int, List[Tuple[int, float]]]]:
        """Dataset mode: for each explained class of the set (most photos first), (class,
        number of photos, its ``k`` most relevant concepts as (channel, mean share over
        the class's photos)), strongest first."""
        out = []
        classes, counts = np.unique(self.classes, return_counts=True)
        for cls, n in sorted(zip(classes.tolist(), counts.tolist()), key=lambda t: (-t[1], t[0])):
            mean = self.share[self.classes == cls].mean(0)
            top = np.argsort(-mean, kind="stable")[:max(1, int(k))]
            out.append((int(cls), int(n), [(int(c), float(mean[c])) for c in top]))
        return out

    def where(self, channel: int, n: int = 6) -> Tuple[int, ...]:
        """The classes the model gives the photos of ``channel``'s ``n`` reference
        patches, in the patches' order (one per patch); () when the table explains a
        fixed ``target`` (its classes are then not the photos' own)."""
        if self.target is not None:
            return ()
        c = int(channel)
        if not 0 <= c < self.share.shape[1]:
            raise InputError(f"Channel {c} is out of range: layer '{self.layer}' has {self.share.shape[1]} channels.")
        score = self.share[:, c]
        order = np.argsort(-score, kind="stable")[:max(0, int(n))]
        return tuple(int(self.classes[i]) for i in order if score[i] > 0)

    def patches(self, channel: int, n: int = 6, cls: Optional[int] = None) -> List[Reference]:
        from ..features.dataset import receptive_field

        c = int(channel)
        if not 0 <= c < self.share.shape[1]:
            raise InputError(f"Channel {c} is out of range: layer '{self.layer}' has {self.share.shape[1]} channels.")
        from . import vit

        handle = self._handle
        tokens = self.composite == vit.COMPOSITE  # a ViT's token grid: the token's own window
        rf = None if tokens else receptive_field(handle, self.layer)
        score = self.share[:, c] if cls is None else np.where(self.classes == int(cls), self.share[:, c], -np.inf)
        order = np.argsort(-score, kind="stable")[:max(0, int(n))]
        h, w = self.map_size
        out = []
        for i in order:
            if not score[i] > 0:
                break  # only images where the channel is evidence for the decision
            y, x = divmod(int(self.argmax[i, c]), w)
            view = handle.preprocessing.model_view(self._images[i])
            box = vit.token_box(handle, y, x, self.map_size) if tokens else rf.box(y, x, tuple(handle.input_size))
            out.append(Reference(int(i), self.names[i], float(self.share[i, c]), (y, x), box, view.crop(box)))
        return out


def layer_relevance(handle: ModelHandle, x: torch.Tensor, layer: str, composite: str,
                    classes: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """(the relevance at ``layer`` of each image of the batch ``x`` for its class, B x C x
    h x w float64; the classes explained, B longs): LRP with ``composite`` on the private
    copy, from each image's logit of ``classes`` (None: its top class).  One forward and
    one backward to the layer for the whole batch.  The caller holds the writer lock."""
    twin, _ = lrp_copy(handle)
    comp = make_composite(composite, x, handle)
    module = _layer_module(twin, layer)
    seen = {}
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), comp.context(twin) as modified:
        hd = module.register_forward_hook(lambda m, i, o: seen.__setitem__("a", o))
        try:
            out = first_tensor(modified(xin))
        finally:
            hd.remove()
        a = seen.get("a")
        if not isinstance(a, torch.Tensor) or a.dim() != 4 or a.grad_fn is None:
            raise InputError(f"Layer '{layer}' has no B x C x h x w maps that depend on the input; "
                             "pick a convolutional layer.")
        if out.dim() != 2:
            raise InputError("Concepts across a set need a classifier's B x classes output.")
        cls = out.detach().argmax(1) if classes is None else classes.to(out.device).long()
        if ((cls < 0) | (cls >= out.shape[1])).any():
            raise InputError(f"A class index is out of range: the model has {out.shape[1]} classes.")
        init = torch.zeros_like(out)
        rows = torch.arange(len(x))
        init[rows, cls] = out.detach()[rows, cls]
        (rel,) = torch.autograd.grad(out, [a], grad_outputs=[init])
    return rel.detach().double(), cls.cpu()


def reference_patches(model, images, layer: Optional[str] = None, target=None, *,
                      composite: str = "epsilon_plus_flat", batch_size: int = 8,
                      progress: Optional[Progress] = None, store=None) -> ReferenceTable:
    """The relevance of every channel of ``layer`` on every image of ``images`` (a list,
    a folder or a zip), for ``target`` (a class index or label; None: each image's own
    top class), by LRP on the private copy (AttnLRP at a block's output tokens for a
    vision transformer, :mod:`interpret.concepts.vit`): a :class:`ReferenceTable` whose
    ``patches(channel)`` are the channel's reference patches.  Computed once per model,
    layer, image set, target and composite (cached); ``progress(done, total)`` per
    batch (raise :class:`interpret.Cancelled` in it to stop).  ``store``: a folder where
    the table is kept on disk (:mod:`interpret.concepts.store`, keyed by the model's
    content fingerprint, the layer, the set's content hash, the target and the
    composite) and read back by later requests, in this process or another, without
    running the model."""
    from ..explain import resolve_target
    from ..features.imagesets import as_image_set
    from .discover import MAX_DISCOVER_IMAGES

    handle, composite = checked(model, "Reference patches", composite)
    iset = as_image_set(images)
    if len(iset) > MAX_DISCOVER_IMAGES:
        raise InputError(f"The image set has {len(iset)} photos; at most {MAX_DISCOVER_IMAGES} are used.")
    from . import vit

    tokens = composite == vit.COMPOSITE  # a ViT: AttnLRP on the block's tokens
    layer = vit._resolve_layer(handle, layer) if tokens else check_layer(handle, layer)
    key = ("reference_patches", handle.fingerprint_fast(), repr(handle.preprocessing), layer, iset.key,
           None if target is None else str(target), composite)
    hit = handle.cache_get(key)
    if hit is not None:
        return hit
    t0 = time.perf_counter()
    n = len(iset)
    path = disk = None
    if store is not None:
        from .store import load_references, reference_key, reference_path

        disk = reference_key(handle.fingerprint(), layer, iset.key, None if target is None else str(target),
                             composite)
        path = reference_path(store, disk)
        got = load_references(path, disk, n)
        if got is not None:
            report(progress, n, n)
            table = ReferenceTable(layer=layer, names=iset.names, share=got["share"], argmax=got["argmax"],
                                   classes=got["classes"], map_size=tuple(int(v) for v in got["map_size"]),
                                   composite=composite, seconds=time.perf_counter() - t0,
                                   _images=tuple(iset.images), _handle=handle,
                                   target=None if target is None else str(target))
            handle.cache_put(key, table)
            return table
    shares, argmaxes, classes = [], [], []
    map_size = None
    for lo in range(0, n, batch_size):
        x = torch.cat([handle.preprocess(im) for im in iset.images[lo:lo + batch_size]], 0)
        with session(handle, exclusive=True):
            tgt = None if target is None else resolve_target(handle, target, x[:1])
            fixed = None if tgt is None else torch.full((len(x),), tgt, dtype=torch.long)
            if tokens:  # patch tokens on their grid; the prefix tokens' relevance beside them
                rel, extra, cls = vit.layer_relevance(handle, x, layer, fixed)
            else:
                (rel, cls), extra = layer_relevance(handle, x, layer, composite, fixed), 0.0
        flat = rel.flatten(2)
        per = flat.sum(2) + extra
        shares.append((per / (per.abs().sum(1, keepdim=True) + 1e-12)).cpu().numpy())
        argmaxes.append(flat.argmax(2).cpu().numpy())
        classes.append(cls.cpu().numpy())
        map_size = (int(rel.shape[2]), int(rel.shape[3]))
        report(progress, min(n, lo + batch_size), n)
    table = ReferenceTable(layer=layer, names=iset.names, share=np.concatenate(shares),
                           argmax=np.concatenate(argmaxes).astype(np.int64), classes=np.concatenate(classes),
                           map_size=map_size, composite=composite, seconds=time.perf_counter() - t0,
                           _images=tuple(iset.images), _handle=handle,
                           target=None if target is None else str(target))
    if path is not None:
        from .store import save_references

        save_references(path, disk, table.share, table.argmax, table.classes, table.map_size)
    handle.cache_put(key, table)
    return table
