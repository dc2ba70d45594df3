"""Concepts: which learnt concepts of a layer the decision rests on (Concept Relevance
Propagation: each concept's share and its own heatmap on the photo, what it looks for,
where it matters in a photo set), concepts discovered by factorising the layer, and
whether the model uses a concept your team names (TCAV, tested against random sets)."""

from __future__ import annotations

import numpy as np
import streamlit as st

import interpret
import ui
from interpret import words
from interpret.concepts import concept_label, concept_sentence, significance_sentence
from interpret.methods.lrp import COMPOSITES
from ui import compute, state
from ui import concepts as cx
from ui import features as fx
from ui.widgets import layer_picker, target_picker

COMPOSITE_LABELS = {"epsilon_plus_flat": "EpsilonPlusFlat (default)", "epsilon_gamma_box": "EpsilonGammaBox",
                    "epsilon_alpha2_beta1": "EpsilonAlpha2Beta1"}
#: a vision transformer's concepts are traced by AttnLRP (interpret.concepts.vit), not zennit
ATTNLRP = "attnlrp"


#: reference patches whose photos' classes describe an unnamed concept
WHERE_PATCHES = 4


def concept_name(handle, c: int, named: dict, refs) -> str:
    """A concept as Markdown-safe text: the name the team gave it, else its channel and,
    once the reference patches are at hand, the classes of their photos (escaped)."""
    where = [handle.label(k) for k in refs.where(c, WHERE_PATCHES)] if refs is not None else []
    return words.text(concept_label(c, named.get(c), where))


def top_section(ctx: ui.PageContext, layer: str, target: int, k: int, composite: str, choice) -> None:
    st.subheader("What the decision rests on")
    vit = composite == ATTNLRP
    cs = cx.top_concepts(ctx.handle, ctx.image, layer, target, k, composite)
    label = ctx.handle.label(target)
    refs = None
    if choice is not None and cx.references_ready(ctx.handle, choice.images, layer, composite):
        refs = cx.references(ctx.handle, choice.images, layer, composite)
    cx.remember_references(ctx.handle, ctx.image, target, choice.images if refs is not None else None, layer,
                           composite)
    named = cx.names(ctx.handle, layer)

    def name(c: int) -> str:
        return concept_name(ctx.handle, c, named, refs)

    ui.plain(concept_sentence(f"*{words.text(label)}*", [(name(c.channel), c.relevance) for c in cs]))
    if not ctx.present:
        method = ("AttnLRP, Achtibat et al. 2024, on the block's output tokens" if vit
                  else f"LRP, {COMPOSITE_LABELS[composite]}")
        summed = " summed over every token (class token included)" if vit else ""
        st.caption(f"The {len(cs)} channels of {words.text(layer)} with the most relevance for "
                   f"{words.text(label)} ({method}; relevance at the layer "
                   f"{cs.total:.3g} for a score of {cs.score:.3g}). A share is the channel's relevance{summed} "
                   "over the sum of all the layer's channels' absolute relevances; its heatmap is its "
                   "own relevance on the photo (Achtibat et al. 2023). A concept goes by the name your "
                   "team gave it; an unnamed one by its channel and, once the patches below are found, the "
                   "classes the model gives the photos where it matters most.")
    cols = st.columns(3, gap="medium")
    for i, c in enumerate(cs):
        with cols[i % 3]:
            st.image(cx.overlay(ctx.handle, ctx.image, c.heatmap,
                                (ctx.handle.fingerprint(), ctx.image.hash, layer, target, composite, c.channel)),
                     caption=f"{name(c.channel)}: {c.relevance:.0%} of the layer's relevance", width="stretch")
            if refs is not None:
                patches = refs.patches(c.channel, 4)
                if patches:
                    st.image([np.asarray(p.patch.convert("RGB")) for p in patches], width=64,
                             caption=[f"{p.relevance:.0%}" for p in patches])
                else:
                    st.caption("Not relevant for any photo of the set.")
            if not ctx.present and cx.may_name():
                with st.expander("Name it" if c.channel not in named else "Rename it", icon=":material/edit:"):
                    cx.name_form(ctx.handle, layer, c.channel, named.get(c.channel))
            with st.expander("What it looks for", icon=":material/auto_awesome:"):
                if st.toggle("Paint it (feature visualisation)", key=f"cx_fv_{c.channel}"):
                    fv = fx.visualize(ctx.handle, layer, c.channel, fx.settings())
                    st.image(np.asarray(fv.image), width="stretch")
    if choice is None:
        return
    if refs is None:
        n = len(choice.images)
        st.button(f"Find where each concept matters in {words.text(choice.label)} ({n} photos, once per "
                  "layer)", key="cx_refs_btn", on_click=st.session_state.__setitem__,
                  args=("cx_refs", (choice.images.key, layer)))
        if st.session_state.get("cx_refs") == (choice.images.key, layer):
            cx.references(ctx.handle, choice.images, layer, composite)
            st.rerun()
    else:
        if not ctx.present:
            st.caption(f"Under each concept: the patches of {words.text(choice.label)} where it carries the "
                       "most relevance for each photo's own top class, with its share there (relevance "
                       "maximisation).")
        with st.expander(f"Across {words.text(choice.label)}: the concepts each class rests on",
                         icon=":material/table:"):
            rows = [{"class": ctx.handle.label(cls), "photos": n,
                     # a table cell shows plain text: the names raw, never escaped
                     "concepts (mean share over the class's photos)": "; ".join(
                         f"{concept_label(ch, named.get(ch))} ({share:.0%})" for ch, share in top)}
                    for cls, n, top in refs.by_class(k=3)]
            st.dataframe(rows, hide_index=True, width="stretch")


