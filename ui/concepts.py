"""The Concepts page's computations and uploads: everything through the compute gate
(``compute.run_with_progress``), cached in the shared result cache per model, photo,
layer, class and image set.  Draws nothing but progress bars and the uploaders."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np
import streamlit as st

import interpret
from interpret import words
from interpret.features import ImageSet, images_from_zip, load_images

from . import compute
from .errors import error_message

#: photos per uploaded concept or counterexample set (TCAV's own bound is higher)
MAX_TCAV_UPLOAD = 100
MAX_TCAV_MB = 100
UPLOAD_TYPES = ["zip", "jpg", "jpeg", "png", "webp", "bmp"]
TCAV_RUNS = 10
#: photo-and-class pairs whose last concepts a session remembers for the report
REPORT_KEPT = 8


def top_concepts(handle: interpret.ModelHandle, image: compute.ImageChoice, layer: str, target: int,
                 k: int, composite: str):
    """The top-k concepts of ``layer`` for ``target`` on the photo (cached; gated)."""
    def work(progress):
        return interpret.concepts(handle, image.image, layer=layer, target=target, k=k,
                                  composite=composite, progress=progress)

    key = ("concepts.top", handle.fingerprint(), image.hash, layer, int(target), int(k), composite)
    out = compute.run_with_progress("Tracing the decision to the layer's concepts", work, key=key,
                                    unit="concept", handle=handle)
    # the report of the Attributions page takes the concepts last shown for this photo and class
    seen = st.session_state.setdefault("cx_for_report", {})
    seen.pop((handle.fingerprint(), image.hash, int(target)), None)
    seen[(handle.fingerprint(), image.hash, int(target))] = key
    while len(seen) > REPORT_KEPT:
        seen.pop(next(iter(seen)))
    return out


def for_report(handle: interpret.ModelHandle, image: compute.ImageChoice, target) -> Optional[Any]:
    """The concepts this session last computed on the Concepts page for this photo and
    class (an :func:`interpret.concepts` result), or None (never computed here, or no
    longer at hand): nothing is computed."""
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        return None
    key = st.session_state.get("cx_for_report", {}).get((handle.fingerprint(), image.hash, int(target)))
    return None if key is None else compute.lookup(key)


def overlay(handle: interpret.ModelHandle, image: compute.ImageChoice, heat: np.ndarray,
            key: tuple) -> np.ndarray:
    """The concept's positive relevance over the photo as the model saw it (cached)."""
    def build():
        from scipy.ndimage import gaussian_filter

        pos = np.clip(np.asarray(heat, dtype=np.float32), 0, None)
        # LRP's maps are pixel-sharp (z+ gives a fine grain): a 2-pixel blur (at 224) for
        # the eye, scaled to the 99.5th percentile of the positive relevance
        pos = gaussian_filter(pos, sigma=max(1.0, max(pos.shape) / 112))
        top = float(np.percentile(pos[pos > 0], 99.5)) if pos.any() else 0.0
        scaled = np.clip(pos / top, 0, 1) if top > 0 else pos
        return np.asarray(interpret.overlay(image.image, scaled, handle, colormap="inferno", opacity=0.7))

    return compute.cached(("concepts.overlay",) + key, build)


def references_folder():
    """Where reference patches are kept on disk: ``concepts/`` in the server's runs
    folder (the ``dataset_runs`` setting, else a temporary folder for the server's
    life); the Dataset page's run listing skips it (it holds no run manifest)."""
    from .dataset import runs_folder

    return runs_folder() / "concepts"


def references(handle: interpret.ModelHandle, iset: ImageSet, layer: str, composite: str):
    """Every channel's relevance over the image set, each photo's own top class
    (computed once per model, layer and set and stored on disk; gated, with progress)."""
    def work(progress):
        return interpret.reference_patches(handle, iset, layer=layer, composite=composite, progress=progress,
                                           store=references_folder())

    key = ("concepts.references", handle.fingerprint(), iset.key, layer, composite)
    return compute.run_with_progress(f"Finding where each concept matters in {len(iset)} photos", work,
                                     key=key, unit="photo", handle=handle)


