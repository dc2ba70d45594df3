"""Checkpoint files.  State dicts (``torch.load(weights_only=True)``) and safetensors are
safe; everything that executes code from the file (full pickles, TorchScript,
``torch.export`` archives) is refused unless the caller passes ``allow_untrusted=True``,
and a safe load never falls back to an unsafe one.  The format is told from the bytes,
not the file name."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import threading
import zipfile
import zlib
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing

MAX_MODEL_BYTES = 2 * 1024**3


def subject(fname: str) -> str:
    """A file's name as the subject of a sentence ("The uploaded file" for bytes)."""
    return "The uploaded file" if fname == "uploaded file" else fname


def _limits():
    from ..settings import current

    return current()


def zip_entries(data: bytes) -> Optional[int]:
    """How many files a zip holds, without parsing its directory (which costs memory per
    entry): the larger of the count its end record declares (zip64 too) and the entry
    signatures in its central directory (a directory may hold more entries than its end
    record says, and ``zipfile`` reads them all).  None when there is no end record."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - (22 + 65535)))
    if end < 0 or end + 22 > len(data):
        return None
    declared = int.from_bytes(data[end + 10:end + 12], "little")
    size = int.from_bytes(data[end + 12:end + 16], "little")
    if (declared == 0xFFFF or size == 0xFFFFFFFF) and end >= 20 and data[end - 20:end - 16] == b"PK\x06\x07":
        at = int.from_bytes(data[end - 12:end - 4], "little")  # the zip64 end record
        if 0 <= at < end and data[at:at + 4] == b"PK\x06\x06":
            declared = int.from_bytes(data[at + 32:at + 40], "little")
            size = int.from_bytes(data[at + 40:at + 48], "little")
    start = max(0, end - min(size, end) - 128)  # the directory lies just before the end records
    return max(declared, data.count(b"PK\x01\x02", start, end))


def zip_entries_in(fh) -> Optional[int]:
    """:func:`zip_entries` for a seekable binary file (a zip on disk): reads only the end
    records and the central directory, in chunks, never the members.  The position of
    ``fh`` is restored."""
    pos = fh.tell()
    try:
        size = fh.seek(0, io.SEEK_END)
        tail_at = max(0, size - (22 + 65535 + 20))
        fh.seek(tail_at)
        tail = fh.read()
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or end + 22 > len(tail):
            return None
        declared = int.from_bytes(tail[end + 10:end + 12], "little")
        cd_size = int.from_bytes(tail[end + 12:end + 16], "little")
        if (declared == 0xFFFF or cd_size == 0xFFFFFFFF) and end >= 20 and tail[end - 20:end - 16] == b"PK\x06\x07":
            at = int.from_bytes(tail[end - 12:end - 4], "little")  # the zip64 end record
            fh.seek(at)
            rec = fh.read(56)
            if 0 <= at < tail_at + end and rec[:4] == b"PK\x06\x06":
                declared = int.from_bytes(rec[32:40], "little")
                cd_size = int.from_bytes(rec[40:48], "little")
        end_abs = tail_at + end
        start = max(0, end_abs - min(cd_size, end_abs) - 128)
        fh.seek(start)
        found, carry, left = 0, b"", end_abs - start
        while left > 0:  # the signatures in the directory, 1 MiB at a time
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
            block = carry + chunk
            found += block.count(b"PK\x01\x02")
            carry = block[-3:]  # a signature cut by the chunk's end (3 bytes hold none)
        return max(declared, found)
    finally:
        fh.seek(pos)


def check_zip_entries(data: bytes, fname: str, limit: int, setting: str = "max_zip_files") -> None:
    """InputError when the zip ``data`` holds more than ``limit`` files, before its
    directory is parsed."""
    n = zip_entries(data)
    if n is not None and n > limit:
        raise InputError(f"{subject(fname)} is a zip of {n:,} files, more than the limit of {limit:,} "
                         f"(setting {setting}); refused before unpacking it.")


def open_zip(data: bytes, fname: str, max_files: Optional[int] = None) -> zipfile.ZipFile:
    """An uploaded zip's archive (InputError when it is not one, or when it holds more
    than ``max_files`` files, default the ``max_zip_files`` setting, counted before its
    directory is parsed)."""
    check_zip_entries(data, fname, _limits().max_zip_files if max_files is None else max_files)
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(f"{fname} is not a valid zip file.") from None


def unpack_member(zf: zipfile.ZipFile, member: zipfile.ZipInfo, fname: str, out=None):
    """Copy ``member`` into ``out`` (a new BytesIO when None, returned) in chunks; a
    damaged or oddly compressed member is an InputError."""
    out = io.BytesIO() if out is None else out
    try:
        with zf.open(member) as src:
            shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(f"{fname}'s {member.filename!r} could not be unpacked: {first}") from None
    return out


def safe_zip_members(zf: zipfile.ZipFile, fname: str, max_files: int,
                     too_many: str) -> List[zipfile.ZipInfo]:
    """The files of an uploaded zip, refusing what could escape the folder it unpacks to
    (absolute paths, Windows drive letters, ``..``, with either slash), symbolic links,
    more than ``max_files`` files (``too_many`` says what the zip should hold) and more
    than the ``max_unpacked_mb`` setting unpacked.  Shared by the Hugging Face and ONNX
    readers."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > max_files:
        raise InputError(f"{fname} holds {len(members)} files; {too_many}.")
    limit_mb = _limits().max_unpacked_mb
    total = 0
    for m in members:
        parts = re.split(r"[\\/]+", m.filename)
        if m.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", m.filename) or ".." in parts:
            raise InputError(f"{fname} holds a file outside its folder ({m.filename!r}): refused.")
        if (m.external_attr >> 16) & 0o170000 == 0o120000:
            raise InputError(f"{fname} holds a symbolic link ({m.filename!r}): refused.")
        total += m.file_size
    if total > limit_mb * 2**20:
        raise InputError(f"{subject(fname)} unpacks to {total / 2**20:,.1f} MiB, more than the limit of "
                         f"{limit_mb:,} MiB (setting max_unpacked_mb); refused before unpacking it.")
    return members


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


