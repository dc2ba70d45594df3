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

import copy
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


#: the attribute that marks a hook function as one of ours (:func:`private_copy` leaves
#: them out of a copy)
_OURS = "_interpret_hook"


class HookSet:
    """Registers forward hooks that only act in the registering thread and only on the
    module they were registered on; idempotent removal.

    A deep copy of a module made while one of our hooks is on it (DeepLIFT's and LRP's
    private twins, made by another request meanwhile) copies the hook too: such a copy
    never acts (``mod is not module``), so a twin kept after the block can neither record
    into a finished :func:`record` nor stop its forwards with a stale early stop, in this
    thread or in a later one given the same thread id.  :func:`private_copy` leaves them
    out of the copy altogether."""

    def __init__(self):
        self._handles: List[torch.utils.hooks.RemovableHandle] = []
        self._tid = threading.get_ident()

    def forward(self, module: nn.Module, fn: Callable) -> None:
        tid = self._tid

        def hook(mod, inputs, output):
            if mod is not module or threading.get_ident() != tid:
                return None
            return fn(mod, inputs, output)

        setattr(hook, _OURS, True)

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

        setattr(hook, _OURS, True)

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


#: a module's forward-hook dicts (the ``*_with_kwargs`` / ``always_called`` ones are
#: keyed by the same handle ids as the first two)
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks")
_HOOK_ID_DICTS = ("_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                  "_forward_pre_hooks_with_kwargs")


def private_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` without any of this package's hooks, safe while other
    threads register and remove theirs on ``module`` (an unlocked dry forward, another
    request's :func:`record`).

    ``copy.deepcopy`` alone would copy those hooks into the twin (and iterate the hook
    dicts while another thread changes them): each module's hook dicts are snapshotted
    first (a C-level copy of a dict with int keys, atomic under the GIL), ours left out,
    and the snapshot is what the copy receives.  The model's own hooks (weight norm,
    spectral norm, a library's) are kept, deep-copied as ``deepcopy`` would."""
    memo: Dict[int, Any] = {}
    fill = []  # (the copy's dict, the snapshot): filled once every dict is in the memo
    for m in module.modules():
        d = m.__dict__
        dropped = set()
        snaps = {}
        for name in _HOOK_DICTS:
            hd = d.get(name)
            if hd is None:
                continue
            snap = hd.copy()
            for k in [k for k, f in snap.items() if getattr(f, _OURS, False)]:
                dropped.add(k)
                del snap[k]
            snaps[name] = (hd, snap)
        for name in _HOOK_ID_DICTS:
            hd = d.get(name)
            if hd is not None:
                snap = hd.copy()
                for k in dropped:
                    snap.pop(k, None)
                snaps[name] = (hd, snap)
        for hd, snap in snaps.values():
            memo[id(hd)] = mine = type(hd)()
            fill.append((mine, snap))
    for mine, snap in fill:  # a hook of the model's own may refer to any module
        mine.update((k, copy.deepcopy(f, memo)) for k, f in snap.items())
    return copy.deepcopy(module, memo)


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
    """Raised from our own hook once every tap has run: the rest is not needed.  It
    carries the token of the :func:`record` call that raised it, and only that call
    swallows it (any other context would end a forward it did not ask to end)."""

    def __init__(self, token: object):
        super().__init__("internal: a recorded forward stopped early")
        self.token = token


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
    token = object()  # this call's early stop: only this call catches it

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
                    raise _StopForward(token)
                return new_out
            hs.forward(tap.module, rec)
        out, fallback = None, False
        with torch.set_grad_enabled(grad in ("keep", "input")):
            try:
                out = handle.module(xin)
            except _StopForward as stop:
                if stop.token is not token:
                    raise
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
