"""Helpers of the Features page: the image sets to search, the optimization settings
(kept in the session and in the link), and the cached feature-visualization results.
No maths here: every number comes from :mod:`interpret.features`.

Slow work goes through :func:`ui.compute.run_with_progress` (the server's compute gate,
a progress bar, the time limit), as on the Attributions page.  Results go to the shared
result cache of :mod:`ui.compute`, keyed by the model's weight fingerprint, the image
set's content hash, the layer, the channel and the parameters, so revisiting a channel
(or another person asking for it) is instant.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import streamlit as st

import interpret
from interpret import words
from interpret.features import (EXPORT_FOLDER, MAX_SIZE, MAX_STEPS, MIN_SIZE, ImageSet,
                                images_from_folder, images_from_zip, load_images)

from . import compute
from .errors import error_message
from .samples import samples

log = logging.getLogger("interpret.app")

#: The operator's folder of images to search (optional, setting ``image_folder``): the
#: Features page offers it as a third image set, shared (read-only) by everyone and read
#: again when the folder changes or after ten minutes (see :func:`folder_set`).
FOLDER_ENV = "INTERPRET_IMAGE_FOLDER"
#: Image sets up to this size are scanned as soon as they are chosen; larger ones
#: wait for a click (each layer's first scan is a pass over every image).
AUTO_SCAN_IMAGES = 100
#: Most images drawn as thumbnails on the embedding plot (each is a small JPEG).
MAX_PLOT_THUMBNAILS = 60
#: Largest zip of images accepted from a person, MB (Streamlit's own limit is higher).
MAX_ZIP_MB = 200
#: Most images in one person's uploaded set: the set stays in their session (up to
#: about 0.6 MB per image at the backend's 512-pixel cap), so fewer than a server
#: folder may hold.
MAX_UPLOAD_IMAGES = 200
GALLERY_PAGE = 8
TOP_K = 9
SOURCES = {"samples": "Samples", "upload": "Upload", "folder": "Server folder"}
UPLOAD_TYPES = ["zip", "jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]


# ----------------------------------------------------------------------------------
# Optimization settings (session + link)


@dataclass(frozen=True)
class OptSettings:
    """What an optimized image depends on besides the model, layer and channel.
    Defaults measured on 2 CPU cores: 128 px and 128 steps take 4-6 s per channel and
    look like 256 steps (the picture settles in the first hundred steps)."""

    size: int = 128
    steps: int = 128
    seed: int = 0


DEFAULT_SETTINGS = OptSettings()
# settings field -> link parameter (ui/state.py's view keys are layer and channel; these
# three belong to this page only, so they are read and written here)
LINK_KEYS = {"size": "fsize", "steps": "fsteps", "seed": "fseed"}
#: Most steps a person may ask for here (the backend allows more, for scripts); each
#: run is also stopped at the server's time limit for one computation.
MAX_STEPS_UI = min(2048, MAX_STEPS)
LIMITS = {"size": (MIN_SIZE, MAX_SIZE), "steps": (1, MAX_STEPS_UI), "seed": (0, 2**31 - 1)}


def settings() -> OptSettings:
    return OptSettings(**st.session_state.setdefault("fv_settings", asdict(DEFAULT_SETTINGS)))


def set_settings(**values: int) -> None:
    current = asdict(settings())
    current.update({k: int(v) for k, v in values.items() if v is not None})
    st.session_state["fv_settings"] = current


def read_link_settings() -> None:
    """On this page's first run in a session, take size / steps / seed from the link
    (``?fsize=64&fsteps=32``).  Call before :func:`ui.setup`, which rewrites the
    address bar from the shared view.  Values that cannot be used become notes."""
    ss = st.session_state
    if ss.get("fv_link_read"):
        return
    ss["fv_link_read"] = True
    try:
        q = st.query_params.to_dict()
    except Exception:  # noqa: BLE001 - no query params outside a script run
        return
    notes, values = [], {}
    for name, key in LINK_KEYS.items():
        if key not in q:
            continue
        lo, hi = LIMITS[name]
        try:
            v = int(str(q[key]).strip())
            if not lo <= v <= hi:
                raise ValueError
            values[name] = v
        except ValueError:
            notes.append(f"The link's `{key}={q[key]}` was ignored: expected a whole number "
                         f"from {lo} to {hi}.")
    set_settings(**values)
    ss["fv_link_notes"] = notes


def take_link_notes() -> List[str]:
    return st.session_state.pop("fv_link_notes", []) or []


def write_link_settings() -> None:
    """Put the non-default settings back in the address bar, after the shared view
    (``ui.finish``) wrote its own keys."""
    s = asdict(settings())
    extra = {LINK_KEYS[k]: str(v) for k, v in s.items() if v != getattr(DEFAULT_SETTINGS, k)}
    try:
        have = st.query_params.to_dict()
        for key in LINK_KEYS.values():
            if key in have and key not in extra:
                del st.query_params[key]
        changed = {k: v for k, v in extra.items() if have.get(k) != v}
        if changed:
            st.query_params.update(changed)
    except Exception:  # noqa: BLE001 - no query params outside a script run
        return


# ----------------------------------------------------------------------------------
# Image sets


@dataclass(frozen=True)
class SetChoice:
    """The image set in use: ``images`` (an :class:`ImageSet`, built once and reused,
    so its content hash is computed once), where it came from, and a short label."""

    images: ImageSet
    source: str
    label: str


@st.cache_resource(show_spinner=False, max_entries=2)
def _sample_set(signature: Tuple[Tuple[str, float], ...]) -> ImageSet:
    items = samples()
    return load_images([s.path for s in items], names=[s.title for s in items])


def sample_set() -> ImageSet:
    """The sample gallery as one image set (read once per process)."""
    sig = tuple((str(s.path), s.path.stat().st_mtime) for s in samples())
    return _sample_set(sig)


def folder_path() -> Optional[Path]:
    """The operator's image folder (setting ``image_folder`` / ``INTERPRET_IMAGE_FOLDER``),
    or None."""
    from . import compute

    raw = (compute.server_settings().image_folder or "").strip()
    return Path(raw).expanduser() if raw else None


@st.cache_resource(show_spinner="Reading the server's image folder...", max_entries=2, ttl=600)
def _folder_set(path: str, mtime: float) -> ImageSet:
    return images_from_folder(path)


def folder_set() -> ImageSet:
    """The operator's folder as an image set; re-read when the folder changes (its
    modification time) or after ten minutes.  InputError if it cannot be used."""
    p = folder_path()
    if p is None:
        raise interpret.InputError("No image folder is configured on this server.")
    try:
        mtime = p.stat().st_mtime
    except OSError as exc:
        raise interpret.InputError(f"Folder {p} cannot be read ({exc.strerror}).") from None
    return _folder_set(str(p), mtime)


def _on_upload() -> None:
    st.session_state["fset_pending"] = True


def _read_upload(files: Sequence[Any]) -> Tuple[ImageSet, str]:
    """One image set from the uploaded files: a zip, or images (bad ones skipped)."""
    if len(files) == 1 and files[0].name.lower().endswith(".zip"):
        f = files[0]
        bar = st.progress(0.0, text=f"Reading {f.name}...")
        try:
            iset = images_from_zip(
                f.getvalue(), max_images=MAX_UPLOAD_IMAGES,
                progress=lambda done, total: bar.progress(min(1.0, done / max(1, total)),
                                                          text=f"Reading {f.name}: {done} of {total} files"))
        finally:
            bar.empty()
        return iset, f.name
    if any(f.name.lower().endswith(".zip") for f in files):
        raise interpret.InputError("Upload either one zip archive or image files, not both.")
    if len(files) > MAX_UPLOAD_IMAGES:
        raise interpret.InputError(f"{len(files)} files were uploaded; the limit is "
                                   f"{MAX_UPLOAD_IMAGES} images.")
    with st.spinner(f"Reading {len(files)} images..."):
        iset = load_images([f.getvalue() for f in files], names=[f.name for f in files],
                           skip_bad=True)
    if len(iset) == 0:
        why = "; ".join(f"{n}: {r}" for n, r in iset.skipped[:3])
        raise interpret.InputError(f"None of the uploaded files is a usable image ({why}).")
    return iset, f"{len(files)} uploaded files"


def upload_section() -> None:
    """The uploader of a private image set (stays in this session, never in links).
    Errors are shown next to it; a bad upload keeps the previous set."""
    settings_ = compute.server_settings()
    files = st.file_uploader(
        "Photos to search: several images, or one zip of images", type=UPLOAD_TYPES,
        accept_multiple_files=True, key="w_fset_files", on_change=_on_upload,
        max_upload_size=min(MAX_ZIP_MB, settings_.max_model_mb),
        help=f"Up to {MAX_UPLOAD_IMAGES} images. Files that are not images are "
             "skipped and listed. The photos stay in your session: they are never shared with "
             "other people or put in links.")
    ss = st.session_state
    if ss.pop("fset_pending", False):
        ss.pop("fset_error", None)
        if files:
            try:
                iset, label = _read_upload(files)
                ss["fset_upload"] = {"set": iset, "label": label}
            except Exception as exc:  # noqa: BLE001 - InputError shown as is, others logged
                ss["fset_error"] = error_message(exc, "reading the uploaded images")
        else:
            ss.pop("fset_upload", None)
    err = ss.get("fset_error")
    if err:
        st.error(words.text(err), icon=":material/error:")  # may quote a file name
    up = ss.get("fset_upload")
    if up:
        iset = up["set"]
        note = f"Using **{len(iset)} images** from {words.text(up['label'])}."
        if iset.skipped:
            note += f" {len(iset.skipped)} file(s) skipped."
        st.caption(note)
        if iset.skipped:
            with st.expander(f"Skipped files ({len(iset.skipped)})"):
                st.dataframe([{"file": n, "why": r} for n, r in iset.skipped], hide_index=True,
                             width="stretch")


def set_sources() -> List[str]:
    out = ["samples"]
    if compute.allow_uploads():
        out.append("upload")
    if folder_path() is not None:
        out.append("folder")
    return out


def _on_source() -> None:
    src = st.session_state.get("w_fset_source")
    if src:
        st.session_state["fset_source"] = src


def source_picker() -> str:
    """Which image set to search (samples / upload / server folder)."""
    options = set_sources()
    ss = st.session_state
    src = ss.get("fset_source", "samples")
    if src not in options:
        src = ss["fset_source"] = "samples"
    ss["w_fset_source"] = src
    if len(options) == 1:
        return src
    counts = {"samples": len(samples())}
    up = ss.get("fset_upload")
    if up:
        counts["upload"] = len(up["set"])

    def fmt(s: str) -> str:
        return SOURCES[s] + (f" ({counts[s]})" if s in counts else "")

    st.segmented_control(
        "Photos to search", options, format_func=fmt, key="w_fset_source", required=True,
        on_change=_on_source,
        help="The photos searched for the patches that excite a channel most, and placed on "
             "the map of the network's feature space.")
    return src


def current_set(source: str) -> Optional[SetChoice]:
    """The chosen image set, or None (with the reason shown) when it is not ready."""
    if source == "upload":
        up = st.session_state.get("fset_upload")
        if not up:
            return None
        return SetChoice(up["set"], "upload", f"your {len(up['set'])} photos")
    if source == "folder":
        try:
            iset = folder_set()
        except interpret.InputError as exc:
            # the reason names paths on the server: for the operator's log, not for visitors
            log.error("the image folder %s=%s cannot be used: %s", FOLDER_ENV, folder_path(), exc)
            st.error("The server's image folder cannot be used at the moment (the reason was "
                     "logged for the operator); choose another set of photos.",
                     icon=":material/error:")
            return None
        return SetChoice(iset, "folder", f"the {len(iset)} photos of the server's folder")
    iset = sample_set()
    return SetChoice(iset, "samples", f"the {len(iset)} sample photos")


# ----------------------------------------------------------------------------------
# Results


def fv_key(handle: interpret.ModelHandle, layer: str, channel: int, s: OptSettings) -> tuple:
    return ("features.visualize", handle.fingerprint(), layer, int(channel), s.size, s.steps, s.seed)


def cached_visualization(handle, layer: str, channel: int, s: OptSettings):
    """The optimized image if it was made (shared cache, or kept by this session), else
    None; never computes."""
    return compute.lookup(fv_key(handle, layer, channel, s))


def visualize(handle: interpret.ModelHandle, layer: str, channel: int, s: OptSettings, *,
              bar=None, share: Tuple[int, int] = (0, 1), label: Optional[str] = None):
    """The optimized image of one channel (cached; otherwise through the gate).  Models
    that run at one input size only (vision transformers) get the image resized to it
    by the backend."""
    def work(progress):
        return interpret.visualize_channel(handle, layer, channel, size=s.size, steps=s.steps,
                                           seed=s.seed, progress=progress)

    fv = compute.run_with_progress(label or f"Optimizing channel {channel}", work,
                                   key=fv_key(handle, layer, channel, s), bar=bar, share=share,
                                   handle=handle)
    st.session_state.setdefault("fv_speed", {})[(s.size, layer)] = fv.ms_per_step
    return fv


def seconds_estimate(s: OptSettings, layer: str, channels: int = 1) -> Optional[float]:
    """Seconds for ``channels`` optimizations, from the last speed measured in this
    session at the same size and layer (the forward stops at the layer, so deeper
    layers cost more); None before the first one."""
    ms = st.session_state.get("fv_speed", {}).get((s.size, layer))
    return None if ms is None else channels * s.steps * ms / 1000.0


def _scan_key(handle, iset: ImageSet, what: str, layer: Optional[str]) -> tuple:
    return ("features.scanned", handle.fingerprint(), iset.key, what, layer)


def scanned(handle, iset: ImageSet, what: str, layer: Optional[str]) -> bool:
    """Whether ``iset`` was already passed through the model for ``what`` (so that
    more results from it are quick and need no click)."""
    return len(iset) <= AUTO_SCAN_IMAGES or compute.is_cached(_scan_key(handle, iset, what, layer))


@dataclass(frozen=True)
class Patch:
    """One dataset example as the page keeps it: the patch as an array (so the result
    cache counts its bytes; the backend's ``Example`` also holds the whole image)."""

    name: str
    score: float
    position: Tuple[int, int]
    patch: np.ndarray


def top_examples(handle: interpret.ModelHandle, iset: ImageSet, layer: str, channel: int,
                 k: int = TOP_K) -> List[Patch]:
    """The ``k`` patches of the set that excite the channel most, strongest first (cached)."""

    def work(progress):
        ex = interpret.top_activating(handle, iset, layer, channel, k=k, progress=progress)
        return [Patch(e.name, e.score, e.position, np.asarray(e.patch.convert("RGB"))) for e in ex]

    key = ("features.top", handle.fingerprint(), iset.key, layer, int(channel), k)
    out = compute.run_with_progress(f"Searching {len(iset)} photos", work, key=key, unit="photo",
                                    handle=handle)
    compute.results().put(_scan_key(handle, iset, "top", layer), True)
    return out


def embedding(handle: interpret.ModelHandle, iset: ImageSet, layer: Optional[str], method: str):
    """The set's features (``layer``; None: the classifier's input) in 2-D (cached)."""
    key = ("features.embed", handle.fingerprint(), iset.key, layer, method)
    out = compute.run_with_progress(
        f"Placing {len(iset)} photos", lambda progress: interpret.embed(handle, iset, layer, method,
                                                                         progress=progress),
        key=key, unit="photo", handle=handle)
    compute.results().put(_scan_key(handle, iset, "embed", layer), True)
    return out


def model_views(handle: interpret.ModelHandle, iset: ImageSet, side: int) -> np.ndarray:
    """Each image as the model sees it, ``side`` pixels square (cached)."""
    return compute.cached(("features.thumbs", handle.fingerprint(), iset.key, side),
                          lambda: interpret.features.model_views(handle, iset, side))


def model_view(handle: interpret.ModelHandle, iset: ImageSet, index: int) -> np.ndarray:
    """One image of the set as the model sees it, at the model's input size (cached),
    at most 512 pixels (torchvision's segmentation models see 520)."""
    side = min(int(max(handle.input_size)), 512)
    return compute.cached(("features.view", handle.fingerprint(), iset.key, int(index), side),
                          lambda: interpret.features.model_views(handle, [iset.images[index]], side)[0])


def embedding_methods() -> List[str]:
    """Projections usable on this server (t-SNE needs scikit-learn, UMAP umap-learn)."""
    out = ["pca"]
    if importlib.util.find_spec("sklearn") is not None:
        out.append("tsne")
    if importlib.util.find_spec("umap") is not None:
        out.append("umap")
    return out


# ----------------------------------------------------------------------------------
# TensorBoard


def tensorboard_available() -> bool:
    """Whether the tensorboard package (needed for image summaries) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def export_zip(handle: interpret.ModelHandle, iset: ImageSet, layer: str, summaries: bool) -> bytes:
    """A TensorBoard log folder for the set as zip bytes, through the compute gate."""
    return compute.run_with_progress(
        f"Exporting {len(iset)} photos", unit="photo", handle=handle,
        work=lambda progress: interpret.features.export_tensorboard_zip(
            handle, iset, None, activation_layer=layer, summaries=summaries, progress=progress))


def export_command() -> str:
    return f"unzip {EXPORT_FOLDER}.zip\ntensorboard --logdir {EXPORT_FOLDER}"


def short(name: str, n: int = 18) -> str:
    """A file name cut to ``n`` characters for a title (the hover shows it whole)."""
    base = name.rsplit("/", 1)[-1]
    return base if len(base) <= n else base[: n - 1] + "…"
