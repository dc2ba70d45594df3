"""Features: what a channel of the network looks for (an image optimized to excite it,
the photo patches that excite it most, its response to the current photo), a gallery
of a layer's channels, and where a set of photos falls in the network's feature space."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import streamlit as st

import interpret
import ui
from interpret import figures, words
from interpret.features import MAX_SIZE, MIN_SIZE
from ui import compute, state, views
from ui import features as fx
from ui.widgets import layer_picker

NOBAR = {"displayModeBar": False}
RANKS = {"mean": "mean activation", "max": "max activation"}
ORDERS = {"rank": "most active on this photo first", "index": "channel number"}
PROJECTIONS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
FEATURES = ("classifier", "layer")


# ----------------------------------------------------------------------------------
# Pickers


def channel_picker(ctx: ui.PageContext, layer: str, ranked: np.ndarray, values: np.ndarray,
                   rank: str) -> int:
    """The channel, ranked by its response to the current photo (strongest first, the
    default); bound to the view's ``channel`` (so the Activations page and links share it)."""
    n = len(ranked)
    v = state.get("channel")
    if v is not None and not (isinstance(v, int) and 0 <= v < n):
        st.warning(f"Channel {words.text(v)} does not exist in {words.text(layer)} ({n} channels, 0-{n - 1}); showing "
                   "the most active one instead.", icon=":material/warning:")
        state.view()["channel"] = None
    options = [int(c) for c in ranked]
    if ctx.present:
        fmt = {c: f"detector {c}" + ("  (the most active on this photo)" if i == 0 else
                                     f"  (number {i + 1} on this photo)")
               for i, c in enumerate(options)}
    else:
        fmt = {c: f"channel {c}  (rank {i + 1} on this photo, {RANKS[rank]} {values[c]:.3g})"
               for i, c in enumerate(options)}
    return st.selectbox(
        "Feature detector" if ctx.present else "Channel", options, format_func=fmt.get,
        help="Channels in order of their response to the current photo, strongest first. "
             "Type a number to search.",
        **state.bound("channel", options, options[0]))


def _apply_settings() -> None:
    ss = st.session_state
    fx.set_settings(size=ss.get("w_fv_size"), steps=ss.get("w_fv_steps"), seed=ss.get("w_fv_seed"))


def settings_form(s: fx.OptSettings, layer: str) -> None:
    """Size, steps and seed of the optimization, applied together."""
    est = fx.seconds_estimate(s, layer)
    with st.expander(f"Settings: {s.size} px, {s.steps} steps, seed {s.seed}", icon=":material/tune:"):
        with st.form("fv_settings_form", border=False):
            ss = st.session_state
            ss["w_fv_size"], ss["w_fv_steps"], ss["w_fv_seed"] = s.size, min(s.steps, fx.MAX_STEPS_UI), s.seed
            st.number_input("Image size (pixels)", min_value=MIN_SIZE, max_value=MAX_SIZE, step=16,
                            key="w_fv_size",
                            help="Side of the optimized image. Time grows with the number of pixels.")
            st.number_input("Optimization steps", min_value=1, max_value=fx.MAX_STEPS_UI, step=32,
                            key="w_fv_steps",
                            help="Gradient-ascent steps (Adam). The picture settles after about a "
                                 "hundred; more steps sharpen it. Time grows with the steps.")
            st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="w_fv_seed",
                            help="The random start image and the random jitter, scale and rotation "
                                 "of every step: the same seed gives the same image.")
            st.form_submit_button("Apply", type="primary", on_click=_apply_settings)
        st.caption("Fourier-space image with decorrelated colours, random jitter, scale and rotation "
                   "at each step (Olah et al., *Feature Visualization*, Distill 2017)."
                   + (f" About {est:.0f} s per channel on this server." if est else ""))


# ----------------------------------------------------------------------------------
# One channel: optimized image, dataset examples, the current photo


