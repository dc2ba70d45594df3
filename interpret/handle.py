"""The model handle: a module plus what is known about it (frozen :class:`ModelInfo`)
and the state this process keeps for it (:class:`ModelRuntime`: caches, locks,
fingerprints).

Loaders (:mod:`interpret.sources`) build the info; :func:`interpret.load_model` wraps
the module in a :class:`ModelHandle`.  Nothing here changes the module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .errors import InputError
from .locks import RWLock
from .preprocessing import Preprocessing
from .tensors import task_output
from .tokens import TokenLayout


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a model, fixed when it is loaded.

    ``labels``: class names (None: "class i" for each output); ``preprocessing``: how a
    photo becomes its input; ``source`` / ``weights`` / ``notes``: where it came from, for
    people; ``tokens``: how its layer outputs map onto the image; ``suggested_layer``:
    the layer CAMs default to when the loader knows it (timm families), None to have
    :func:`interpret.default_layer` find it; ``task``: what the output means, when the
    loader or the caller knows it (None: read from the output's shape, see
    :attr:`ModelHandle.task`)."""

    name: str
    labels: Optional[Tuple[str, ...]] = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    source: str = "module"
    weights: Optional[str] = None
    notes: Tuple[str, ...] = ()
    tokens: TokenLayout = field(default_factory=TokenLayout)
    suggested_layer: Optional[str] = None
    is_transformer: bool = False
    task: Optional[str] = None

    def __post_init__(self):
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(str(l) for l in self.labels))
        object.__setattr__(self, "notes", tuple(self.notes))


