"""AttnLRP: Layer-wise Relevance Propagation for vision transformers (Achtibat et al.,
"AttnLRP: Attention-Aware Layer-Wise Relevance Propagation for Transformers", ICML
2024, arXiv:2402.05602), written here on our own terms.

Why not ``lxt`` (the authors' package): lxt 2.1 does not import with transformers 5,
needs zennit >= 0.5 (against zennit-crp's pin, which the ``lrp`` method and the concepts
use) and patches ``torch.nn`` classes for the whole process.  Its efficient mode is the
paper's rules written as *modified gradient x input*: every rule is a forward whose value
is unchanged and whose gradient is changed so that, at every tensor ``t`` of the pass,
``t * grad(t)`` is the rule's relevance.  That is what this module does, on a **private
deep copy** of the model (:func:`attnlrp_copy`, cached per model state like DeepLIFT's
and LRP's copies); only the forwards of *the copy's* module instances are replaced
(instance attributes, never a class or ``torch.nn.functional``), so the caller's model
and every other model in the process run exactly as before.

The rules, as the paper names them:

* **linear layers, convolutions, additions** (residuals, position embeddings, layer
  scale): the epsilon rule with epsilon -> 0 (LRP-0), which for these is exactly
  gradient x input (no stabiliser: the plain gradient).  Biases and the
  added class token / position embedding keep their share of relevance (it does not
  reach the pixels: ``extras["conservation_error"]`` says how much);
* **LayerNorm / RMSNorm**: the identity rule on the normalisation: ``(x - mean) /
  std.detach()`` (the division by the standard deviation is treated as a constant;
  the mean subtraction and the affine part are linear and keep the epsilon rule);
* **elementwise nonlinearities** (GELU, SiLU, ...): the identity rule, relevance passed
  through unchanged: ``x * (f(x)/x).detach()``;
* **the attention softmax**: the rule of Proposition 3.1, the Deep Taylor
  decomposition with the bias term absorbed, ``R_in_i = x_i (R_out_i - s_i sum_j
  R_out_j)``.  With ``R_out = s * g`` it is ``x_i * s_i (g_i - sum_j s_j g_j)``, which
  is ``x`` times softmax's *own* gradient: in gradient x input form the softmax needs no
  change (computed in float32);
* **the two matrix products q k^T and A v**: the uniform rule: each of the two factors
  of a bilinear product gets half of the relevance (after the epsilon rule distributes
  it over the summed terms), i.e. the gradient to both factors is halved:
  ``out = 0.5 * (a @ b) + 0.5 * (a @ b).detach()``.

Models: timm ``VisionTransformer`` (and DeiT, register tokens: the standard ``Attention``
with one ``qkv`` projection; its fused ``scaled_dot_product_attention`` path is
replaced on the copy by the explicit one), torchvision's ``VisionTransformer``
(``nn.MultiheadAttention``, replaced on the copy by the same computation with the same
weights) and Hugging Face ViT/DeiT (transformers 5: ``q_proj``/``k_proj``/``v_proj``).
Anything else with a module these rules do not cover is refused.

A separate method from ``lrp`` (zennit's composites for CNNs), not a composite choice of
it: the two have different rules, different models and different parameters (zennit's
composites mean nothing on a transformer, AttnLRP's rules nothing on a CNN), and each
model is offered exactly the one that fits.
"""

from __future__ import annotations

import types
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import attention
from ..errors import InputError
from ..handle import ModelHandle
from ..hooks import private_copy
from ..tensors import first_tensor
from .common import Context, Result
from .registry import Cost, method

RULES = ("LayerNorm/RMSNorm: identity on 1/std ; GELU and other elementwise: identity rule; "
         "softmax: Prop. 3.1; q k^T and A v: uniform rule (50/50); linear: epsilon -> 0")


# ----------------------------------------------------------------------------------
# the rules, as forwards whose value is unchanged and whose gradient is the rule's


