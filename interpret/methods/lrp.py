"""Layer-wise Relevance Propagation (Bach et al. 2015; Montavon et al. 2019), computed
by zennit on a private copy of the model.

zennit attaches its rules as hooks and its canonizers merge BatchNorm into the
preceding convolution (and re-route torchvision ResNets' residual sums through a
``Sum`` module): every one of these changes happens on a private deep copy of the
model (:func:`lrp_copy`), cached on the handle's runtime per model state exactly like
DeepLIFT's copy, and undone by zennit's context manager in ``finally``.  The caller's
module is never touched (no hook, no merged weight, no ``requires_grad`` flip).

The relevance starts at the explained score (the target logit, minus the contrast's),
so that it sums to that score where the rules conserve it (``extras["relevance_sum"]``
and ``extras["conservation_error"]`` say how close it came: biases, the epsilon
stabiliser and modules without an LRP rule -- LayerNorm, attention, an uncanonised
residual sum -- take or add relevance).

Shared with :mod:`interpret.concepts` (Concept Relevance Propagation), which reads the
relevance of a layer from the same rules.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from ..handle import ModelHandle
from ..hooks import private_copy
from ..tensors import first_tensor
from .common import Context, Result
from .registry import Cost, Param, method

#: the composites a person can choose, with the sentence that describes each
COMPOSITES = {
    "epsilon_plus_flat": "z+ for convolutions, epsilon for dense layers, flat for the first layer",
    "epsilon_gamma_box": "gamma (0.25) for convolutions, epsilon for dense layers, z^B (pixel box) for the first layer",
    "epsilon_alpha2_beta1": "alpha2-beta1 for convolutions, epsilon for dense layers",
}


def canonizers_for(module: nn.Module) -> Tuple[list, List[str]]:
    """(zennit canonizer instances for this architecture, their names): torchvision
    ResNets get ``ResNetCanonizer`` (BatchNorm merged, the residual sum made a module
    with its own rule); any other model with BatchNorm gets ``SequentialMergeBatchNorm``
    (a BatchNorm right after a convolution or dense layer is merged into it); otherwise
    none.  (torchvision's blocks need theirs because they call one ReLU module twice;
    timm's ResNet blocks have one module per activation: a canonised sum changed
    nothing there.  EfficientNet and MobileNet blocks get :func:`canonize_gates` on top.)"""
    from torchvision.models.resnet import BasicBlock, Bottleneck
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer
    from zennit.types import BatchNorm

    mods = list(module.modules())
    if any(isinstance(m, (BasicBlock, Bottleneck)) for m in mods):
        return [ResNetCanonizer()], ["ResNetCanonizer"]
    if any(isinstance(m, BatchNorm) for m in mods):
        return [_merge_batch_norm(SequentialMergeBatchNorm)()], ["SequentialMergeBatchNorm"]
    return [], []


def _leaves(module: nn.Module):
    """zennit's ``collect_leaves``, except that a convolution or dense layer is a leaf even
    when it has children, and so is a BatchNorm: EfficientNet-Lite's
    ``Conv2dStaticSamePadding`` keeps its padding as a child module, so zennit saw the
    padding, not the convolution, right before each BatchNorm and merged none of them
    (the bundled model's BatchNorms then passed the plain gradient: 330 summed relevance
    for a logit of 9.3, measured); timm's ``BatchNormAct2d`` keeps its activation as a
    child (merged, it is the identity followed by that activation, which zennit's
    composites give the ``Pass`` rule)."""
    from zennit.types import BatchNorm, Linear

    children = list(module.children())
    if not children or isinstance(module, (Linear, BatchNorm)):
        yield module
        return
    for c in children:
        yield from _leaves(c)


def _merge_batch_norm(base):
    class MergeBatchNormAfterLinear(base):
        def apply(self, root_module):
            instances, last = [], None
            for leaf in _leaves(root_module):
                if isinstance(last, self.linear_type) and isinstance(leaf, self.batch_norm_type):
                    instance = self.copy()
                    instance.register((last,), leaf)
                    leaf.eps = 0.0  # merged: exactly the identity (not 1 / sqrt(1 + eps))
                    instances.append(instance)
                last = leaf
            return instances

    return MergeBatchNormAfterLinear


# ---------------------------------------------------------------------------------------
# EfficientNet / MobileNet blocks: what zennit 0.4.6 has no canonizer for.  Applied to the
# private copy only, after the BatchNorm merge, each keeping the copy's function.


class _PassThrough(torch.autograd.Function):
    """``y`` forward; backward: the relevance arriving at ``y`` goes to ``x`` unchanged
    (``y`` gets none).  For an elementwise gating ``y = g * x`` with the gate taken as a
    constant this is LRP-0 of the product, ``R_x = x g / (x g) R_y = R_y``; for an
    elementwise activation it is the identity rule (zennit's ``Pass``, AttnLRP's
    Prop. 3.1)."""

    @staticmethod
    def forward(ctx, x, y):
        return y.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def _pass_forward(module: nn.Module) -> None:
    orig = module.forward

    def forward(x, *args, **kwargs):
        y = orig(x, *args, **kwargs)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            return y  # not an elementwise gate after all: left as it was
        return _PassThrough.apply(x, y.detach())  # the gate's own branch is never reached

    module.forward = forward


def _sum_forward(module: nn.Module) -> None:
    """``f(x) + x`` (the skip switched off on the copy) as ``Sum(stack(f(x), x))``: zennit's
    ``Sum`` module, which its composites give the ``Norm`` rule (each summand gets the
    relevance in proportion to its contribution), as ``ResNetCanonizer`` does."""
    from zennit.layer import Sum

    orig = module.forward
    module.canonizer_sum = Sum()

    def forward(x, *args, **kwargs):
        return module.canonizer_sum(torch.stack([orig(x, *args, **kwargs), x], dim=-1))

    module.forward = forward


#: squeeze-excitation modules (``x * gate(pool(x))``) by class name: torchvision's, timm's
_SE_NAMES = ("SqueezeExcitation", "SqueezeExcite", "SEModule", "EffectiveSEModule")
#: (the module's package, the flag that switches its residual ``f(x) + x`` on)
_SKIP_FLAGS = (("timm.", "has_skip"), ("torchvision.", "use_res_connect"))


def _skip_on(m: nn.Module) -> Optional[str]:
    """The attribute to switch off to take ``m``'s residual sum out of its forward (it is
    then added back through a ``Sum`` module), or None when ``m`` has no active one."""
    mod = type(m).__module__
    for prefix, flag in _SKIP_FLAGS:
        if mod.startswith(prefix) and getattr(m, flag, None) is True:
            return flag
    if mod.startswith("efficientnet_lite_pytorch") and type(m).__name__ == "MBConvBlock":
        a = m._block_args
        if m.id_skip and a.stride in (1, [1], (1, 1)) and a.input_filters == a.output_filters:
            return "id_skip"
    return None


def canonize_gates(module: nn.Module) -> List[str]:
    """Make the copy's EfficientNet/MobileNet blocks conserve under LRP (names of what was
    applied): each squeeze-excitation gate is a constant multiplier (its relevance
    passes to the gated features whole, none to the gate's own branch), each residual
    sum goes through zennit's ``Sum`` (``Norm`` rule) instead of duplicating the
    relevance into both summands, and each activation module zennit has no type for
    (a library's own Swish) gets the identity rule, as zennit gives torch's SiLU,
    Hardswish and ReLU6."""
    from zennit.types import Activation

    from ..hooks import is_activation

    done = []
    se = [m for m in module.modules() if type(m).__name__ in _SE_NAMES]
    for m in se:
        _pass_forward(m)
    if se:
        done.append("SqueezeExcitationGate")
    skips = [(m, f) for m in module.modules() for f in [_skip_on(m)] if f]
    for m, flag in skips:
        setattr(m, flag, False)
        _sum_forward(m)
    if skips:
        done.append("ResidualSum")
    acts = [m for m in module.modules() if is_activation(m) and not isinstance(m, Activation)]
    for m in acts:
        _pass_forward(m)
    if acts:
        done.append("ActivationPass")
    return done


def _zplus_fast():
    """zennit's ``ZPlus`` (alpha=1, beta=0 over positive and negative inputs), with the
    negative-input half skipped where a layer's input has no negative entry (every
    convolution after a ReLU): that half's input is then exactly zero, its output exactly
    zero, and its term of the relevance exactly zero, so the numbers are zennit's to the
    bit while the backward through the layer costs one convolution instead of two.  (The
    conditional heatmaps at deep layers are mostly this backward: ``benchmarks/
    bench_concepts.py``.)"""
    from zennit.core import mod_params, stabilize
    from zennit.rules import ZPlus

    class ZPlusFast(ZPlus):
        def backward(self, module, grad_input, grad_output):
            original = self.stored_tensors["input"][0].detach()
            if bool((original < 0).any()):
                return super().backward(module, grad_input, grad_output)
            inp = original.requires_grad_()  # = its clamp(min=0)
            with mod_params(module, self.param_modifiers[0], param_keys=self.param_keys,
                            require_params=self.require_params) as modified, torch.autograd.enable_grad():
                out = modified.forward(inp)
            (grad,) = torch.autograd.grad([out], [inp], grad_outputs=[grad_output[0] / stabilize(out)])
            relevance = inp * grad
            return tuple(relevance if o.shape == relevance.shape else None for o in grad_input)

        def copy(self):
            return ZPlusFast()

    return ZPlusFast()


def make_composite(name: str, x: torch.Tensor, handle: Optional[ModelHandle] = None, canonizers=None):
    """A fresh zennit composite ``name`` (its canonizers: ``canonizers``, by default
    none: :func:`lrp_copy` applies them to the copy once).  ``EpsilonGammaBox``'s pixel
    box is the image range [0, 1] after the model's normalisation."""
    from zennit import composites as zc

    canon = list(canonizers or [])
    if name == "epsilon_plus_flat":
        from zennit.rules import ZPlus

        comp = zc.EpsilonPlusFlat(canonizers=canon)
        comp.layer_map = [(t, _zplus_fast() if type(h) is ZPlus else h) for t, h in comp.layer_map]
        return comp
    if name == "epsilon_alpha2_beta1":
        return zc.EpsilonAlpha2Beta1(canonizers=canon)
    if name == "epsilon_gamma_box":
        if handle is not None:
            low = handle.preprocessing.normalize(torch.zeros_like(x))
            high = handle.preprocessing.normalize(torch.ones_like(x))
        else:
            low, high = torch.full_like(x, float(x.min())), torch.full_like(x, float(x.max()))
        return zc.EpsilonGammaBox(low=low, high=high, canonizers=canon)
    from ..errors import InputError

    raise InputError(f"Unknown LRP composite '{name}'; one of {', '.join(COMPOSITES)}.")


def lrp_copy(handle: ModelHandle) -> Tuple[nn.Module, List[str]]:
    """(a private deep copy of the model, canonised for zennit once and for all, the
    canonizers' names), built once per model state (DeepLIFT's ``_state_key``:
    weights, module tree and plain flags) and cached on the handle's runtime.  The
    copy's BatchNorms are merged into its convolutions (the same function: the copy's
    outputs equal the model's to float rounding) and its parameters are frozen;
    callers hold the handle's writer lock (``exclusive``) while zennit's rule hooks
    are on it."""
    from .deeplift import _state_key

    key = _state_key(handle)
    rt = handle.runtime
    with rt.lock:
        hit = rt.memos.get("lrp_copy")
        if hit is not None and hit[0] == key:
            return hit[1], hit[2]
    twin = private_copy(handle.module)  # not another request's hooks (interpret.hooks)
    twin.requires_grad_(False)  # relevance flows to the input only (and zennit-crp does the same)
    canon, names = canonizers_for(twin)
    with torch.no_grad():
        for c in canon:
            c.apply(twin)  # kept applied: the copy is ours, and merging once saves a pass per call
    names = names + canonize_gates(twin)
    with rt.lock:
        rt.memos["lrp_copy"] = (key, twin, names)
    return twin, names


def initial_relevance(output: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """The relevance put on the model's output: ``output * d score / d output``.  For
    a class that is the target logit at the target (minus the contrast's logit at the
    contrast), zero elsewhere -- zennit-crp's ``relevance_init`` for a class condition
    -- and for any score linear in the output (a label, an output times its sign, a
    class's mean logit over a region) it sums to the score."""
    (g,) = torch.autograd.grad(score.sum(), [output], retain_graph=True)
    return output.detach() * g


def relevance(handle: ModelHandle, x: torch.Tensor, target, contrast: Optional[int] = None,
              composite: str = "epsilon_plus_flat"):
    """(input relevance 1x3xHxW, explained score, canonizer names) of ``x`` for
    ``target`` (a class index or a resolved target) by LRP with ``composite`` on the
    private copy."""
    ctx = Context(handle, x, None, target, contrast, {})
    twin, names = lrp_copy(handle)
    comp = make_composite(composite, x, handle)
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad(), comp.context(twin) as modified:
        raw = modified(xin)
        out = first_tensor(raw)
        score = ctx.score_of(raw)
        init = initial_relevance(out, score)
        # every rule is linear in the relevance coming from above, so propagate the
        # initial relevance scaled to a largest entry of 1 and scale the result back:
        # the same numbers, without the underflow a score of 1e-15 (a degenerate
        # random model) would suffer against the rules' epsilon stabiliser
        scale = float(init.abs().amax().clamp(min=torch.finfo(init.dtype).tiny))
        (rel,) = torch.autograd.grad(out, [xin], grad_outputs=[init / scale])
    return (rel.detach().double() * scale).to(rel.dtype), float(score.detach().double().sum()), names


#: module types zennit 0.4.6 has no LRP rule for, and that no canonizer removes: the
#: gradient would pass through them unchanged and the relevance would neither be LRP
#: nor sum to the score (measured on tiny ConvNeXt and ViT models: totals 10^3-10^4
#: times the score).  Matched by class name, to cover timm's and transformers' own.
_NO_RULE = ("LayerNorm", "GroupNorm", "LayerNorm2d", "MultiheadAttention", "Attention",
            "ViTSelfAttention", "WindowAttention", "ShiftedWindowAttention", "RMSNorm")


def unsupported(handle: ModelHandle) -> Optional[str]:
    """None when zennit's CNN rules cover the model's modules, else why not."""
    if handle.scripted:
        return "a TorchScript model has no modules to attach LRP rules to"
    from ..detection import is_detector

    if is_detector(handle.module):
        return ("an object detector's box selection (proposals, RoI pooling, non-maximum "
                "suppression) has no LRP rule here; use Grad-CAM or D-RISE")
    found = sorted({type(m).__name__ for m in handle.module.modules()
                    if type(m).__name__ in _NO_RULE or isinstance(m, (nn.LayerNorm, nn.GroupNorm,
                                                                        nn.MultiheadAttention))})
    if found:
        return (f"LRP's rules (zennit) cover convolutional networks; this model has "
                f"{', '.join(found)} modules, which have no LRP rule here")
    return None


def _cost(handle, layer, params) -> Cost:
    return Cost(1, 1, note="one forward and one modified backward on a private copy")


@method("lrp", label="LRP (zennit)", family="gradient", needs_layer=False,
        params=(Param("composite", "Rules (composite)", "choice", "epsilon_plus_flat",
                      choices=tuple(COMPOSITES),
                      help="; ".join(f"{k}: {v}" for k, v in COMPOSITES.items())),),
        speed="fast", heatmap="positive_sum", exclusive=True, order=60, cost=_cost,
        applies=unsupported,
        paper="https://doi.org/10.1371/journal.pone.0130140",
        description="Layer-wise Relevance Propagation: the score is passed back layer by layer "
                    "with rules that keep its total; positive relevance marks evidence for the class.")
def lrp(ctx: Context) -> Result:
    rel, score, names = relevance(ctx.handle, ctx.x, ctx.target, ctx.contrast, ctx.params["composite"])
    total = float(rel.double().sum())
    return Result(attribution=rel.cpu(), extras={
        "relevance_sum": total, "score": score, "canonizers": names,
        "conservation_error": abs(total - score) / max(abs(score), 1e-12),
    })