def file_kind(data: bytes, fname: str = "The file") -> str:
    """'safetensors', 'torchscript', 'export', 'torch' (zip pickle), 'legacy', 'hf-zip'
    (a zipped Hugging Face folder), 'onnx', 'onnx-zip' (a .onnx file and its data files)
    or 'unknown'."""
    if len(data) > 10 and data[8:9] == b"{":
        n = int.from_bytes(data[:8], "little")
        if 0 < n < len(data):
            return "safetensors"
    if data[:2] == b"PK":
        limits = _limits()  # a torch zip holds one file per tensor storage, plus a few
        n = zip_entries(data)
        if n is not None and n > max(limits.max_zip_files, limits.max_state_tensors + 16):
            raise InputError(
                f"{subject(fname)} is a zip of {n:,} files, more than an uploaded zip may hold "
                f"({limits.max_zip_files:,}, setting max_zip_files) and more than a state dict "
                f"of at most {limits.max_state_tensors:,} tensors needs (one file per tensor, "
                "setting max_state_tensors); refused before reading it.")
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
        from .hf import is_hf_zip
        from .onnx import is_onnx_zip

        if is_hf_zip(names):
            return "hf-zip"
        if is_onnx_zip(names):
            return "onnx-zip"
        return "unknown"
    if data[:1] == b"\x80":
        return "legacy"
    from .onnx import looks_like_onnx

    if looks_like_onnx(data):
        return "onnx"
    return "unknown"


#: prefixes a wrapper puts on every key (DataParallel, a LightningModule, torch.compile)
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


def strip_prefixes(tensors: Dict[str, torch.Tensor], own_keys=None) -> Dict[str, torch.Tensor]:
    """``tensors`` with a wrapper's prefix on every key dropped, unless the
    architecture's own keys (``own_keys``, when known) carry that prefix themselves (an
    Ultralytics ``DetectionModel``'s top submodule is called ``model``)."""
    own = list(own_keys) if own_keys is not None else []
    for prefix in WRAPPER_PREFIXES:
        if tensors and all(k.startswith(prefix) for k in tensors):
            if own and all(k.startswith(prefix) for k in own):
                continue
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


def unwrap_state_dict(obj, strip: bool = True) -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint: ``{"state_dict": ...}``, ``{"model": ...}`` and the
    like unwrapped, a ``module.`` / ``model.`` / ``_orig_mod.`` prefix on every key
    dropped (``strip=False``: kept, for :func:`strip_prefixes` once the architecture's
    own keys are known)."""
    for key in ("state_dict", "model_state_dict", "model", "net", "module", "ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise InputError("The file does not contain a state dict (a mapping of names to tensors).")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError("The file's state dict holds no tensors.")
    return strip_prefixes(tensors) if strip else tensors


def _arch_keys(spec, state: Dict[str, torch.Tensor]):
    """The state-dict keys of ``spec``'s architecture (built on the meta device where
    the architecture allows, else built: the operator's own code), or None."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if spec.meta_check:
                with torch.device("meta"):
                    return list(spec.build(state).state_dict())
            return list(spec.build(state).state_dict())
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - builders that compute with tensors: keep the usual rule
        return None


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