def uniform_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` whose gradient to both factors is halved: the uniform rule for a
    bilinear product (each factor gets half the relevance)."""
    out = a @ b
    return 0.5 * out + (0.5 * out).detach()


def attention_softmax(scores: torch.Tensor) -> torch.Tensor:
    """The attention softmax (in float32).  Prop. 3.1, ``R_in = x (R_out - s
    sum R_out)``, is ``x`` times softmax's own gradient, so nothing is modified."""
    return scores.float().softmax(dim=-1).to(scores.dtype)


def attend(q_scaled: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T) v`` per head (B x H x N x d) with AttnLRP's rules."""
    return uniform_product(attention_softmax(uniform_product(q_scaled, k.transpose(-2, -1))), v)


def identity_rule(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``y = f(x)`` (elementwise) whose relevance passes through unchanged (identity rule):
    the value is ``y``, the gradient ``f(x)/x`` (0 where ``x`` is 0, where ``x``
    times any gradient is 0 too)."""
    zero = x == 0
    ratio = torch.where(zero, torch.zeros_like(y), y / torch.where(zero, torch.ones_like(x), x)).detach()
    lin = x * ratio
    return lin + (y - lin).detach()


def _layer_norm(self, x: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(-len(self.normalized_shape), 0))
    mean = x.mean(dims, keepdim=True)
    var = (x - mean).pow(2).mean(dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + self.eps).detach()  # 1/std held constant (identity rule on the division)
    if self.weight is not None:
        y = y * self.weight
    if getattr(self, "bias", None) is not None:
        y = y + self.bias
    return y


def _rms_norm(self, x: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(-len(self.normalized_shape), 0))
    eps = self.eps if self.eps is not None else torch.finfo(x.dtype).eps
    y = x / torch.sqrt(x.pow(2).mean(dims, keepdim=True) + eps).detach()
    return y * self.weight if self.weight is not None else y


def _elementwise(self, x: torch.Tensor) -> torch.Tensor:
    """An elementwise activation module's own function with the identity rule."""
    return identity_rule(x, type(self).forward(self, x))


def _timm_attention(self, x: torch.Tensor, attn_mask=None, is_causal: bool = False) -> torch.Tensor:
    """timm ``Attention.forward`` (its non-fused path) with AttnLRP's rules."""
    if attn_mask is not None or is_causal:
        raise InputError("AttnLRP here covers unmasked self-attention only.")
    B, N, _ = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q, k = self.q_norm(q), self.k_norm(k)
    x = attend(q * self.scale, k, v)
    x = x.transpose(1, 2).reshape(B, N, self.attn_dim)
    return self.proj_drop(self.proj(self.norm(x)))


def _mha(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
         average_attn_weights=True, is_causal=False):
    """A batch-first self-attention ``nn.MultiheadAttention`` (torchvision's ViT)
    computed explicitly with its own weights and AttnLRP's rules; returns
    ``(output, None)``."""
    if not (query is key is value) or key_padding_mask is not None or attn_mask is not None or is_causal:
        raise InputError("AttnLRP here covers unmasked self-attention only.")
    B, N, E = query.shape
    H = self.num_heads
    d = E // H
    qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
    q, k, v = (t.reshape(B, N, H, d).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
    ctx = attend(q * d ** -0.5, k, v).transpose(1, 2).reshape(B, N, E)
    return self.out_proj(ctx), None


def _hf_attention(self, hidden_states, attention_mask=None, **kwargs):
    """transformers 5 ``ViTAttention.forward`` (q/k/v/o projections) with AttnLRP's
    rules; returns ``(output, None)``."""
    if attention_mask is not None:
        raise InputError("AttnLRP here covers unmasked self-attention only.")
    shape = hidden_states.shape[:-1]
    split = (*shape, -1, self.head_dim)
    q, k, v = (p(hidden_states).view(split).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
    ctx = attend(q * self.scaling, k, v).transpose(1, 2).reshape(*shape, -1)
    return self.o_proj(ctx), None


# ----------------------------------------------------------------------------------
# which modules get which rule, on the private copy


def _is_elementwise(m: nn.Module) -> bool:
    from ..hooks import is_activation

    return isinstance(m, (nn.GELU, nn.SiLU, nn.ReLU, nn.ReLU6, nn.ELU, nn.LeakyReLU, nn.Mish,
                          nn.Softplus, nn.Hardswish)) or is_activation(m)


def _attention_kind(m: nn.Module) -> Optional[str]:
    if isinstance(m, nn.MultiheadAttention):
        return "mha"
    t = type(m)
    if t.__name__ == "Attention" and t.__module__.startswith("timm."):
        from timm.models.vision_transformer import Attention

        if t is Attention:  # exactly timm's standard ViT attention (one qkv projection)
            return "timm"
    if t.__name__ in ("ViTAttention", "DeiTAttention") and t.__module__.startswith("transformers.") \
            and all(isinstance(getattr(m, p, None), nn.Linear) for p in ("q_proj", "k_proj", "v_proj", "o_proj")):
        return "hf"
    return None


#: module types (by class name) whose computation is not linear, not an elementwise
#: function and not one of the rules above: a model with one is refused (so is any other
#: module named like an attention or a normalisation that is not one of ours)
_NO_RULE = ("GluMlp", "SwiGLU", "SwiGLUPacked", "Sigmoid", "Tanh", "Softmax", "Hardsigmoid")


def _has_rule(m: nn.Module) -> bool:
    return (_attention_kind(m) is not None or isinstance(m, nn.LayerNorm)
            or (type(m).__name__ == "RMSNorm" and hasattr(m, "normalized_shape")))


def _uncovered(module: nn.Module) -> Optional[str]:
    for name, m in module.named_modules():
        cls = type(m).__name__
        if cls in _NO_RULE or (("attention" in cls.lower() or "norm" in cls.lower()) and not _has_rule(m)):
            return f"{cls} ({name or 'the model'})"
    return None


def unsupported(handle: ModelHandle) -> Optional[str]:
    """None when AttnLRP's rules cover every module of the model, else why not."""
    why = attention.unavailable(handle)
    if why is not None:
        return why
    lay = attention.layout(handle)
    if type(handle.module).__name__ == "ImageTextModel":
        return ("AttnLRP here explains class scores of a vision transformer; an image-text "
                "model's prompt scores are not covered (use LeGrad).")
    if any(b.style not in ("timm", "torchvision", "hf") for b in lay.blocks):
        return "its attention modules are not the ones AttnLRP is written for here (timm, torchvision, transformers 5)."
    bad = _uncovered(handle.module)
    if bad is not None:
        return f"it has a {bad} module, which has no AttnLRP rule here."
    for name, m in handle.module.named_modules():
        if _attention_kind(m) == "mha" and (not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn):
            return f"its attention {name} has separate key/value sizes or extra key/value biases."
    return None


def attnlrp_copy(handle: ModelHandle) -> nn.Module:
    """A private deep copy of the model whose attention, normalisation and activation
    modules compute with AttnLRP's rules (their ``forward`` replaced on the copy's
    instances only), parameters frozen; built once per model state (DeepLIFT's
    ``_state_key``) and cached on the handle's runtime."""
    from .deeplift import _state_key

    key = _state_key(handle)
    rt = handle.runtime
    with rt.lock:
        hit = rt.memos.get("attnlrp_copy")
        if hit is not None and hit[0] == key:
            return hit[1]
    twin = private_copy(handle.module)  # never another request's hooks
    twin.requires_grad_(False)  # relevance flows to the input only
    for m in twin.modules():
        kind = _attention_kind(m)
        if kind is not None:
            m.forward = types.MethodType({"timm": _timm_attention, "mha": _mha, "hf": _hf_attention}[kind], m)
        elif isinstance(m, nn.LayerNorm):
            m.forward = types.MethodType(_layer_norm, m)
        elif type(m).__name__ == "RMSNorm" and hasattr(m, "normalized_shape"):
            m.forward = types.MethodType(_rms_norm, m)
        elif _is_elementwise(m):
            m.forward = types.MethodType(_elementwise, m)
    with rt.lock:
        rt.memos["attnlrp_copy"] = (key, twin)
    return twin


def relevance(handle: ModelHandle, x: torch.Tensor, target, contrast: Optional[int] = None
              ) -> Tuple[torch.Tensor, float]:
    """(input relevance 1x3xHxW, explained score) of ``x`` for ``target`` by AttnLRP
    on the private copy: gradient x input of the modified pass, starting from the
    relevance ``output * d score / d output`` (the target logit, minus the contrast's)."""
    ctx = Context(handle, x, None, target, contrast, {})
    twin = attnlrp_copy(handle)
    xin = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        raw = twin(xin)
        score = ctx.score_of(raw)
        (g,) = torch.autograd.grad(score.sum(), [xin])
    return (xin.detach() * g).detach(), float(score.detach().double().sum())


def _cost(handle, layer, params) -> Cost:
    return Cost(1, 1, note="one forward and one modified backward on a private copy")


@method("attnlrp", label="AttnLRP (LRP for transformers)", family="transformer", needs_layer=False,
        params=(), speed="fast", heatmap="positive_sum", order=40, cost=_cost,
        applies=unsupported, paper="https://arxiv.org/abs/2402.05602",
        description="Layer-wise Relevance Propagation with AttnLRP's rules for attention, "
                    "LayerNorm and GELU: the score is passed back to the pixels keeping most "
                    "of its total; positive relevance marks evidence for the class.")
def attnlrp(ctx: Context) -> Result:
    rel, score = relevance(ctx.handle, ctx.x, ctx.target, ctx.contrast)
    total = float(rel.double().sum())
    return Result(attribution=rel.cpu(), extras={
        "relevance_sum": total, "score": score, "rules": RULES,
        "conservation_error": abs(total - score) / max(abs(score), 1e-12),
    })
