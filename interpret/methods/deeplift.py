"""DeepLIFT with the Rescale rule (Shrikumar et al. 2017), computed by Captum on a
private copy of the model.

Captum's DeepLIFT keeps per-module state in hooks on the activation modules, so an
activation module called several times in one forward (a ResNet block's one ``relu``,
EfficientNet-Lite's one ``ReLU6`` per block) breaks it.  It therefore runs on a private
deep copy of the model in which every such module is split into distinct instances,
one per call (:func:`splittable_copy`), cached on the handle's runtime and rebuilt when
the weights change: the caller's module is never touched (no hook, no replaced child).
"""

from __future__ import annotations

import copy
import warnings
from typing import Dict, List, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelHandle
from ..hooks import private_copy
from ..layers import list_layers
from .common import BASELINES, Context, Result, baseline
from .registry import Cost, Param, method

#: Captum runs the image and the reference in one batch, then both again for the
#: convergence delta (on the private copy)
_COST = Cost(4, 2)

_NONLINEAR = (nn.ReLU, nn.ReLU6, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax,
              nn.SiLU, nn.GELU, nn.MaxPool2d, nn.Hardswish)

#: elementwise activations Captum (0.9) has no DeepLIFT rule for: it would treat them as
#: linear and lose completeness (measured on EfficientNet-Lite0's ReLU6: the
#: attributions summed to 0.47 for a score difference of 0.69)
_ELEMENTWISE = (nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Softplus)


def _register_rescale_rules() -> None:
    """Give Captum's DeepLIFT its own Rescale multiplier (``nonlinear``: Δout / Δin,
    Shrikumar et al. 2017, Sec. 3.3) for the elementwise activations it lacks.  Captum
    keys its rules by exact module type; the rule is exact for any elementwise
    function, so adding an entry only makes DeepLIFT correct where it silently fell
    back to a linear rule.  Idempotent; entries already present are kept."""
    from captum.attr._core import deep_lift

    for t in _ELEMENTWISE:
        deep_lift.SUPPORTED_NON_LINEAR.setdefault(t, deep_lift.nonlinear)


class SplitCalls(nn.Module):
    """Stands in for an activation module called ``n`` times per forward: the k-th
    call of a forward goes to its own copy ``calls[k]``, so each call site has a module
    (and Captum hooks) of its own.  :meth:`reset` starts a new forward."""

    def __init__(self, module: nn.Module, n: int):
        super().__init__()
        self.calls = nn.ModuleList([copy.deepcopy(module) for _ in range(n)])
        self.count = 0

    def reset(self) -> None:
        self.count = 0

    def forward(self, *args, **kwargs):
        i = self.count % len(self.calls)
        self.count += 1
        return self.calls[i](*args, **kwargs)


class _ScoreModule(nn.Module):
    """The private copy, returning one output per sample (target, or target minus
    contrast); it resets every split module's call count before each forward."""

    def __init__(self, model: nn.Module, ctx: Context):
        super().__init__()
        self.model = model
        self._score_of = ctx.score_of
        self._splits = [m for m in model.modules() if isinstance(m, SplitCalls)]

    def forward(self, x):
        for s in self._splits:
            s.reset()
        return self._score_of(self.model(x))[:, None]


def _torch_equivalent(module: nn.Module):
    """A torch activation module computing the same elementwise function as a
    library's own (timm's ``GELU``, transformers' ``GELUActivation``...), found by
    comparing outputs on [-8, 8] (to 1e-6), or None.  Captum has DeepLIFT rules only
    for torch's types."""
    from ..hooks import is_activation

    if isinstance(module, _NONLINEAR) or not is_activation(module):
        return None
    probe = torch.linspace(-8, 8, 2001)
    try:
        with torch.no_grad():
            want = module(probe)
    except Exception:  # noqa: BLE001 - an activation with other inputs
        return None
    for cand in (nn.GELU(), nn.GELU(approximate="tanh"), nn.SiLU(), nn.Mish(), nn.Hardswish(),
                 nn.ReLU(), nn.ReLU6(), nn.ELU(), nn.Softplus()):
        with torch.no_grad():
            if torch.allclose(cand(probe), want, atol=1e-6, rtol=0):
                return cand
    return None


_SIMPLE = (bool, int, float, str, type(None))


def _state_key(handle: ModelHandle):
    """What the private copy must match: the weights' versions (``fingerprint_fast``),
    the module tree (each submodule's identity) and every submodule's plain attributes
    (flags such as ``training``, ``inplace`` or a model's own switches), so that a
    change the weights do not show still rebuilds the copy."""
    tree = tuple((name, id(m), tuple(sorted((k, v) for k, v in vars(m).items()
                                             if isinstance(v, _SIMPLE) and not k.startswith("_"))))
                 for name, m in handle.module.named_modules())
    return handle.fingerprint_fast(), tree


