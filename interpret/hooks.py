"""Temporary, thread-filtered hooks.

Every hook this package puts on a module lives inside a context manager that removes
it in ``finally``, and fires only for the thread that registered it: a shared server
can run several explanations on one model at once and none sees another's hooks.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, List, Tuple

import torch
from torch import nn

from .errors import InputError


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


@contextmanager
def guided(module: nn.Module) -> Iterator[int]:
    """Within the block, every activation module of ``module`` passes only positive
    gradients backwards, for the current thread.  Yields the number of modules guided."""
    with hooks() as hs:
        n = 0
        for m in module.modules():
            if isinstance(m, GUIDED_TYPES):
                hs.forward(m, lambda mod, inp, out: _PositiveGrad.apply(out))
                n += 1
        yield n
