"""Testing with Concept Activation Vectors (Kim et al., ICML 2018, arXiv:1711.11279),
computed by Captum's ``captum.concept.TCAV``, with the paper's significance test.

A concept is a set of example photos (``concept_images``); its CAV is the normal of a
linear classifier separating their activations at a layer from those of a random set.
The TCAV score is the fraction of the target class's photos whose score increases
along the CAV.  One random set gives one number that may be noise: as the paper's
reference code does, the concept is scored against ``runs`` different random sets, and
so is a *pseudo-concept* (another random set) -- the null distribution -- and a
two-sided t-test compares the two lists of scores.

Captum writes its activations and CAVs under ``save_path`` keyed by the concept's id,
so every call gets a fresh temporary folder (a second call would otherwise read the
first call's CAVs); Python's, numpy's and torch's seeds are set together for the run
(and restored afterwards).  Captum hooks its layer modules: it runs on a private deep
copy of the model.
"""

from __future__ import annotations

import random
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from ..errors import InputError, Progress, report
from ..handle import session
from ..hooks import private_copy
from ..layers import check_layer

__all__ = ["TcavResult", "tcav", "significance_sentence", "MAX_TCAV_IMAGES", "MAX_RUNS"]

#: photos per set (target, concept, the random pool), and runs: bounds on the cost
MAX_TCAV_IMAGES = 300
MAX_RUNS = 50


@dataclass(frozen=True)
class TcavResult:
    """The result of :func:`tcav`.

    ``score``: the mean TCAV score of the concept over the runs (the fraction of the
    target's photos whose score rises along the concept's direction); ``scores``: one
    per run (the concept against a different random set); ``random_scores``: the same
    for random pseudo-concepts (the null); ``p_value``: two-sided t-test of the two
    lists (Welch); ``target``, ``target_label``, ``layer``, ``runs``, ``set_size``,
    ``seed``.  (Captum's own CAV accuracy is not reported: for two concepts it takes
    the argmax over a one-column output and so always predicts the first class.)"""

    score: float
    p_value: float
    scores: Tuple[float, ...]
    random_scores: Tuple[float, ...]
    target: int = 0
    target_label: str = ""
    layer: str = ""
    runs: int = 0
    set_size: int = 0
    seed: int = 0
    seconds: float = 0.0

    @property
    def random_score(self) -> float:
        return float(np.mean(self.random_scores)) if self.random_scores else float("nan")

    def significant(self, alpha: float = 0.05) -> bool:
        return bool(self.p_value < alpha)


def significance_sentence(score: float, random_score: float, p_value: float, runs: int,
                          concept: str = "the concept", target: str = "the class",
                          alpha: float = 0.05) -> str:
    """The TCAV result in words for a person (plain text; the caller escapes names it
    puts on a page).  A pure function of the numbers."""
    if not np.isfinite(p_value) or runs < 2:
        return (f"Not enough runs to test {concept}: a TCAV score needs several random sets "
                f"to be compared with (got {runs}).")
    pct, rnd = round(100 * score), round(100 * random_score)
    head = (f"{pct}% of the photos of {target} score higher when their activations move towards "
            f"{concept} (random sets: {rnd}% on average, {runs} runs).")
    if p_value < alpha:
        way = "uses" if score > random_score else "is pushed away from"
        return head + f" The difference from random sets is significant (p = {p_value:.2g}): the model {way} {concept} for {target}."
    return head + (f" The difference from random sets is not significant (p = {p_value:.2g}): no evidence "
                   f"that the model uses {concept} for {target}.")


def _tensor(handle, images, what: str) -> torch.Tensor:
    from ..features.imagesets import as_image_set

    iset = as_image_set(images)
    if len(iset) > MAX_TCAV_IMAGES:
        raise InputError(f"The {what} set has {len(iset)} photos; at most {MAX_TCAV_IMAGES} are used. "
                         "Give fewer photos.")
    return torch.cat([handle.preprocess(im) for im in iset.images], 0)


def _experiments(xc: torch.Tensor, pool: torch.Tensor, m: int, runs: int, seed: int, subsample: float):
    """Captum experimental sets: ``runs`` times [the concept, random set i] and [random
    pseudo-concept i, random set i], and the concept's set size.  Run i's concept set
    is a random ``subsample`` of the concept's photos (all of them at 1.0), so that the
    concept's scores vary with the photos chosen as the pseudo-concepts' do."""
    from captum.concept import Concept

    gen = np.random.default_rng(seed)
    mc = max(2, int(round(subsample * len(xc))))
    concepts, random_sets, pseudo = [], [], []
    for i in range(runs):
        order = gen.permutation(len(pool))
        pick = np.sort(gen.permutation(len(xc))[:mc])
        concepts.append(Concept(1 + 3 * i, f"concept{i}", [xc[pick]]))
        random_sets.append(Concept(2 + 3 * i, f"random{i}", [pool[order[:m]]]))
        pseudo.append(Concept(3 + 3 * i, f"pseudo{i}", [pool[order[m:m + mc]]]))
    return ([[c, r] for c, r in zip(concepts, random_sets)] + [[p, r] for p, r in zip(pseudo, random_sets)], mc)


