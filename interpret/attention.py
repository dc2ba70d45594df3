"""The attention of vision transformers, observed through :func:`interpret.hooks.record`.

Attention-based methods (rollout, transformer attribution, LeGrad) need each block's
attention probabilities ``A = softmax(q k^T / sqrt(d))`` (H x N x N per block) and, for
the gradient methods, ``d score / d A``.  Models that call PyTorch's fused
``scaled_dot_product_attention`` (timm, Hugging Face's "sdpa", torchvision's
``nn.MultiheadAttention``) never materialise ``A``, so it is recomputed here from each
block's own query and key projections, read by taps inside the one recording path:

* timm ``Attention``: the output of ``attn.qkv`` (and of ``attn.q_norm`` / ``k_norm``);
  the attention context (``A v`` for every head) is the input of ``attn.norm``;
* torchvision ``EncoderBlock``: the input of ``self_attention`` projected by its own
  ``in_proj_weight``; the context gradient is the output gradient times ``out_proj``;
* Hugging Face ViT/DeiT: the outputs of ``q_proj``/``k_proj``/``v_proj`` (``query``/
  ``key``/``value`` in transformers 4); the context is the input of ``o_proj``
  (``output.dense``).

The gradient of the score with respect to ``A`` follows exactly from the context,
because per head ``ctx = A v``: ``dS/dA = (dS/dctx) v^T``.  So one forward and one
``torch.autograd.grad`` to the contexts give every block's ``dS/dA``, without a hook
that changes how the model computes, and nothing of the model is patched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError
from .hooks import Tap, record
from .tensors import target_score, tensor_key
from .tokens import TokenLayout


@dataclass(frozen=True)
class AttentionBlock:
    """One self-attention block: ``name`` (its output: the tokens after it), ``attn``
    (its attention module), ``norm`` (the norm before the attention: the natural CAM
    layer of a ViT), ``heads`` and ``style`` ("timm", "torchvision", "hf", "hf4",
    "hf-clip": Hugging Face CLIP/SigLIP's ``self_attn`` with ``out_proj``)."""

    name: str
    attn: str
    norm: str
    heads: int
    style: str


@dataclass(frozen=True)
class VitLayout:
    """What the attention methods need to know about a vision transformer:
    its ``blocks`` in forward order; ``prefix`` tokens before the patch ``grid``;
    ``readout``, the token rows the classifier reads (the class token, or class and
    distillation tokens; empty: the mean of the patch tokens); ``head``, the model's own
    final norm and classifier applied to a block's tokens (LeGrad), None if unknown."""

    blocks: Tuple[AttentionBlock, ...]
    prefix: int
    grid: Tuple[int, int]
    readout: Tuple[int, ...]
    head: Optional[Callable[[torch.Tensor], torch.Tensor]] = field(default=None, compare=False, repr=False)
    #: why no token rows stand for what the head reads (SigLIP's attention pooling), so
    #: that rollout and transformer attribution cannot read the relevance out; None: they can
    no_readout: Optional[str] = None

    @property
    def tokens(self) -> int:
        return self.prefix + self.grid[0] * self.grid[1]


NOT_A_VIT = ("it has no global self-attention blocks (it is not a vision transformer such as "
             "ViT or DeiT).")


def _is_identity(m) -> bool:
    return m is None or isinstance(m, nn.Identity)


def _timm_layout(module: nn.Module, tokens: TokenLayout) -> Union[VitLayout, str]:
    if getattr(module, "output_fmt", "NCHW") == "NHWC" or not hasattr(module, "blocks"):
        return ("its attention is computed within shifted windows (Swin), so there is no "
                "token-to-token attention map over the whole image; use Grad-CAM.")
    blocks = []
    for i, blk in enumerate(module.blocks):
        attn = getattr(blk, "attn", None)
        if attn is None or not isinstance(getattr(attn, "qkv", None), nn.Linear) \
                or not hasattr(attn, "num_heads") or not hasattr(blk, "norm1"):
            return (f"its block {i} ({type(blk).__name__}) does not use timm's standard "
                    "Attention module (one qkv projection).")
        if getattr(attn, "gate", None) is not None:
            return f"its block {i} uses gated attention, which these methods do not model."
        blocks.append(AttentionBlock(f"blocks.{i}", f"blocks.{i}.attn", f"blocks.{i}.norm1",
                                     int(attn.num_heads), "timm"))
    pool = getattr(module, "global_pool", "token")
    has_cls = getattr(module, "cls_token", None) is not None
    if hasattr(module, "dist_token") and getattr(module, "dist_token", None) is not None:
        readout: Tuple[int, ...] = (0, 1)
    elif pool == "token" and has_cls:
        readout = (0,)
    elif pool in ("avg", "avgmax", "max"):
        readout = ()
    else:
        return f"its head pools the tokens with '{pool}', which the attention methods do not model."
    head = lambda z: module.forward_head(module.norm(z))  # noqa: E731 - timm's own split
    return VitLayout(tuple(blocks), int(module.num_prefix_tokens), _grid(module, tokens), readout, head)


def _grid(module: nn.Module, tokens: TokenLayout) -> Tuple[int, int]:
    if tokens.grid is not None:
        return tuple(tokens.grid)
    g = getattr(getattr(module, "patch_embed", None), "grid_size", None)
    if g is None:
        raise InputError("The vision transformer's patch grid is unknown.")
    return int(g[0]), int(g[1])


def _torchvision_layout(module: nn.Module) -> Union[VitLayout, str]:
    layers = getattr(getattr(module, "encoder", None), "layers", None)
    if layers is None:
        return NOT_A_VIT
    blocks = []
    for name, blk in layers.named_children():
        mha = getattr(blk, "self_attention", None)
        if not isinstance(mha, nn.MultiheadAttention) or not mha._qkv_same_embed_dim \
                or not mha.batch_first:
            return f"its block {name} does not use a batch-first nn.MultiheadAttention."
        blocks.append(AttentionBlock(f"encoder.layers.{name}", f"encoder.layers.{name}.self_attention",
                                     f"encoder.layers.{name}.ln_1", int(mha.num_heads), "torchvision"))
    side = int(module.image_size) // int(module.patch_size)
    head = lambda z: module.heads(module.encoder.ln(z)[:, 0])  # noqa: E731
    return VitLayout(tuple(blocks), 1, (side, side), (0,), head)


def _open_clip_layout(module: nn.Module) -> Union[VitLayout, str]:
    """An image-text model's image tower (:class:`interpret.imagetext.ImageTextModel`):
    open_clip's ``VisionTransformer`` (batch-first ``nn.MultiheadAttention`` blocks, as
    torchvision's); ``head`` is the tower's own pooling, final norm and projection, so a
    block's tokens give an image embedding that a text target scores (LeGrad, whose
    authors published it for CLIP)."""
    v = module.visual
    blocks_mod = getattr(getattr(v, "transformer", None), "resblocks", None)
    grid = getattr(v, "grid_size", None)
    if blocks_mod is None or grid is None or not hasattr(v, "_pool"):
        return ("its image tower is not an open_clip vision transformer (the attention methods read "
                "open_clip's ViT blocks; use the gradient CAMs).")
    if getattr(v, "attn_pool", None) is not None:
        return "its image tower pools the tokens by attention pooling, which the attention methods do not model."
    pool = getattr(v, "pool_type", "tok")
    if pool not in ("tok", "avg"):
        return f"its image tower pools the tokens with '{pool}', which the attention methods do not model."
    blocks = []
    for name, blk in blocks_mod.named_children():
        mha = getattr(blk, "attn", None)
        if not isinstance(mha, nn.MultiheadAttention) or not mha._qkv_same_embed_dim or not mha.batch_first:
            return f"its block {name} does not use a batch-first nn.MultiheadAttention."
        root = f"visual.transformer.resblocks.{name}"
        blocks.append(AttentionBlock(root, f"{root}.attn", f"{root}.ln_1", int(mha.num_heads), "torchvision"))
    prefix = 1 if isinstance(getattr(v, "class_embedding", None), torch.Tensor) else 0

    def head(z):
        pooled = v._pool(z)[0]
        return pooled @ v.proj if v.proj is not None else pooled

    return VitLayout(tuple(blocks), prefix, (int(grid[0]), int(grid[1])), (0,) if pool == "tok" else (), head)


SIGLIP_POOLING = ("its image tower pools the tokens with an attention-pooling head (a learnt probe "
                  "attending to every token, SigLIP's MAP head), so no token's row stands for what the "
                  "embedding reads; rollout and transformer attribution read that row. LeGrad, which "
                  "scores each block through the tower's own head, and the gradient CAMs work.")


def _hf_image_text_layout(module: nn.Module) -> Union[VitLayout, str]:
    """A Hugging Face CLIP / SigLIP image tower (``sources.open_clip._HFImageTower``
    inside an :class:`interpret.imagetext.ImageTextModel`): its encoder layers'
    ``self_attn`` (separate ``q_proj``/``k_proj``/``v_proj``, ``out_proj``); ``head`` is
    the tower's own pooling as ``get_image_features`` computes it: CLIP's final norm on
    the class token and its projection, SigLIP's final norm and attention-pooling head."""
    tower = module.visual
    vm = tower.vision_model
    layers = getattr(getattr(vm, "encoder", None), "layers", None)
    cfg = getattr(vm, "config", None)
    if layers is None or cfg is None:
        return "its image tower is not a Hugging Face CLIP or SigLIP vision transformer."
    blocks = []
    root = "visual.vision_model.encoder.layers"
    for name, blk in layers.named_children():
        att = getattr(blk, "self_attn", None)
        if att is None or not all(isinstance(getattr(att, p, None), nn.Linear)
                                  for p in ("q_proj", "k_proj", "v_proj", "out_proj")) \
                or not hasattr(blk, "layer_norm1"):
            return f"its block {name} ({type(blk).__name__}) has no separate query/key/value projections."
        blocks.append(AttentionBlock(f"{root}.{name}", f"{root}.{name}.self_attn", f"{root}.{name}.layer_norm1",
                                     int(getattr(att, "num_heads", cfg.num_attention_heads)), "hf-clip"))
    side, patch = int(cfg.image_size), int(cfg.patch_size)
    grid = (side // patch, side // patch)
    proj = tower.visual_projection
    if isinstance(getattr(vm.embeddings, "class_embedding", None), torch.Tensor):  # CLIP
        post = vm.post_layernorm

        def head(z):
            pooled = post(z[:, 0])
            return proj(pooled) if proj is not None else pooled

        return VitLayout(tuple(blocks), 1, grid, (0,), head)
    if getattr(vm, "use_head", False) and isinstance(getattr(vm, "head", None), nn.Module):  # SigLIP
        return VitLayout(tuple(blocks), 0, grid, (), lambda z: vm.head(vm.post_layernorm(z)),
                         no_readout=SIGLIP_POOLING)
    return "its image tower has neither a class token nor a pooling head that the attention methods model."


def _hf_layout(module: nn.Module, tokens: TokenLayout) -> Union[VitLayout, str]:
    prefix = getattr(module, "base_model_prefix", "")
    base = getattr(module, prefix, module) if prefix else module
    layers = getattr(base, "layers", None)
    if layers is None:
        layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None or tokens.prefix_tokens is None or tokens.grid is None:
        return NOT_A_VIT
    root = next(n for n, m in module.named_modules() if m is layers)
    blocks = []
    for name, blk in layers.named_children():
        att = getattr(blk, "attention", None)
        # ViT/DeiT: layernorm_before; DINOv2: norm1
        norm_attr = next((a for a in ("layernorm_before", "norm1") if hasattr(blk, a)), "layernorm_before")
        norm = f"{root}.{name}.{norm_attr}"
        if att is not None and all(isinstance(getattr(att, p, None), nn.Linear)
                                   for p in ("q_proj", "k_proj", "v_proj", "o_proj")):
            style, attn = "hf", f"{root}.{name}.attention"
        elif att is not None and hasattr(att, "attention") and all(
                isinstance(getattr(att.attention, p, None), nn.Linear) for p in ("query", "key", "value")):
            style, attn = "hf4", f"{root}.{name}.attention"
        else:
            return f"its block {name} ({type(blk).__name__}) has no separate query/key/value projections."
        if not hasattr(blk, norm_attr):
            return f"its block {name} has no layernorm_before."
        blocks.append(AttentionBlock(f"{root}.{name}", attn, norm,
                                     int(module.config.num_attention_heads), style))
    ln = getattr(base, "layernorm", None)
    head = None
    readout: Tuple[int, ...] = (0,)
    if ln is not None and isinstance(getattr(module, "classifier", None), nn.Module):
        head = lambda z: module.classifier(ln(z)[:, 0, :])  # noqa: E731 - ViTForImageClassification
    elif ln is not None and callable(getattr(module, "pool_tokens", None)):
        head = module.pool_tokens  # an embedding model (sources.hf.HFEmbedding): its own pooling
    elif ln is not None and hasattr(module, "cls_classifier") and hasattr(module, "distillation_classifier"):
        readout = (0, 1)
        head = lambda z: (module.cls_classifier(ln(z)[:, 0, :])  # noqa: E731
                          + module.distillation_classifier(ln(z)[:, 1, :])) / 2
    return VitLayout(tuple(blocks), int(tokens.prefix_tokens), tuple(tokens.grid), readout, head)


def describe_module(module: nn.Module, tokens: Optional[TokenLayout] = None) -> Union[VitLayout, str]:
    """The :class:`VitLayout` of a timm, torchvision or Hugging Face vision
    transformer, or the reason the attention methods cannot run on ``module``."""
    from .sources.hf import is_hf_module
    from .sources.timm import is_timm_module

    tokens = tokens or TokenLayout()
    if isinstance(module, torch.jit.ScriptModule):
        return "it is a TorchScript model (no hooks)."
    if type(module).__name__ == "ImageTextModel" and type(module).__module__ == "interpret.imagetext":
        if type(module.visual).__name__ == "_HFImageTower":
            return _hf_image_text_layout(module)
        return _open_clip_layout(module)
    if is_timm_module(module):
        if getattr(module, "num_prefix_tokens", None) is None and getattr(module, "output_fmt", "") != "NHWC":
            return NOT_A_VIT
        return _timm_layout(module, tokens)
    if is_hf_module(module) or (type(module).__name__ == "HFEmbedding"
                                and type(module).__module__ == "interpret.sources.hf"):
        return _hf_layout(module, tokens)
    if type(module).__name__ == "VisionTransformer" and hasattr(module, "encoder") \
            and hasattr(module, "class_token"):
        return _torchvision_layout(module)
    if "Swin" in type(module).__name__:
        return ("its attention is computed within shifted windows (Swin), so there is no "
                "token-to-token attention map over the whole image; use Grad-CAM.")
    return NOT_A_VIT


def layout(handle) -> Union[VitLayout, str]:
    """:func:`describe_module` of a handle's model (memoised on the handle)."""
    return handle.memo("vit_layout", lambda: describe_module(handle.module, handle.tokens))


def unavailable(handle, needs_head: bool = False) -> Optional[str]:
    """None when the attention methods can run on ``handle``'s model, else why not
    (for the registry's ``applies``)."""
    lay = layout(handle)
    if isinstance(lay, str):
        return lay
    if needs_head and lay.head is None:
        return "its classification head is not one LeGrad knows how to apply to a block's tokens."
    if not needs_head and lay.no_readout is not None:
        return lay.no_readout
    return None


def _check(handle) -> VitLayout:
    lay = layout(handle)
    if isinstance(lay, str):
        raise InputError(f"Model '{handle.name}' cannot be explained by its attention: {lay}")
    return lay


# ----------------------------------------------------------------------------------
# the recorded pass


@dataclass(frozen=True)
class AttentionPass:
    """One recorded pass: ``attentions`` (per block, 1 x H x N x N softmax
    probabilities recomputed from the block's queries and keys), ``gradients`` (per
    block, d score / d A, or None when not asked for), ``logits`` (None when the
    forward stopped after the last block), ``target``/``contrast``/``score``."""

    layout: VitLayout
    attentions: Tuple[torch.Tensor, ...]
    gradients: Optional[Tuple[torch.Tensor, ...]]
    logits: Optional[torch.Tensor]
    target: Optional[int]
    contrast: Optional[int]
    score: float


def _taps(handle, lay: VitLayout, grads: bool, outputs: bool) -> Dict[str, Dict[str, Tap]]:
    mods = dict(handle.module.named_modules())
    taps: Dict[str, Dict[str, Tap]] = {}
    for b in lay.blocks:
        t: Dict[str, Tap] = {}
        if b.style == "timm":
            a = mods[b.attn]
            t["qkv"] = Tap(f"{b.attn}.qkv", a.qkv)
            if not _is_identity(getattr(a, "q_norm", None)):
                t["q"] = Tap(f"{b.attn}.q_norm", a.q_norm)
            if not _is_identity(getattr(a, "k_norm", None)) or "q" in t:
                t["k"] = Tap(f"{b.attn}.k_norm", a.k_norm)
            if grads:
                ctx = getattr(a, "norm", None)
                t["ctx"] = Tap(f"{b.attn}.norm", ctx, use_input=True) if ctx is not None \
                    else Tap(f"{b.attn}.proj", a.proj, use_input=True)
        elif b.style == "torchvision":
            t["x"] = Tap(b.attn, mods[b.attn], use_input=True)
            if grads:
                t["out"] = Tap(b.attn, mods[b.attn])
        else:
            names = {"hf": ("q_proj", "k_proj", "v_proj", "o_proj"),
                     "hf-clip": ("q_proj", "k_proj", "v_proj", "out_proj")}.get(
                b.style, ("attention.query", "attention.key", "attention.value", "output.dense"))
            for key, n in zip(("q", "k", "v"), names[:3]):
                t[key] = Tap(f"{b.attn}.{n}", mods[f"{b.attn}.{n}"])
            if grads:
                t["ctx"] = Tap(f"{b.attn}.{names[3]}", mods[f"{b.attn}.{names[3]}"], use_input=True)
        if outputs:
            t["z"] = Tap(b.name, mods[b.name])
        taps[b.name] = t
    return taps


def _heads(t: torch.Tensor, h: int) -> torch.Tensor:
    """B x N x (H d) -> B x H x N x d."""
    B, N, C = t.shape
    return t.reshape(B, N, h, C // h).transpose(1, 2)


def _qkv(handle, b: AttentionBlock, vals: Dict[str, torch.Tensor]):
    """(q, k, v, scale) of one block, each B x H x N x d, detached."""
    mods = handle.module.get_submodule(b.attn)
    if b.style == "timm":
        qkv = vals["qkv"].detach()
        B, N, _ = qkv.shape
        q, k, v = qkv.reshape(B, N, 3, b.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        if "q" in vals:
            q, k = vals["q"].detach(), vals["k"].detach()
        scale = float(getattr(mods, "scale", q.shape[-1] ** -0.5))
    elif b.style == "torchvision":
        x = vals["x"].detach()
        with torch.no_grad():
            qkv = F.linear(x, mods.in_proj_weight, mods.in_proj_bias)
        q, k, v = (_heads(t, b.heads) for t in qkv.chunk(3, dim=-1))
        scale = q.shape[-1] ** -0.5
    else:
        q, k, v = (_heads(vals[n].detach(), b.heads) for n in ("q", "k", "v"))
        scale = float(getattr(mods, "scaling", getattr(mods, "scale", q.shape[-1] ** -0.5)))
    return q, k, v, scale


def attention_probabilities(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(q k^T * scale)`` over the keys (Vaswani et al. 2017, eq. 1), in float32."""
    return torch.softmax((q.float() @ k.float().transpose(-2, -1)) * scale, dim=-1)


def _ctx_grad(handle, b: AttentionBlock, vals, grad: torch.Tensor) -> torch.Tensor:
    """d score / d context (B x H x N x d) from the gradient at the tapped tensor."""
    if b.style == "torchvision":
        w = handle.module.get_submodule(b.attn).out_proj.weight  # y = ctx W^T + b
        grad = grad @ w.detach().to(grad.dtype)
    return _heads(grad, b.heads)


def record_attention(handle, x: torch.Tensor, target: Optional[int] = None,
                     contrast: Optional[int] = None, *, grads: bool = False) -> AttentionPass:
    """Every block's attention for ``x`` (and, with ``grads``, d score / d attention for
    ``target`` minus ``contrast``) from one recorded forward (and one
    ``torch.autograd.grad`` to the attention contexts), cached on the handle."""
    lay = _check(handle)
    fp, tkey = handle.fingerprint_fast(), tensor_key(x)
    key = ("attention", fp, tkey, grads, target if grads else None, contrast if grads else None)
    cached = handle.cache_get(key)
    if cached is not None:
        return cached
    taps = _taps(handle, lay, grads, outputs=False)
    flat = [t for per in taps.values() for t in per.values()]
    rec = record(handle, x, flat, logits=grads, grad="input" if grads else "none")
    vals = {b.name: {k: rec.values[t.key] for k, t in taps[b.name].items()} for b in lay.blocks}
    attns, qkvs = [], []
    for b in lay.blocks:
        q, k, v, scale = _qkv(handle, b, vals[b.name])
        attns.append(attention_probabilities(q, k, scale))
        qkvs.append(v)
    gradients, score, logits = None, float("nan"), None
    if grads:
        logits = rec.logits
        if target is None:
            target = int(logits.detach()[0].argmax())
        s = target_score(logits, target, contrast).sum()
        src = [vals[b.name]["out" if b.style == "torchvision" else "ctx"] for b in lay.blocks]
        if not s.requires_grad or any(not t.requires_grad for t in src):
            raise InputError("The model's output does not depend on its attention (no gradient).")
        gs = torch.autograd.grad(s, src, allow_unused=True)
        gradients = []
        for b, g, t, v in zip(lay.blocks, gs, src, qkvs):
            g = torch.zeros_like(t) if g is None else g
            dctx = _ctx_grad(handle, b, vals[b.name], g.detach())
            gradients.append((dctx.float() @ v.float().transpose(-2, -1)))  # dS/dA = dS/dctx v^T
        gradients = tuple(gradients)
        score = float(s.detach())
        logits = logits.detach()
        handle.cache_put(("logits", fp, tkey), logits)  # what capture() keeps too
    out = AttentionPass(lay, tuple(attns), gradients, logits, target, contrast, score)
    handle.cache_put(key, out)
    return out


def layer_gradients(handle, x: torch.Tensor, target: int, contrast: Optional[int],
                    blocks: Sequence[int], progress=None) -> Tuple[AttentionPass, List[torch.Tensor]]:
    """For LeGrad: each listed block's attention and the gradient, with respect to it,
    of that block's own prediction ``s^l = head(z^l)`` (the model's final norm and
    classifier applied to the block's output tokens) for ``target`` minus ``contrast``:
    one recorded forward, then one short backward per block (from ``s^l`` to the
    block's attention context only)."""
    from .errors import report

    lay = _check(handle)
    if lay.head is None:
        raise InputError(f"LeGrad cannot run on '{handle.name}': {unavailable(handle, True)}")
    taps = _taps(handle, lay, grads=True, outputs=True)
    flat = [t for per in taps.values() for t in per.values()]
    rec = record(handle, x, flat, logits=True, grad="input")
    vals = {b.name: {k: rec.values[t.key] for k, t in taps[b.name].items()} for b in lay.blocks}
    attns, grads = [], []
    total = len(blocks)
    report(progress, 0, total)
    with torch.enable_grad():
        for n, i in enumerate(blocks):
            b = lay.blocks[i]
            q, k, v, scale = _qkv(handle, b, vals[b.name])
            attns.append(attention_probabilities(q, k, scale))
            z = vals[b.name]["z"]
            s = target_score(lay.head(z), target, contrast).sum()
            src = vals[b.name]["out" if b.style == "torchvision" else "ctx"]
            (g,) = torch.autograd.grad(s, [src], retain_graph=n + 1 < total, allow_unused=True)
            g = torch.zeros_like(src) if g is None else g
            dctx = _ctx_grad(handle, b, vals[b.name], g.detach())
            grads.append(dctx.float() @ v.float().transpose(-2, -1))
            report(progress, n + 1, total)
    logits = rec.logits.detach()
    ap = AttentionPass(lay, tuple(attns), None, logits, target, contrast,
                       float(target_score(logits, target, contrast).sum()))
    return ap, grads


def patch_map(lay: VitLayout, relevance: torch.Tensor) -> torch.Tensor:
    """The readout rows of an N x N relevance matrix over the patch columns (their mean
    when there are several; all patch rows when the head averages the tokens), as a
    1 x 1 x h x w map on the patch grid."""
    rows = relevance[list(lay.readout)] if lay.readout else relevance[lay.prefix:]
    m = rows.mean(0)[lay.prefix:]
    h, w = lay.grid
    return m.reshape(1, 1, h, w)
