"""Getting models, images and results for the pages, with caching.  No maths here:
everything is a call into :mod:`interpret`.

* Models named by a string are loaded once per server (``st.cache_resource``) and
  shared by every session; they are never mutated (the backend is thread-safe).
  Uploaded models live in the uploading session's ``st.session_state`` only.
* Results (predictions, explanations, layer maps, figures, option labels) are kept in
  one LRU shared by all sessions, bounded in memory (setting ``result_cache_mb``),
  keyed by content hashes of the model's weights (``handle.fingerprint()``) and of the
  image's pixels (``image_hash``), so two people looking at the same photo share the
  work and nobody can reach another's upload.  :func:`cached` is the one way in.
  Cached values are shared: nobody may change them (figures included).
* Everything a visitor can start goes through the server's compute gate
  (:mod:`interpret.gate`, :func:`run_gated`): methods that take more than one pass at
  most ``max_concurrent_heavy`` at once, with a progress bar (:func:`run_with_progress`,
  on the Attributions and Features pages alike), the others queue; predictions, instant
  CAMs and layer maps in a light lane of their own (they never wait behind an
  Integrated Gradients); model uploads in the heavy lane.  Each is stopped
  ``heavy_timeout_s`` after it starts: the deadline is checked before every module of
  the model runs, so the limit ends the work, not only the wait.  Settings come from
  :mod:`interpret.settings` (interpret.toml and INTERPRET_* variables, e.g.
  INTERPRET_ALLOW_UNTRUSTED=1).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple, TypeVar

import streamlit as st
from PIL import Image

import interpret
from interpret.gate import ComputeGate
from interpret.images import image_hash
from interpret.models import weights_cached
from interpret.settings import Settings, apply_runtime, load_settings

from . import state
from .samples import sample

log = logging.getLogger("interpret.app")
T = TypeVar("T")


def server_settings() -> Settings:
    """The operator's settings (interpret.toml / INTERPRET_* variables, see
    :mod:`interpret.settings`), read on every run so that they are always current.  A
    broken settings file stops the app with the reason: silently falling back to the
    defaults could re-open what the operator closed (uploads, say)."""
    try:
        return load_settings()
    except interpret.InputError as exc:
        log.error("invalid server settings: %s", exc)
        st.error(f"This server's settings are invalid, so the dashboard is stopped: {exc} "
                 "(The server operator must fix the settings file.)", icon=":material/error:")
        st.stop()
        raise  # pragma: no cover - st.stop raises


@st.cache_resource(show_spinner=False)
def runtime() -> Dict[str, Any]:
    """Apply the settings that act on the whole process (torch threads, device), once."""
    return apply_runtime(server_settings())


def allow_untrusted() -> bool:
    """Whether the server operator enabled formats that run code when loaded
    (``allow_untrusted`` / INTERPRET_ALLOW_UNTRUSTED=1)."""
    return server_settings().allow_untrusted


def allow_uploads() -> bool:
    return server_settings().allow_uploads


@st.cache_resource(show_spinner=False)
def heavy_gate() -> ComputeGate:
    """At most ``max_concurrent_heavy`` slow computations at once on this server."""
    return ComputeGate(server_settings().max_concurrent_heavy)


# ----------------------------------------------------------------------------------
# Results cache


def _nbytes(value: Any, depth: int = 0, seen: Optional[set] = None) -> int:
    """Memory held by a result, counted as it really is: arrays and tensors (their
    bytes), PIL images (width x height x bands x bytes per band), figures (their data
    URIs and arrays), strings, and containers and dataclasses of those, nested (each
    object counted once)."""
    seen = set() if seen is None else seen
    if id(value) in seen or value is None or isinstance(value, (bool, int, float, type)):
        return 0 if id(value) in seen else 16
    seen.add(id(value))
    if isinstance(value, Image.Image):
        return 64 + _image_bytes(value)
    if hasattr(value, "element_size") and hasattr(value, "nelement"):  # a tensor: its storage
        try:  # a view holds its whole storage
            return 64 + max(int(value.element_size() * value.nelement()),
                            int(value.untyped_storage().nbytes()))
        except (AttributeError, RuntimeError):
            return 64 + int(value.element_size() * value.nelement())
    if hasattr(value, "nbytes") and hasattr(value, "dtype"):  # a numpy array (a view: its base)
        base = getattr(value, "base", None)
        return 64 + max(int(value.nbytes), int(getattr(base, "nbytes", 0) or 0))
    if isinstance(value, (bytes, bytearray, str)):
        return 64 + len(value)
    if hasattr(value, "to_plotly_json"):  # a figure: its data URIs and arrays
        total = 4096
        for trace in value.data:
            total += sum(_nbytes(v, depth + 1, seen) for v in trace.to_plotly_json().values())
        total += sum(len(i.source or "") if isinstance(i.source, str) else _nbytes(i.source, depth + 1, seen)
                     for i in value.layout.images)
        return total
    if depth > 8:
        return 64
    if isinstance(value, dict):
        return 64 + sum(_nbytes(k, depth + 1, seen) + _nbytes(v, depth + 1, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return 64 + sum(_nbytes(v, depth + 1, seen) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return 64 + sum(_nbytes(getattr(value, f, None), depth + 1, seen) for f in value.__dataclass_fields__)
    return 64  # anything else (a model handle is shared, not held by the cache)


#: bytes per band of PIL's modes (the rest: 1)
_MODE_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "RGBX": 1}


def _image_bytes(img: Image.Image) -> int:
    w, h = img.size
    return w * h * len(img.getbands()) * _MODE_BYTES.get(img.mode, 1)


class ResultCache:
    """A thread-safe LRU for results keyed by content hashes, bounded in memory
    (``max_bytes``, from the ``result_cache_mb`` setting) and in entries."""

    def __init__(self, max_bytes: int = 512 * 2**20, max_items: int = 512):
        self._data: "OrderedDict[Hashable, Tuple[Any, int]]" = OrderedDict()
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.bytes = 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key][0]
        return default

    def put(self, key: Hashable, value: Any) -> None:
        size = _nbytes(value)
        with self._lock:
            if key in self._data:
                self.bytes -= self._data.pop(key)[1]
            self._data[key] = (value, size)
            self.bytes += size
            while self._data and (self.bytes > self.max_bytes or len(self._data) > self.max_items):
                if len(self._data) == 1:  # always keep the newest, even if it is large
                    break
                self.bytes -= self._data.popitem(last=False)[1][1]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data


@st.cache_resource(show_spinner=False)
def results() -> ResultCache:
    return ResultCache(max_bytes=server_settings().result_cache_mb * 2**20)


_MISSING = object()


def cached(key: Hashable, compute: Callable[[], T]) -> T:
    """The shared result cache's value for ``key``; on a miss, ``compute()`` (kept for
    everyone).  Keys start with what they are (``("predict", fingerprint, image hash)``)
    and hold every input the value depends on.  The value is shared: never change it."""
    cache = results()
    out = cache.get(key, _MISSING)
    if out is _MISSING:
        out = compute()
        cache.put(key, out)
    return out


def is_cached(key: Hashable) -> bool:
    """Whether ``key``'s result is at hand: in the shared cache, or kept by this session
    (:func:`keep`)."""
    return key in results() or key in _session_kept()


# Heavy results (slow explanations, trust checks, optimized images) are also kept in
# the session that computed or used them: the shared LRU may drop them under other
# visitors' load, and a person coming back to a page must find what they waited for
# (issue 17).  Bounded per session in entries and bytes; values are shared, read-only.

#: most heavy results one session keeps, and their total size (bytes)
SESSION_KEEP_ITEMS = 32
SESSION_KEEP_BYTES = 64 * 2**20


def _session_kept() -> "OrderedDict[Hashable, Tuple[Any, int]]":
    try:
        return st.session_state.setdefault("heavy_results", OrderedDict())
    except Exception:  # noqa: BLE001 - no session outside a script run (warm start, scripts)
        return OrderedDict()


def keep(key: Hashable, value: Any) -> None:
    """Keep a heavy result for this session too (the newest ``SESSION_KEEP_ITEMS``
    within ``SESSION_KEEP_BYTES``), besides the shared cache."""
    kept = _session_kept()
    kept.pop(key, None)
    kept[key] = (value, _nbytes(value))
    while len(kept) > 1 and (len(kept) > SESSION_KEEP_ITEMS
                             or sum(n for _, n in kept.values()) > SESSION_KEEP_BYTES):
        kept.popitem(last=False)


def lookup(key: Hashable, default: Any = None) -> Any:
    """A heavy result from the shared cache, else from this session's own (then put
    back in the shared cache: the key holds content hashes, so only someone with the
    same model and photo can reach it); ``default`` when neither has it."""
    out = results().get(key, _MISSING)
    if out is not _MISSING:
        return out
    kept = _session_kept().get(key)
    if kept is None:
        return default
    results().put(key, kept[0])
    return kept[0]


def store(key: Hashable, value: Any) -> None:
    """Put a heavy result in the shared cache and keep it for this session."""
    results().put(key, value)
    keep(key, value)


# ----------------------------------------------------------------------------------
# Models


def _to_device(handle: interpret.ModelHandle) -> interpret.ModelHandle:
    """Move a freshly loaded model to the configured device (before anyone shares it)."""
    device = runtime().get("device", "cpu")
    if device != "cpu":
        handle.module.to(device)
    return handle


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_named(source: str, pretrained: bool) -> interpret.ModelHandle:
    if source == state.DEFAULT_MODEL:
        handle = interpret.load_model(source)
    else:
        handle = interpret.load_model(source, weights="DEFAULT" if pretrained else None,
                                      download=False)
    _to_device(handle)
    handle.fingerprint()  # hash the weights once, here, not during a page run
    interpret.list_layers(handle)
    return handle


@st.cache_resource(show_spinner=False, max_entries=4)
def _team_entries(folder: str, manifest_mtime: float) -> list:
    from interpret.model_folder import read_model_folder

    return read_model_folder(folder)


def team_models() -> list:
    """The entries of the server's model folder (``model_folder`` setting), re-read when
    its manifest changes; a broken manifest is logged and shown to nobody as a crash."""
    folder = server_settings().model_folder
    if not folder:
        return []
    try:
        mtime = os.path.getmtime(os.path.join(folder, "models.toml"))
    except OSError:
        mtime = -1.0
    try:
        return _team_entries(folder, mtime)
    except interpret.InputError as exc:
        log.error("model folder: %s", exc)
        return []


@st.cache_resource(show_spinner=False, max_entries=8)
def _load_team(name: str, file: str, mtime: float, allow_untrusted: bool) -> interpret.ModelHandle:
    entry = next(e for e in team_models() if e.name == name)
    handle = entry.load(allow_untrusted=allow_untrusted)
    _to_device(handle)
    handle.fingerprint()
    interpret.list_layers(handle)
    return handle


def pretrained_available(arch: str) -> bool:
    try:
        return weights_cached(arch)
    except Exception:  # noqa: BLE001 - an unusual torchvision entry
        return False


@dataclass
class ModelChoice:
    handle: Optional[interpret.ModelHandle]
    error: Optional[str] = None
    note: Optional[str] = None


def load_named_model(source: str) -> ModelChoice:
    """The model for a view's ``model`` string (bundled or torchvision).  A failure is
    remembered for the session, so that a broken choice is not retried on every click."""
    failed = st.session_state.setdefault("failed_models", {})
    if source in failed:
        return ModelChoice(None, error=failed[source])
    choice = _load_named_model(source)
    if choice.handle is None:
        failed[source] = choice.error
    return choice


#: models this process has loaded (a later use is a cache hit: no slot needed)
_LOADED: set = set()


def _gated_load(key: tuple, load: Callable[[], interpret.ModelHandle]) -> interpret.ModelHandle:
    """``load()`` in a heavy slot of the compute gate the first time ``key`` is loaded
    (a model a visitor picks is read from disk and its layers listed: seconds of CPU),
    at once once it is in the server's model cache."""
    if key in _LOADED:
        return load()
    handle = run_gated(lambda _p: load())
    _LOADED.add(key)
    return handle