def references_ready(handle: interpret.ModelHandle, iset: ImageSet, layer: str, composite: str) -> bool:
    """Computed in this server (cached) or stored on disk by an earlier run."""
    if compute.is_cached(("concepts.references", handle.fingerprint(), iset.key, layer, composite)):
        return True
    from interpret.concepts.store import reference_key, reference_path

    return reference_path(references_folder(),
                          reference_key(handle.fingerprint(), layer, iset.key, None, composite)).is_file()


def discovered(handle: interpret.ModelHandle, iset: ImageSet, layer: str, k: int):
    def work(progress):
        return interpret.discover_concepts(handle, iset, layer=layer, k=k, progress=progress)

    key = ("concepts.discover", handle.fingerprint(), iset.key, layer, int(k))
    return compute.run_with_progress(f"Factorising {layer} over {len(iset)} photos", work, key=key,
                                     unit="photo", handle=handle)


def discovered_maps(handle: interpret.ModelHandle, found, image: compute.ImageChoice, key: tuple) -> np.ndarray:
    return compute.cached(("concepts.discover_maps",) + key + (image.hash,),
                          lambda: found.maps(handle, image.image))


def class_photos(handle: interpret.ModelHandle, iset: ImageSet, target: int) -> List[Any]:
    """The photos of the set the model predicts as ``target`` (their predictions are
    one gated pass, cached)."""
    def work(progress):
        out = []
        for i, im in enumerate(iset.images):
            if interpret.predict(handle, im, top_k=1)[0].index == target:
                out.append(im)
            progress(i + 1, len(iset))
        return out

    key = ("concepts.class_photos", handle.fingerprint(), iset.key, int(target))
    return compute.run_with_progress(f"Finding the photos of the class in {len(iset)} photos", work,
                                     key=key, unit="photo", handle=handle)


def run_tcav(handle: interpret.ModelHandle, photos: List[Any], photos_key: str, concept: ImageSet,
             randoms: ImageSet, layer: str, target: int):
    def work(progress):
        return interpret.tcav(handle, photos, concept, randoms, layer=layer, target=target,
                              runs=TCAV_RUNS, progress=progress)

    key = ("concepts.tcav", handle.fingerprint(), photos_key, concept.key, randoms.key, layer, int(target))
    return compute.run_with_progress("Testing your concept against random sets", work, key=key,
                                     unit="CAV", handle=handle)


def _read(files) -> Tuple[ImageSet, str]:
    if len(files) == 1 and files[0].name.lower().endswith(".zip"):
        return images_from_zip(files[0].getvalue(), max_images=MAX_TCAV_UPLOAD), files[0].name
    if any(f.name.lower().endswith(".zip") for f in files):
        raise interpret.InputError("Upload either one zip archive or image files, not both.")
    if len(files) > MAX_TCAV_UPLOAD:
        raise interpret.InputError(f"{len(files)} files were uploaded; the limit is {MAX_TCAV_UPLOAD} images.")
    iset = load_images([f.getvalue() for f in files], names=[f.name for f in files], skip_bad=True)
    if len(iset) == 0:
        raise interpret.InputError("None of the uploaded files is a usable image.")
    return iset, f"{len(files)} files"


def uploaded_set(label: str, key: str, help: str) -> Optional[ImageSet]:
    """An uploader of a photo set (a zip or images), kept in this session only; the
    set, or None (errors shown next to it)."""
    files = st.file_uploader(label, type=UPLOAD_TYPES, accept_multiple_files=True, key=f"w_{key}",
                             max_upload_size=MAX_TCAV_MB, help=help)
    ss = st.session_state
    if not files:
        ss.pop(key, None)
        return None
    sig = tuple((f.name, f.size) for f in files)
    held = ss.get(key)
    if held is None or held["sig"] != sig:
        try:
            iset, name = _read(files)
            ss[key] = held = {"sig": sig, "set": iset, "name": name}
        except Exception as exc:  # noqa: BLE001 - InputError shown as is, others logged
            ss.pop(key, None)
            st.error(words.text(error_message(exc, "reading the uploaded photos")), icon=":material/error:")
            return None
    iset = held["set"]
    st.caption(f"{len(iset)} photos from {words.text(held['name'])}"
               + (f"; {len(iset.skipped)} file(s) skipped." if iset.skipped else "."))
    return iset
