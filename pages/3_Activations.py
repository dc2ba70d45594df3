"""Activations: what the feature maps of a layer respond to in this photo.

The maps come from one forward pass stopped at the layer (``interpret.layer_maps``):
no backward pass, and nothing that depends on the class being explained."""

from __future__ import annotations

import math

import streamlit as st

import interpret
import ui
from interpret import figures, words
from ui import compute, state, views
from ui.widgets import layer_picker

PAGE_SIZES = (64, 128, 256, 512, 1024)
RANKS = {"mean": "mean activation", "max": "max activation"}
SCALES = {"channel": "each map on its own scale", "layer": "one scale for the layer"}
LAYER_STATS = {"mean": "mean activation", "std": "spread (std)", "zero_fraction": "fraction of zeros"}
NOBAR = {"displayModeBar": False}


def _on_page(key: str) -> None:
    state.view()["page_no"] = int(st.session_state.get(key) or 1)


def _to_features(channel: int) -> None:
    state.set("channel", int(channel))
    st.session_state["act_to_features"] = True


@st.fragment
def channels(ctx: ui.PageContext, layer: str, maps: interpret.LayerMaps) -> None:
    """The grid of the layer's maps and one channel enlarged: ranking, colours, paging,
    the channel and the opacity rerun only this part of the page."""
    C, mh, mw = maps.shape
    rank, scale, per_page = "mean", "channel", 256
    with ui.guard("the channel grid"):
        if ctx.present:
            per_page = 64
            st.subheader(f"The {min(C, per_page)} most active detectors of one layer")
        else:
            st.subheader(f"All {C} channels of {words.text(layer)}")
            c1, c2, c3 = st.columns([2, 3, 2])
            with c1:
                rank = st.segmented_control("Rank channels by", list(RANKS), format_func=RANKS.get,
                                            required=True, wrap=True, **state.bound("rank", list(RANKS)))
            with c2:
                scale = st.segmented_control("Colours", list(SCALES), format_func=SCALES.get,
                                             required=True, wrap=True, **state.bound("scale", list(SCALES)))
            with c3:
                per_page = st.selectbox("Channels per page", PAGE_SIZES, index=2, key="w_per_page")
        rank = rank or "mean"
        values = maps.channel_means if rank == "mean" else maps.channel_maxes
        ranked = figures.rank_channels(values)
        pages = max(1, math.ceil(C / per_page))
        page_no = min(max(1, int(state.get("page_no") or 1)), pages)
        if pages > 1:
            # the key names the layout, so a new layer or ranking starts a fresh pager
            pkey = f"w_chpage_{layer}_{rank}_{per_page}"
            page_no = st.pagination(pages, default=page_no, key=pkey, on_change=_on_page,
                                    args=(pkey,))
        order = ranked[(page_no - 1) * per_page: page_no * per_page]
        selected = state.get("channel")
        if selected is None or not 0 <= selected < C:
            selected = int(ranked[0])
        st.plotly_chart(views.channel_grid(ctx.handle, ctx.image, layer, maps, order, rank, RANKS[rank],
                                           scale != "layer", selected),
                        key="channel_grid", config=NOBAR)
        first, last = (page_no - 1) * per_page + 1, min(C, page_no * per_page)
        st.caption(f"Channels ranked {first}-{last} of {C} by {RANKS[rank]}, strongest "
                   f"first; each tile is a {mh}×{mw} map of the photo. Hover a tile to see which "
                   f"channel it is. Yellow: strong response, dark blue: none.")

    with ui.guard("the enlarged channel"):
        st.subheader("One channel, enlarged")
        options = [int(c) for c in ranked]
        fmt = {c: (f"channel {c}" if ctx.present  # presentation mode: no technical numbers
                   else f"channel {c}  (rank {i + 1}, {RANKS[rank]} {values[c]:.3g})")
               for i, c in enumerate(options)}
        a, b = st.columns([3, 2])
        with a:
            channel = st.selectbox("Channel", options, format_func=fmt.get,
                                   help="Channels in rank order; type a number to search.",
                                   **state.bound("channel", options, selected))
            st.button("See what this channel looks for →", key="to_features", type="tertiary",
                      on_click=_to_features, args=(channel,),
                      help="The Features page: an image painted to excite this channel, and "
                           "the photo patches that excite it most.")
        opacity = state.get("opacity")
        if not ctx.present:  # presentation mode: no display controls
            with b:
                opacity = st.slider("Map opacity over the photo", 0.0, 1.0, step=0.05,
                                    **state.bound("opacity"))
        left, right = st.columns(2, gap="large")
        with left:
            st.plotly_chart(views.channel_over_photo(ctx.handle, ctx.image, layer, maps, channel, 1.0,
                                                     title=f"Channel {channel} alone ({mh}×{mw})"),
                            key="channel_alone", config=NOBAR)
        with right:
            st.plotly_chart(views.channel_over_photo(ctx.handle, ctx.image, layer, maps, channel, opacity,
                                                     title="Over the photo the model saw"),
                            key="channel_overlay", config=NOBAR)
        h, w = ctx.handle.input_size
        st.caption("Hover to read the activation value of each cell. Each cell covers a "
                   f"{w // mw}×{h // mh}-pixel patch of the input.")
    state.sync_url()
    if st.session_state.pop("act_to_features", False):
        st.switch_page("pages/5_Features.py")


