"""Deletion and insertion curves (Petsiuk et al. 2018, "RISE: Randomized Input Sampling
for Explanation of Black-box Models", BMVC, arXiv:1806.07421, section 4.1), compared
with random maps of the explanation's own granularity, and a verdict.

*Deletion* replaces the pixels with a reference (blur, mean colour or a constant), most
relevant first, and follows the class probability: a faithful map makes it fall fast
(low area under the curve).  *Insertion* starts from the reference and puts the pixels
back in the same order: a faithful map makes it rise fast (high area).  Both AUCs are
the trapezoidal area over the fraction of pixels changed, in probability units (the
paper's definition).

**Random maps with the explanation's granularity.**  A per-pixel random order is
off-distribution noise: it destroys the score as fast as removing the object does, so
"better than random" against it means little (on the bundled model a per-pixel random
map's deletion AUC equalled Grad-CAM's).  The random maps here are random values on the
explanation's own grid (the layer's grid for a CAM), made into a heatmap by the same
rule (bilinear upsampling), averaged over a few seeds: the same kind of picture with
the information taken out.

**The verdict rests on insertion, the insertion - deletion gap and ROAD, never on
deletion alone**: deletion also rewards maps that break the photo in ways the model has
never seen (see :func:`verdict`).

Speed: the photo's logits come from the recorded pass (no forward), the reference image
is one forward shared by both curves, the perturbed images go through the model in
batches, and the random maps' curves are cached per (model, photo, grid, class,
settings), so the five gradient CAMs of one layer share them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import torch

from ..errors import InputError, Progress, report
from ..methods.registry import Cost
from ._common import (BASELINES, Forwards, MapInput, cache, order_of,
                      probabilities, random_heatmap, read_map, reference)
from .registry import measure

__all__ = ["Faithfulness", "DeletionInsertion", "faithfulness", "estimate", "verdict", "VERDICTS",
           "auc", "FAITHFUL", "WEAK", "RANDOM", "faithfulness_many", "evidence", "verdict_of", "scale_of"]

FAITHFUL, WEAK, RANDOM = "faithful", "weak", "no better than random"
VERDICTS = (FAITHFUL, WEAK, RANDOM)

#: margins of :func:`verdict`, as fractions of the probability on the full photo
FAITHFUL_MARGIN = 0.10
RANDOM_MARGIN = 0.05
#: ... and in units of the random maps' spread (standard deviation over seeds)
SPREAD_FACTOR = 2.0


def auc(fractions: np.ndarray, values: np.ndarray) -> float:
    """Trapezoidal area under ``values`` over ``fractions`` (Petsiuk et al. 2018)."""
    f = np.asarray(fractions, np.float64)
    v = np.asarray(values, np.float64)
    return float(((v[1:] + v[:-1]) * 0.5 * np.diff(f)).sum())


def _frozen(a) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map, against random maps of its granularity.

    ``fractions``: the fraction of pixels removed (deletion) or restored (insertion) at
    each point, 0 to 1; ``deletion`` / ``insertion``: the class probability there
    (``probability`` on the full photo, ``baseline_probability`` on the reference
    image); ``random_deletion`` / ``random_insertion``: the same, averaged over
    ``seeds`` random maps; the four ``*_auc`` are their areas, ``random_*_auc_std``
    the random maps' spread.  ``road``: ROAD's curves when asked for.  ``verdict``:
    "faithful", "weak" or "no better than random" (:func:`verdict`), ``reasons`` the
    comparisons behind it, ``sentence`` the same for people.  ``forwards``: images
    that went through the model in this call (cached curves cost none)."""

    method: Optional[str]
    target: int
    target_label: str
    contrast: Optional[int]
    contrast_label: Optional[str]
    baseline: str
    steps: int
    seeds: int
    grid: Tuple[int, int]
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    random_deletion: np.ndarray
    random_insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float
    random_deletion_auc_std: float
    random_insertion_auc_std: float
    probability: float
    baseline_probability: float
    verdict: str
    sentence: str
    reasons: Tuple[str, ...] = ()
    road: Optional[object] = None
    random_gap_std: float = 0.0
    forwards: int = 0
    seconds: float = 0.0
    extras: dict = field(default_factory=dict, repr=False, compare=False)
    #: what the curves are in: "probability" (0 to 1, shown as a percentage) or "value"
    #: (a regressor's output times ``sign``, in its own unit)
    unit: str = "probability"
    sign: int = 1
    #: the target in words for a page (labels escaped; :meth:`interpret.targets.Target.sentence`)
    target_sentence: str = ""
    #: the curves are a mean over a region's pixels (a segmentation target), not one number
    over_region: bool = False

    @property
    def scale(self) -> float:
        """The verdict's yardstick (:func:`verdict`): the probability on the full photo,
        or for a value the size of its change from the photo to the reference image."""
        return scale_of(self.unit, self.probability, self.baseline_probability)

    @property
    def gap(self) -> float:
        """Insertion AUC - deletion AUC (higher is better)."""
        return self.insertion_auc - self.deletion_auc

    @property
    def random_gap(self) -> float:
        return self.random_insertion_auc - self.random_deletion_auc

    def at(self, fraction: float) -> dict:
        """The four curves at ``fraction`` (linear interpolation)."""
        f = self.fractions
        return {k: float(np.interp(fraction, f, getattr(self, k)))
                for k in ("deletion", "insertion", "random_deletion", "random_insertion")}

    @property
    def evidence(self) -> tuple:
        """The pieces of evidence the verdict rests on (:func:`evidence`)."""
        road_gap = getattr(self.road, "gap", None) if self.road is not None else None
        return evidence(self.insertion_auc, self.deletion_auc, self.random_insertion_auc,
                        self.random_deletion_auc, self.scale, self.random_insertion_auc_std,
                        self.random_gap_std, road_gap)

    def sentence_for(self, marked: str = "", fraction: float = 0.1) -> str:
        """The trust sentence as markup for a page (:mod:`interpret.words`: the labels
        escaped): the quantities the verdict is computed from (insertion area and the
        insertion - deletion gap against the random maps', ROAD when run), and the
        verdict.  ``marked`` and ``fraction`` are kept for callers of the old sentence
        and not used: a quantity the verdict does not rest on is never quoted."""
        return _sentence(self)

    def as_dict(self) -> dict:
        """Plain JSON-able values (for the CLI and the report)."""
        out = {
            "method": self.method, "target": self.target, "target_label": self.target_label,
            "contrast": self.contrast, "contrast_label": self.contrast_label,
            "baseline": self.baseline, "steps": self.steps, "seeds": self.seeds,
            "grid": list(self.grid), "fractions": self.fractions.tolist(),
            "deletion": self.deletion.tolist(), "insertion": self.insertion.tolist(),
            "random_deletion": self.random_deletion.tolist(),
            "random_insertion": self.random_insertion.tolist(),
            "deletion_auc": self.deletion_auc, "insertion_auc": self.insertion_auc,
            "random_deletion_auc": self.random_deletion_auc,
            "random_insertion_auc": self.random_insertion_auc,
            "probability": self.probability, "baseline_probability": self.baseline_probability,
            "verdict": self.verdict, "sentence": self.sentence, "reasons": list(self.reasons),
            "forwards": self.forwards, "seconds": round(self.seconds, 4),
            "unit": self.unit, "sign": self.sign,
        }
        if self.road is not None:
            out["road"] = self.road.as_dict()
        return out


