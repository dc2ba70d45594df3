"""The Concepts page's computations and uploads: everything through the compute gate
(``compute.run_with_progress``), cached in the shared result cache per model, photo,
layer, class and image set.  Draws nothing but progress bars and the uploaders."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import streamlit as st

import interpret
from interpret import words
from interpret.concepts import concept_names
from interpret.concepts.discover import NO_NMF_FOR_VIT  # noqa: F401 (the page shows the backend's sentence)
from interpret.concepts.store import MAX_NAME
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


def vit_layers(handle: interpret.ModelHandle) -> Optional[Tuple[List[str], Dict[str, str], str]]:
    """For a vision transformer whose concepts AttnLRP traces: (its blocks, whose B x N x C
    output tokens the concepts are channels of; their labels with the shape; the
    suggested block); None for any other model (cached per model)."""
    from interpret.concepts import vit

    def build():
        if not vit.covers(handle):
            return None
        from interpret.attention import layout

        shapes = {li.name: li.output_shape for li in interpret.list_layers(handle)}
        default = vit.default_layer(handle)
        names = [b.name for b in layout(handle).blocks]
        labels = {}
        for n in names:
            shape = shapes.get(n)
            dims = "×".join(str(d) for d in shape[1:]) if shape and len(shape) == 3 else "?"
            labels[n] = f"{n}  ·  tokens×channels {dims}" + ("  ★ suggested" if n == default else "")
        return names, labels, default

    return compute.cached(("concepts.vit_layers", handle.fingerprint()), build)


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
    cs = None if key is None else compute.lookup(key)
    if cs is None:
        return None
    refs_key = st.session_state.get("cx_refs_for_report", {}).get((handle.fingerprint(), image.hash, int(target)))
    refs = None if refs_key is None else compute.lookup(refs_key)
    return cs.named(concept_names(handle, cs.layer, store=references_folder()), refs)


def remember_references(handle: interpret.ModelHandle, image: compute.ImageChoice, target: int,
                        iset: Optional[ImageSet], layer: str, composite: str) -> None:
    """The reference patches shown with this photo's and class's concepts (None: none
    shown), so that the report describes an unnamed concept by them as the page does."""
    seen = st.session_state.setdefault("cx_refs_for_report", {})
    at = (handle.fingerprint(), image.hash, int(target))
    seen.pop(at, None)
    if iset is None:
        return
    seen[at] = ("concepts.references", handle.fingerprint(), iset.key, layer, composite)
    while len(seen) > REPORT_KEPT:
        seen.pop(next(iter(seen)))


def names(handle: interpret.ModelHandle, layer: str) -> dict:
    """{channel: name} of the concepts of ``layer`` the team has named (read from the
    concept store each time: another session may have named one)."""
    return {ch: nm for (_, ch), nm in concept_names(handle, layer, store=references_folder()).items()}


def may_name() -> bool:
    """Whether visitors may name concepts: a name is kept on the server for everyone,
    so only where the operator lets visitors add to the server (``allow_uploads``)."""
    return compute.allow_uploads()


def name_form(handle: interpret.ModelHandle, layer: str, channel: int, current) -> None:
    """A small form to name ``channel`` of ``layer`` (a blank name removes it); saved in
    the concept store by the submit button's callback, so the page's rerun shows it."""
    key = f"cx_name_{layer}_{channel}"

    def save():
        try:
            interpret.name_concept(handle, layer, channel, st.session_state.get(f"w_{key}", ""),
                                   store=references_folder())
            st.session_state.pop(f"{key}_error", None)
        except Exception as exc:  # noqa: BLE001 - InputError shown as is, others logged
            st.session_state[f"{key}_error"] = error_message(exc, "naming the concept")

    with st.form(key=f"form_{key}", border=False):
        st.text_input("Name", value=current or "", max_chars=MAX_NAME, key=f"w_{key}",
                      placeholder="e.g. striped fur",
                      help="What this concept looks for, after its heatmap and its patches (at most "
                           f"{MAX_NAME} characters; blank: no name). Kept on this "
                           "server for everyone using this model.")
        st.form_submit_button("Save the name", on_click=save)
    err = st.session_state.get(f"{key}_error")
    if err:
        st.error(words.text(err), icon=":material/error:")


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


# ---------------------------------------------------------------------------------------
# Dataset mode: each class's concepts across a stored run, and the concepts of its flags

#: photos per class (and per flag) analysed, and in all: bounded before anything runs
DATASET_PER_CLASS = 12
DATASET_MAX = 120


def run_photos(r, flags) -> Tuple[List[str], List[int]]:
    """The run's photos to analyse (paths) and the class each was explained for: the
    first :data:`DATASET_PER_CLASS` of each explained class in path order, then each
    flag's strongest, at most :data:`DATASET_MAX` in all."""
    df = r.table()
    if "target_index" not in df.columns or df.empty:
        return [], []
    df = df[df["target_index"] >= 0]
    chosen = {}
    for _, g in df.groupby("target_index", sort=True):
        for p, t in zip(g["path"].tolist()[:DATASET_PER_CLASS], g["target_index"].tolist()):
            chosen.setdefault(p, int(t))
    by_path = dict(zip(df["path"].tolist(), df["target_index"].astype(int).tolist()))
    for f in flags:
        for p in [q for q in f.paths if q in by_path][:DATASET_PER_CLASS]:
            chosen.setdefault(p, by_path[p])
    paths = list(chosen)[:DATASET_MAX]
    return paths, [chosen[p] for p in paths]