def _load_named_model(source: str) -> ModelChoice:
    try:
        if source.startswith("team:"):
            name = source.split(":", 1)[1]
            entry = next((e for e in team_models() if e.name == name), None)
            if entry is None:
                return ModelChoice(None, error=f"This server has no team model named '{name}'.")
            with st.spinner(f"Loading {name}..."):
                key = (entry.name, str(entry.file), os.path.getmtime(entry.file), allow_untrusted())
                handle = _gated_load(("team",) + key, lambda: _load_team(*key))
            return ModelChoice(handle)
        if source.startswith("torchvision:"):
            arch = source.split(":", 1)[1]
            pretrained = pretrained_available(arch)
            with st.spinner(f"Loading {arch}..."):
                handle = _gated_load((source, pretrained), lambda: _load_named(source, pretrained))
            note = None if pretrained else (
                f"No pretrained weights for **{arch}** on this server, so it has random "
                "weights: its predictions and explanations are meaningless (useful only to "
                "try the tool). The server operator can add the weights to the torch cache.")
            return ModelChoice(handle, note=note)
        if source.startswith("open_clip:"):  # image-text (issue 20): cached weights, else random
            from interpret.sources.open_clip import weights_cached

            from .imagetext import OPEN_CLIP_MODELS

            arch = source.split(":", 1)[1]
            if arch not in OPEN_CLIP_MODELS:  # a link names the model: only the offered ones are built
                return ModelChoice(None, error=f"This server offers the open_clip models "
                                               f"{', '.join(OPEN_CLIP_MODELS)}, not that one.")
            pretrained = weights_cached(arch)
            with st.spinner(f"Loading {arch}..."):
                handle = _gated_load((source, pretrained), lambda: _load_named(source, pretrained))
            note = None if pretrained else (
                f"No pretrained weights for **{arch}** on this server, so it has random weights: its "
                "zero-shot answers and explanations are meaningless (useful only to try the tool).")
            return ModelChoice(handle, note=note)
        with st.spinner("Loading the model..."):
            return ModelChoice(_gated_load((source, True), lambda: _load_named(source, True)))
    except interpret.InputError as exc:
        return ModelChoice(None, error=str(exc))
    except Exception:  # noqa: BLE001 - an unexpected failure must not take the app down
        log.exception("loading model %s failed", source)
        return ModelChoice(None, error=f"The model '{source}' could not be loaded (the error "
                                       "was logged on the server).")