def scale_of(unit: str, probability: float, baseline_probability: float) -> float:
    """The yardstick the gains over random maps are measured against: for a
    probability, the probability on the full photo (its distance from 0, where a photo
    with nothing of the class left lies); for a regressor's value, which has no zero of
    its own, the distance the value travels from the full photo to the reference
    image, ``|value(photo) - value(reference)|`` (the whole range the curves span)."""
    if unit == "probability":
        return float(probability)
    return abs(float(probability) - float(baseline_probability))


def evidence(insertion_auc: float, deletion_auc: float, random_insertion_auc: float,
             random_deletion_auc: float, probability: float, random_insertion_std: float = 0.0,
             random_gap_std: float = 0.0, road_gap: Optional[float] = None) -> tuple:
    """The pieces of evidence :func:`verdict` decides from, each an
    :class:`interpret.words.Evidence` (name, the map's value, the random maps' value,
    level "counts" / "slight" / "nil"): "insertion" (the areas), "gap" (insertion -
    deletion areas) and, when computed, "road" (LeRF - MoRF; 0 for random maps)."""
    from ..words import COUNTS, NIL, SLIGHT, Evidence

    p = max(float(probability), 1e-6)
    pieces = [("insertion", insertion_auc, random_insertion_auc, random_insertion_std),
              ("gap", insertion_auc - deletion_auc, random_insertion_auc - random_deletion_auc,
               random_gap_std)]
    if road_gap is not None:
        pieces.append(("road", float(road_gap), 0.0, 0.0))
    out = []
    for name, value, rnd, spread in pieces:
        gain = float(value) - float(rnd)
        if gain > max(FAITHFUL_MARGIN * p, SPREAD_FACTOR * spread):
            level = COUNTS
        elif gain <= max(RANDOM_MARGIN * p, SPREAD_FACTOR * spread):
            level = NIL
        else:
            level = SLIGHT
        out.append(Evidence(name, value, rnd, level))
    return tuple(out)