def dataset_concepts(handle: interpret.ModelHandle, r, flags, layer: str):
    """Each class's concepts across the run and the concepts of its shortcut flags
    (gated, with progress; cached per model, run, its stored photos, flags and layer)."""
    from interpret.concepts.dataset import dataset_concepts as compute_concepts
    from interpret.concepts.dataset import flag_regions

    paths, targets = run_photos(r, flags)

    def work(progress):
        datas, names = [], []
        for p in paths:
            data = r.image_bytes(p)
            if data is not None:  # else the set is gone or the file changed: left out
                datas.append(data)
                names.append(p)
        iset = load_images(datas, names=names, skip_bad=True)
        if len(iset) == 0:
            raise interpret.InputError("The run's photos are no longer where it read them; the concepts need them.")
        explained = dict(zip(paths, targets))
        tg = [explained[p] for p in iset.names]
        return compute_concepts(handle, iset, tg, layer=layer, regions=flag_regions(flags, iset.names), k=3,
                                progress=progress), tuple(iset.names)

    fl = tuple((f.label, f.kind, tuple(f.box), f.given_box, tuple(f.paths)) for f in flags)
    key = ("concepts.dataset", handle.fingerprint(), str(r.out), r.done, layer, fl)
    return compute.run_with_progress(f"Tracing {len(paths)} photos to the concepts of {layer}", work,
                                     key=key, unit="photo", handle=handle)


def patch_uri(patch) -> str:
    """A reference patch as a small PNG data address (for a table's image column)."""
    import base64
    import io

    im = patch.convert("RGB")
    im.thumbnail((64, 64))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def dataset_rows(handle: interpret.ModelHandle, result, patches: int = 3,
                 named: Optional[dict] = None) -> Tuple[List[dict], List[dict]]:
    """The two tables of dataset mode: per class and per flag, one row per concept (by
    the name the team gave it in ``named``, {channel: name}, else "channel N") with its
    mean share and its reference patches among the class's (the flag's) photos.
    Labels and names stay plain text: a table cell never renders markup."""
    from interpret.concepts import concept_label

    named = named or {}
    table = result.table
    by_class = []
    for cls, n, top in result.by_class:
        for ch, share in top:
            row = {"class": handle.label(cls), "photos": n, "concept": concept_label(ch, named.get(ch)),
                   "share": share}
            refs = table.patches(ch, patches, cls=cls)
            for i in range(patches):
                row[f"patch {i + 1}"] = patch_uri(refs[i].patch) if i < len(refs) else None
            by_class.append(row)
    by_flag = []
    for rc in result.regions:
        own = set(rc.region.images)
        for ch, share in rc.concepts:
            row = {"flag": rc.region.name, "photos": rc.images, "concept": concept_label(ch, named.get(ch)),
                   "share of the region's relevance": share}
            refs = [p for p in table.patches(ch, len(table.names)) if p.index in own][:patches]
            for i in range(patches):
                row[f"patch {i + 1}"] = patch_uri(refs[i].patch) if i < len(refs) else None
            by_flag.append(row)
    return by_class, by_flag


