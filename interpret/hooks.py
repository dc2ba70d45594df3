"""Temporary, thread-filtered hooks, and :func:`record`: the one place where a forward
pass is observed.

Every hook this package puts on a module lives inside a context manager that removes
it in ``finally``, and fires only for the thread that registered it: a shared server
can run several explanations on one model at once and none sees another's hooks.

:func:`record` runs one forward of a model with *taps* on some of its modules and
returns what they saw.  The capture (CAMs, gradients), the layer table, the layer
summary, the layer maps and feature visualisation all use it, so thread filtering,
hook removal, early stopping and gradient modes live here only.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .errors import InputError
from .detection import Pyramid, combine, pyramid_levels
from .tensors import check_output, first_tensor, task_output

GRAD_MODES = ("none", "keep", "input", "taps")


class HookSet:
    """Registers forward hooks that only act in the registering thread; idempotent removal."""

    def __init__(self):
        self._handles: List[torch.utils.hooks.RemovableHandle] = []
        self._tid = threading.get_ident()

    def forward(self, module: nn.Module, fn: Callable) -> None:
        tid = self._tid

        def hook(mod, inputs, output):
            if threading.get_ident() != tid:
                return None
            return fn(mod, inputs, output)

        if isinstance(module, torch.jit.ScriptModule):
            raise InputError(
                "This is a TorchScript model: TorchScript modules take no hooks, so layer "
                "methods (CAMs, activations, guided backprop) cannot run on it. Use an "
                "input-gradient method (saliency, Integrated Gradients, occlusion), or load "
                "the model as a state dict with its architecture."
            )
        self._handles.append(module.register_forward_hook(hook))

    def forward_pre(self, module: nn.Module, fn: Callable) -> None:
        """``fn(module, inputs)`` before ``module`` runs, in the registering thread only
        (the compute gate's time limit checks its deadline here).  A deep copy of the
        module made meanwhile (DeepLIFT's and LRP's private twins) copies the hook too;
        it never acts there (only on ``module`` itself), so a twin kept after the block
        cannot be stopped by a deadline that is long gone."""
        tid = self._tid

        def hook(mod, inputs):
            if mod is not module or threading.get_ident() != tid:
                return None
            return fn(mod, inputs)

        if isinstance(module, torch.jit.ScriptModule):
            raise InputError("This is a TorchScript model: TorchScript modules take no hooks.")
        self._handles.append(module.register_forward_pre_hook(hook))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


@contextmanager
def hooks() -> Iterator[HookSet]:
    hs = HookSet()
    try:
        yield hs
    finally:
        hs.remove()


@dataclass(frozen=True)
class Tap:
    """Where to read a tensor during the forward: the output of module ``name``, or
    (``use_input``) its first input (e.g. the features the classifier receives).

    ``calls``: how often the module runs in one forward (the last call wins; the
    forward can stop once every tap has run that often).  ``reduce``: keep
    ``reduce(tensor)`` from each call instead of the tensor (shapes, statistics), so
    that nothing large is held."""

    name: str
    module: nn.Module = field(compare=False, repr=False)
    use_input: bool = False
    calls: int = 1
    reduce: Optional[Callable[[torch.Tensor], Any]] = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.name} (input)" if self.use_input else self.name


@dataclass
class Recording:
    """What :func:`record` saw.  ``values``: per tap key, the tensor of its last call
    (or the ``reduce`` result); ``calls``: how often each tap fired; ``order``: tap keys
    in the order they first fired; ``input``: the tensor that went in (with
    ``grad="input"``, the leaf to differentiate against); ``logits``: the class scores
    (B x C, or B x C x H x W at the input's size for segmentation;
    :func:`~interpret.tensors.task_output`), None when not asked for (the forward may
    have stopped early)."""

    values: Dict[str, Any]
    calls: Dict[str, int]
    order: List[str]
    input: torch.Tensor
    logits: Optional[torch.Tensor]


class _StopForward(Exception):
    """Raised from our own hook once every tap has run: the rest is not needed."""


class _CannotReplace(Exception):
    """A tapped module's output is neither a tensor nor a tuple/list starting with one,
    so ``grad="taps"`` cannot splice a leaf into it: :func:`record` falls back to
    ``grad="input"``."""


def _replace_first(output, t: torch.Tensor):
    """``output`` with its first tensor replaced by ``t`` (a tensor, tuple or list)."""
    if isinstance(output, torch.Tensor):
        return t
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return type(output)([t, *output[1:]])
    return None


def record(handle, x: torch.Tensor, taps: Sequence[Tap], *, logits: bool = True,
           grad: str = "none", require_all: bool = True) -> Recording:
    """One forward of ``x`` through ``handle.module`` with ``taps``.

    ``grad``:

    * ``"none"``: no autograd graph at all (``torch.no_grad``);
    * ``"keep"``: gradients enabled, ``x`` used as it is (the caller differentiates
      through its own graph, e.g. towards image parameters);
    * ``"input"``: gradients enabled from a detached copy of ``x`` that requires grad
      (``Recording.input``); tapped outputs keep their graph;
    * ``"taps"``: no graph until the tapped module; its output is recorded as a leaf
      that requires grad and the rest of the forward builds the graph from there, so a
      backward to the layer costs only the part of the network after it.

    With ``grad`` other than ``"none"``, the tapped module passes a copy of its output
    on, so that in-place operations after it (``out += identity``) leave the recorded
    tensor as the module produced it.  Without ``logits`` the forward stops as soon as
    every tap has fired ``calls`` times.  ``require_all``: a tap that never fired is an
    error (the layer table taps every module, some of which never run).  Hooks exist
    only within the call and only for this thread."""
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}")
    values: Dict[str, Any] = {}
    calls: Dict[str, int] = {}
    order: List[str] = []
    need = {t.key: t.calls for t in taps}
    replace = grad != "none"
    xin = x.detach().clone().requires_grad_(True) if grad == "input" else x

    with hooks() as hs:
        for tap in taps:
            def rec(mod, inputs, output, tap=tap):
                t = inputs[0] if tap.use_input and inputs else first_tensor(output)
                k = tap.key
                calls[k] = calls.get(k, 0) + 1
                if calls[k] == 1:
                    order.append(k)
                new_out = None
                levels = pyramid_levels(output) if t is None and not tap.use_input else None
                if levels is not None:  # a feature pyramid (FPN): one grid, see interpret.detection
                    if tap.reduce is not None:
                        values[k] = tap.reduce(combine(list(levels.values())))
                    elif grad == "none":
                        values[k] = combine(list(levels.values()))
                    else:
                        if grad == "taps":
                            torch.set_grad_enabled(True)  # the rest of this forward builds a graph
                            levels = {n: v.detach().requires_grad_(True) for n, v in levels.items()}
                        values[k] = Pyramid(levels)
                        new_out = type(output)((n, v.clone()) for n, v in levels.items())
                elif tap.reduce is not None:
                    values[k] = tap.reduce(t) if isinstance(t, torch.Tensor) else None
                else:
                    if not isinstance(t, torch.Tensor):
                        raise InputError(f"Layer '{tap.name}' does not output a tensor.")
                    if grad == "taps" and not tap.use_input:
                        if _replace_first(output, t) is None:
                            raise _CannotReplace()
                        torch.set_grad_enabled(True)  # the rest of this forward builds a graph
                        leaf = t.detach().requires_grad_(True)
                        new_out = _replace_first(output, leaf.clone())
                        values[k] = leaf
                    else:
                        values[k] = t
                        if replace and not tap.use_input and t.requires_grad:
                            new_out = _replace_first(output, t.clone())
                if not logits and all(calls.get(n, 0) >= c for n, c in need.items()):
                    raise _StopForward()
                return new_out
            hs.forward(tap.module, rec)
        out, fallback = None, False
        with torch.set_grad_enabled(grad in ("keep", "input")):
            try:
                out = handle.module(xin)
            except _StopForward:
                out = None
            except _CannotReplace:
                fallback = True
            else:
                fallback = False
    if grad == "taps" and fallback:
        return record(handle, x, taps, logits=logits, grad="input", require_all=require_all)
    missing = [k for k in need if k not in calls]
    if missing and require_all:
        raise InputError(f"Layer '{missing[0].replace(' (input)', '')}' did not run in the forward pass.")
    scores = None
    if logits:
        scores = check_output(task_output(out, x.shape[-2:]), out)
    return Recording(values, calls, order, xin, scores)


class _PositiveGrad(torch.autograd.Function):
    """Identity forward; backward passes only positive gradients (guided backprop,
    Springenberg et al. 2015, eq. 4 combined with the ReLU's own mask)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.clamp(min=0)


GUIDED_TYPES: Tuple[type, ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.GELU, nn.Hardswish)
#: libraries whose own activation modules (timm's GELU, transformers' GELUActivation...)
#: are guided like torch's; their gates (sigmoid, tanh) are not, as torch's are not
LIBRARY_ACTIVATIONS = ("timm.layers.activations", "transformers.activations")


def is_activation(m: nn.Module) -> bool:
    """Whether ``m`` is an activation module guided backpropagation guides."""
    if isinstance(m, GUIDED_TYPES):
        return True
    name = type(m).__name__.lower().removesuffix("activation")
    return type(m).__module__.startswith(LIBRARY_ACTIVATIONS) and name not in (
        "sigmoid", "hardsigmoid", "tanh", "softmax", "identity", "linear")


@contextmanager
def guided(module: nn.Module) -> Iterator[int]:
    """Within the block, every activation module of ``module`` passes only positive
    gradients backwards, for the current thread.  Yields the number of modules guided."""
    with hooks() as hs:
        n = 0
        for m in module.modules():
            if is_activation(m):
                hs.forward(m, lambda mod, inp, out: _PositiveGrad.apply(out))
                n += 1
        yield n