def splittable_copy(handle: ModelHandle) -> Tuple[nn.Module, List[str]]:
    """(a private deep copy of the model whose activation modules are each called once
    per forward, the names of the modules that were split), built once per model state
    (:func:`_state_key`) and cached on the handle's runtime.  In the copy, in-place activations are made
    out-of-place (Captum's hooks need the inputs intact) and a library's own activation
    modules are replaced by the torch module that computes the same function
    (:func:`_torch_equivalent`), for which Captum has a rule."""
    fp = _state_key(handle)
    rt = handle.runtime
    with rt.lock:
        hit = rt.memos.get("deeplift_copy")
        if hit is not None and hit[0] == fp:
            return hit[1], hit[2]
    modules = dict(handle.module.named_modules())
    calls: Dict[str, int] = {i.name: i.calls for i in list_layers(handle)}
    twin = private_copy(handle.module)  # never another request's hooks
    split: List[str] = []
    for name, n in sorted(calls.items(), key=lambda kv: -kv[0].count(".")):
        if n > 1 and isinstance(modules.get(name), _NONLINEAR):
            parent_name, _, child = name.rpartition(".")
            parent = twin.get_submodule(parent_name) if parent_name else twin
            setattr(parent, child, SplitCalls(getattr(parent, child), n))
            split.append(name)
    for name, m in list(twin.named_modules()):
        same = _torch_equivalent(m)
        if same is not None and name:
            parent_name, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent_name) if parent_name else twin, child, same)
    for m in twin.modules():
        if isinstance(m, _NONLINEAR) and getattr(m, "inplace", False):
            m.inplace = False
    with rt.lock:
        rt.memos["deeplift_copy"] = (fp, twin, split)
    return twin, split


@method("deeplift", label="DeepLIFT (Rescale)", family="path", needs_layer=False,
        params=(Param("baseline", "Reference image", "choice", "black", choices=BASELINES),),
        speed="fast", heatmap="abs_sum", exclusive=True, order=30, cost=lambda h, l, p: _COST,
        paper="https://arxiv.org/abs/1704.02685",
        description="Contributions relative to a reference image, propagated with the "
                    "Rescale rule; they add up to the score difference.")
def deeplift(ctx: Context) -> Result:
    from captum.attr import DeepLift

    handle = ctx.handle
    from ..hooks import is_activation

    if handle.scripted or not any(isinstance(m, _NONLINEAR) or is_activation(m)
                                  for m in handle.module.modules()):
        # Captum's DeepLIFT works through hooks on activation modules; without any (a
        # TorchScript model, or activations called as functions) it silently returns
        # gradient x (input - reference) instead of DeepLIFT.
        raise InputError(
            f"DeepLIFT cannot run on '{handle.name}': it has no activation modules that "
            "can be hooked (a TorchScript model, or activations called as functions). "
            "Use Integrated Gradients instead."
        )
    _register_rescale_rules()
    twin, split = splittable_copy(handle)
    # Captum installs hooks that every thread would see, on our private copy; explain()
    # holds the model's writer lock for this method (``exclusive``) since the copy is
    # shared by this handle's explanations.
    wrapper = _ScoreModule(twin, ctx)
    x = ctx.x.detach().clone()
    base = baseline(ctx, ctx.params["baseline"])
    # Captum stores each activation module's tensors as module.input / .output and
    # deletes them only in the module's backward hook: a forward that fails midway (or a
    # module off the gradient path) leaves them behind.  Remove them from the copy.
    scratch = ("input", "output", "input_ref")
    had = {(id(m), a) for m in wrapper.modules() for a in scratch if a in vars(m)}
    try:
        with warnings.catch_warnings():
            # Captum warns that it sets hooks and requires_grad on *our copy* of the input
            warnings.simplefilter("ignore", UserWarning)
            attr, delta = DeepLift(wrapper).attribute(x, baselines=base, target=0,
                                                      return_convergence_delta=True)
    except (RuntimeError, AssertionError, AttributeError) as exc:
        raise InputError(f"DeepLIFT cannot run on this model: {str(exc).splitlines()[0]}") from None
    finally:
        for m in wrapper.modules():
            for a in scratch:
                if a in vars(m) and (id(m), a) not in had:
                    delattr(m, a)
    return Result(attribution=attr.detach().cpu(),
                  extras={"convergence_delta": float(delta.abs().max()), "split_modules": split})