def _too_many_tensors(fname: str, n: int, limit: int, what: str = "tensors") -> InputError:
    return InputError(f"{subject(fname)} holds {n:,} {what}, more than the limit of {limit:,} tensors in "
                      "a state dict (setting max_state_tensors); refused before reading them. "
                      "Vision models have a few hundred to a few thousand.")


def _too_many_bytes(fname: str, total: int, limit_mb: int) -> InputError:
    return InputError(f"{subject(fname)}'s tensors take {total / 2**20:,.1f} MiB, more than the limit of "
                      f"{limit_mb:,} MiB (setting max_unpacked_mb); refused before reading them.")


def check_safetensors(data: bytes, fname: str) -> int:
    """The tensor count of a safetensors file, read from its header before any tensor is
    made; InputError when it holds more than ``max_state_tensors`` tensors or more than
    ``max_unpacked_mb`` of them, or when its header is not valid."""
    limits = _limits()
    n = int.from_bytes(data[:8], "little")
    header = data[8:8 + n]
    rough = header.count(b'"data_offsets"')  # one per tensor: counted before parsing the JSON
    if rough > limits.max_state_tensors:
        raise _too_many_tensors(fname, rough, limits.max_state_tensors)
    try:
        entries = json.loads(header)
        spans = [v["data_offsets"] for k, v in entries.items() if k != "__metadata__"]
        total = sum(int(b) - int(a) for a, b in spans)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(f"{subject(fname)} is not a valid safetensors file (its header: {exc}).") from None
    if len(spans) > limits.max_state_tensors:
        raise _too_many_tensors(fname, len(spans), limits.max_state_tensors)
    if total > limits.max_unpacked_mb * 2**20:
        raise _too_many_bytes(fname, total, limits.max_unpacked_mb)
    return len(spans)


def _count_persistent(stream, fname: str, limit: int, pickles: int = 1) -> int:
    """Tensors referenced in the next ``pickles`` pickles of ``stream`` (one persistent id
    per tensor in ``torch.save``'s format), read with :mod:`pickletools` (nothing is
    built or run), stopping as soon as the count or the length passes what ``limit``
    tensors need."""
    import pickletools

    max_ops = 128 * limit + 10_000  # a state dict's index takes about 35 per tensor
    n = ops = 0
    try:
        for _ in range(pickles):
            for op, _arg, _pos in pickletools.genops(stream):
                ops += 1
                if op.name in ("BINPERSID", "PERSID"):
                    n += 1
                    if n > limit:
                        raise _too_many_tensors(fname, n, limit, "tensors or more")
                if ops > max_ops:
                    raise InputError(
                        f"{subject(fname)}'s index of tensors (its pickle) is longer than a state dict of "
                        f"{limit:,} tensors needs (setting max_state_tensors): more than "
                        f"{max_ops:,} entries; refused before reading it.")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pickletools raises ValueError and others
        raise InputError(f"{subject(fname)} could not be read as a PyTorch file: {exc}") from None
    return n


def check_torch_file(data: bytes, fname: str, kind: str) -> int:
    """The tensor count of a ``torch.save`` file, counted before ``torch.load`` builds
    anything: the storages in the zip's ``data/`` folder and the tensors its
    ``data.pkl`` references (legacy files: the tensors of the pickle before the data);
    InputError over ``max_state_tensors`` tensors or ``max_unpacked_mb`` of storage."""
    limits = _limits()
    if kind == "legacy":  # magic number, protocol, sys info, then the object
        return _count_persistent(io.BytesIO(data), fname, limits.max_state_tensors, pickles=4)
    zf = zipfile.ZipFile(io.BytesIO(data))  # its entries were bounded by file_kind
    storages = [m for m in zf.infolist() if re.search(r"(^|/)data/\d+$", m.filename)]
    if len(storages) > limits.max_state_tensors:
        raise _too_many_tensors(fname, len(storages), limits.max_state_tensors, "tensor storages")
    total = sum(m.file_size for m in storages)
    if total > limits.max_unpacked_mb * 2**20:
        raise _too_many_bytes(fname, total, limits.max_unpacked_mb)
    pkl = next((m for m in zf.infolist() if m.filename.endswith("data.pkl")), None)
    if pkl is None:
        return len(storages)
    if pkl.file_size > 1024 * limits.max_state_tensors + 2**20:
        raise InputError(
            f"{subject(fname)}'s index of tensors (data.pkl) is {pkl.file_size / 2**20:,.1f} MiB, more than "
            f"a state dict of {limits.max_state_tensors:,} tensors needs (setting "
            "max_state_tensors); refused before reading it.")
    return _count_persistent(io.BytesIO(unpack_member(zf, pkl, fname).getvalue()), fname,
                             limits.max_state_tensors)