def dataset_section(ctx, r, flags) -> None:
    """Dataset mode of the Concepts page, drawn on the Dataset page: on request, each
    class's most relevant concepts across the run (a table with their patches) and,
    for each shortcut flag, the concepts that carry its region."""
    st.markdown("**The concepts each class rests on**")
    vit = vit_layers(ctx.handle)  # a vision transformer: AttnLRP on its blocks' tokens
    why = None if vit is not None else interpret.get_method("lrp").unavailable(ctx.handle)
    if why:
        st.caption(f"Concepts are traced with LRP, which cannot run on this model: {words.text(why)}.")
        return
    if r.manifest["model"]["fingerprint"] != ctx.handle.fingerprint():
        st.caption("Concepts are traced in the model that made the run: choose it in the sidebar.")
        return
    paths, _ = run_photos(r, flags)
    if not paths:
        st.caption("No analysed photos in this run yet.")
        return
    layers = vit[0] if vit is not None else [li.name for li in interpret.list_layers(ctx.handle) if li.spatial]
    run_layer = r.settings.layer if vit is None else vit[2]
    layer = st.selectbox("Layer of the concepts", layers, key="w_cx_dataset_layer",
                         index=layers.index(run_layer) if run_layer in layers else max(0, len(layers) - 1),
                         help="The run's layer by default. LRP traces relevance through modules: a layer "
                              "followed by pooling written as a function (x.mean) gets it spread evenly, "
                              "so an earlier layer can show better where a concept sits.")
    if layer is None:
        return
    want = (str(r.out), r.done, len(flags), layer)
    if st.session_state.get("cx_dataset") != want:
        st.button(f"Find the concepts of each class ({len(paths)} photos, layer {words.text(layer)})",
                  key="cx_dataset_btn", icon=":material/extension:", on_click=st.session_state.__setitem__,
                  args=("cx_dataset", want))
        return
    result, used = dataset_concepts(ctx.handle, r, flags, layer)
    by_class, by_flag = dataset_rows(ctx.handle, result, named=names(ctx.handle, layer))
    cfg = {f"patch {i}": st.column_config.ImageColumn(f"patch {i}", width="small") for i in (1, 2, 3)}
    cfg["share"] = st.column_config.NumberColumn("share", format="percent",
                                                 help="The concept's mean share of the layer's relevance "
                                                      "over the class's photos")
    st.dataframe(by_class, hide_index=True, width="stretch", column_config=cfg)
    if by_flag:
        cfg2 = dict(cfg)
        cfg2["share of the region's relevance"] = st.column_config.NumberColumn(
            "share of the region's relevance", format="percent",
            help="The concept's mean share of the relevance inside the flagged region (or outside the box given)")
        st.markdown("**The concepts that carry each shortcut flag**")
        st.dataframe(by_flag, hide_index=True, width="stretch", column_config=cfg2)
    if not ctx.present:
        method = "AttnLRP (Achtibat et al. 2024)" if vit is not None else "LRP (EpsilonPlusFlat)"
        st.caption(f"{method} at {words.text(layer)} on {len(used)} photos of the run (at most "
                   f"{DATASET_PER_CLASS} per class and per flag), each for the class the run explained. A share "
                   "is a channel's relevance over the sum of all channels' absolute relevances, averaged over the "
                   "photos; a flag's shares are of the relevance inside its region. Patches: where the concept "
                   "is most relevant in those photos (Achtibat et al. 2023).")