def load_uploaded_model(data: bytes, file_name: str, arch: str, labels: Optional[bytes],
                        task: Optional[str] = None) -> interpret.ModelHandle:
    """Load an uploaded checkpoint into this session (raises InputError).  ``arch`` comes
    from a visitor: a factory string (``package.module:function``, code to import) is
    refused here too, not only by the form (ui/upload.check_upload_arch).  ``task``: the
    form's task (None: read from the model; one that does not fit is an InputError)."""
    from interpret.sources import factory

    if arch and factory.is_spec(arch):
        raise interpret.InputError(
            f"'{arch}' names code to import; an upload can only use the architectures the "
            "form offers (a factory belongs in the server's models.toml).")
    untrusted = allow_untrusted()

    def load(_progress) -> interpret.ModelHandle:
        handle = interpret.load_model(
            data, arch=arch or None, labels=labels, allow_untrusted=untrusted,
            name=os.path.splitext(os.path.basename(file_name))[0] or None, task=task,
        )
        _to_device(handle)
        handle.fingerprint()
        # nested in this slot: the layer table's forward is time-limited too
        run_gated(lambda _p: interpret.list_layers(handle), handle=handle)
        return handle

    # a heavy slot: at most max_concurrent_heavy uploads are read at once
    return run_gated(load)