def file_metadata(data: bytes, kind: str, obj: Any = None) -> Dict[str, Any]:
    """What a state-dict file says about itself besides its tensors: a safetensors
    header's ``__metadata__`` (strings), or the non-tensor entries of a ``torch.save``
    dict (e.g. ``names``).  Read only (an Ultralytics YOLO's class names come from here)."""
    if kind == "safetensors":
        n = int.from_bytes(data[:8], "little")
        try:
            meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
        except (ValueError, AttributeError):
            return {}
        return {str(k): v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if k == "names" and isinstance(v, (list, tuple, dict))}
    return {}


def read_checkpoint(data: bytes, fname: str, allow_untrusted: bool):
    """The object stored in a checkpoint's bytes: a state dict (safe formats) or, with
    ``allow_untrusted``, a module.  Returns (object, kind)."""
    kind = file_kind(data, fname)
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
            f"{fname} is not a PyTorch checkpoint or safetensors file (unrecognised format; "
            "ONNX graphs and zipped Hugging Face folders are also accepted)."
        )
    if kind == "safetensors":
        from safetensors.torch import load as st_load

        check_safetensors(data, fname)
        try:
            return st_load(data), kind
        except Exception as exc:
            raise InputError(f"{fname} is not a valid safetensors file: {exc}") from None
    check_torch_file(data, fname, kind)
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


def _common_prefix(keys: List[str], model_keys: set) -> Optional[Tuple[str, int]]:
    """The first dotted component most keys of the file share that the architecture's
    keys do not start with (``backbone.``, ``encoder.``...), with how many carry it."""
    counts: Dict[str, int] = {}
    for k in keys:
        if "." in k:
            p = k.split(".", 1)[0] + "."
            counts[p] = counts.get(p, 0) + 1
    if not counts:
        return None
    prefix, n = max(counts.items(), key=lambda kv: kv[1])
    if n * 2 <= len(keys) or any(m.startswith(prefix) for m in model_keys):
        return None
    return prefix, n


#: timm architectures whose keys are compared with a file that fits no torchvision one:
#: a few of each common family (building all of timm's 1,300 would take a minute)
TIMM_LOOKALIKES = (
    "resnet18", "resnet50", "resnet50d", "convnext_tiny", "convnext_small", "convnextv2_tiny",
    "efficientnet_b0", "tf_efficientnet_b0", "mobilenetv3_large_100", "mobilenetv4_conv_small",
    "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224",
    "deit_tiny_patch16_224", "swin_tiny_patch4_window7_224", "regnety_040", "densenet121",
    "efficientvit_b0", "levit_128", "mobilevit_s", "mixer_b16_224", "maxvit_tiny_tf_224",
    "eva02_tiny_patch14_224", "fastvit_t8", "edgenext_small", "ghostnet_100", "rexnet_100",
)
_SIGNATURES: Dict[str, Dict[str, Tuple[int, ...]]] = {}
_SIGNATURES_LOCK = threading.Lock()