def tcav(model, images, concept_images, random_images, layer: Optional[str] = None, target=None,
         runs: int = 10, *, set_size: Optional[int] = None, subsample: float = 0.5, seed: int = 0,
         progress: Optional[Progress] = None) -> TcavResult:
    """TCAV of the concept shown by ``concept_images`` for ``target`` at ``layer``.

    ``images``: photos of the target class (lists of images, a folder or a zip; see
    :func:`interpret.features.as_image_set`); ``concept_images``: examples of the
    concept; ``random_images``: a pool of unrelated photos from which ``runs`` random
    sets of ``set_size`` photos (and as many random pseudo-concepts, the null) are drawn
    (default: as many as the concept has, as many as the pool allows).  Each run
    trains the concept's CAV on a random ``subsample`` of its photos (the pseudo-concepts
    are that size too): with the concept's photos fixed across runs, as in the paper's
    code, a set of random photos was called significant in 2 of 5 seeds here; with
    half-sets in 0 of 10 (tests/test_concepts_planted.py).  ``target``: a class
    index or label (default: the class most of ``images`` are predicted as).
    ``progress(done, total)`` after each CAV (raise :class:`interpret.Cancelled` to
    stop)."""
    from scipy import stats

    from ..explain import as_handle, resolve_target

    handle = as_handle(model)
    handle.check_ready()
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or not 2 <= int(runs) <= MAX_RUNS:
        raise InputError(f"runs must be a whole number from 2 to {MAX_RUNS} (the test compares "
                         f"several runs); got {runs!r}.")
    runs = int(runs)
    layer = check_layer(handle, layer)
    x = _tensor(handle, images, "target")
    xc = _tensor(handle, concept_images, "concept")
    pool = _tensor(handle, random_images, "random")
    if not 0.0 < float(subsample) <= 1.0:
        raise InputError(f"subsample must be in (0, 1]; got {subsample!r}.")
    mc = max(2, int(round(float(subsample) * len(xc))))
    m = int(set_size) if set_size is not None else min(len(xc), len(pool) - mc)
    if m < 2 or m + mc > len(pool):
        raise InputError(f"The random pool has {len(pool)} photos: it needs at least {max(m, 2) + mc} so "
                         "that a random set and a random pseudo-concept do not share photos. Add random "
                         "photos.")
    if len(xc) < 2:
        raise InputError("The concept needs at least 2 example photos.")
    if hasattr(target, "kind"):
        if target.kind != "class":
            raise InputError("TCAV explains a class: give a class index or label.")
        target = target.index
    t0 = time.perf_counter()
    with session(handle):
        if target is None:
            with torch.no_grad():
                pred = handle.module(x).argmax(1)
            target = int(torch.bincount(pred).argmax())
        tgt = resolve_target(handle, target, x[:1])
        twin = private_copy(handle.module)  # Captum hooks its layers: a private copy
    twin.requires_grad_(False)
    from captum.concept import TCAV

    experiments, m_concept = _experiments(xc, pool, m, runs, seed, subsample)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with tempfile.TemporaryDirectory(prefix="interpret-tcav-") as tmp, torch.random.fork_rng(), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            runner = TCAV(model=twin, layers=[layer], save_path=tmp, model_id="model")
            total = len(experiments) + 1
            for i, exp in enumerate(experiments):
                report(progress, i, total)
                runner.compute_cavs([exp])
            report(progress, len(experiments), total)
            out = runner.interpret(inputs=x, experimental_sets=experiments, target=tgt)
            report(progress, total, total)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    from captum.concept._utils.common import concepts_to_str

    def first(exp) -> float:
        return float(out[concepts_to_str(exp)][layer]["sign_count"][0])

    scores = tuple(first(e) for e in experiments[:runs])
    null = tuple(first(e) for e in experiments[runs:])
    if np.allclose(np.std(scores), 0) and np.allclose(np.std(null), 0):
        p = 1.0 if np.isclose(np.mean(scores), np.mean(null)) else 0.0
    else:
        p = float(stats.ttest_ind(scores, null, equal_var=False).pvalue)
    return TcavResult(score=float(np.mean(scores)), p_value=p, scores=scores, random_scores=null,
                      target=tgt, target_label=handle.label(tgt), layer=layer,
                      runs=runs, set_size=m, seed=int(seed), seconds=time.perf_counter() - t0)