def current_model() -> ModelChoice:
    """The model of the current view; an upload that is gone falls back to the default."""
    src = state.get("model")
    if src == "upload":
        handle = st.session_state.get("uploaded_model")
        if handle is not None:
            return ModelChoice(handle)
        state.set("model", state.DEFAULT_MODEL)
        src = state.DEFAULT_MODEL
    choice = load_named_model(src)
    if choice.handle is None and src != state.DEFAULT_MODEL:
        fallback = load_named_model(state.DEFAULT_MODEL)
        fallback.error = choice.error
        return fallback
    return choice


# ----------------------------------------------------------------------------------
# Images


@dataclass(frozen=True)
class ImageChoice:
    image: Image.Image
    hash: str
    title: str
    key: str


@st.cache_resource(show_spinner=False, max_entries=32)
def _load_sample(path: str, mtime: float) -> Tuple[Image.Image, str]:
    img = interpret.load_image(path)
    return img, image_hash(img)


def decode_upload(data: bytes) -> Tuple[Image.Image, str]:
    """Decode uploaded bytes (raises InputError with a readable message)."""
    img = interpret.load_image(data)
    return img, image_hash(img)


def store_image_bytes(slot: str, data: bytes, name: str) -> None:
    """Validate and keep an upload ("upload") or camera snapshot ("camera") in this
    session; raises InputError and leaves the previous image in place if it is bad."""
    img, h = decode_upload(data)
    st.session_state[f"img_{slot}"] = {"image": img, "hash": h, "name": name,
                                       "digest": hashlib.blake2b(data, digest_size=8).hexdigest()}
    state.set("image", slot)


