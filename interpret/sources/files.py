"""Checkpoint files.  State dicts (``torch.load(weights_only=True)``) and safetensors are
safe; everything that executes code from the file (full pickles, TorchScript,
``torch.export`` archives) is refused unless the caller passes ``allow_untrusted=True``,
and a safe load never falls back to an unsafe one.  The format is told from the bytes,
not the file name."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing

MAX_MODEL_BYTES = 2 * 1024**3

UNTRUSTED_WHY = (
    "it runs Python code from the file when loaded, so a hostile file could take over "
    "the server. Save a state dict instead (torch.save(model.state_dict(), 'm.pth') or "
    "safetensors) and choose its architecture; or, if you run this server and trust the "
    "file, enable untrusted formats (allow_untrusted=True)."
)


def read_source(src) -> Tuple[bytes, str]:
    """(bytes, file name) of a path, bytes or file object, within the size limit."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), "uploaded file"
    if hasattr(src, "read"):
        data = src.read(MAX_MODEL_BYTES + 1)
        name = os.path.basename(str(getattr(src, "name", "uploaded file")))
    else:
        path = Path(src)
        if not path.exists():
            raise InputError(f"Model file {path} does not exist.")
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a .pt/.pth/.safetensors file.")
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise InputError(f"Model file {path.name} is larger than the 2 GiB limit.")
        data, name = path.read_bytes(), path.name
    if not data:
        raise InputError(f"Model file {name} is empty.")
    if len(data) > MAX_MODEL_BYTES:
        raise InputError(f"Model file {name} is larger than the 2 GiB limit.")
    return data, name


def file_kind(data: bytes) -> str:
    """'safetensors', 'torchscript', 'export', 'torch' (zip pickle), 'legacy', 'unknown'."""
    if len(data) > 10 and data[8:9] == b"{":
        n = int.from_bytes(data[:8], "little")
        if 0 < n < len(data):
            return "safetensors"
    if data[:2] == b"PK":
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return "unknown"
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith(".json") and "/models/" in n for n in names) or any(
            n.endswith("archive_format") for n in names
        ):
            return "export"
        if any(n.endswith("data.pkl") for n in names):
            return "torch"
        return "unknown"
    if data[:1] == b"\x80":
        return "legacy"
    return "unknown"


def unwrap_state_dict(obj) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint: ``{"state_dict": ...}``, ``{"model": ...}`` and the
    like unwrapped, a ``module.`` / ``model.`` / ``_orig_mod.`` prefix on every key
    dropped."""
    for key in ("state_dict", "model_state_dict", "model", "net", "module", "ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise InputError("The file does not contain a state dict (a mapping of names to tensors).")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError("The file's state dict holds no tensors.")
    for prefix in ("module.", "model.", "_orig_mod."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


def classifier_key(module: nn.Module) -> Optional[str]:
    """Name of the final Linear (or 1x1 conv) weight: the classifier."""
    last = None
    for name, m in module.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and name:
            last = name
    return f"{last}.weight" if last else None


def infer_num_classes(probe: nn.Module, state: Dict[str, torch.Tensor], default: int = 1000) -> int:
    """The class count of a checkpoint for an architecture (``probe``: an instance)."""
    key = classifier_key(probe)
    if key and key in state:
        return int(state[key].shape[0])
    return default


def load_labels(labels) -> Optional[List[str]]:
    """Labels from a list, or a .txt (one per line) / .json (list or index->label) file,
    bytes or file object."""
    if labels is None or isinstance(labels, (list, tuple)):
        return list(labels) if labels is not None else None
    if isinstance(labels, (bytes, bytearray)):
        text, name = bytes(labels).decode("utf-8", "replace"), "labels"
    elif hasattr(labels, "read"):
        raw = labels.read()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        name = str(getattr(labels, "name", "labels"))
    else:
        p = Path(labels)
        if not p.exists():
            raise InputError(f"Labels file {p} does not exist.")
        text, name = p.read_text("utf-8", "replace"), p.name
    stripped = text.strip()
    if stripped.startswith("[") or stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"Labels file {name} is not valid JSON: {exc}") from None
        if isinstance(obj, list):
            return [str(x) for x in obj]
        try:
            items = sorted(((int(k), str(v)) for k, v in obj.items()))
        except (ValueError, AttributeError):
            raise InputError(f"Labels JSON {name} must be a list or an index->label mapping.") from None
        return [v for _, v in items]
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_checkpoint(data: bytes, fname: str, allow_untrusted: bool):
    """The object stored in a checkpoint's bytes: a state dict (safe formats) or, with
    ``allow_untrusted``, a module.  Returns (object, kind)."""
    kind = file_kind(data)
    if kind in ("torchscript", "export"):
        what = "a TorchScript archive" if kind == "torchscript" else "a torch.export (.pt2) archive"
        if not allow_untrusted:
            raise InputError(f"Refused to load {fname}: it is {what}; {UNTRUSTED_WHY}")
        if kind == "torchscript":
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        else:
            module = torch.export.load(io.BytesIO(data)).module()
        return module, kind
    if kind == "unknown":
        raise InputError(
            f"{fname} is not a PyTorch checkpoint or safetensors file (unrecognised format)."
        )
    if kind == "safetensors":
        from safetensors.torch import load as st_load

        try:
            return st_load(data), kind
        except Exception as exc:
            raise InputError(f"{fname} is not a valid safetensors file: {exc}") from None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), kind
    except Exception as exc:
        msg = str(exc)
        if "Weights only load failed" in msg or "Unsupported global" in msg or "weights_only" in msg:
            if not allow_untrusted:
                raise InputError(
                    f"Refused to load {fname}: it holds pickled Python objects (for example "
                    f"a whole model saved with torch.save(model)), not just tensors; {UNTRUSTED_WHY}"
                ) from None
            # explicit opt-in by the server operator: a deliberate unsafe load
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False), kind
        raise InputError(f"{fname} could not be read as a PyTorch file: {msg.splitlines()[0]}") from None


def load_state(module: nn.Module, state: Dict[str, torch.Tensor], fname: str, arch: str) -> None:
    """``module.load_state_dict(state, strict=True)``, with a sentence instead of a
    traceback when they do not fit."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing = getattr(exc, "args", [""])[0]
        first = "; ".join(str(missing).splitlines()[1:3]).strip()
        raise InputError(
            f"{fname} does not match the architecture '{arch}' ({first[:300] or 'different layers'}). "
            "Check that you picked the architecture the checkpoint was trained with."
        ) from None


