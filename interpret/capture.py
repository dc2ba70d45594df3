"""One forward, one ``torch.autograd.grad``: the layer's activation and gradient, the
input gradient and the logits, captured together and shared by every gradient method.

Nothing touches parameter ``.grad`` (only ``torch.autograd.grad`` with explicit
inputs is used), and the hook lives only inside the call, for the calling thread.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .errors import InputError
from .hooks import hooks
from .layers import resolve_layer, to_spatial
from .models import ModelHandle, _first_tensor


@dataclass(frozen=True)
class Capture:
    """What one forward/backward recorded.  ``activation`` and ``gradient`` are
    1 x C x h x w (token outputs already reshaped), detached; ``raw_shape`` is the
    layer's own output shape; ``input_grad`` is d score / d input."""

    layer: Optional[str]
    target: int
    contrast: Optional[int]
    logits: torch.Tensor
    input: torch.Tensor
    input_grad: torch.Tensor
    activation: Optional[torch.Tensor]
    gradient: Optional[torch.Tensor]
    raw_shape: Optional[Tuple[int, ...]]
    score: float


def tensor_key(x: torch.Tensor) -> str:
    """A content hash of a tensor, remembered on the tensor object until it is modified
    in place (its version counter moves) or its storage changes."""
    memo = getattr(x, "_interpret_key", None)
    if memo is not None and memo[0] == x._version and memo[1] == x.data_ptr():
        return memo[2]
    h = hashlib.blake2b(digest_size=16)
    t = x.detach().cpu().contiguous()
    h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
    h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    key = h.hexdigest()
    try:
        x._interpret_key = (x._version, x.data_ptr(), key)
    except (AttributeError, RuntimeError):  # pragma: no cover - exotic tensor subclasses
        pass
    return key


def target_score(logits: torch.Tensor, target: int, contrast: Optional[int]) -> torch.Tensor:
    """Per-sample score: the target logit, or target minus contrast ("A rather than B")."""
    s = logits[:, target]
    if contrast is not None:
        s = s - logits[:, contrast]
    return s


def capture(
    handle: ModelHandle,
    x: torch.Tensor,
    layer: Optional[str],
    target: Optional[int],
    contrast: Optional[int] = None,
) -> Capture:
    """Run (or reuse from the handle's cache) the one forward/backward pass.

    ``target=None`` takes the top class of this very forward (no extra pass); the
    logits are cached too, so :func:`interpret.predict` on the same input is free."""
    fp, tkey = handle.fingerprint_fast(), tensor_key(x)
    key = ("capture", fp, tkey, layer, target, contrast)
    cached = handle.cache_get(key)
    if cached is not None:
        return cached
    module = handle.module
    store = {}
    with hooks() as hs:
        if layer is not None:
            def rec(mod, inp, out):
                t = _first_tensor(out)
                if t is None:
                    raise InputError(f"Layer '{layer}' does not output a tensor.")
                store["act"] = t  # the last call wins for modules used several times
            hs.forward(resolve_layer(handle, layer), rec)
        xin = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = _first_tensor(module(xin))
            if out is None or out.dim() != 2:
                raise InputError("The model must return class scores of shape [batch, classes].")
            handle.cache_put(("logits", fp, tkey), out.detach())
            if target is None:
                target = int(out.detach()[0].argmax())
                key = ("capture", fp, tkey, layer, target, contrast)
            score = target_score(out, target, contrast).sum()
    act = store.get("act")
    if layer is not None and act is None:
        raise InputError(f"Layer '{layer}' did not run in the forward pass.")
    inputs = [xin] + ([act] if act is not None else [])
    if act is not None and not act.requires_grad:
        raise InputError(f"Layer '{layer}' is not on the path to the output (no gradient).")
    grads = torch.autograd.grad(score, inputs, allow_unused=True)
    gin = grads[0] if grads[0] is not None else torch.zeros_like(xin)
    a = g = None
    raw_shape = None
    if act is not None:
        raw_shape = tuple(act.shape)
        gact = grads[1] if grads[1] is not None else torch.zeros_like(act)
        a = to_spatial(act.detach(), handle.channels_last_tokens)
        g = to_spatial(gact.detach(), handle.channels_last_tokens)
        if a is None:
            raise InputError(
                f"Layer '{layer}' has output shape {raw_shape}, which has no spatial layout."
            )
        a, g = a.contiguous(), g.contiguous()
    cap = Capture(layer, target, contrast, out.detach(), x.detach(), gin.detach(), a, g,
                  raw_shape, float(score.detach()))
    handle.cache_put(key, cap)
    return cap