_NAMES = {"insertion": "insertion", "gap": "insertion - deletion gap", "road": "ROAD (LeRF - MoRF)"}
_YARDSTICK = {"probability": "photo's probability",
              "value": "value's change from the photo to the reference image"}
_WORDS = {"counts": "better than random", "slight": "slightly better than random",
          "nil": "no better than random"}


def verdict(insertion_auc: float, deletion_auc: float, random_insertion_auc: float,
            random_deletion_auc: float, probability: float, random_insertion_std: float = 0.0,
            random_gap_std: float = 0.0, road_gap: Optional[float] = None,
            unit: str = "probability") -> Tuple[str, Tuple[str, ...]]:
    """"faithful", "weak" or "no better than random", and the comparisons behind it.

    Three pieces of evidence (:func:`evidence`), each a gain over the random maps:
    insertion (``insertion AUC - random insertion AUC``), the gap (``(insertion -
    deletion) - (random insertion - random deletion)``) and, when computed, ROAD's
    ``mean(LeRF) - mean(MoRF)`` (zero in expectation for a random map).  Deletion is
    never used alone: a map can "win" at deletion by pointing at whatever breaks the
    photo worst for the model, and with a blur baseline Grad-CAM's deletion AUC on the
    bundled model was no better than a random map's while its insertion AUC was twice
    theirs.

    A gain *counts* when it exceeds both ``FAITHFUL_MARGIN`` (10%) of the probability on
    the full photo (for a regressor's value: of its change from the photo to the
    reference, :func:`scale_of`; the areas are then in the value's unit) and ``SPREAD_FACTOR`` (2) standard deviations of the random maps'
    values; it is *nil* when it is at most ``RANDOM_MARGIN`` (5%) of that probability or
    within those 2 standard deviations.  The spread is the yardstick because the map is
    compared with *one* random map: coarse random maps vary a lot (a random 7 x 7 blob
    lands on the object now and then), and a gain a random map reaches about one time
    in twenty is no evidence.  Faithful: every piece counts.  No better than random:
    every piece is nil.  Weak: anything between (some evidence, not all of it).
    ROAD's gap has no spread (it is 0 in expectation for any random order), so only the
    two margins apply to it."""
    p = max(float(probability), 1e-6)
    pieces = evidence(insertion_auc, deletion_auc, random_insertion_auc, random_deletion_auc,
                      probability, random_insertion_std, random_gap_std, road_gap)
    return verdict_of(pieces), tuple(
        f"{_NAMES[e.name]}: {e.value - e.random:+.3f} over random maps ({(e.value - e.random) / p:+.0%} "
        f"of the {_YARDSTICK.get(unit, unit)}): {_WORDS[e.level]}" for e in pieces)


def verdict_of(pieces) -> str:
    """The verdict from the pieces' levels: faithful when every piece counts, no better
    than random when every piece is nil, weak otherwise."""
    if all(e.level == "counts" for e in pieces):
        return FAITHFUL
    if all(e.level == "nil" for e in pieces):
        return RANDOM
    return WEAK


