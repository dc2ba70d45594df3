"""What every method receives (a :class:`Context`) and returns (a :class:`Result`),
and the reference images path and perturbation methods share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ..capture import Capture, LayerMaps, capture, layer_maps
from ..errors import Cancelled, InputError, Progress, report
from ..handle import ModelHandle
from ..targets import ClassTarget, Target
from ..tensors import check_output, task_output

__all__ = ["Cancelled", "Context", "Result", "BASELINES", "baseline"]


@dataclass
class Context:
    """One explanation's inputs: the model, the input tensor ``x`` (1 x 3 x H x W,
    normalised, on the model's device), the layer (or None), the target (a resolved
    :class:`~interpret.targets.Target`; a class index is read as one) and its contrast,
    the resolved parameters and the progress callback.  Methods read the shared pass
    through :meth:`capture` / :meth:`maps` and run their own through :meth:`scores`,
    :meth:`score_fn` and :meth:`gradients`."""

    handle: ModelHandle
    x: torch.Tensor
    layer: Optional[str]
    target: Target
    contrast: Optional[int]
    params: Dict[str, Any]
    progress: Optional[Progress] = None
    captured: Optional[Capture] = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.target, Target):  # a class index, as before targets existed
            self.target = ClassTarget(int(self.target), self.contrast)
        self.contrast = self.target.contrast

    def capture(self, input_grad: bool = False, with_layer: bool = True) -> Capture:
        """The recorded pass for this input, layer (``with_layer``) and class: the
        layer's activation and gradient, and the input gradient if ``input_grad``."""
        cap = capture(self.handle, self.x, self.layer if with_layer else None, self.target,
                      self.contrast, input_grad=input_grad)
        self.captured = cap
        return cap

    def maps(self) -> LayerMaps:
        """The layer's maps for this input (a forward alone, or the capture's)."""
        return layer_maps(self.handle, self.x, self.layer)

    def report(self, done: int, total: int) -> None:
        report(self.progress, done, total)

    def score_of(self, out) -> torch.Tensor:
        """The explained score per sample of a model output: the target's score (a
        class logit minus the contrast's, a label's logit, an output times its sign, a
        class's mean logit over a region)."""
        return self.target.score(check_output(task_output(out, self.x.shape[-2:]), out))

    def scores(self, batch: torch.Tensor) -> torch.Tensor:
        """The score of each sample of a batch (no gradients, no hooks)."""
        with torch.no_grad():
            return self.score_of(self.handle.module(batch))

    def score_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """A forward function for Captum: batch -> score per sample."""
        module = self.handle.module
        return lambda batch, *args: self.score_of(module(batch))

    def gradients(self, batch: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(scores, d score / d batch) of every sample of ``batch``, from one forward
        and one ``torch.autograd.grad`` (no parameter ``.grad``)."""
        xin = batch.detach().requires_grad_(True)
        with torch.enable_grad():
            s = self.score_of(self.handle.module(xin))
        (g,) = torch.autograd.grad(s.sum(), [xin])
        return s.detach(), g.detach()

    @property
    def size(self):
        return tuple(self.x.shape[-2:])


@dataclass
class Result:
    """A method's output: ``attribution`` (the raw, signed tensor), ``extras``
    (method-specific values) and ``display``: the map to draw when it is not the
    attribution itself (one channel of the activations, say)."""

    attribution: torch.Tensor
    extras: Dict[str, Any] = field(default_factory=dict)
    display: Optional[torch.Tensor] = None


BASELINES = ("black", "mean", "blur")


def baseline(ctx: Context, kind: str) -> torch.Tensor:
    """A reference image like ``ctx.x``: ``black`` (pixels 0), ``mean`` (the data set's
    mean colour, 0 after normalisation) or ``blur`` (a 31-pixel box blur of the photo)."""
    x = ctx.x.detach()
    if kind == "mean":
        return torch.zeros_like(x)
    if kind == "blur":
        k = 31
        return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)
    if kind == "black":
        return ctx.handle.preprocessing.normalize(torch.zeros_like(x))
    raise InputError(f"Unknown baseline '{kind}'; one of {', '.join(BASELINES)}.")
