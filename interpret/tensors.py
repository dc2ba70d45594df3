"""Small tensor helpers every module shares: the logits in a model's output, and a
content hash of a tensor for cache keys."""

from __future__ import annotations

import hashlib
from typing import Any, Optional

import torch

from .errors import InputError


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


def task_output(out: Any, size=None) -> Optional[torch.Tensor]:
    """The tensor a task reads from a model's output (:func:`first_tensor`): B x C
    scores, or B x C x H x W class maps for segmentation, upsampled bilinearly to the
    input's ``size`` (h, w) when the model returns them smaller (Hugging Face's
    SegFormer and others: a quarter of the input, as their own post-processing
    upsamples them).  A B x C x 1 x 1 output is read as B x C.  A detector's output
    (torchvision's list of box dicts, Hugging Face's ``pred_boxes``) is packed into one
    B x N x 6 tensor (:func:`interpret.detection.pack`)."""
    from .detection import is_detection_output, pack

    if is_detection_output(out):
        return pack(out, size)
    t = first_tensor(out)
    if t is None or t.dim() != 4:
        return t
    if t.shape[-2:] == (1, 1):
        return t.flatten(1)
    if size is not None and tuple(t.shape[-2:]) != tuple(int(s) for s in size):
        t = torch.nn.functional.interpolate(t, size=tuple(int(s) for s in size), mode="bilinear",
                                            align_corners=False)
    return t


def check_output(t: Optional[torch.Tensor], out: Any = None) -> torch.Tensor:
    """``t`` (a :func:`task_output`) if it is B x C, B x C x H x W or a packed
    detection B x N x 6, else an :class:`~interpret.InputError` that says what the model
    returned."""
    if t is not None and t.dim() == 3 and t.shape[-1] == 6:
        return t
    if t is None or t.dim() not in (2, 4):
        got = tuple(t.shape) if t is not None else type(out).__name__
        raise InputError(
            f"The model must return class scores of shape [batch, classes] or a segmentation map "
            f"[batch, classes, height, width] (got {got}).")
    return t


def target_score(logits: torch.Tensor, target, contrast: Optional[int] = None) -> torch.Tensor:
    """Per-sample score that every method explains: a :class:`interpret.targets.Target`'s
    score of the output, or, for a class index, the target logit, or target minus
    contrast ("A rather than B")."""
    if hasattr(target, "score"):
        return target.score(logits)
    s = logits[:, target]
    if contrast is not None:
        s = s - logits[:, contrast]
    return s
