"""Attributions: which parts of the photo made the model decide."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional

import streamlit as st

import interpret
import ui
from interpret import figures
from ui import compute, state
from ui.widgets import contrast_picker, layer_picker, target_picker

FAMILY_SHORT = {
    "cam": "CAMs",
    "cam_free": "Gradient-free CAMs",
    "gradient": "Input gradients",
    "path": "Path & perturbation",
    "activation": "Activations",
}
COST_TEXT = {
    "instant": ":material/bolt: instant: reuses the one captured forward/backward pass",
    "fast": ":material/speed: fast: a few extra passes through the model",
    "slow": ":material/hourglass_top: slow: many passes through the model (seconds on a CPU)",
}
# the colour of "important" in each colour map, for plain-language captions
HOT_WORD = {"jet": "red", "turbo": "red", "inferno": "bright yellow", "viridis": "yellow",
            "magma": "pale yellow", "plasma": "yellow", "hot": "white-hot", "greys": "white",
            "rdbu": "red"}
MAX_COMPARE = 4


def _families(specs) -> "OrderedDict[str, List[interpret.MethodSpec]]":
    from interpret.methods import FAMILIES

    fam: "OrderedDict[str, list]" = OrderedDict((f, []) for f in FAMILIES)
    for s in specs:
        fam.setdefault(s.family, []).append(s)
    return OrderedDict((f, v) for f, v in fam.items() if v)


def _on_family() -> None:
    fam = st.session_state.get("w_family")
    if fam:
        first = [s for s in interpret.methods() if s.family == fam][0]
        state.set("method", first.name)


def _paper_link(url: str) -> str:
    m = re.search(r"arxiv\.org/abs/([\d.]+)", url)
    return f"[arXiv:{m.group(1)}]({url})" if m else f"[paper]({url})"


def method_picker(specs, present: bool = False) -> interpret.MethodSpec:
    """Methods from the registry, grouped by family, each with its one-line description,
    cost and paper.  Presentation mode: one plain list of names."""
    by_name = {s.name: s for s in specs}
    current = by_name.get(state.get("method")) or by_name["gradcam"]
    if present:
        names = list(by_name)
        name = st.selectbox("Method", names, format_func=lambda n: by_name[n].label,
                            **state.bound("method", names, "gradcam"))
        return by_name[name]
    fams = _families(specs)
    st.session_state["w_family"] = current.family
    family = st.pills(
        "Family", list(fams), format_func=lambda f: FAMILY_SHORT.get(f, f), key="w_family",
        on_change=_on_family, required=True, wrap=True,
        help="\n".join(f"- **{FAMILY_SHORT.get(f, f)}**: {fams[f][0].family_label}" for f in fams))
    members = fams[family or current.family]
    names = [s.name for s in members]
    name = st.radio("Method", names, format_func=lambda n: by_name[n].label,
                    captions=[by_name[n].description for n in names],
                    **state.bound("method", names, names[0]))
    spec = by_name[name]
    st.caption(f"{COST_TEXT[spec.cost]} · {_paper_link(spec.paper)}")
    return spec


def _apply_params(method: str, slow: bool) -> None:
    spec = interpret.get_method(method)
    for p in spec.params:
        value = st.session_state.get(f"w_p_{method}_{p.name}")
        if value is not None:
            state.set_method_param(method, p.name, value, p.default)
    if slow:
        st.session_state["run_now"] = method


def _request_run(method: str) -> None:
    st.session_state["run_now"] = method


def chosen_params(spec: interpret.MethodSpec) -> Dict[str, Any]:
    """The registry's defaults, overridden by what this person chose."""
    return {**spec.defaults(), **state.method_params(spec.name)}


def params_form(spec: interpret.MethodSpec, chosen: Dict[str, Any], present: bool,
                expanded: bool) -> None:
    """The method's parameters (registry defaults and ranges) in a form, so several
    edits cost one computation; its button also starts slow methods."""
    slow = spec.cost == "slow"
    if present or not spec.params:
        if slow and expanded:
            st.button(f"Run {spec.label}", type="primary", on_click=_request_run, args=(spec.name,),
                      icon=":material/play_arrow:", key=f"run_{spec.name}")
        return
    changed = {k: v for k, v in chosen.items() if v != spec.defaults().get(k)}
    title = f"Settings of {spec.label}" + (f" ({len(changed)} changed)" if changed else "")
    with st.expander(title, icon=":material/tune:", expanded=expanded), st.form(f"params_{spec.name}"):
        for p in spec.params:
            k = f"w_p_{spec.name}_{p.name}"
            st.session_state[k] = chosen[p.name]
            if p.kind == "int":
                st.number_input(p.label, min_value=None if p.min is None else int(p.min),
                                max_value=None if p.max is None else int(p.max), step=1, key=k,
                                help=p.help or None)
            elif p.kind == "float":
                st.number_input(p.label, min_value=None if p.min is None else float(p.min),
                                max_value=None if p.max is None else float(p.max),
                                step=0.01 if (p.max or 1) <= 1 else 0.1, format="%.4g", key=k,
                                help=p.help or None)
            elif p.kind == "bool":
                st.toggle(p.label, key=k, help=p.help or None)
            else:
                st.selectbox(p.label, list(p.choices), key=k, help=p.help or None)
        st.form_submit_button(f"Run {spec.label}" if slow else "Apply", type="primary",
                              on_click=_apply_params, args=(spec.name, slow),
                              icon=":material/play_arrow:" if slow else None)


