"""The sidebar every page shares: navigation, presentation mode, the model and the photo."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from interpret import words

from . import access, compute, state
from .errors import error_message, show_input_error
from .pages import pages
from . import imagetext as imagetext_ui
from .upload import classifiers, preprocessing_editor, upload_model_form

MODEL_KINDS = {
    "bundled": "EfficientNet-Lite0 (bundled)",
    "team": "Team models (this server)",
    "torchvision": "A torchvision model",
    "open_clip": "An image-text model (open_clip)",
    "upload": "Upload a checkpoint",
}

IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]


def navigation() -> None:
    """Links to the pages, carrying the view in their query string.  (Streamlit's own
    page list is hidden in .streamlit/config.toml so that Home is called Home.)"""
    params = state.url_params()
    for page in pages():
        try:
            st.page_link(page.path, label=page.label, icon=page.icon, query_params=params)
        except Exception:  # noqa: BLE001 - a page run on its own (tests) has no page list
            return


# ----------------------------------------------------------------------------------
# Model


def _kind_of(model: str) -> str:
    if model == "upload":
        return "upload"
    if model.startswith("team:"):
        return "team"
    if model.startswith("torchvision:"):
        return "torchvision"
    if model.startswith("open_clip:"):
        return "open_clip"
    return "bundled"


def _on_kind_change() -> None:
    kind = st.session_state["w_model_kind"]
    st.session_state["model_kind"] = kind
    if kind == "bundled":
        state.set("model", state.DEFAULT_MODEL)
    elif kind == "torchvision":
        state.set("model", f"torchvision:{st.session_state.get('tv_arch', 'resnet50')}")
    elif kind == "open_clip":
        state.set("model", f"open_clip:{st.session_state.get('oc_arch', 'ViT-B-32')}")
    elif kind == "team":
        names = [e.name for e in compute.team_models()]
        if names:
            state.set("model", f"team:{st.session_state.get('team_model') or names[0]}")
    elif kind == "upload" and st.session_state.get("uploaded_model") is not None:
        state.set("model", "upload")


def _on_team_change() -> None:
    name = st.session_state["w_team_model"]
    st.session_state["team_model"] = name
    state.set("model", f"team:{name}")


def _on_arch_change() -> None:
    arch = st.session_state["w_tv_arch"]
    st.session_state["tv_arch"] = arch
    state.set("model", f"torchvision:{arch}")


def _on_oc_change() -> None:
    st.session_state["oc_arch"] = st.session_state["w_oc_arch"]
    state.set("model", f"open_clip:{st.session_state['oc_arch']}")


def model_section() -> compute.ModelChoice:
    ss = st.session_state
    model = state.get("model")
    ss.setdefault("model_kind", _kind_of(model))
    kinds = list(MODEL_KINDS)
    team = compute.team_models()
    if not team:
        kinds.remove("team")
        if ss["model_kind"] == "team":
            ss["model_kind"] = "bundled"
    if not imagetext_ui.available():
        kinds.remove("open_clip")
        if ss["model_kind"] == "open_clip":
            ss["model_kind"] = "bundled"
    if not compute.allow_uploads():
        kinds.remove("upload")
        if ss["model_kind"] == "upload":
            ss["model_kind"] = "bundled"
    if model.startswith("torchvision:"):
        ss["tv_arch"] = model.split(":", 1)[1]
    ss.setdefault("tv_arch", "resnet50")
    present = state.presentation()

    st.markdown("**Model**")
    box = st.expander("Change the model", expanded=False) if present else st.container()
    with box:
        ss["w_model_kind"] = ss["model_kind"]
        st.selectbox("Model", kinds, format_func=MODEL_KINDS.get, key="w_model_kind",
                     on_change=_on_kind_change, label_visibility="collapsed")
        if ss["model_kind"] == "torchvision":
            archs = classifiers()
            if ss["tv_arch"] not in archs:
                ss["tv_arch"] = "resnet50"
            ss["w_tv_arch"] = ss["tv_arch"]
            st.selectbox("torchvision architecture", archs, key="w_tv_arch", on_change=_on_arch_change,
                         help="Pretrained weights are used when they are in this server's torch "
                              "cache; otherwise the model has random weights.")
        elif ss["model_kind"] == "open_clip":
            if model.startswith("open_clip:"):
                ss["oc_arch"] = model.split(":", 1)[1]
            if ss.get("oc_arch") not in imagetext_ui.OPEN_CLIP_MODELS:
                ss["oc_arch"] = imagetext_ui.OPEN_CLIP_MODELS[0]
            ss["w_oc_arch"] = ss["oc_arch"]
            st.selectbox("open_clip model", imagetext_ui.OPEN_CLIP_MODELS, key="w_oc_arch",
                         on_change=_on_oc_change,
                         help="Pretrained weights are used when they are in this server's cache; "
                              "otherwise the model has random weights.")
        elif ss["model_kind"] == "team":
            names = [e.name for e in team]
            if model.startswith("team:") and model.split(":", 1)[1] in names:
                ss["team_model"] = model.split(":", 1)[1]
            ss.setdefault("team_model", names[0])
            ss["w_team_model"] = ss["team_model"] if ss["team_model"] in names else names[0]
            st.selectbox("Team model", names, key="w_team_model", on_change=_on_team_change,
                         help="Models the server operator put in the model folder.")
            desc = next((e.description for e in team if e.name == ss["w_team_model"]), "")
            if desc:
                st.caption(desc)
        elif ss["model_kind"] == "upload":
            upload_model_form()

    choice = imagetext_ui.prompts_box(compute.current_model())  # image-text: the prompts are the classes
    if choice.error:
        show_input_error(choice.error)
    if choice.note:
        st.warning(choice.note, icon=":material/casino:")
    h = choice.handle
    if h is not None:
        for note in h.notes:
            if not choice.note:
                st.warning(words.text(note), icon=":material/info:")  # may quote the file
        hh, ww = h.input_size
        st.caption(
            f"**{words.text(h.name)}** · {h.num_params / 1e6:.1f} M parameters · input {hh}×{ww} px · "
            + (f"{len(h.labels)} prompts" if h.task == "image-text" else
               "an embedding model" if h.task == "embedding" else f"{len(h.labels)} classes"))
        if not present:
            with st.expander("Preprocessing", icon=":material/tune:"):
                st.caption(words.text(h.preprocessing.describe()))
                st.caption(f"Source: {words.text(h.source)}"
                           + (f" · weights: {words.text(h.weights)}" if h.weights else ""))
                if state.get("model") == "upload":
                    preprocessing_editor(h)  # an upload's preprocessing is editable (issue 17)
    return choice


# ----------------------------------------------------------------------------------
# Image


def store_photo_from(widget_key: str, slot: str, what: str) -> None:
    """The ``on_change`` of a photo widget (``slot``: "upload" or "camera"): keep its
    photo in this session, or the reason it was refused in ``{slot}_error``."""
    f = st.session_state.get(widget_key)
    st.session_state.pop(f"{slot}_error", None)
    if f is None:
        return
    name = f.name if slot == "upload" else "camera snapshot"
    try:
        compute.store_image_bytes(slot, f.getvalue(), name)
    except Exception as exc:  # noqa: BLE001 - InputError shown as is, others logged
        st.session_state[f"{slot}_error"] = error_message(exc, f"reading the {what}")
        if slot == "upload":  # the sidebar's message is below the fold: the page says it too
            st.session_state["photo_error_main"] = st.session_state[f"{slot}_error"]


def main_area_errors() -> None:
    """At the top of the main area, on the run right after it: why the photo just
    uploaded in the sidebar was refused (the sidebar's own message sits next to the
    uploader, often below the fold, and the page would otherwise not change)."""
    err = st.session_state.pop("photo_error_main", None)
    if err:
        show_input_error(f"{err} The photo shown is still the previous one.")


def image_section() -> Optional[compute.ImageChoice]:
    st.markdown("**Photo**")
    opts = compute.image_options()
    keys = [k for k, _ in opts]
    titles = dict(opts)
    st.selectbox("Photo", keys, format_func=titles.get, label_visibility="collapsed",
                 **state.bound("image", keys, state.DEFAULTS["image"]))
    settings = compute.server_settings()
    if settings.allow_uploads:
        st.file_uploader("Upload a photo", type=IMAGE_TYPES, key="w_image_file",
                         on_change=store_photo_from, args=("w_image_file", "upload", "uploaded photo"),
                         max_upload_size=settings.max_image_mb,
                         help=f"JPEG, PNG, WebP... up to {settings.max_image_mb} MB and "
                              f"{settings.max_image_pixels / 1e6:g} megapixels. The photo stays in your session; it is never shared "
                              "with other people or put in links.")
        err = st.session_state.get("upload_error")
        if err:
            show_input_error(err)
    img = compute.current_image()
    st.image(compute.preview_uri(img, 480), width="stretch")
    return img


def draw() -> tuple:
    """Draw the sidebar; returns (ModelChoice, ImageChoice)."""
    with st.sidebar:
        st.markdown("### :material/visibility: Interpret")
        navigation()
        st.toggle("Presentation mode", help="Hide technical controls and explain the pictures "
                  "in plain words, for demos.", **state.bound("present"))
        st.divider()
        model = model_section()
        st.divider()
        image = image_section()
        st.divider()
        access.sidebar_note()
    return model, image