def resolve_arch(arch: str) -> Tuple[Callable[[int, Dict[str, torch.Tensor]], nn.Module],
                                     Callable[[], Preprocessing], str]:
    """(build(num_classes, state) -> module, default preprocessing, display name) for an
    architecture name: the bundled ``efficientnet_lite0`` or a torchvision classifier
    (``resnet18`` or ``torchvision:resnet18``)."""
    from . import bundled, torchvision as tv

    if arch == bundled.NAME:
        return (lambda n, state: bundled.build(n)), bundled.preprocessing, arch
    name = tv.check_arch(arch)
    return (lambda n, state: tv.build(name, n, state)), (lambda: tv.preprocessing(name)), name


def load(source, arch: Optional[str], allow_untrusted: bool, pre: Optional[Preprocessing],
         name: Optional[str]):
    """(module, info) from a checkpoint file, bytes or file object."""
    data, fname = read_source(source)
    label = name or (os.path.splitext(fname)[0] if fname != "uploaded file" else (arch or "model"))
    obj, kind = read_checkpoint(data, fname, allow_untrusted)
    if isinstance(obj, nn.Module):
        what = {"torchscript": "a TorchScript archive", "export": "a torch.export (.pt2) archive"}.get(
            kind, "pickled module")
        if hasattr(obj, "eval"):
            obj.eval()
        return obj, ModelInfo(name=label, preprocessing=pre or Preprocessing(),
                              source=f"file ({what}, untrusted allowed)")
    state = unwrap_state_dict(obj)
    if not arch:
        raise InputError(
            f"{fname} is a state dict (weights only): say which architecture it belongs to "
            "with arch=..., e.g. arch='resnet50'."
        )
    build, default_pre, arch_label = resolve_arch(arch)
    num_classes = infer_num_classes(build(1000, state), state)
    module = build(num_classes, state)
    load_state(module, state, fname, arch_label)
    module.eval()
    from .torchvision import imagenet_labels, tokens_for

    labels = tuple(imagenet_labels()) if num_classes == 1000 else None
    return module, ModelInfo(
        name=label, labels=labels, preprocessing=pre or default_pre(),
        source=f"file ({kind if kind != 'torch' else 'state dict'}, arch={arch_label})",
        weights=fname, tokens=tokens_for(module))