def _sentence(r: "Faithfulness") -> str:
    """The trust sentence (interpret.words.trust_sentence) as markup."""
    from ..words import trust_sentence

    return trust_sentence(r.verdict, r.evidence, r.target_label, r.contrast_label,
                          unit=r.unit, sign=r.sign, target_sentence=r.target_sentence or None)


class DeletionInsertion:
    """Deletion and insertion curves as a small callable (Quantus's habit: the
    parameters here, one batched call on the model, image and map).

    ``steps``: points on each curve after the start (fractions 0, 1/steps, ..., 1);
    ``baseline``: "blur", "mean" or "constant" (``constant``: its pixel value);
    ``seeds``: random maps averaged; ``seed``: the first of them (and the tie-breaker's);
    ``batch_size``: images per forward (None: 4 on a CPU, where larger batches are not
    faster per image, 32 on a GPU)."""

    def __init__(self, steps: int = 20, baseline: str = "blur", seeds: int = 3, seed: int = 0,
                 constant: float = 0.0, batch_size: Optional[int] = None):
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 2 <= int(steps) <= 1000:
            raise InputError(f"steps must be a whole number between 2 and 1000; got {steps!r}.")
        if baseline == "black":
            baseline, constant = "constant", 0.0
        if baseline not in BASELINES:
            raise InputError(f"Unknown baseline '{baseline}'; one of {', '.join(BASELINES)}.")
        if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or not 1 <= int(seeds) <= 64:
            raise InputError(f"seeds must be a whole number between 1 and 64; got {seeds!r}.")
        if batch_size is not None and int(batch_size) < 1:
            raise InputError(f"batch_size must be at least 1; got {batch_size}.")
        if not 0.0 <= float(constant) <= 1.0:
            raise InputError(f"A constant baseline is a pixel value in [0, 1]; got {constant}.")
        self.steps, self.baseline, self.seeds, self.seed = int(steps), baseline, int(seeds), int(seed)
        self.constant = float(constant)
        self.batch_size = batch_size

    @property
    def fractions(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.steps + 1)

    def forwards(self, random_cached: bool = False) -> int:
        """Images through the model for one map: 2 (steps - 1) perturbed images and the
        reference, plus 2 (steps - 1) per random map unless those are cached."""
        per_map = 2 * (self.steps - 1)
        return per_map + 1 + (0 if random_cached else self.seeds * per_map)

    def _settings(self) -> tuple:
        return (self.steps, self.baseline, self.constant)

    def __call__(self, handle, x: torch.Tensor, m: MapInput, progress: Optional[Progress] = None
                 ) -> Tuple[dict, int]:
        """The curves of map ``m`` (and of its random maps) on input ``x``, inside the
        caller's session: ``({"p0", "p_ref", "deletion", "insertion", "random": [(deletion,
        insertion) per random map]}, forwards)``."""
        from ..capture import logits as _logits

        size = tuple(int(s) for s in x.shape[-2:])
        n = size[0] * size[1]
        ks = np.rint(self.fractions * n).astype(np.int64)
        store = cache(handle)
        own_key, rnd_key, ref_key = self._keys(handle, x, m)
        # logits, not probabilities, are kept: the perturbed images of the random maps and
        # of the reference do not depend on the class, so another class (or contrast)
        # reuses them, and so does the same map read for another class
        own, rnd, ref_logits = store.get(own_key), store.get(rnd_key), store.get(ref_key)

        p0 = float(probabilities(_logits(handle, x), m.target)[0])
        ranks = []
        if own is None:
            ranks.append(order_of(m.heatmap, self.seed))
        if rnd is None:
            rng = np.random.default_rng(self.seed)
            for s in range(self.seeds):
                ranks.append(order_of(random_heatmap(m, size, rng), self.seed + 1 + s))
        interior = ks[1:-1]
        jobs = [("ref", -1, 0, False)] if ref_logits is None else []
        for i in range(len(ranks)):
            for insert in (False, True):
                jobs += [("map", i, int(k), insert) for k in interior]
        bs = self.batch_size or (32 if x.device.type == "cuda" else 4)
        fw = Forwards(handle, m.target, bs, len(jobs), progress)
        ref = reference(handle, x, self.baseline, self.constant)
        rank_t = torch.from_numpy(np.stack(ranks)).to(x.device) if ranks else None

        def build(start: int, stop: int) -> torch.Tensor:
            imgs = []
            for kind, i, k, insert in jobs[start:stop]:
                if kind == "ref":
                    imgs.append(ref)
                    continue
                hit = (rank_t[i] < k)[None, None]
                imgs.append(torch.where(hit, x, ref) if insert else torch.where(hit, ref, x))
            return torch.cat(imgs)

        out = fw.run(len(jobs), build) if jobs else None
        pos = 0
        if ref_logits is None:
            ref_logits = out[:1]
            store.put(ref_key, ref_logits)
            pos = 1
        per = 2 * len(interior)
        if own is None:
            own = out[pos:pos + per]
            store.put(own_key, own)
            pos += per
        if rnd is None:
            rnd = out[pos:pos + self.seeds * per]
            store.put(rnd_key, rnd)
        p_ref = float(probabilities(ref_logits, m.target)[0])

        def curves(logits: torch.Tensor):
            pr = probabilities(logits, m.target).numpy().astype(np.float64)
            half = len(interior)
            return np.r_[p0, pr[:half], p_ref], np.r_[p_ref, pr[half:], p0]

        own_del, own_ins = curves(own)
        random_curves = [curves(rnd[i * per:(i + 1) * per]) for i in range(self.seeds)]
        return {"p0": p0, "p_ref": p_ref, "deletion": own_del, "insertion": own_ins,
                "random": random_curves}, fw.count

    def many(self, handle, xs, maps, progress: Optional[Progress] = None) -> Tuple[list, int]:
        """The curves of several photos' maps at once, inside the caller's session: the
        perturbed images of every photo (the photo itself, its reference, its map's and
        its random maps' deletion and insertion images, in :meth:`__call__`'s order) go
        through the model in batches of ``batch_size`` that span photos (on a GPU, full
        batches of 32 instead of one photo's ragged ones; on a CPU the batch stays at 4,
        where it costs least per image, and what changes is that progress moves within
        a set of photos).  ``xs``: 1 x
        3 x H x W inputs, ``maps``: their :class:`MapInput`.  Returns (one curves dict of
        :meth:`__call__` per photo, images through the model).

        The random maps are drawn exactly as :meth:`__call__` draws them (the same seeds
        for every photo), so each photo's curves are those of a call of its own, up to
        the float rounding of another batch composition.  Nothing is read from or put
        in the per-model cache (a data set's curves would push a person's out).
        ``progress(done, total)`` counts *photos* whose curves are complete, and is
        called after every batch (raise :class:`interpret.Cancelled` in it to stop)."""
        from ..tensors import check_output, task_output
        from ._common import seconds_per_image

        if len(xs) != len(maps):
            raise InputError(f"{len(xs)} photos but {len(maps)} maps.")
        n_img = len(xs)
        if n_img == 0:
            return [], 0
        size = tuple(int(s) for s in xs[0].shape[-2:])
        n = size[0] * size[1]
        ks = np.rint(self.fractions * n).astype(np.int64)
        interior = [int(k) for k in ks[1:-1]]
        refs, ranks = [], []
        jobs = []   # (photo, kind, rank row, k, insert)
        ends = []   # the index after each photo's last job
        for j, (x, m) in enumerate(zip(xs, maps)):
            if tuple(int(s) for s in x.shape[-2:]) != size:
                raise InputError("The photos of one call must have the same input size.")
            refs.append(reference(handle, x, self.baseline, self.constant))
            rows = [order_of(m.heatmap, self.seed)]
            rng = np.random.default_rng(self.seed)
            for s in range(self.seeds):
                rows.append(order_of(random_heatmap(m, size, rng), self.seed + 1 + s))
            ranks.append(torch.from_numpy(np.stack(rows)).to(x.device))
            jobs += [(j, "x", -1, 0, False), (j, "ref", -1, 0, False)]
            for i in range(len(rows)):
                for insert in (False, True):
                    jobs += [(j, "map", i, k, insert) for k in interior]
            ends.append(len(jobs))
        bs = self.batch_size or (32 if xs[0].device.type == "cuda" else 4)
        speed = seconds_per_image(handle)
        out, count, finished = [], 0, 0
        for start in range(0, len(jobs), bs):
            part = jobs[start:start + bs]
            imgs = []
            for j, kind, i, k, insert in part:
                x = xs[j]
                if kind == "x":
                    imgs.append(x)
                elif kind == "ref":
                    imgs.append(refs[j])
                else:
                    hit = (ranks[j][i] < k)[None, None]
                    imgs.append(torch.where(hit, x, refs[j]) if insert else torch.where(hit, refs[j], x))
            batch = torch.cat(imgs)
            del imgs
            t0 = time.perf_counter()
            with torch.inference_mode():
                raw = handle.module(batch)
                logits = check_output(task_output(raw, batch.shape[-2:]), raw)
                if logits.dim() != 2:  # a segment: each row reduced by its own photo's target
                    logits = torch.cat([maps[j].target.reduce(logits[r:r + 1])
                                        for r, (j, *_rest) in enumerate(part)])
            speed.update((time.perf_counter() - t0) / max(1, len(part)))
            out.append(logits.detach().float().cpu().clone())
            count += len(part)
            while finished < n_img and ends[finished] <= count:
                finished += 1
            report(progress, finished, n_img)
        allout = torch.cat(out)
        per = 2 * len(interior)
        results = []
        begin = 0
        for j, m in enumerate(maps):
            lg = allout[begin:ends[j]]
            begin = ends[j]
            p0 = float(probabilities(lg[0:1], m.target)[0])
            p_ref = float(probabilities(lg[1:2], m.target)[0])

            def curves(logits: torch.Tensor, p0=p0, p_ref=p_ref, m=m):
                pr = probabilities(logits, m.target).numpy().astype(np.float64)
                half = len(interior)
                return np.r_[p0, pr[:half], p_ref], np.r_[p_ref, pr[half:], p0]

            own_del, own_ins = curves(lg[2:2 + per])
            rnd = lg[2 + per:]
            results.append({"p0": p0, "p_ref": p_ref, "deletion": own_del, "insertion": own_ins,
                            "random": [curves(rnd[i * per:(i + 1) * per]) for i in range(self.seeds)]})
        return results, count

    def _keys(self, handle, x: torch.Tensor, m: MapInput) -> tuple:
        """Cache keys of the map's perturbed images, its random maps' and the reference's
        (none depends on the class; a segment's do: its region is what is kept)."""
        from ..tensors import tensor_key

        fp, tkey, st = handle.fingerprint_fast(), tensor_key(x), self._settings() + (m.target.reduce_key,)
        return (("di", fp, tkey, m.key, st, self.seed),
                ("di.random", fp, tkey, m.grid, m.rule, st, self.seeds, self.seed),
                ("di.ref", fp, tkey, st))