def image_options() -> List[Tuple[str, str]]:
    """(view value, title) for every image this session can pick."""
    from .samples import samples

    opts = [(f"sample:{s.key}", s.title) for s in samples()]
    up = st.session_state.get("img_upload")
    if up:
        opts.append(("upload", f"Your upload: {up['name']}"))
    cam = st.session_state.get("img_camera")
    if cam:
        opts.append(("camera", "Camera snapshot"))
    return opts


def current_image() -> ImageChoice:
    key = state.get("image")
    if key in ("upload", "camera"):
        stored = st.session_state.get(f"img_{key}")
        if stored:
            title = stored["name"] if key == "upload" else "camera snapshot"
            return ImageChoice(stored["image"], stored["hash"], title, key)
        key = state.DEFAULTS["image"]
        state.set("image", key)
    s = sample(key.split(":", 1)[1]) if key.startswith("sample:") else None
    if s is None:
        key = state.DEFAULTS["image"]
        state.set("image", key)
        s = sample(key.split(":", 1)[1])
    img, h = _load_sample(str(s.path), s.path.stat().st_mtime)
    return ImageChoice(img, h, s.title.lower(), key)


# ----------------------------------------------------------------------------------
# Results


def predictions(handle: interpret.ModelHandle, img: ImageChoice) -> List[interpret.Prediction]:
    """Every class, most likely first (cached by content; through the gate's light lane)."""
    return cached(("predict", handle.fingerprint(), img.hash),
                  lambda: run_gated(lambda _p: interpret.predict(handle, img.image, top_k=None),
                                    handle=handle, light=True))


def run_gated(work: Callable[[Callable[[int, int], Any]], Any],
              progress: Optional[Callable[[int, int], Any]] = None,
              on_wait: Optional[Callable[[int], Any]] = None, *,
              handle: Optional[interpret.ModelHandle] = None, light: bool = False) -> Any:
    """``work(progress)`` in a slot of the server's compute gate (``on_wait(position)``
    while queued; ``light``: the lane of predictions and instant views), stopped
    ``heavy_timeout_s`` after it starts: the deadline is checked in the progress
    callback and, given the ``handle`` whose model the work runs, before every module
    of that model runs (:meth:`interpret.gate.ComputeGate.run`), so a slow forward is
    stopped too, with the reason in words (:class:`interpret.gate.TimeLimit`).
    Everything a visitor can start goes through here."""
    limit = server_settings().heavy_timeout_s
    return heavy_gate().run(work, limit, module=handle.module if handle is not None else None,
                            progress=progress, on_wait=on_wait, light=light)


def run_with_progress(label: str, work: Callable[[Callable[[int, int], Any]], T], *,
                      key: Optional[Hashable] = None, bar=None, share: Tuple[int, int] = (0, 1),
                      unit: str = "step", handle: Optional[interpret.ModelHandle] = None) -> T:
    """``work(progress)`` through :func:`run_gated` with a progress bar that shows the
    queue position while waiting and ``label: step 3 of 8`` while running; the result
    is kept in the shared cache under ``key`` (None: not kept), and a cached result is
    returned at once, without queueing.  ``bar``: an ``st.progress`` to reuse (a
    gallery of several runs); ``share = (i, n)``: this run is the i-th of n on it;
    ``handle``: the model the work runs (its forwards are then time-limited too)."""
    if key is not None:
        out = lookup(key, _MISSING)
        if out is not _MISSING:
            keep(key, out)  # used again: the newest of this session's
            return out
    own = bar is None
    if own:
        bar = st.progress(0.0, text=f"{label}: starting...")
    i, n = share

    def waiting(position: int) -> None:
        bar.progress(i / n, text=f"{label}: the server is busy with other people's "
                                 f"computations; you are number {position} in the queue.")

    def progress(done: int, total: int) -> None:
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        bar.progress(min(1.0, (i + frac) / n),
                     text=f"{label}: {unit} {done} of {total}. Change any setting to stop.")

    try:
        t0 = time.perf_counter()
        out = run_gated(work, progress=progress, on_wait=waiting, handle=handle)
        log.info("%s took %.2fs", label, time.perf_counter() - t0)
    finally:
        if own:
            bar.empty()
    if key is not None:
        store(key, out)
    return out


def explanation_key(handle, img: ImageChoice, method: str, layer, target, contrast, params) -> tuple:
    return ("explain", handle.fingerprint(), img.hash, method, layer, target, contrast,
            tuple(sorted(params.items())))