class ModelRuntime:
    """What this process keeps for one model: a small thread-safe LRU of results (the
    capture, logits, layer maps...), the last preprocessed photos, memoised values
    (layer table, suggested layer, class count), the readers/writer lock and the
    fingerprints."""

    def __init__(self, cache_size: int = 32):
        self.lock = threading.RLock()
        self.rwlock = RWLock()
        self.cache: "OrderedDict[Any, Any]" = OrderedDict()
        self.cache_size = cache_size
        self.inputs: "OrderedDict[Any, torch.Tensor]" = OrderedDict()
        self.memos: Dict[str, Any] = {}
        self.fingerprint: Optional[str] = None
        self.pinned = threading.local()

    def get(self, key):
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.cache[key] = value
            self.cache.move_to_end(key)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    def memo(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per runtime (its result is kept; None is not)."""
        with self.lock:
            if name in self.memos:
                return self.memos[name]
        value = compute()
        if value is not None:
            with self.lock:
                self.memos.setdefault(name, value)
        return value


class ModelHandle:
    """A model ready to be explained: ``module`` (never changed by this package),
    ``info`` (:class:`ModelInfo`) and ``runtime`` (:class:`ModelRuntime`).

    The info's fields read as attributes (``name``, ``labels``, ``preprocessing``,
    ``source``, ``weights``, ``notes``, ``tokens``); also ``input_size``, ``mean``,
    ``std``, ``device``, ``num_params``, ``num_classes`` and ``scripted`` (TorchScript:
    no hooks)."""

    def __init__(
        self,
        module: nn.Module,
        name: Optional[str] = None,
        labels: Optional[Sequence[str]] = None,
        preprocessing: Optional[Preprocessing] = None,
        source: str = "module",
        weights: Optional[str] = None,
        notes: Sequence[str] = (),
        *,
        info: Optional[ModelInfo] = None,
        tokens: Optional[TokenLayout] = None,
    ):
        self.module = module
        if info is None:
            if tokens is None:
                tokens = TokenLayout(channels_last="Swin" in type(module).__name__)
            info = ModelInfo(name=name or type(module).__name__,
                             labels=tuple(labels) if labels is not None else None,
                             preprocessing=preprocessing or Preprocessing(), source=source,
                             weights=weights, notes=tuple(notes), tokens=tokens)
        self.info = info
        self.runtime = ModelRuntime()
        self.scripted = isinstance(module, torch.jit.ScriptModule)

    def with_info(self, **changes) -> "ModelHandle":
        """A new handle on the same module with some info fields changed (and a fresh
        runtime): how a loader sets the labels or the name after building a handle."""
        return ModelHandle(self.module, info=dataclasses.replace(self.info, **changes))

    # -- the info, read as attributes --------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def preprocessing(self) -> Preprocessing:
        return self.info.preprocessing

    @property
    def source(self) -> str:
        return self.info.source

    @property
    def weights(self) -> Optional[str]:
        return self.info.weights

    @property
    def notes(self) -> List[str]:
        return list(self.info.notes)

    @property
    def tokens(self) -> TokenLayout:
        return self.info.tokens

    @property
    def channels_last_tokens(self) -> bool:
        return self.info.tokens.channels_last

    @property
    def input_size(self) -> Tuple[int, int]:
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
    def output_shape(self) -> Tuple[int, ...]:
        """The shape of the model's task output for one input (B x C, or B x C x H x W
        for segmentation; see :func:`~interpret.tensors.task_output`), from one forward
        of zeros, remembered."""
        def probe() -> Tuple[int, ...]:
            with torch.no_grad():
                raw = self.module(torch.zeros(1, 3, *self.input_size, device=self.device))
            out = task_output(raw, self.input_size)
            if out is not None and out.dim() == 3 and out.shape[-1] == 6:  # a detector's boxes
                return (1, 0, 6)
            if out is None or out.dim() not in (2, 4):
                raise InputError(
                    f"Model '{self.name}' does not return class scores of shape [batch, classes] "
                    f"or a segmentation map [batch, classes, height, width] "
                    f"(got {type(raw).__name__ if out is None else tuple(out.shape)})."
                )
            return tuple(int(s) for s in out.shape)

        return self.runtime.memo("output_shape", probe)

    @property
    def num_classes(self) -> int:
        """Outputs per image (classes, labels, 1 for a binary model or a regressor) or,
        for segmentation, classes per pixel; for a detector, the classes it scores."""
        if self.task == "image-text":  # the prompts are the classes
            return len(self.info.labels or ())
        if self.task == "detection":
            from .detection import class_count

            if self.info.labels is not None:
                return len(self.info.labels)
            n = class_count(self.module)
            if n is None:
                raise InputError(f"Model '{self.name}' is a detector whose number of classes is "
                                 "unknown; give its labels (load_model(..., labels=...)).")
            return n
        return self.output_shape[1]

    @property
    def task(self) -> str:
        """What the output means: ``"classification"`` (softmax over classes),
        ``"multilabel"`` (a sigmoid per label), ``"binary"`` (one logit),
        ``"regression"`` (values) or ``"segmentation"`` (class scores per pixel).  The
        loader's or caller's word (``info.task``) if the output fits it, else read from
        the output's shape (B x C x H x W: segmentation; one output: binary)."""
        from .targets import task_of_output

        return self.runtime.memo("task", lambda: task_of_output(self.output_shape, self.info.task))

    @property
    def labels(self) -> List[str]:
        if self.info.labels is not None:
            return list(self.info.labels)
        return self.runtime.memo("labels", lambda: [f"class {i}" for i in range(self.num_classes)])

    def label(self, index: int) -> str:
        if isinstance(index, str):  # an image-text model's prompt, or a reference photo's name
            return index
        labels = self.labels
        return labels[index] if 0 <= index < len(labels) else f"class {index}"

    # -- the runtime ---------------------------------------------------------------
    @property
    def rwlock(self) -> RWLock:
        return self.runtime.rwlock

    @property
    def cache(self) -> "OrderedDict[Any, Any]":
        """The result cache; ``handle.cache.clear()`` after changing weights through
        ``param.data`` (invisible to :meth:`fingerprint_fast`)."""
        return self.runtime.cache

    def cache_get(self, key):
        return self.runtime.get(key)

    def cache_put(self, key, value) -> None:
        self.runtime.put(key, value)

    def memo(self, name: str, compute: Callable[[], Any]) -> Any:
        return self.runtime.memo(name, compute)

    def preprocess(self, image) -> torch.Tensor:
        """1 x C x H x W tensor on the model's device, exactly as the model receives it."""
        from .images import load_image

        if not hasattr(image, "mode"):
            image = load_image(image)
        return self.preprocessing.to_tensor(image).to(self.device)

    def preprocess_cached(self, image) -> torch.Tensor:
        """:meth:`preprocess` of a PIL image (after :func:`~interpret.load_image`'s checks
        and conversion), remembered for the last few images (keyed by their pixels, mode
        and size and by the preprocessing), so that several explanations of one photo
        resize and normalise it once.  The returned tensor is shared: callers must not
        modify it in place."""
        h = hashlib.blake2b(image.tobytes(), digest_size=16)
        key = (h.hexdigest(), image.mode, image.size, repr(self.preprocessing), str(self.device))
        rt = self.runtime
        with rt.lock:
            x = rt.inputs.get(key)
            if x is not None:
                rt.inputs.move_to_end(key)
                return x
        from .images import load_image

        x = self.preprocess(load_image(image))  # RGB, EXIF orientation, size limits
        with rt.lock:
            rt.inputs[key] = x
            while len(rt.inputs) > 4:
                rt.inputs.popitem(last=False)
        return x

    def fingerprint(self) -> str:
        """A content hash of the weights, the class labels and the preprocessing (for
        caching by content across sessions: two uploads of the same weights with other
        label files must not share figures titled with labels), computed once."""
        rt = self.runtime
        if rt.fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(self.name.encode())
            for k, v in self.module.state_dict().items():
                h.update(k.encode())
                t = v.detach().cpu().contiguous()
                h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
                h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
            h.update(repr(self.preprocessing).encode())
            h.update("\x00".join(self.labels).encode())
            rt.fingerprint = h.hexdigest()
        return rt.fingerprint

    def fingerprint_fast(self):
        """Identity and state version of the module within this process, for cache keys.

        In-place updates of parameters (an optimiser step in a notebook) bump tensor
        versions; batch-norm running statistics are updated without a version bump, so
        the (small) floating-point buffers are summed as well.  Writes through
        ``param.data`` are invisible to both: call ``handle.cache.clear()`` after them.
        Inside :meth:`pinned_fingerprint` (one explanation) it is computed once.
        """
        pinned = getattr(self.runtime.pinned, "fp", None)
        if pinned is not None:
            return pinned
        return self._fingerprint_of(ModuleState.of(self.module))

    def _fingerprint_of(self, state: "ModuleState"):
        params = sum(p._version for p in state.params)
        bufs = [b for b in state.buffers if b.is_floating_point()]
        if not bufs:
            return id(self.module), params, 0.0
        with torch.no_grad():
            # one reduction over all buffers instead of one per buffer
            buf_sum = float(torch.cat([b.detach().reshape(-1) for b in bufs]).sum(dtype=torch.float64))
        return id(self.module), params, buf_sum

    @contextlib.contextmanager
    def pinned_fingerprint(self, state: Optional["ModuleState"] = None):
        """Compute :meth:`fingerprint_fast` once for the block (in this thread): one
        explanation looks its cache keys up several times, and the model does not change
        while it runs (it holds the model's read or write lock).  ``state``: a traversal
        of the module already made (by :func:`model_guard`), to reuse."""
        pinned = self.runtime.pinned
        if getattr(pinned, "fp", None) is not None:
            yield
            return
        pinned.fp = self._fingerprint_of(state or ModuleState.of(self.module))
        try:
            yield
        finally:
            pinned.fp = None

    def check_ready(self) -> None:
        """Refuse a module in training mode instead of silently flipping it."""
        if self.module.training:
            raise InputError(
                f"Model '{self.name}' is in training mode (dropout and batch-norm statistics "
                "would change the explanation, and batch-norm buffers would be updated). "
                "Call model.eval() before explaining it; interpret never flips it for you."
            )

    def describe(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "weights": self.weights,
            "parameters": self.num_params,
            "input_size": list(self.input_size),
            "classes": len(self.labels),
            "task": self.task,
            "preprocessing": self.preprocessing.describe(),
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        h, w = self.input_size
        return f"ModelHandle(name={self.name!r}, input_size={h}x{w}, classes={len(self.labels)})"


@dataclass(frozen=True)
class ModuleState:
    """One traversal of a module tree: its modules, parameters and buffers (shared
    tensors may appear twice; harmless for the guard and the fingerprint).  Reading the
    modules' own dicts once is ~10x cheaper than ``parameters()`` + ``buffers()`` +
    ``modules()``, which each walk the tree again."""

    modules: tuple
    params: tuple
    buffers: tuple

    @staticmethod
    def of(module: nn.Module) -> "ModuleState":
        mods = tuple(module.modules())
        params = tuple(p for m in mods for p in m._parameters.values() if p is not None)
        bufs = tuple(b for m in mods for b in m._buffers.values() if b is not None)
        return ModuleState(mods, params, bufs)


@contextlib.contextmanager
def model_guard(handle: ModelHandle, state: Optional[ModuleState] = None):
    """Safety net around every call that runs the model: afterwards (success or failure)
    no parameter .grad appeared, and training / requires_grad flags are as before.  Our
    code never changes them; this catches third-party code (Captum) and is cheap."""
    state = state or ModuleState.of(handle.module)
    params, mods = state.params, state.modules
    grads = [p.grad for p in params]
    req = [p.requires_grad for p in params]
    modes = [m.training for m in mods]
    try:
        yield
    finally:
        for p, g, r in zip(params, grads, req):
            if p.grad is not g:
                p.grad = g
            if p.requires_grad != r:
                p.requires_grad_(r)
        for m, t in zip(mods, modes):
            if m.training != t:
                m.training = t  # restore the flag only; never call .train()/.eval()


@contextlib.contextmanager
def session(handle: ModelHandle, exclusive: bool = False):
    """Use the model: refuse training mode, hold its read (or, ``exclusive``, write)
    lock, guard its flags and gradients, and pin its fingerprint for the block."""
    handle.check_ready()
    lock = handle.rwlock.write() if exclusive else handle.rwlock.read()
    with lock:
        state = ModuleState.of(handle.module)
        with model_guard(handle, state), handle.pinned_fingerprint(state):
            yield
