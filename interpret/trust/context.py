"""How much a detection relies on what lies outside its box (issue 20): the box's
score on the photo, with everything *outside* the box removed ("the box alone") and
with the box itself removed ("the surroundings alone"), removed meaning replaced by
the same reference image the deletion curve uses (:func:`interpret.trust._common.
reference`: a blur by default).  Three images through the model, in one batch.

Why this definition (docs/trust.md, "Context outside the box"): it asks the detector
itself, not the map, so it holds whatever method drew the map; it needs no
annotation (the box is the detection's own); its cost is fixed (three forwards,
whatever the photo); and it uses the deletion curve's reference so that "removed"
means the same thing in the whole panel.  The headline is the share of the score lost
without the surroundings, ``(score - box_only) / score``: 0 when the box alone keeps
the whole score, 1 when the detection vanishes without its surroundings, negative
when the surroundings were holding the score down.  The score with the box removed
says whether the surroundings alone are enough for the detector (the model sees a
boat because of the water).  A score of 0 is a detection that is gone: no detection
of the class matches the box any more (IoU, the detector's own score threshold), as
for every perturbation of a box target (docs/detection.md).

The idea of testing a detector by what lies around an object is Rosenfeld et al.
2018 ("The Elephant in the Room", arXiv:1808.03305) and Shetty et al. 2019 ("Not Using
the Car to See the Sidewalk", arXiv:1812.00896); this measure is the simplest version
of it for one detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import InputError, Progress
from ..methods.registry import Cost
from ._common import Forwards, reference
from .registry import measure

__all__ = ["BoxContext", "box_context", "estimate_seconds"]

#: images through the model: the photo, the box alone, the surroundings alone
FORWARDS = 3


@dataclass(frozen=True)
class BoxContext:
    """``score``: the detection's score on the photo; ``box_only``: with everything
    outside the box replaced by the reference image; ``context_only``: with the box
    replaced; all in the detector's probability for the box's own class (a "rather
    than" label is set aside), 0 where the detection is gone.  ``baseline``: the
    reference; ``forwards``: images through the model."""

    score: float
    box_only: float
    context_only: float
    baseline: str
    forwards: int = FORWARDS

    @property
    def reliance(self) -> float:
        """The share of the score lost without the surroundings, ``(score -
        box_only) / score`` (NaN when the score is not positive)."""
        return (self.score - self.box_only) / self.score if self.score > 0 else float("nan")

    @property
    def sentence(self) -> str:
        """The measure in words (:func:`interpret.words.box_context`)."""
        from ..words import box_context as _words

        return _words(self.score, self.box_only, self.context_only, self.baseline)

    def as_dict(self) -> dict:
        return {"score": self.score, "box_only": self.box_only, "context_only": self.context_only,
                "reliance": self.reliance, "baseline": self.baseline, "forwards": self.forwards}


def estimate_seconds(model) -> Optional[float]:
    """What :func:`box_context` will take on this model: its three images times the
    model's measured seconds per image (:func:`interpret.trust._common.seconds_per_image`,
    kept by every perturbation measure), or None before anything was measured."""
    from ..explain import as_handle
    from ._common import seconds_per_image

    v = seconds_per_image(as_handle(model)).value
    return None if v is None else FORWARDS * float(v)


def _target(handle, x, image, target):
    """The resolved box target of ``target`` (an explanation of a box, a box target or
    a Detection)."""
    from .. import targets as _targets
    from ..detection import BoxTarget, Detection
    from ..explain import Explanation, _photo

    if isinstance(target, Explanation):
        t = getattr(target, "explained", None)
        if not isinstance(t, BoxTarget):
            raise InputError("The context outside a box is measured for a detection: explain a box "
                             "(interpret.targets.box) first.")
        return t
    if isinstance(target, Detection):
        target = _targets.box(target)
    if not isinstance(target, BoxTarget):
        raise InputError("The context outside a box needs a box: an explanation of one, "
                         "interpret.targets.box(...) or a Detection.")
    _, photo_size = _photo(image)
    return _targets.resolve(handle, target, x, photo_size=photo_size)


def _own(t):
    """The box's own detection: a "rather than" label set aside (how much a detection
    relies on its surroundings is a property of the detection, and a difference of two
    scores is not a score that can be "gone")."""
    from dataclasses import replace

    if t.contrast is None:
        return t
    return replace(t, contrast=None, contrast_found=None, contrast_score=None)


@measure("box_context", label="Context outside the box", kind="faithfulness",
         measures="How much a detection's score depends on what lies outside its box: its score with "
                  "everything outside the box removed, and with the box itself removed (the "
                  "deletion curve's reference image).",
         paper="https://arxiv.org/abs/1808.03305",
         citation="Rosenfeld et al. 2018, The Elephant in the Room (the idea; this three-image form is ours)",
         cost=lambda handle, params: Cost(FORWARDS, 1, note="the photo, the box alone, the surroundings alone"))
def box_context(model, image, target, baseline: str = "blur", *, constant: float = 0.0,
                progress: Optional[Progress] = None) -> BoxContext:
    """How much the detection ``target`` (an :class:`~interpret.Explanation` of a box,
    :func:`interpret.targets.box` or a :class:`~interpret.Detection`) relies on context
    outside its box: see :class:`BoxContext`.  ``baseline``: what removed pixels become,
    as for :func:`interpret.faithfulness` ("blur", "mean" or "constant").  Three images
    through the model in one batch; the model is never changed."""
    from ..explain import as_handle, input_tensor
    from ..handle import session

    handle = as_handle(model)
    handle.check_ready()
    if handle.task != "detection":
        raise InputError("The context outside a box is measured on object detectors; this model is "
                         f"a {handle.task} model.")
    x = input_tensor(handle, image)
    with session(handle):
        t = _own(_target(handle, x, image, target))
        region = t.region
        if region is None or not bool(region.any()):
            raise InputError("This box covers no pixel of what the model sees.")
        ref = reference(handle, x, baseline, constant)
        inside = region.to(x.device)[None, None]
        images = torch.cat([x, torch.where(inside, x, ref), torch.where(inside, ref, x)])
        run = Forwards(handle, t, batch_size=FORWARDS, total=FORWARDS, progress=progress)
        out = run.run(FORWARDS, lambda a, b: images[a:b])
    vals = t.probability(out).tolist()
    return BoxContext(float(vals[0]), float(vals[1]), float(vals[2]), baseline, run.count)