def _meta_signature(build: Callable[[], nn.Module]) -> Optional[Dict[str, Tuple[int, ...]]]:
    """{key: shape} of an architecture's state dict, built on the meta device (no memory
    for the weights, no initialisation work); None when it cannot be built there."""
    import warnings

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            module = build()
    except Exception:  # noqa: BLE001 - some builders compute with tensors (RegNet)
        return None
    return {k: tuple(v.shape) for k, v in module.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def _signature_file() -> Path:
    """Where the signatures are kept between processes: the user's cache folder, one
    file per version of torch, torchvision and timm (and of the list above)."""
    import hashlib
    from importlib import metadata

    def version(dist: str) -> str:  # without importing it (timm takes seconds)
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "none"

    stamp = hashlib.blake2b(repr((torch.__version__, version("torchvision"), version("timm"),
                                  TIMM_LOOKALIKES, 1)).encode(), digest_size=8).hexdigest()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "interpret" / f"architecture-keys-{stamp}.json"


def _read_signatures() -> Optional[Dict[str, Dict[str, Tuple[int, ...]]]]:
    try:
        data = json.loads(_signature_file().read_text("utf-8"))
        return {a: {k: tuple(int(d) for d in v) for k, v in sig.items()} for a, sig in data.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def _write_signatures(sigs: Dict[str, Dict[str, Tuple[int, ...]]]) -> None:
    path = _signature_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        tmp.write_text(json.dumps({a: {k: list(v) for k, v in sig.items()} for a, sig in sigs.items()}),
                       "utf-8")
        os.replace(tmp, path)
    except OSError:  # a read-only home: build them again next time
        pass


def architecture_signatures(timm: bool = True) -> Dict[str, Dict[str, Tuple[int, ...]]]:
    """{arch: {key: shape}} of every torchvision classifier (and the bundled
    EfficientNet-Lite0, and :data:`TIMM_LOOKALIKES` as ``timm:<name>`` when timm is
    installed), built on the meta device the first time (a few seconds of CPU), then
    kept in the user's cache folder and in memory."""
    with _SIGNATURES_LOCK:
        if not _SIGNATURES:
            _SIGNATURES.update(_read_signatures() or {})
        if not _SIGNATURES:
            from . import bundled, torchvision as tv
            import torchvision

            found: Dict[str, Dict[str, Tuple[int, ...]]] = {}
            for name in tv.classifiers():
                sig = _meta_signature(lambda name=name: torchvision.models.get_model(name, weights=None))
                if sig:
                    found[name] = sig
            sig = _meta_signature(lambda: bundled.build(1000))
            if sig:
                found[bundled.NAME] = sig
            try:
                import timm as timm_lib
            except ImportError:
                timm_lib = None
            if timm_lib is not None:
                for name in TIMM_LOOKALIKES:
                    sig = _meta_signature(lambda name=name: timm_lib.create_model(name, pretrained=False))
                    if sig:
                        found[f"timm:{name}"] = sig
            _SIGNATURES.update(found)
            _write_signatures(found)
        sigs = dict(_SIGNATURES)
    return sigs if timm else {k: v for k, v in sigs.items() if not k.startswith("timm:")}


def _likeness(state: Dict[str, Tuple[int, ...]], sig: Dict[str, Tuple[int, ...]]) -> Tuple[float, float]:
    """(shared keys / all keys of both, shared keys with equal shapes / shared keys)."""
    shared = state.keys() & sig.keys()
    if not shared:
        return 0.0, 0.0
    same = sum(1 for k in shared if state[k] == sig[k])
    return len(shared) / len(state.keys() | sig.keys()), same / len(shared)


def lookalike(state: Dict[str, torch.Tensor], min_keys: float = 0.9) -> Optional[Tuple[str, float, float]]:
    """(arch, key likeness, shape likeness) of the known architecture whose state-dict
    keys and shapes are closest to ``state``'s, when at least ``min_keys`` of the keys of
    both are shared; None otherwise.  Ties in keys (ResNet-50 and ResNeXt-50 share every
    key) go to the shapes."""
    shapes = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    if not shapes:
        return None
    best = None
    for arch, sig in architecture_signatures().items():
        keys, same = _likeness(shapes, sig)
        if keys >= min_keys and (best is None or (keys, same) > best[1:]):
            best = (arch, keys, same)
    return best


def _shape(t) -> str:
    return "[" + ", ".join(str(s) for s in t.shape) + "]"


def mismatch_message(module: nn.Module, state: Dict[str, torch.Tensor],
                     arch: Optional[str] = None) -> Optional[str]:
    """A sentence saying why ``state`` does not fit ``module`` (None when it fits): how
    many of the architecture's weights are missing from the file and how many of the
    file's entries the architecture does not have (a few of each named), the first
    shape mismatch; when ``arch`` (the architecture asked for) is given, the known
    architecture the file's keys look like instead, and the prefix most of the file's
    keys carry when stripping it makes them fit."""
    own = module.state_dict()
    model_keys = set(own)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in model_keys]
    shapes = [(k, state[k], own[k]) for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not missing and not unexpected and not shapes:
        return None

    def few(keys: List[str]) -> str:
        shown = ", ".join(f"'{k}'" for k in keys[:3])
        return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} of the architecture's {len(own)} weights are missing from "
                     f"the file ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} of the file's {len(state)} entries are not in the "
                     f"architecture ({few(unexpected)})")
    if shapes:
        k, theirs, ours = shapes[0]
        parts.append(f"the first shape mismatch is '{k}': {_shape(theirs)} in the file, "
                     f"{_shape(ours)} in the architecture"
                     + (f" ({len(shapes)} mismatches in all)" if len(shapes) > 1 else ""))
    msg = "; ".join(parts)
    key = classifier_key(module)
    head = key[: -len(".weight")] + "." if key else None
    if head and missing and not unexpected and not shapes and all(k.startswith(head) for k in missing):
        # only the classifier is missing: a backbone saved without its head
        return msg + (". Only the classifier is missing: if this is an embedding model (a backbone "
                      "saved without its head), load it with task 'embedding'")
    return msg + _what_it_is(state, model_keys, arch)


