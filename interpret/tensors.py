"""Small tensor helpers every module shares: the logits in a model's output, and a
content hash of a tensor for cache keys."""

from __future__ import annotations

import hashlib
from typing import Any, Optional

import torch


def first_tensor(out: Any) -> Optional[torch.Tensor]:
    """The class scores in a model's (or a module's) output: the tensor itself, the first
    tensor of a tuple or list, ``out["logits"]`` / ``out["out"]`` of a dict, or the
    ``.logits`` of a Hugging Face output object; None when there is none."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict):
        for key in ("logits", "out"):
            if isinstance(out.get(key), torch.Tensor):
                return out[key]
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    return None


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


def target_score(logits: torch.Tensor, target: int, contrast: Optional[int] = None) -> torch.Tensor:
    """Per-sample score that every method explains: the target logit, or target minus
    contrast ("A rather than B")."""
    s = logits[:, target]
    if contrast is not None:
        s = s - logits[:, contrast]
    return s