def estimate(model, image, explanation, steps: int = 20, baseline: str = "blur", *,
             seeds: int = 3, seed: int = 0, constant: float = 0.0, target=None,
             batch_size: Optional[int] = None) -> dict:
    """What :func:`faithfulness` with these settings will cost before it runs:
    ``{"forwards", "seconds", "random_cached", "cached"}``.  ``seconds`` is the forwards
    times this model's measured time per image (measured once with one small batch if
    no measure has run on it yet); the random maps are shared by every map of the same
    grid, so after the first CAM of a layer only the map's own curves are left."""
    import time as _time

    from ..explain import as_handle, input_tensor
    from ..handle import session
    from ._common import seconds_per_image

    runner = DeletionInsertion(steps, baseline, seeds, seed, constant, batch_size)
    handle = as_handle(model)
    handle.check_ready()
    x = input_tensor(handle, image)
    m = read_map(handle, x, explanation, target)
    speed = seconds_per_image(handle)
    with session(handle):
        store = cache(handle)
        own_key, rnd_key, _ = runner._keys(handle, x, m)
        own, rnd = store.get(own_key) is not None, store.get(rnd_key) is not None
        if speed.value is None:
            bs = runner.batch_size or (32 if x.device.type == "cuda" else 4)
            batch = x.expand(bs, -1, -1, -1).contiguous()
            with torch.inference_mode():
                t0 = _time.perf_counter()
                handle.module(batch)
            speed.update((_time.perf_counter() - t0) / bs)
    n = 0 if own and rnd else (2 * (runner.steps - 1) + 1 if not own else 0) + (
        0 if rnd else runner.seeds * 2 * (runner.steps - 1))
    return {"forwards": n, "seconds": n * float(speed.value), "random_cached": rnd, "cached": own and rnd}