def _pct(x: float) -> str:
    """A share as a whole percentage, rounded down (99.6% is not "100%")."""
    return f"{math.floor(x * 100 + 1e-9)}%"


def _what_it_is(state: Dict[str, torch.Tensor], model_keys: set, arch: Optional[str]) -> str:
    """The end of a mismatch message: which architecture the file's keys look like when
    it is another one (``arch``: the one asked for), and a prefix to strip only when the
    stripped keys fit the architecture asked for (or look like another one)."""
    own = {k for k in model_keys if not k.endswith("num_batches_tracked")}

    def fits(keys) -> float:
        keys = {k for k in keys if not k.endswith("num_batches_tracked")}
        return len(keys & own) / max(1, len(keys | own))

    like = lookalike(state) if arch is not None and fits(state) < 0.9 else None
    if like is not None and like[0] != arch:
        return (f". This is not a {arch} file: its keys and shapes look like {like[0]} "
                f"({_pct(like[1])} of the keys of both shared, {_pct(like[2])} of the shared "
                f"ones of the same shape); load it with arch='{like[0]}'")
    pre = _common_prefix(list(state), model_keys)
    if pre is None:
        return ""
    prefix, n = pre
    inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    fit = len(set(inner) & model_keys)
    head = f". {n} of the file's {len(state)} keys start with '{prefix}'"
    strip = (f"strip that prefix from the keys before saving "
             f"({{k.removeprefix('{prefix}'): v for k, v in state.items()}})")
    if fits(inner) >= 0.9:
        return f"{head} ({fit} of them fit the architecture without it): {strip}"
    like = lookalike(inner) if arch is not None else None
    if like is not None and like[0] != arch:
        return (f"{head}; without it, they look like {like[0]} ({_pct(like[1])} of the keys of "
                f"both shared), not {arch}: {strip} and load it with arch='{like[0]}'")
    return ""  # stripping it would not help: the lists above say what differs


def load_state(module: nn.Module, state: Dict[str, torch.Tensor], fname: str, arch: str) -> None:
    """``module.load_state_dict(state, strict=True)``, with a sentence a person can act
    on instead of a traceback when they do not fit (:func:`mismatch_message`)."""
    why = mismatch_message(module, state, arch)
    if why is None:
        try:
            module.load_state_dict(state, strict=True)
            return
        except RuntimeError as exc:
            why = "; ".join(str(exc).splitlines()[1:3]).strip()[:300] or "different layers"
    raise InputError(
        f"{fname} does not match the architecture '{arch}': {why}. "
        "Check that you picked the architecture the checkpoint was trained with."
    )


@dataclass(frozen=True)
class Arch:
    """An architecture a state dict is loaded into: ``label`` (for people), ``build``
    (the module shaped for a state dict: ``num_classes`` inferred where the library
    allows) and ``info`` (the ModelInfo fields of the built module: labels,
    preprocessing, token layout, suggested layer)."""

    label: str
    build: Callable[[Dict[str, torch.Tensor]], nn.Module]
    info: Callable[[nn.Module], Dict[str, Any]]
    #: whether ``build`` may first run on the meta device to compare the file with the
    #: architecture before memory is spent on its weights (not for the operator's code)
    meta_check: bool = True


def _imagenet_if_1000(module: nn.Module, fields: Dict[str, Any], n: int) -> Dict[str, Any]:
    from .torchvision import imagenet_labels

    if fields.get("labels") is None and n == 1000:
        fields["labels"] = tuple(imagenet_labels())
    return fields