def _progress_callback(bar, label: str):
    def report(done: int, total: int) -> None:
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        bar.progress(frac, text=f"{label}: step {done} of {total}. Change any setting to stop.")
    return report


def show_estimate(ctx: ui.PageContext, spec: interpret.MethodSpec, layer: Optional[str],
                  params: Dict[str, Any]) -> None:
    """What a slow method will cost, before running it."""
    est = interpret.estimate_cost(ctx.handle, spec.name, layer, **params)
    note = f" ({est['note']})" if est.get("note") else ""
    st.info(f"**{spec.label}** needs about **{est['forwards']} passes** through the model, in "
            f"{est['batches']} batches{note}. Adjust the settings if you like, then press "
            f"**Run {spec.label}**.", icon=":material/hourglass_top:")


def compute_explanation(ctx: ui.PageContext, spec: interpret.MethodSpec, layer: Optional[str],
                        target: int, contrast: Optional[int], params: Dict[str, Any]):
    """The explanation, from the cache or computed now, with a progress bar for the
    methods that take more than one pass."""
    st.session_state.pop("run_now", None)
    key = compute.explanation_key(ctx.handle, ctx.image, spec.name, layer, target, contrast, params)
    if compute.is_cached(key) or spec.cost == "instant":
        return compute.explain(ctx.handle, ctx.image, spec.name, layer, target, contrast, params)
    bar = st.progress(0.0, text=f"{spec.label}: starting...")

    def waiting(position: int) -> None:
        bar.progress(0.0, text=f"{spec.label}: the server is busy with other people's "
                               f"computations; you are number {position} in the queue.")

    try:
        return compute.explain(ctx.handle, ctx.image, spec.name, layer, target, contrast, params,
                               progress=_progress_callback(bar, spec.label), on_wait=waiting)
    finally:
        bar.empty()


def _caption(ctx: ui.PageContext, spec: interpret.MethodSpec, e, cmap: str) -> str:
    hot = HOT_WORD.get(cmap, "brightest")
    if not spec.contrastive:
        return (f"The <b>{hot}</b> areas are where this layer of the network reacts most strongly. "
                f"This map does not depend on the class: it shows what the network looks at, "
                f"not why it says <i>{e.target_label}</i>.")
    if e.contrast_label:
        return (f"The <b>{hot}</b> areas are what made the model say <b><i>{e.target_label}</i></b> "
                f"rather than <i>{e.contrast_label}</i>.")
    return f"The <b>{hot}</b> areas are what made the model say <b><i>{e.target_label}</i></b>."


def _on_whole_photo() -> None:
    state.set("resolution", "original" if st.session_state.get("w_whole_photo") else "input")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "class"


def result_panel(ctx: ui.PageContext, spec: interpret.MethodSpec, e) -> None:
    c1, c2, c3 = st.columns([5, 3, 3], vertical_alignment="bottom")
    with c1:
        opacity = st.slider("Opacity", 0.0, 1.0, step=0.05, **state.bound("opacity"))
    with c2:
        cmap = st.selectbox("Colours", list(interpret.COLORMAPS), **state.bound("cmap", interpret.COLORMAPS, "jet"))
    with c3:
        st.session_state["w_whole_photo"] = state.get("resolution") == "original"
        whole = st.toggle("Whole photo", key="w_whole_photo", on_change=_on_whole_photo,
                          help="Off: on the square the model received. On: the map placed back "
                               "on the original photo (parts the model never saw stay uncoloured).")
        resolution = "original" if whole else "input"
    ov = interpret.overlay(ctx.image.image, e.heatmap, ctx.handle, colormap=cmap, opacity=opacity,
                           resolution=resolution or "input")
    title = f"{spec.label}: {e.target_label}" + (f" rather than {e.contrast_label}" if e.contrast_label else "")
    st.plotly_chart(figures.heatmap_overlay_figure(ov, cmap, title=title, height=500,
                                                   low="no effect", high="important"),
                    key="overlay", config={"displayModeBar": False})
    ui.plain(_caption(ctx, spec, e, cmap))
    details = f"{spec.label}" + (f" at layer `{e.layer}`" if e.layer else "") + \
        f" · class *{e.target_label}*"
    if e.score == e.score:  # not NaN
        details += f" · score {e.score:.3g}"
    details += f" · {e.seconds:.2f} s"
    if "steps_used" in e.extras:
        details += f" · {e.extras['steps_used']} steps, completeness error {e.extras['relative_error']:.1%}"
    if not ctx.present:
        st.caption(details)
    heat = interpret.heatmap_image(e.heatmap, cmap)
    name = f"{spec.name}_{_slug(e.target_label)}"
    row = st.container(horizontal=True)
    row.download_button("Heatmap (PNG)", figures.png_bytes(heat), file_name=f"{name}_heatmap.png",
                        mime="image/png", icon=":material/download:", on_click="ignore")
    row.download_button("Overlay (PNG)", figures.png_bytes(ov), file_name=f"{name}_overlay.png",
                        mime="image/png", icon=":material/download:", on_click="ignore")


