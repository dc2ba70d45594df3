"""Interpret: the home page.  Run with ``streamlit run app.py`` (or ``python -m interpret app``).

Pick a model and a photo here (or in the sidebar, on any page); the pages in pages/
show what the model predicts, what it sees, what its layers respond to, and which
pixels made it decide.

``streamlit run app.py`` first *imports* this file to look for an ASGI app: it finds
``app`` below, a ``st.App`` serving this same file with a warm start (the bundled model,
the heavy imports and the default views are ready before the server answers, see
ui/warmup.py) and a perimeter (ui/perimeter.py: uploads only after sign-in, metrics
closed, ended sessions' uploads dropped).  Each visitor's session then runs this file as its script
(``__name__ == "__main__"``) and draws the page.
"""

from __future__ import annotations

import streamlit as st

import ui
from interpret import words
from ui import compute, state, views
from ui.errors import show_input_error
from ui.pages import pages
from ui.samples import samples
from ui.sidebar import store_photo_from


def _use_sample(key: str) -> None:
    state.set("image", f"sample:{key}")


def _summary(ctx: ui.PageContext) -> None:
    top = ctx.predictions[0]
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.image(compute.preview_uri(ctx.image), caption=f"Current photo: {words.text(ctx.image.title)}",
                 width="stretch")
    with right:
        if ctx.handle.task == "embedding":  # no classes: its embedding (issue 20)
            from ui import imagetext

            st.subheader("The model turns the photo into an embedding")
            emb = imagetext.embedding_of(ctx)
            st.markdown(imagetext.embedding_sentence(emb.size, emb.norm))
        else:
            st.subheader(f"The model says: *{words.text(top.label)}*")
        second = ctx.predictions[1] if len(ctx.predictions) > 1 else None
        if ctx.handle.task == "embedding":
            pass
        elif second is None:
            st.markdown(f"**{words.text(ctx.handle.name)}** has one output.")
        elif ctx.handle.task == "detection":  # boxes, not one class (issue 20)
            from ui import tasks

            st.markdown(tasks.detection_sentence(
                [(d.label, d.score) for d in tasks.all_detections(ctx.handle, ctx.image)], 0.5))
        else:
            st.markdown(
                f"**{words.text(ctx.handle.name)}** is **{top.probability:.0%}** sure. Its next guess is "
                f"*{words.text(second.label)}* ({second.probability:.0%}).")
        st.markdown("Where to go next:")
        params = state.url_params()
        for page in pages():
            if not page.summary:
                continue
            try:
                st.page_link(page.path, label=page.summary, icon=page.icon, query_params=params)
            except Exception:  # noqa: BLE001 - run on its own (tests): no page list
                st.markdown(page.summary)
        if ctx.present:
            ui.plain(words.home_plain(top.label))


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
                    st.image(views.thumbnail_uri(str(s.path), s.path.stat().st_mtime), width="stretch")
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
    # the camera widget (and its code in the browser) only once asked for
    if not st.toggle("Take a photo with your camera", key="w_camera_on",
                     help="Good for live demos: point the camera at a mug, a keyboard, a pet..."):
        return
    st.caption("The snapshot stays in your session only.")
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
    with ui.guard("the list of model sources"), st.expander(
            "Your own model: what this server accepts", icon=":material/upload_file:"):
        from ui.upload import accepted_sources_markdown

        st.markdown(accepted_sources_markdown(compute.server_settings()))
    with st.expander("About the methods and this tool", icon=":material/info:"):
        st.markdown(
            "- **Class activation maps** (Grad-CAM and friends) weight a layer's feature maps "
            "by how much they matter for a class: coarse but reliable.\n"
            "- **Input gradients** (saliency, SmoothGrad, guided backpropagation) show which "
            "pixels the score is sensitive to: sharp but noisy.\n"
            "- **Path and perturbation methods** (Integrated Gradients, occlusion, DeepLIFT) "
            "compare the photo with a blank reference: slower, with guarantees.\n"
            "- **Transformer methods** (attention rollout, transformer attribution, LeGrad) "
            "follow the attention of vision transformers.\n"
            "- **How far to trust a map**: next to each heatmap, whether hiding what it marks "
            "really changes the prediction (compared with random maps), and whether the map "
            "survives randomising the model's weights; a report to download.\n"
            "- **Dataset**: a whole labelled image set at once, and the classes the model "
            "recognises for the wrong reasons.\n\n"
            "Everything runs on this server with the `interpret` Python package; the same "
            "results are available from a notebook or the command line.")
    ui.finish()


if __name__ == "__main__":  # a visitor's session: draw the page
    with ui.guard("this page"):  # the last safety net: never a traceback
        main()
else:  # imported by `streamlit run app.py`: the server, with a warm start and a perimeter
    from starlette.middleware import Middleware

    from ui.perimeter import Perimeter
    from ui.warmup import lifespan

    # the perimeter checks what never runs this script: no upload before sign-in, no
    # open /_stcore/metrics, ended sessions' uploads dropped (why a middleware: ui/perimeter.py)
    app = st.App(__file__, lifespan=lifespan, middleware=[Middleware(Perimeter)])