def _cost(handle, params) -> Cost:
    di = DeletionInsertion(**{k: v for k, v in params.items()
                              if k in ("steps", "baseline", "seeds", "seed", "constant", "batch_size")})
    n = di.forwards()
    bs = di.batch_size or 4
    note = f"{2 * (di.steps - 1) + 1} for the map, {n - 2 * (di.steps - 1) - 1} for {di.seeds} random maps (shared by maps of the same grid)"
    return Cost(n, -(-n // bs), note=note)


@measure("deletion_insertion", label="Deletion and insertion", kind="faithfulness",
         measures="How fast the probability of what is explained (a regressor: its value) "
                  "falls when the pixels the map marks are "
                  "hidden first, and rises when they are shown first, compared with random "
                  "maps of the same coarseness.",
         paper="https://arxiv.org/abs/1806.07421",
         citation="Petsiuk et al. 2018, RISE: Randomized Input Sampling for Explanation of Black-box Models",
         heavy=False, progress=True, cost=_cost)
def faithfulness(model, image, explanation, steps: int = 20, baseline: str = "blur", *,
                 seeds: int = 3, seed: int = 0, constant: float = 0.0, road: bool = False,
                 target=None, batch_size: Optional[int] = None,
                 progress: Optional[Progress] = None) -> Faithfulness:
    """How faithful a map is to the model: deletion and insertion curves (Petsiuk et
    al. 2018) against random maps of the map's own granularity, and a verdict.

    ``explanation``: an :class:`~interpret.Explanation` of ``image`` (its class,
    contrast and grid are used), or an H x W array (then ``target``, default the top
    class).  ``steps``: points per curve; ``baseline``: what hidden pixels become,
    "blur" (default), "mean" or "constant" (pixel value ``constant``, 0 = black);
    ``seeds``: random maps averaged; ``road=True`` adds ROAD (Rong et al. 2022; heavy)
    to the verdict.  ``progress(done, total)`` counts images through the model; raise
    :class:`interpret.Cancelled` in it to stop.  The model is never changed."""
    from ..explain import as_handle, input_tensor
    from ..handle import session

    t0 = time.perf_counter()
    runner = DeletionInsertion(steps, baseline, seeds, seed, constant, batch_size)
    handle = as_handle(model)
    handle.check_ready()
    x = input_tensor(handle, image)
    m = read_map(handle, x, explanation, target)
    road_result = None
    with session(handle):
        curves, count = runner(handle, x, m, progress)
    if road:
        from .road import road as _road

        road_result = _road(handle, x, explanation, target=target, batch_size=batch_size,
                            progress=progress)
    return _finish(runner, handle, m, curves, count, road_result, time.perf_counter() - t0)


def faithfulness_many(model, images, explanations, steps: int = 20, baseline: str = "blur", *,
                      seeds: int = 3, seed: int = 0, constant: float = 0.0, targets=None,
                      batch_size: Optional[int] = None,
                      progress: Optional[Progress] = None) -> list:
    """:func:`faithfulness` of several photos' maps at once (dataset mode): the
    perturbed images of all the photos go through the model in shared batches
    (:meth:`DeletionInsertion.many`), so a set of photos costs fewer, fuller batches
    than one call per photo, and ``progress(done, total)`` (photos whose curves are
    done) is called after every batch.  Each result equals :func:`faithfulness` on its
    photo alone, up to float rounding (tests/test_dataset_faithfulness.py).

    ``images``: photos or 1 x 3 x H x W inputs of one size; ``explanations``: one per
    photo; ``targets``: None or one per photo.  ROAD is not offered here.  Every photo
    and its perturbed copies of one batch are in memory at once: call it per batch of
    photos (the dataset engines do).  The model is never changed."""
    from ..explain import as_handle, input_tensor
    from ..handle import session

    t0 = time.perf_counter()
    runner = DeletionInsertion(steps, baseline, seeds, seed, constant, batch_size)
    handle = as_handle(model)
    handle.check_ready()
    images, explanations = list(images), list(explanations)
    if len(images) != len(explanations):
        raise InputError(f"{len(images)} photos but {len(explanations)} explanations.")
    targets = [None] * len(images) if targets is None else list(targets)
    if len(targets) != len(images):
        raise InputError(f"{len(images)} photos but {len(targets)} targets.")
    xs = [input_tensor(handle, im) for im in images]
    ms = [read_map(handle, x, e, t) for x, e, t in zip(xs, explanations, targets)]
    with session(handle):
        all_curves, count = runner.many(handle, xs, ms, progress)
    each = (time.perf_counter() - t0) / max(1, len(xs))
    per = count // max(1, len(xs))
    return [_finish(runner, handle, m, c, per, None, each) for m, c in zip(ms, all_curves)]


def _target_sentence(target, handle) -> str:
    """The target's own sentence for a page (labels escaped), or "" when it has none or
    when the class label quoted in the trust sentence already says it all (one class
    of a single-label classifier)."""
    if getattr(target, "kind", "class") == "class":
        return ""
    try:
        return target.sentence(handle.labels)
    except (AttributeError, TypeError, NotImplementedError, IndexError):  # a target without words
        return ""


def _finish(runner: "DeletionInsertion", handle, m: MapInput, curves: dict, count: int,
            road_result, seconds: float) -> Faithfulness:
    """The :class:`Faithfulness` of one map from its curves (:meth:`DeletionInsertion.__call__`
    or one photo of :meth:`DeletionInsertion.many`): the areas, the verdict, the sentence."""
    f = runner.fractions
    r_del = np.array([auc(f, d) for d, _ in curves["random"]])
    r_ins = np.array([auc(f, i) for _, i in curves["random"]])
    del_auc, ins_auc = auc(f, curves["deletion"]), auc(f, curves["insertion"])
    rins_std = float(r_ins.std(ddof=1)) if len(r_ins) > 1 else 0.0
    rgap_std = float((r_ins - r_del).std(ddof=1)) if len(r_ins) > 1 else 0.0
    unit = getattr(m.target, "unit", "probability")
    word, reasons = verdict(ins_auc, del_auc, float(r_ins.mean()), float(r_del.mean()),
                            scale_of(unit, curves["p0"], curves["p_ref"]), rins_std, rgap_std,
                            road_result.gap if road_result is not None else None, unit=unit)
    con = m.target.contrast
    result = Faithfulness(
        method=m.method, target=m.target.index, target_label=handle.label(m.target.index),
        contrast=con, contrast_label=handle.label(con) if con is not None else None,
        baseline=runner.baseline, steps=runner.steps, seeds=runner.seeds, grid=m.grid,
        fractions=_frozen(f), deletion=_frozen(curves["deletion"]),
        insertion=_frozen(curves["insertion"]),
        random_deletion=_frozen(np.mean([d for d, _ in curves["random"]], axis=0)),
        random_insertion=_frozen(np.mean([i for _, i in curves["random"]], axis=0)),
        deletion_auc=del_auc, insertion_auc=ins_auc,
        random_deletion_auc=float(r_del.mean()), random_insertion_auc=float(r_ins.mean()),
        random_deletion_auc_std=float(r_del.std(ddof=1)) if len(r_del) > 1 else 0.0,
        random_insertion_auc_std=rins_std,
        probability=curves["p0"], baseline_probability=float(curves["p_ref"]),
        verdict=word, sentence="", reasons=reasons, road=road_result, random_gap_std=rgap_std,
        forwards=count,
        seconds=seconds, unit=unit, sign=int(getattr(m.target, "sign", 1)),
        target_sentence=_target_sentence(m.target, handle),
        over_region=getattr(m.target, "kind", "class") == "region",
    )
    from ..words import plain

    object.__setattr__(result, "sentence", plain(_sentence(result)))
    return result