def comparison(ctx: ui.PageContext, specs, layer: Optional[str], target: int, contrast: Optional[int]) -> None:
    st.subheader("Compare methods")
    by_name = {s.name: s for s in specs}
    names = [s.name for s in specs]
    current = [m for m in state.get("compare") if m in by_name][:MAX_COMPARE]
    state.view()["compare"] = tuple(current)
    chosen = current
    if not ctx.present:
        chosen = st.multiselect(
            "Methods side by side (up to four)", names, format_func=lambda n: by_name[n].label,
            max_selections=MAX_COMPARE, key=state.wkey("compare"), on_change=state.commit,
            args=("compare", tuple))
    if not chosen:
        st.caption("Pick up to four methods to see them on one row.")
        return
    cmap, opacity = state.get("cmap"), state.get("opacity")
    images, titles, subtitles, skipped = [], [], [], []
    for name in chosen:
        spec = by_name[name]
        params = {**spec.defaults(), **state.method_params(name)}
        lay = layer if spec.needs_layer else None
        con = contrast if spec.contrastive else None
        key = compute.explanation_key(ctx.handle, ctx.image, name, lay, target, con, params)
        if spec.cost == "slow" and not compute.is_cached(key):
            skipped.append(spec.label)
            continue
        try:
            with st.spinner(f"Computing {spec.label}..."):
                e = compute.explain(ctx.handle, ctx.image, name, lay, target, con, params)
        except interpret.InputError as exc:
            st.warning(f"{spec.label}: {exc}", icon=":material/warning:")
            continue
        images.append(interpret.overlay(ctx.image.image, e.heatmap, ctx.handle, colormap=cmap,
                                        opacity=opacity))
        titles.append(spec.label)
        subtitles.append(spec.family_label.lower())
    if images:
        st.plotly_chart(figures.comparison_figure(images, titles, subtitles=subtitles, height=330),
                        key="comparison", config={"displayModeBar": False})
        st.caption(f"All for *{ctx.handle.label(target)}*, with the same colours and opacity as above."
                   + (" CAMs use the layer chosen above." if layer else ""))
    if skipped:
        st.caption(f"Not shown: {', '.join(skipped)} (slow; select it above and press Run once, "
                   "then it appears here).")


def main() -> None:
    ctx = ui.setup("Attributions", "🔥",
                   "Which parts of the photo made the model decide, according to a dozen methods.")
    if ctx is None:
        return
    specs = interpret.methods()
    left, right = st.columns([2, 3], gap="large")
    spec, layer, target, contrast, params = None, None, ctx.target, None, {}
    with left:
        with ui.guard("the method picker"):
            spec = method_picker(specs, ctx.present)
        with ui.guard("the class picker"):
            target = target_picker(ctx)
            if spec is not None and spec.contrastive and not ctx.present:
                contrast = contrast_picker(ctx, target)
        if spec is not None and spec.needs_layer:
            with ui.guard("the layer picker"):
                if ctx.present:
                    layer = interpret.default_layer(ctx.handle)
                else:
                    layer = layer_picker(ctx)
    with right:
        if spec is not None:
            con = contrast if spec.contrastive else None
            e = None
            waiting = False
            with ui.guard("the settings"):
                params = chosen_params(spec)
                key = compute.explanation_key(ctx.handle, ctx.image, spec.name, layer, target, con, params)
                requested = st.session_state.get("run_now") == spec.name
                # slow methods run only when asked, after showing what they cost
                waiting = spec.cost == "slow" and not compute.is_cached(key) and not requested
                if waiting:
                    show_estimate(ctx, spec, layer, params)
                params_form(spec, params, ctx.present, expanded=waiting)
            if not waiting:
                with ui.guard(f"computing {spec.label}"):
                    e = compute_explanation(ctx, spec, layer, target, con, params)
            if e is not None:
                with ui.guard("drawing the result"):
                    result_panel(ctx, spec, e)
    st.divider()
    with ui.guard("the comparison"):
        comparison(ctx, specs, layer if layer is not None else _default_layer(ctx), target, contrast)
    ui.finish()


def _default_layer(ctx: ui.PageContext) -> Optional[str]:
    v = state.get("layer")
    return v if v is not None else interpret.default_layer(ctx.handle)


with ui.guard("this page"):  # the last safety net: never a traceback
    main()