def resolve_arch(arch, arch_kwargs: Optional[Dict[str, Any]] = None, metadata=None) -> Arch:
    """The :class:`Arch` for ``arch``: the bundled ``efficientnet_lite0``; a torchvision
    classifier (``resnet18`` or ``torchvision:resnet18``); a timm model
    (``timm:convnext_tiny``); the team's own code, as a callable or a
    ``"package.module:function"`` string (called with ``arch_kwargs``); an Ultralytics
    YOLO from the package's own YAML (``ultralytics:yolov8n.yaml``; ``metadata``: the
    file's, for its class names)."""
    from . import bundled, factory, modules, timm as timm_src, torchvision as tv
    from . import ultralytics as ul_src

    if ul_src.is_spec(arch):  # a YOLO detector from the package's own YAML (issue 20), not a factory
        if arch_kwargs:
            raise InputError("arch_kwargs only apply to a factory (arch='package.module:function').")
        return ul_src.arch(arch, metadata)
    if callable(arch) and not isinstance(arch, str):
        fn, label = arch, factory.label_of(arch)
    elif isinstance(arch, str) and factory.is_spec(arch):
        fn, label = factory.resolve(arch), arch.strip()
    else:
        fn = None
    if fn is not None:
        def build_factory(state, fn=fn, label=label):
            return factory.build(fn, arch_kwargs, label)

        def info_factory(module):
            fields = dict(modules.info_fields(module))
            if "preprocessing" not in fields:
                fields["preprocessing"] = Preprocessing()
            return fields

        return Arch(label, build_factory, info_factory, meta_check=False)
    if not isinstance(arch, str):
        raise InputError(f"arch must be an architecture name or a function, not {type(arch).__name__}.")
    if arch_kwargs:
        raise InputError("arch_kwargs only apply to a factory (arch='package.module:function').")
    if arch.strip().startswith(timm_src.PREFIX):
        name = timm_src.check_name(arch)

        def info_timm(module):
            return _imagenet_if_1000(module, timm_src.info_fields(module), int(getattr(module, "num_classes", 0)))

        return Arch(f"timm:{name}", lambda state: timm_src.build_for_state(name, state), info_timm)
    if arch.strip() == bundled.NAME:
        def build_lite(state):
            return bundled.build(infer_num_classes(bundled.build(1000), state))

        def info_lite(module):
            n = infer_num_classes(module, module.state_dict())
            return _imagenet_if_1000(module, {"preprocessing": bundled.preprocessing()}, n)

        return Arch(bundled.NAME, build_lite, info_lite)
    name = tv.check_arch(arch)

    def build_tv(state):
        if tv.is_detector(name):
            return tv.build(name, tv.detector_classes(name, state), state)
        return tv.build(name, infer_num_classes(tv.build(name, 1000, state), state), state)

    def info_tv(module):
        if tv.is_detector(name):
            from ..detection import class_count

            n = class_count(module)
            fields = {"preprocessing": tv.preprocessing(name), **modules.info_fields(module),
                      "task": "detection", "suggested_layer": "backbone"}
            if n == 91:
                fields["labels"] = tuple(tv.detection_labels())
            return fields
        n = infer_num_classes(module, module.state_dict())
        fields = {"preprocessing": tv.preprocessing(name), **modules.info_fields(module)}
        return _imagenet_if_1000(module, fields, n)

    return Arch(name, build_tv, info_tv)


def _check_on_meta(spec: Arch, state: Dict[str, torch.Tensor], fname: str) -> None:
    """Refuse a file that does not fit ``spec`` before its weights cost memory: the
    architecture is built on the meta device (shapes only) and compared with the file,
    so that naming a 600-million-parameter architecture for a small file costs nothing.
    (When it fits, the real build costs what the file holds.)"""
    import warnings

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            probe = spec.build(state)
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - builders that compute with tensors (RegNet)
        return
    why = mismatch_message(probe, state, spec.label)
    if why is not None:
        raise InputError(f"{fname} does not match the architecture '{spec.label}': {why}. "
                         "Check that you picked the architecture the checkpoint was trained with.")


def headless(spec: Arch, state: Dict[str, torch.Tensor]) -> Tuple[Arch, Dict[str, torch.Tensor]]:
    """``spec`` built without its classifier (an embedding model, task ``"embedding"``):
    timm's ``reset_classifier(0)``, or for a torchvision classifier its last Linear (or
    1x1 convolution) replaced by ``nn.Identity``, so that the output is the vector the
    classifier read; and ``state`` without that classifier's weights (a backbone saved
    with ``fc = nn.Identity()`` or ``num_classes=0`` has none; a whole classifier's are
    dropped).  Detectors and segmenters keep their heads (they are not embedders)."""
    from . import torchvision as tv

    name = spec.label
    if tv.is_detector(name) or tv.is_segmenter(name):
        raise InputError(f"'{name}' is {'an object detector' if tv.is_detector(name) else 'a segmentation model'}, "
                         "not an embedding model: choose its own task (or read from the model).")
    import warnings

    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            probe = spec.build(state)
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - builders that compute with tensors (RegNet)
        probe = spec.build(state)
    full = set(probe.state_dict())
    if hasattr(probe, "reset_classifier") and hasattr(probe, "pretrained_cfg"):  # timm
        probe.reset_classifier(0)
        head = None
        kept = set(probe.state_dict())
    else:
        key = classifier_key(probe)
        if key is None:
            raise InputError(f"'{name}' has no Linear or convolution to take off as its classifier.")
        head = key[: -len(".weight")]
        kept = {k for k in full if not k.startswith(head + ".")}
    # the classifier's own weights, when the file has them, are not part of the embedding
    state = {k: v for k, v in state.items() if k not in full - kept}

    def build(s, spec=spec, head=head):
        m = spec.build(s)
        if head is None:
            m.reset_classifier(0)
            return m
        parent, _, child = head.rpartition(".")
        setattr(m.get_submodule(parent) if parent else m, child, nn.Identity())
        return m

    def info(m, spec=spec):
        fields = dict(spec.info(m))
        fields.update(labels=None, task="embedding")
        return fields

    return Arch(f"{name} (no classifier)", build, info, spec.meta_check), state