def main() -> None:
    ctx = ui.setup("Activations", "🧩",
                   "What each feature map of a layer responds to in this photo.")
    if ctx is None:
        return

    with ui.guard("the layer picker"):
        layer = None
        if ctx.present:
            layer = interpret.default_layer(ctx.handle)
        else:
            layer = layer_picker(ctx)
            with st.expander("Module tree", icon=":material/account_tree:"):
                st.caption("Every module with its output shape for one image; search with the "
                           "table's toolbar. Only modules with a spatial output can be shown as maps.")
                st.dataframe(views.module_table(ctx.handle), hide_index=True, height=320, width="stretch",
                             column_config={"parameters": st.column_config.NumberColumn(format="localized")})
    if layer is None:
        ui.finish()
        return

    maps = None
    with ui.guard(f"computing the activations of {layer}"):
        maps = compute.layer_maps(ctx.handle, ctx.image, layer)  # a forward alone, no backward
    if maps is None:
        ui.finish()
        return
    C = maps.shape[0]

    if ctx.present:
        ui.plain(f"Each small square is one **feature detector** of the network looking at "
                 f"the photo ({C} of them in this layer). Bright means it found the pattern it "
                 "looks for, at that place in the photo.")

    channels(ctx, layer, maps)

    if ctx.present:
        ui.finish()
        return

    with ui.guard("the layer statistics"):
        st.subheader("Layer statistics")
        s = compute.cached(("activation_stats", ctx.handle.fingerprint(), ctx.image.hash, layer),
                           lambda: figures.activation_stats(maps.maps))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Mean", f"{s['mean']:.3g}")
        m2.metric("Std", f"{s['std']:.3g}")
        m3.metric("Range", f"{s['min']:.2g} to {s['max']:.2g}")
        m4.metric("Zeros", f"{s['zero_fraction']:.1%}",
                  help="Fraction of values that are exactly 0: after a ReLU, the share of "
                       "places where a feature is absent.")
        log_y = st.toggle("Logarithmic counts", value=True, key="w_hist_log")
        st.plotly_chart(views.layer_histogram(ctx.handle, ctx.image, layer, maps, log_y,
                                              f"Distribution of the {s['count']:,} values of "
                                              f"{words.plotly_text(layer)}"),
                        key="layer_hist", config=NOBAR)

    with ui.guard("the activations across layers"):
        st.subheader("Across the network")
        summary = [r for r in compute.layer_summary(ctx.handle, ctx.image) if len(r.shape) >= 3]
        stat = st.segmented_control("Statistic", list(LAYER_STATS), format_func=LAYER_STATS.get,
                                    default="mean", required=True, key="w_layer_stat")
        st.plotly_chart(views.layer_means(ctx.handle, ctx.image, summary, stat, LAYER_STATS[stat], layer),
                        key="layer_means", config=NOBAR)
        st.caption(f"The {LAYER_STATS[stat]} of every layer's output for this photo, from input to "
                   "output; the diamond marks the layer shown above.")
    ui.finish()


with ui.guard("this page"):  # the last safety net: never a traceback
    main()