def discover_section(ctx: ui.PageContext, layer: str, choice, vit: bool = False) -> None:
    st.subheader("Concepts discovered in the layer")
    if vit:
        st.info(cx.NO_NMF_FOR_VIT, icon=":material/info:")
        return
    if choice is None:
        st.info("Choose or upload photos above to discover concepts in them.", icon=":material/upload:")
        return
    k = st.slider("How many concepts", 2, 10, 4, key="w_cx_k_discover",
                  help="The layer's activations over the photos are factorised into this many "
                       "non-negative concepts (NMF): each a mix of channels.")
    if st.session_state.get("cx_discover") != (choice.images.key, layer, k):
        st.button(f"Discover {k} concepts in {words.text(choice.label)}", key="cx_discover_btn",
                  type="primary", on_click=st.session_state.__setitem__,
                  args=("cx_discover", (choice.images.key, layer, k)))
        return
    found = cx.discovered(ctx.handle, choice.images, layer, k)
    maps = cx.discovered_maps(ctx.handle, found, ctx.image, (ctx.handle.fingerprint(), choice.images.key, layer, k))
    cols = st.columns(min(4, k), gap="medium")
    for j, c in enumerate(found):
        with cols[j % len(cols)]:
            m = maps[j]
            top = float(m.max()) or 1.0
            st.image(cx.overlay(ctx.handle, ctx.image, m / top,
                                (ctx.handle.fingerprint(), ctx.image.hash, layer, "nmf", choice.images.key, k, j)),
                     caption=f"discovered concept {j + 1}: {c.share:.0%} of the set's activation", width="stretch")
            if c.patches:
                st.image([np.asarray(p.patch.convert("RGB")) for p in c.patches[:4]], width=64)
            if not ctx.present:
                st.caption("mostly channels " + ", ".join(str(t) for t in c.top_channels[:3]))
    if not ctx.present:
        st.caption(f"NMF of {words.text(layer)} over {found.images} photos explains {found.explained:.0%} of the "
                   f"activations{f' ({found.clipped:.0%} below zero were clipped)' if found.clipped > 0.005 else ''}. "
                   "Each concept is coloured where it sits on this photo; its patches are where it is strongest "
                   "in the set.")