def load(source, arch, allow_untrusted: bool, pre: Optional[Preprocessing],
         name: Optional[str], arch_kwargs: Optional[Dict[str, Any]] = None, embedding: bool = False):
    """(module, info) from a checkpoint file, bytes or file object: a state dict or
    safetensors file with its ``arch``; a zipped Hugging Face folder or an ONNX graph
    (told from the bytes); pickles, TorchScript and ``.pt2`` only with
    ``allow_untrusted``.  ``embedding``: the state dict is an embedding model's, loaded
    into the architecture without its classifier (:func:`headless`)."""
    data, fname = read_source(source)
    kind = file_kind(data, fname)
    if kind == "hf-zip":
        from . import hf

        return hf.load_zip(data, fname, allow_untrusted, pre, name)
    if kind in ("onnx", "onnx-zip") or (kind == "unknown" and fname.lower().endswith(".onnx")):
        from . import onnx as onnx_src

        # a path's external data lies next to it; an upload's comes in a zip
        folder = os.path.dirname(os.path.abspath(source)) if isinstance(source, (str, os.PathLike)) else None
        return onnx_src.load(data, fname, pre, name, folder=folder)
    label = name or (os.path.splitext(fname)[0] if fname != "uploaded file" else (
        arch if isinstance(arch, str) and arch else "model"))
    obj, kind = read_checkpoint(data, fname, allow_untrusted)
    from . import ultralytics as ul_src

    yolo = ul_src.from_checkpoint(obj)  # an Ultralytics .pt (only ever a pickle: untrusted allowed)
    if yolo is not None:
        fields = ul_src.info_fields(yolo)
        fields["preprocessing"] = pre or fields["preprocessing"]
        return yolo, ModelInfo(name=label, source="file (Ultralytics checkpoint, untrusted allowed)",
                               weights=fname, **fields)
    if isinstance(obj, nn.Module):
        what = {"torchscript": "a TorchScript archive", "export": "a torch.export (.pt2) archive"}.get(
            kind, "pickled module")
        if hasattr(obj, "eval"):
            obj.eval()
        return obj, ModelInfo(name=label, preprocessing=pre or Preprocessing(),
                              source=f"file ({what}, untrusted allowed)")
    state = unwrap_state_dict(obj, strip=False)
    if arch is None or (isinstance(arch, str) and not arch.strip()):
        raise InputError(
            f"{fname} is a state dict (weights only): say which architecture it belongs to "
            "with arch=..., e.g. arch='resnet50' or arch='timm:convnext_tiny'."
        )
    spec = resolve_arch(arch, arch_kwargs, metadata=file_metadata(data, kind, obj))
    stripped = strip_prefixes(state)
    if len(stripped) == len(state) and next(iter(stripped)) != next(iter(state)):
        # every key carries a wrapper's prefix: drop it only when the architecture's own
        # keys lack it (issue 20: an Ultralytics DetectionModel's keys all start "model.")
        stripped = strip_prefixes(state, _arch_keys(spec, stripped))
    state = stripped
    if embedding:
        spec, state = headless(spec, state)
    if spec.meta_check:
        _check_on_meta(spec, state, fname)
    module = spec.build(state)
    load_state(module, state, fname, spec.label)
    module.eval()
    fields = dict(spec.info(module))
    if pre is not None:
        fields["preprocessing"] = pre
    fields.setdefault("preprocessing", Preprocessing())
    fields["preprocessing"].check_declared(subject(fname) if fname != "uploaded file" else "the uploaded file")
    return module, ModelInfo(
        name=label, source=f"file ({kind if kind != 'torch' else 'state dict'}, arch={spec.label})",
        weights=fname, **fields)
