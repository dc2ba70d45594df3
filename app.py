"""Interpret: the home page.  Run with ``streamlit run app.py``.

Pick a model and a photo here (or in the sidebar, on any page); the pages in pages/
show what the model predicts, what it sees, what its layers respond to, and which
pixels made it decide.
"""

from __future__ import annotations

import streamlit as st
from PIL import Image, ImageOps

import ui
from ui import compute, state
from ui.errors import show_input_error
from ui.samples import samples
from ui.sidebar import store_photo_from

THUMB = (320, 240)


@st.cache_resource(show_spinner=False, max_entries=64)
def _thumbnail(path: str, mtime: float) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.fit(im.convert("RGB"), THUMB, Image.Resampling.LANCZOS)


def _use_sample(key: str) -> None:
    state.set("image", f"sample:{key}")


def _summary(ctx: ui.PageContext) -> None:
    top = ctx.predictions[0]
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.image(ctx.image.image, caption=f"Current photo: {ctx.image.title}", width="stretch")
    with right:
        st.subheader(f"The model says: *{top.label}*")
        second = ctx.predictions[1]
        st.markdown(
            f"**{ctx.handle.name}** is **{top.probability:.0%}** sure. Its next guess is "
            f"*{second.label}* ({second.probability:.0%}).")
        st.markdown("Where to go next:")
        links = [
            ("pages/1_Outputs.py", "**Outputs**: all the model's guesses and how sure it is",
             ":material/bar_chart:"),
            ("pages/2_Input.py", "**Input**: exactly what the model receives", ":material/image:"),
            ("pages/3_Activations.py", "**Activations**: what each layer responds to",
             ":material/grid_view:"),
            ("pages/4_Attributions.py", "**Attributions**: which pixels made it decide",
             ":material/local_fire_department:"),
            ("pages/5_Features.py", "**Features**: what a layer's channels look for",
             ":material/auto_awesome:"),
        ]
        params = state.url_params()
        for path, label, icon in links:
            try:
                st.page_link(path, label=label, icon=icon, query_params=params)
            except Exception:  # noqa: BLE001 - run on its own (tests): no page list
                st.markdown(label)
        if ctx.present:
            ui.plain(f"Open <b>Attributions</b> to see which parts of the photo made the model "
                     f"say <i>{top.label}</i>.")


def _gallery() -> None:
    st.subheader("Pick a photo")
    st.caption("Sample photos (from scikit-image's public-domain collection)."
               + (" Upload your own in the sidebar, or take one with your camera below."
                  if compute.allow_uploads() else ""))
    current = state.get("image")
    items = samples()
    cols_per_row = 4
    for start in range(0, len(items), cols_per_row):
        cols = st.columns(cols_per_row, gap="medium")
        for col, s in zip(cols, items[start:start + cols_per_row]):
            with col:
                chosen = current == f"sample:{s.key}"
                with st.container(border=True):
                    st.image(_thumbnail(str(s.path), s.path.stat().st_mtime), width="stretch")
                    st.markdown(f"**{s.title}**")
                    if s.caption:
                        st.caption(s.caption)
                    st.button("Selected" if chosen else "Use this photo", key=f"use_{s.key}",
                              on_click=_use_sample, args=(s.key,), disabled=chosen,
                              type="primary" if not chosen else "secondary", width="stretch",
                              icon=":material/check:" if chosen else None)


def _camera() -> None:
    if not compute.allow_uploads():
        return
    with st.expander("Take a photo with your camera", icon=":material/photo_camera:"):
        st.caption("Good for live demos: point the camera at a mug, a keyboard, a pet... The "
                   "snapshot stays in your session only.")
        st.camera_input("Camera", key="w_camera", on_change=store_photo_from,
                        args=("w_camera", "camera", "camera snapshot"), label_visibility="collapsed")
        err = st.session_state.get("camera_error")
        if err:
            show_input_error(err)


def main() -> None:
    ctx = ui.setup("See why an image model says what it says", "🔍",
                   "Interpret: predictions, inputs, activations and attributions of PyTorch image "
                   "classifiers, in your browser.", tab_title="Home")
    if ctx is not None:
        with ui.guard("the summary"):
            _summary(ctx)
    st.divider()
    with ui.guard("the photo gallery"):
        _gallery()
    with ui.guard("the camera"):
        _camera()
    with st.expander("About the methods and this tool", icon=":material/info:"):
        st.markdown(
            "- **Class activation maps** (Grad-CAM and friends) weight a layer's feature maps "
            "by how much they matter for a class: coarse but reliable.\n"
            "- **Input gradients** (saliency, SmoothGrad, guided backpropagation) show which "
            "pixels the score is sensitive to: sharp but noisy.\n"
            "- **Path and perturbation methods** (Integrated Gradients, occlusion, DeepLIFT) "
            "compare the photo with a blank reference: slower, with guarantees.\n\n"
            "Everything runs on this server with the `interpret` Python package; the same "
            "results are available from a notebook or the command line.")
    ui.finish()


with ui.guard("this page"):  # the last safety net: never a traceback
    main()