@dataclass(frozen=True)
class Selection:
    """What the Attributions page explains: the method (its registry entry), its layer
    (None: it takes none), the class, the contrast class (None: none) and the method's
    parameters.  Panels next to the heatmap (trust, comparisons) receive it."""

    spec: interpret.MethodSpec
    layer: Optional[str]
    target: int
    contrast: Optional[int]
    params: Dict[str, Any]

    def key(self, handle: interpret.ModelHandle, img: ImageChoice) -> tuple:
        """The result cache's key of this explanation."""
        return explanation_key(handle, img, self.spec.name, self.layer, self.target,
                               self.contrast, self.params)

    def explain(self, handle: interpret.ModelHandle, img: ImageChoice) -> interpret.Explanation:
        """The explanation (cached; slow methods through the gate with a progress bar)."""
        return explain(handle, img, self.spec.name, self.layer, self.target, self.contrast,
                       self.params)


def explain(
    handle: interpret.ModelHandle, img: ImageChoice, method: str, layer: Optional[str],
    target: int, contrast: Optional[int], params: Dict[str, Any],
    progress: Optional[Callable[[int, int], Any]] = None,
    on_wait: Optional[Callable[[int], Any]] = None,
) -> interpret.Explanation:
    """One explanation, from the cache when the same (model, image, method, layer,
    target, contrast, parameters) was computed before, by anyone.  Methods that are
    not instant go through the compute gate with a progress bar
    (:func:`run_with_progress`); given ``progress`` / ``on_wait``, those are called
    instead of drawing one."""
    spec = interpret.get_method(method)
    key = explanation_key(handle, img, method, layer, target, contrast, params)

    def work(prog=None) -> interpret.Explanation:
        t0 = time.perf_counter()
        out = interpret.explain(handle, img.image, method, layer=layer, target=target,
                                contrast=contrast, progress=prog, **params)
        log.info("%s on %s/%s took %.2fs", method, handle.name, layer, time.perf_counter() - t0)
        return out

    if spec.speed == "instant":
        return cached(key, lambda: run_gated(work, handle=handle, light=True))
    if progress is not None or on_wait is not None:
        out = lookup(key, _MISSING)
        if out is _MISSING:
            out = run_gated(work, progress=progress, on_wait=on_wait, handle=handle)
        store(key, out)  # kept for this session too: it took a while
        return out
    return run_with_progress(spec.label, work, key=key, handle=handle)


def layer_maps(handle: interpret.ModelHandle, img: ImageChoice, layer: str) -> interpret.LayerMaps:
    """The feature maps of ``layer`` for the photo: a forward alone, no backward
    (:func:`interpret.layer_maps`), cached by content."""
    return cached(("layer_maps", handle.fingerprint(), img.hash, layer),
                  lambda: run_gated(lambda _p: interpret.layer_maps(handle, img.image, layer),
                                    handle=handle, light=True))


def layer_summary(handle: interpret.ModelHandle, img: ImageChoice) -> List[interpret.LayerSummary]:
    return cached(("layer_summary", handle.fingerprint(), img.hash),
                  lambda: run_gated(lambda _p: interpret.layer_summary(handle, img.image),
                                    handle=handle, light=True))


def model_input(handle: interpret.ModelHandle, img: ImageChoice) -> interpret.ModelInput:
    """Exactly what the model receives for the photo (:func:`interpret.model_input`)."""
    return cached(("model_input", handle.fingerprint(), img.hash),
                  lambda: run_gated(lambda _p: interpret.model_input(handle, img.image), light=True))


def figure(key: Hashable, build: Callable[[], T]) -> T:
    """A figure built once for the same inputs (``key`` holds every one of them) and
    shared by every session: ``st.plotly_chart(compute.figure(key, lambda: ...))``.
    Plotly figures are expensive to build (each property is validated); drawing a
    cached one costs only its serialization."""
    return cached(("figure",) + tuple(key), build)


def preview_uri(img: ImageChoice, max_side: int = 640) -> str:
    """The photo as a JPEG at most ``max_side`` pixels wide or high, as a ``data:`` URI
    for ``st.image``: encoded once (``st.image`` of a PIL image encodes it again on every
    run) and sent inside the page's message, so the browser makes no extra request."""
    def encode() -> str:
        im = img.image.convert("RGB")
        if max(im.size) > max_side:
            im = im.copy()
            im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=88)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

    return cached(("preview", img.hash, max_side), encode)