def photo_panel(ctx: ui.PageContext, layer: str, maps: interpret.LayerMaps, values: np.ndarray,
                ranked: np.ndarray, channel: int, rank: str) -> None:
    st.markdown("##### On the current photo")
    st.plotly_chart(views.channel_over_photo(ctx.handle, ctx.image, layer, maps, channel, 0.6, height=300),
                    key="fv_photo", config=NOBAR)
    place = int(np.nonzero(ranked == channel)[0][0]) + 1
    if ctx.present:
        ui.plain(f"Where detector {channel} fires in *{words.text(ctx.image.title)}*: the brighter, the "
                 "stronger.")
    else:
        st.caption(f"The channel's {maps.shape[1]}×{maps.shape[2]} map over {words.text(ctx.image.title)}: "
                   f"{RANKS[rank]} {values[channel]:.3g}, rank {place} of {len(ranked)}. "
                   "Hover to read the values.")


def examples_panel(ctx: ui.PageContext, choice: Optional[fx.SetChoice], layer: str, channel: int) -> None:
    st.markdown("##### Photos that excite it most")
    if choice is None:
        st.info("Upload photos or a zip of photos above to search them.", icon=":material/upload:")
        return
    iset = choice.images
    if not fx.scanned(ctx.handle, iset, "top", layer) and \
            st.session_state.get("fv_scan_top") != (iset.key, layer):
        st.info(f"Searching {len(iset)} photos is one pass of the model over all of them.",
                icon=":material/hourglass_top:")
        st.button(f"Search the {len(iset)} photos", key="fv_scan_top_btn", type="primary",
                  on_click=st.session_state.__setitem__, args=("fv_scan_top", (iset.key, layer)))
        return
    ex = fx.top_examples(ctx.handle, iset, layer, channel)
    # file names are text in Plotly's HTML-like labels
    titles = [f"{words.plotly_text(fx.short(e.name, 14))}<br><b>{e.score:.3g}</b>" for e in ex]
    hover = [f"<b>{words.plotly_text(e.name)}</b><br>response {e.score:.3g} at map cell {e.position}"
             for e in ex]
    key = ("top_patches", ctx.handle.fingerprint(), iset.key, layer, int(channel), len(ex))
    st.plotly_chart(compute.figure(key, lambda: figures.image_grid_figure([e.patch for e in ex], titles,
                                                                          hover=hover, cols=3)),
                    key="top_patches", config=NOBAR)
    if ctx.present:
        ui.plain(f"The pieces of {words.text(choice.label)} that make detector {channel} respond most.")
    else:
        side = ex[0].patch.shape[1] if ex else 0
        st.caption(f"Of {words.text(choice.label)}, the {len(ex)} on which the channel responds most, "
                   f"strongest first, each cropped to the {side}×{side}-pixel area that feeds its "
                   "strongest point (effective receptive field); the number is that response.")


def optimized_header(ctx: ui.PageContext, layer: str) -> None:
    st.markdown("##### The pattern it looks for" if ctx.present else "##### Optimized image")
    if not ctx.present:
        settings_form(fx.settings(), layer)