def tcav_section(ctx: ui.PageContext, layer: str, target: int, choice) -> None:
    st.subheader("Does the model use your concept?")
    label = ctx.handle.label(target)
    st.caption(f"Give example photos of a concept (say *striped*) and unrelated photos. The test (TCAV, Kim "
               f"et al. 2018) asks whether the score of {words.text(label)} rises along the concept's "
               f"direction in {words.text(layer)}, against {cx.TCAV_RUNS} random sets, as the paper does.")
    if not compute.allow_uploads():
        st.info("Uploads are switched off on this server.", icon=":material/block:")
        return
    c1, c2 = st.columns(2)
    with c1:
        concept = cx.uploaded_set("Photos of the concept (a zip or images)", "cx_concept",
                                  "At least 5 photos showing the concept; more is better.")
    with c2:
        randoms = cx.uploaded_set("Unrelated photos (a zip or images)", "cx_random",
                                  "Random photos without the concept, at least twice as many as the concept's.")
    if choice is None:
        st.info("Choose or upload photos above: the photos of the class are taken from them.", icon=":material/info:")
        return
    if concept is None or randoms is None:
        return
    if not st.button("Test the concept", key="cx_tcav_btn", type="primary"):
        held = st.session_state.get("cx_tcav_result")
        if held is None or held[0] != (concept.key, randoms.key, layer, target, choice.images.key):
            return
        result = held[1]
    else:
        photos = cx.class_photos(ctx.handle, choice.images, target)
        if len(photos) < 2:
            st.warning(f"Only {len(photos)} photo(s) of {words.text(choice.label)} are predicted as "
                       f"{words.text(label)}; the test needs at least 2. Choose photos of that class above.",
                       icon=":material/warning:")
            return
        result = cx.run_tcav(ctx.handle, photos, f"{choice.images.key}/{target}", concept, randoms, layer, target)
        st.session_state["cx_tcav_result"] = ((concept.key, randoms.key, layer, target, choice.images.key), result)
    ui.plain(significance_sentence(result.score, result.random_score, result.p_value, result.runs,
                                   concept="your concept", target=f"*{words.text(label)}*"))
    if not ctx.present:
        st.caption(f"Scores per run: concept {', '.join(f'{s:.2f}' for s in result.scores)}; random "
                   f"pseudo-concepts {', '.join(f'{s:.2f}' for s in result.random_scores)} (Welch t-test, "
                   f"p = {result.p_value:.2g}; {result.set_size} photos per random set).")


def main() -> None:
    ctx = ui.setup("Concepts", "🧩",
                   "Which learnt concepts the decision rests on, where each sits in the photo, and "
                   "whether the model uses a concept your team names.")
    if ctx is None:
        return
    vit = cx.vit_layers(ctx.handle)  # a vision transformer: AttnLRP on its blocks' tokens
    why = None if vit is not None else interpret.get_method("lrp").unavailable(ctx.handle)
    if why:
        st.info(f"Concepts are traced with LRP, which cannot run on this model: {words.text(why)}.",
                icon=":material/info:")
        ui.finish()
        return
    top = st.columns([5, 4, 2, 3], vertical_alignment="bottom", gap="medium")
    layer = None
    with top[0], ui.guard("the layer picker"):
        if vit is not None:
            names, labels, suggested = vit
            layer = suggested if ctx.present else st.selectbox(
                "Layer", names, index=names.index(suggested), format_func=labels.get, key="w_cx_vit_layer",
                help="The output tokens (tokens × channels) of each transformer block: a concept is a "
                     "channel; its heatmap and share are traced by AttnLRP. ★ marks the suggested block.")
        else:
            layer = state.get("layer") or interpret.default_layer(ctx.handle) if ctx.present else layer_picker(ctx)
    with top[1]:
        target = target_picker(ctx)
    with top[2]:
        k = st.number_input("Concepts", 1, 12, 6, key="w_cx_k", help="How many of the layer's most relevant "
                                                                        "channels to show.")
    composite = "epsilon_plus_flat" if vit is None else ATTNLRP
    if not ctx.present and vit is None:
        with top[3]:
            composite = st.selectbox("LRP rules", list(COMPOSITES), format_func=COMPOSITE_LABELS.get,
                                     key="w_cx_composite", help="; ".join(COMPOSITES.values()))
    if layer is None:
        ui.finish()
        return
    with ui.guard("the photo set picker"):
        source = fx.source_picker()
        if source == "upload":
            fx.upload_section()
    choice = None
    with ui.guard("the photo set"):
        choice = fx.current_set(source)
    with ui.guard(f"tracing the decision to the concepts of {layer}"):
        top_section(ctx, layer, target, int(k), composite, choice)
    with ui.guard("discovering concepts"):
        discover_section(ctx, layer, choice, vit is not None)
    with ui.guard("testing your concept"):
        tcav_section(ctx, layer, target, choice)
    ui.finish()


main()