def optimized_panel(ctx: ui.PageContext, layer: str, channel: int, photo_value: float):
    """The optimized image with its caption; returns the result."""
    s = fx.settings()
    fv = fx.visualize(ctx.handle, layer, channel, s)
    fkey = fx.fv_key(ctx.handle, layer, channel, s)
    st.plotly_chart(compute.figure(fkey + ("image",), lambda: figures.image_figure(fv.image, height=300)),
                    key="fv_image", config=NOBAR)
    final = fv.trace[-1] if fv.trace else float("nan")
    if ctx.present:
        times = (f" It makes the detector respond about {final / photo_value:.0f} times as strongly "
                 "as your photo does." if photo_value > 0 and final > 2 * photo_value else "")
        ui.plain(f"This is the pattern detector {channel} looks for: the computer painted this "
                 f"image to make it respond as strongly as possible.{times}")
        return fv
    st.caption(f"Painted by gradient ascent to maximise the channel's mean activation: "
               f"{fv.size}×{fv.size} px, {fv.steps_done} steps, seed {fv.seed}; it reached "
               f"{final:.3g} (the current photo: {photo_value:.3g}) in {fv.seconds:.1f} s.")
    with st.expander("How the optimization went", icon=":material/show_chart:"):
        st.plotly_chart(compute.figure(fkey + ("trace",), lambda: figures.optimization_trace_figure(fv.trace)),
                        key="fv_trace", config=NOBAR)
        st.caption(f"{fv.ms_per_step:.0f} ms per step. Parameterization: {fv.parameterization}; "
                   f"transforms: {fv.transforms}.")
    st.download_button("Image (PNG)", lambda: figures.png_bytes(fv.image),
                       file_name=f"{ctx.handle.name}_{layer}_channel{channel}.png", mime="image/png",
                       icon=":material/download:", on_click="ignore", key="fv_download")
    return fv


# ----------------------------------------------------------------------------------
# Gallery


@st.cache_data(show_spinner=False, max_entries=8)
def _placeholder(side: int) -> np.ndarray:
    img = np.full((side, side, 3), 242, np.uint8)
    img[:: max(1, side // 16), :] = 230  # faint lines: "nothing here yet"
    return img


def _request_gallery(target: tuple) -> None:
    st.session_state["fv_gallery_go"] = target


def _next_gallery_page(pkey: str, target: tuple) -> None:
    st.session_state[pkey] = target[-1]
    st.session_state["fv_gallery_go"] = target


def _open_channel(c: int) -> None:
    state.set("channel", int(c))


def gallery(ctx: ui.PageContext, layer: str, ranked: np.ndarray, channel: int) -> dict:
    """A page of the layer's channels; their optimized images are made on demand, a
    page at a time.  Returns the empty tiles by channel (to fill in later)."""
    s = fx.settings()
    C = len(ranked)
    st.subheader(f"What the channels of {words.text(layer)} look for" if not ctx.present
                 else "More detectors of this layer")
    order = "rank"
    if not ctx.present:
        # kept across pages (persist_state): coming back finds the gallery as it was left,
        # not page 1 in another order with "Generate these 7" (issue 17)
        order = st.segmented_control("Order", list(ORDERS), format_func=ORDERS.get, default="rank",
                                     required=True, key="w_fv_gorder", persist_state="session") or "rank"
    chans_all = [int(c) for c in ranked] if order == "rank" else list(range(C))
    pages = max(1, math.ceil(C / fx.GALLERY_PAGE))
    pkey = f"w_fv_gpage_{layer}_{order}"
    page_no = min(max(1, int(st.session_state.get(pkey) or 1)), pages)
    chans = chans_all[(page_no - 1) * fx.GALLERY_PAGE: page_no * fx.GALLERY_PAGE]
    done = {c: fx.cached_visualization(ctx.handle, layer, c, s) for c in chans}
    missing = [c for c in chans if done[c] is None]
    target = (ctx.handle.fingerprint(), layer, order, s, page_no)
    run_now = bool(missing) and st.session_state.pop("fv_gallery_go", None) == target

    row = st.container(horizontal=True, vertical_alignment="center")
    first = (page_no - 1) * fx.GALLERY_PAGE + 1
    last = first + len(chans) - 1
    row.caption((f"Channels ranked {first}-{last} of {C} on this photo" if order == "rank"
                 else f"Channels {first - 1}-{last - 1} of {C}")
                + f", optimized one by one ({s.size} px, {s.steps} steps) and kept for everyone.")
    if run_now:
        row.button("Stop", key="fv_gallery_stop", icon=":material/stop:")
    elif missing:
        est = fx.seconds_estimate(s, layer, len(missing))
        row.button(f"Generate these {len(missing)}" + (f" (about {est:.0f} s)" if est else ""),
                   key="fv_gallery_run", type="primary", icon=":material/play_arrow:",
                   on_click=_request_gallery, args=(target,))
    elif page_no < pages:
        nxt = min(fx.GALLERY_PAGE, C - page_no * fx.GALLERY_PAGE)
        row.button(f"Generate the next {nxt}", key="fv_gallery_next", type="primary",
                   icon=":material/arrow_forward:", on_click=_next_gallery_page,
                   args=(pkey, target[:-1] + (page_no + 1,)))
    if pages > 1:
        st.pagination(pages, default=page_no, key=pkey, persist_state="session")

    cols = st.columns(fx.GALLERY_PAGE, gap="small")
    slots = {}
    for col, c in zip(cols, chans):
        with col:
            slots[c] = st.empty()
            with slots[c].container():
                fv = done[c]
                st.image(fv.image if fv is not None else _placeholder(96), width="stretch")
                if fv is not None:
                    st.button(f"{c}", key=f"fv_open_{c}", on_click=_open_channel, args=(c,),
                              disabled=c == channel, width="stretch",
                              icon=":material/check:" if c == channel else None,
                              help="Shown above" if c == channel else f"Show channel {c} above")
                else:
                    st.caption(f"channel {c}")
    if run_now:
        bar = st.progress(0.0, text="Starting...")
        for j, c in enumerate(missing):
            fv = fx.visualize(ctx.handle, layer, c, s, bar=bar, share=(j, len(missing)),
                              label=f"Channel {c} ({j + 1} of {len(missing)})")
            slots[c].image(fv.image, caption=f"channel {c}", width="stretch")
        bar.empty()
        st.rerun()  # redraw the tiles with their buttons
    if ctx.present:
        ui.plain("Each picture is what one detector of this layer looks for. Press a number to "
                 "see that detector above.")
    return {c: slots[c] for c in missing}


# ----------------------------------------------------------------------------------
# Embedding


def _on_pick() -> None:
    ev = st.session_state.get("embedding")
    try:
        points = ev["selection"]["points"]
    except (TypeError, KeyError):
        return
    if points:
        data = points[0].get("customdata")
        if data:
            st.session_state["fv_pick"] = int(data[0])


def embedding_section(ctx: ui.PageContext, choice: Optional[fx.SetChoice], layer: str) -> None:
    st.subheader("Where the photos fall in the network's feature space")
    if choice is None:
        st.info("Upload photos or a zip of photos above to place them here.", icon=":material/upload:")
        return
    iset = choice.images
    n = len(iset)
    if n < 2:
        st.info("A map of the feature space needs at least two photos.", icon=":material/info:")
        return
    methods = fx.embedding_methods()
    method, which, thumbs_on = "pca", "classifier", n <= fx.MAX_PLOT_THUMBNAILS
    if not ctx.present:
        c1, c2, c3 = st.columns([2, 4, 2], vertical_alignment="bottom")
        with c1:
            method = st.segmented_control(
                "Projection", methods, format_func=PROJECTIONS.get, default="pca", required=True,
                key="w_fv_proj",
                help="PCA: the two directions along which the photos differ most (exact, fast). "
                     "t-SNE / UMAP: keep neighbours together (better clusters, distances "
                     "between clusters mean little).") or "pca"
        with c2:
            which = st.segmented_control(
                "Features", list(FEATURES), default="classifier", required=True, key="w_fv_feats",
                format_func={"classifier": "what the segmentation head sees"
                             if ctx.handle.task == "segmentation" else "what the classifier sees",
                             "layer": f"layer {layer} (averaged over positions)"}.get) or "classifier"
        with c3:
            thumbs_on = st.toggle("Thumbnails on the plot", value=n <= fx.MAX_PLOT_THUMBNAILS,
                                  disabled=n > fx.MAX_PLOT_THUMBNAILS, key="w_fv_thumbs",
                                  help=f"Up to {fx.MAX_PLOT_THUMBNAILS} photos; click a point to "
                                       "see its photo on the right in any case.")
    feat_layer = layer if which == "layer" else None
    if method == "tsne" and n < 3:
        st.info("t-SNE needs at least three photos.", icon=":material/info:")
        return
    if not fx.scanned(ctx.handle, iset, "embed", feat_layer) and \
            st.session_state.get("fv_scan_embed") != (iset.key, feat_layer):
        st.button(f"Place the {n} photos (one pass of the model over them)", key="fv_scan_embed_btn",
                  type="primary", on_click=st.session_state.__setitem__,
                  args=("fv_scan_embed", (iset.key, feat_layer)))
        return
    em = fx.embedding(ctx.handle, iset, feat_layer, method)
    pick = st.session_state.get("fv_pick", 0)
    pick = pick if isinstance(pick, int) and 0 <= pick < n else 0
    thumbs = fx.model_views(ctx.handle, iset, 64) if thumbs_on else None
    if ctx.present:
        axes = ("", "")
    elif em.explained_variance is not None:
        ev = em.explained_variance
        axes = (f"axis 1 ({ev[0]:.0%} of the variance)", f"axis 2 ({ev[1]:.0%})")
    else:
        axes = (f"{PROJECTIONS[em.method]} 1", f"{PROJECTIONS[em.method]} 2")
    key = ("embedding", ctx.handle.fingerprint(), iset.key, feat_layer, method, thumbs_on, pick, axes)
    fig = compute.figure(key, lambda: figures.embedding_figure(
        em.coords, list(em.predicted_labels), list(em.names),
        None if np.isnan(em.probabilities).all() else em.probabilities, thumbnails=thumbs,
        selected=pick, axis_titles=axes, height=520))
    left, right = st.columns([3, 1], gap="large")
    with left:
        st.plotly_chart(fig, key="embedding", on_select=_on_pick, selection_mode="points",
                        config={"displayModeBar": False, "scrollZoom": True})
    with right:
        st.markdown("##### Selected photo")
        st.image(fx.model_view(ctx.handle, iset, pick), width="stretch")
        st.markdown(words.embedding_point(em.names[pick], em.predicted_labels[pick],
                                          float(em.probabilities[pick])))
        st.caption("Click a point of the plot to see its photo here.")
    if ctx.present:
        ui.plain("Each dot is a photo, placed by what the network makes of it: photos it finds "
                 "alike end up close together. The colour is what it thinks each photo shows.")
    else:
        st.caption(f"{n} photos ({words.text(choice.label)}): the {em.features.shape[1]} features of "
                   f"{words.text(em.layer)} projected to 2-D by {PROJECTIONS[em.method]}, coloured by the "
                   "predicted class. Hover a point for its name; scroll to zoom, drag to pan.")


# ----------------------------------------------------------------------------------
# TensorBoard


def export_section(ctx: ui.PageContext, choice: Optional[fx.SetChoice], layer: str) -> None:
    with st.expander("Export to TensorBoard", icon=":material/output:"):
        if choice is None:
            st.caption("Choose or upload photos first.")
            return
        iset = choice.images
        have_tb = fx.tensorboard_available()
        st.caption(f"Writes a TensorBoard log folder for {words.text(choice.label)}: their features for the "
                   "Embedding Projector (with thumbnails and the predicted classes), and image "
                   f"summaries of each photo as the model sees it with the 16 strongest channels of "
                   f"{words.text(layer)}. You get it as a zip; unpack it and run TensorBoard on it.")
        if not have_tb:
            st.warning("TensorBoard is not installed on this server, so the image summaries "
                       "cannot be written (the operator can add it: `pip install tensorboard`). "
                       "The projector files (features, thumbnails, classes) are exported anyway; "
                       "open them with a TensorBoard installed on your computer.",
                       icon=":material/warning:")
        key = (ctx.handle.fingerprint(), iset.key, layer, have_tb)
        if st.button("Export", key="fv_export_btn", icon=":material/output:"):
            data = fx.export_zip(ctx.handle, iset, layer, have_tb)
            st.session_state["fv_export"] = {"key": key, "zip": data}
        exp = st.session_state.get("fv_export")
        if exp and exp["key"] == key:
            st.download_button(f"Download {fx.EXPORT_FOLDER}.zip ({len(exp['zip']) / 2**20:.1f} MB)",
                               exp["zip"], file_name=f"{fx.EXPORT_FOLDER}.zip",
                               mime="application/zip", icon=":material/download:",
                               on_click="ignore", key="fv_export_download")
            st.code(fx.export_command(), language="bash")


# ----------------------------------------------------------------------------------


def main() -> None:
    fx.read_link_settings()  # before ui.setup rewrites the address bar
    ctx = ui.setup("Features", "✨",
                   "What a channel of the network looks for: the image that excites it most, the "
                   "photos that excite it most, and where photos fall in the network's feature space.")
    if ctx is None:
        return
    for note in fx.take_link_notes():
        st.info(note, icon=":material/link:")

    top = st.columns([5, 4, 4], vertical_alignment="bottom", gap="medium")
    layer = None
    with top[0], ui.guard("the layer picker"):
        if ctx.present:
            layer = state.get("layer") or interpret.default_layer(ctx.handle)
        else:
            layer = layer_picker(ctx)
    if layer is None:
        ui.finish()
        return

    maps = None
    with ui.guard(f"computing the activations of {layer}"):
        maps = compute.layer_maps(ctx.handle, ctx.image, layer)  # a forward alone, no backward
    if maps is None:
        ui.finish()
        return
    rank = state.get("rank") if state.get("rank") in RANKS else "mean"
    values = maps.channel_means if rank == "mean" else maps.channel_maxes
    ranked = figures.rank_channels(values)

    channel = None
    with top[0 if ctx.present else 1], ui.guard("the channel picker"):
        channel = channel_picker(ctx, layer, ranked, values, rank)
    source = st.session_state.get("fset_source", "samples")
    if not ctx.present:
        with top[2], ui.guard("the photo set picker"):
            source = fx.source_picker()
        if source == "upload":
            with ui.guard("the upload"):
                fx.upload_section()
    if channel is None:
        ui.finish()
        return
    choice = None
    with ui.guard("reading the photos"):
        choice = fx.current_set(source)

    if ctx.present:
        st.subheader(f"What detector {channel} of the network looks for")
    else:
        st.subheader(f"Channel {channel} of {words.text(layer)}")
    a, b, c = st.columns(3, gap="large")
    with c, ui.guard("the channel on the current photo"):
        photo_panel(ctx, layer, maps, values, ranked, channel, rank)
    with b, ui.guard("the photos that excite the channel"):
        examples_panel(ctx, choice, layer, channel)
    with a:
        with ui.guard("the optimization settings"):
            optimized_header(ctx, layer)
        optimized = st.container()

    st.divider()
    empty_tiles = {}
    with ui.guard("the gallery"):
        empty_tiles = gallery(ctx, layer, ranked, channel)
    st.divider()
    with ui.guard("the feature-space map"):
        embedding_section(ctx, choice, layer)
    if not ctx.present:
        with ui.guard("the TensorBoard export"):
            export_section(ctx, choice, layer)
    # the optimization (seconds) last, into its column: the rest of the page is already
    # drawn and usable while its progress bar runs
    with optimized, ui.guard("the optimized image"):
        fv = optimized_panel(ctx, layer, channel, float(maps.channel_means[channel]))
        if channel in empty_tiles:  # its gallery tile, drawn before the image existed
            empty_tiles[channel].image(fv.image, caption=f"channel {channel}", width="stretch")
    ui.finish()
    fx.write_link_settings()


with ui.guard("this page"):  # the last safety net: never a traceback
    main()
