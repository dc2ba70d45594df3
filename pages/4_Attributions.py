"""Attributions: which parts of the photo made the model decide.

The page is three fragments, so that a change reruns only what it changes (never the
sidebar and the model checks):

* :func:`attribution_panel` (``attr_panel``): the pickers and the result.  A new method
  or setting reruns it alone; a new class, contrast or layer also reruns the comparison.
* :func:`result_view` (``attr_result``, inside it): the heatmap with its controls.  The
  colour map, the opacity and "whole photo" rerun it and the comparison only.
* :func:`comparison_panel` (``attr_compare``): the methods side by side.

Results and figures come from the shared cache (ui/compute.py, ui/views.py): switching
between the CAMs or colour maps redraws from the recorded pass without running the
model again.

Where to add views: the trust panel goes under the heatmap (``result_panel(...,
under=...)`` in :func:`result_view`); a comparison view is a fragment like
:func:`comparison_panel`, called from :func:`main` (add its key to :data:`VIEWS` so
that class, layer and colour changes rerun it too).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional

import streamlit as st

import interpret
import ui
from interpret import words
from interpret.methods import FAMILIES, SPEEDS
from ui import compute, state, trust, views
from ui.compute import Selection
from ui.widgets import contrast_picker, current_contrast, current_target, layer_picker, target_picker

SPEED_ICONS = {"instant": ":material/bolt:", "fast": ":material/speed:", "slow": ":material/hourglass_top:"}
# the colour of "important" in each colour map, for plain-language captions
HOT_WORD = {"jet": "red", "turbo": "red", "inferno": "bright yellow", "viridis": "yellow",
            "magma": "pale yellow", "plasma": "yellow", "hot": "white-hot", "greys": "white",
            "rdbu": "red"}
#: most methods side by side (the view's limit, also for links), in rows of PER_ROW
MAX_COMPARE = state.COMPARE_MAX
PER_ROW = 4
MARK_REGION = "Mark the object on the photo"
NOBAR = {"displayModeBar": False}
#: the fragments drawn from the class, contrast, layer and colours: a change of one of
#: those reruns them (a new method reruns only the panel with the pickers)
VIEWS = ("attr_result", "attr_compare")
SELECTION = ("attr_panel", "attr_compare")


# ----------------------------------------------------------------------------------
# Choosing what to explain


def _families(specs) -> "OrderedDict[str, List[interpret.MethodSpec]]":
    fam: "OrderedDict[str, list]" = OrderedDict((f, []) for f in FAMILIES)
    for s in specs:
        fam.setdefault(s.family, []).append(s)
    return OrderedDict((f, v) for f, v in fam.items() if v)


def _on_family(first_of: Dict[str, str]) -> None:
    fam = st.session_state.get("w_family")
    if fam in first_of:
        state.set("method", first_of[fam])


def _paper_link(url: str) -> str:
    m = re.search(r"arxiv\.org/abs/([\d.]+)", url)
    return f"[arXiv:{m.group(1)}]({url})" if m else f"[paper]({url})"


def current_spec(ctx: ui.PageContext, specs) -> interpret.MethodSpec:
    """The view's method if it can run on this model, else Grad-CAM (saying why)."""
    by_name = {s.name: s for s in specs}
    name = state.get("method")
    if name in by_name:
        return by_name[name]
    fallback = by_name.get(state.DEFAULTS["method"]) or specs[0]
    try:
        spec = interpret.get_method(name)
        why = spec.unavailable(ctx.handle) or "it is not available here"
        st.warning(f"{spec.label} cannot run on {words.text(ctx.handle.name)}: {words.text(why)} Showing "
                   f"{fallback.label} instead.", icon=":material/warning:")
    except interpret.InputError:
        pass
    state.view()["method"] = fallback.name
    return fallback


def method_picker(specs, current: interpret.MethodSpec, present: bool) -> interpret.MethodSpec:
    """Methods from the registry, grouped by family, each with its one-line description,
    speed and paper.  Presentation mode: one plain list of names."""
    by_name = {s.name: s for s in specs}
    if present:
        names = list(by_name)
        name = st.selectbox("Method", names, format_func=lambda n: by_name[n].label,
                            **state.bound("method", names, current.name))
        return by_name[name]
    fams = _families(specs)
    st.session_state["w_family"] = current.family
    family = st.pills(
        "Family", list(fams), format_func=lambda f: FAMILIES[f].short, key="w_family",
        on_change=_on_family, args=({f: v[0].name for f, v in fams.items()},), required=True, wrap=True,
        help="\n".join(f"- **{FAMILIES[f].short}**: {FAMILIES[f].label}" for f in fams))
    members = fams[family or current.family]
    names = [s.name for s in members]
    name = st.radio("Method", names, format_func=lambda n: by_name[n].label,
                    captions=[by_name[n].description for n in names],
                    **state.bound("method", names, names[0]))
    spec = by_name[name]
    st.caption(f"{SPEED_ICONS[spec.speed]} {spec.speed}: {SPEEDS[spec.speed]} · {_paper_link(spec.paper)}")
    return spec


def _apply_params(method: str, slow: bool) -> None:
    spec = interpret.get_method(method)
    for p in spec.params:
        value = st.session_state.get(f"w_p_{method}_{p.name}")
        if value is not None:
            state.set_method_param(method, p.name, value, p.default)
    if slow:
        st.session_state["run_now"] = method
        st.rerun(scope=list(SELECTION))


def _request_run(method: str) -> None:
    st.session_state["run_now"] = method
    st.rerun(scope=list(SELECTION))  # once computed, the comparison can show it too


def chosen_params(spec: interpret.MethodSpec) -> Dict[str, Any]:
    """The registry's defaults, overridden by what this person chose."""
    return {**spec.defaults(), **state.method_params(spec.name)}


def params_form(spec: interpret.MethodSpec, chosen: Dict[str, Any], present: bool,
                expanded: bool) -> None:
    """The method's parameters (registry defaults and ranges) in a form, so several
    edits cost one computation; its button also starts slow methods."""
    slow = spec.speed == "slow"
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


def pickers(ctx: ui.PageContext, specs) -> Optional[Selection]:
    """The left column: method, class, contrast class and layer."""
    spec = None
    with ui.guard("the method picker"):
        spec = method_picker(specs, current_spec(ctx, specs), ctx.present)
    if spec is None:
        return None
    target, contrast, layer = ctx.target, None, None
    with ui.guard("the class picker"):
        target = cls = target_picker(ctx, rerun=SELECTION)
        if ctx.handle.task != "classification":  # raise/lower, a segment, a box (issue 19)
            from ui import tasks

            target = tasks.task_target(ctx, cls, rerun=SELECTION)
            target = tasks.for_method(target, spec)  # a box's "rather than" needs a class-specific method
        if spec.contrastive and ctx.handle.task in ("classification", "segmentation"):
            # presentation mode keeps a link's contrast class, without the picker
            contrast = (current_contrast(ctx, cls) if ctx.present
                        else contrast_picker(ctx, cls, rerun=SELECTION))
    if spec.needs_layer:
        with ui.guard("the layer picker"):
            layer = interpret.default_layer(ctx.handle) if ctx.present else layer_picker(ctx, rerun=SELECTION)
    return Selection(spec, layer, target, contrast if spec.contrastive else None, chosen_params(spec))


# ----------------------------------------------------------------------------------
# The result


def show_estimate(ctx: ui.PageContext, sel: Selection) -> None:
    """What a slow method will cost, before running it."""
    cost = sel.spec.estimate(ctx.handle, sel.layer, sel.params)
    note = f" ({cost.note})" if cost.note else ""
    st.info(f"**{sel.spec.label}** needs about **{cost.forwards} passes** through the model, in "
            f"{cost.batches} batches{note}. Adjust the settings if you like, then press "
            f"**Run {sel.spec.label}**.", icon=":material/hourglass_top:")


def explanation(ctx: ui.PageContext, sel: Selection) -> Optional[interpret.Explanation]:
    """The explanation from the cache, or computed now (slow methods only when asked,
    after showing what they cost, with a progress bar); None while waiting."""
    waiting = False
    with ui.guard("the settings"):
        requested = st.session_state.get("run_now") == sel.spec.name
        waiting = sel.spec.speed == "slow" and not compute.is_cached(sel.key(ctx.handle, ctx.image)) \
            and not requested
        if waiting:
            show_estimate(ctx, sel)
        params_form(sel.spec, sel.params, ctx.present, expanded=waiting)
    if waiting:
        return None
    with ui.guard(f"computing {sel.spec.label}"):
        st.session_state.pop("run_now", None)
        return sel.explain(ctx.handle, ctx.image)
    return None


def _caption(ctx: ui.PageContext, spec: interpret.MethodSpec, e: interpret.Explanation, cmap: str,
             verdict: Optional[str]) -> str:
    """The sentence under the map (interpret.words.map_caption): "what made the model
    say X" only for its prediction, never under a "no better than random" verdict."""
    explained = getattr(e, "explained", None)
    if explained is not None and explained.kind != "class":  # a label, an output, a segment
        from ui import tasks

        return tasks.map_caption(explained.sentence(ctx.handle.labels), HOT_WORD.get(cmap, "brightest"),
                                 spec.contrastive)
    top = ctx.top
    return words.map_caption(
        e.target_label, HOT_WORD.get(cmap, "brightest"), top_label=top.label,
        probability=ctx.probability(e.target), top_probability=top.probability,
        predicted=ctx.predicted(e.target), contrast_label=e.contrast_label,
        contrast_probability=ctx.probability(e.contrast) if e.contrast is not None else None,
        class_specific=spec.contrastive, verdict=verdict)


def _on_whole_photo() -> None:
    state.set("resolution", "original" if st.session_state.get("w_whole_photo") else "input")
    st.rerun(scope=list(VIEWS))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "class"


def display_controls() -> tuple:
    """Opacity, colour map, whole photo: (opacity, cmap, resolution), bound to the view."""
    c1, c2, c3 = st.columns([5, 3, 3], vertical_alignment="bottom")
    with c1:
        opacity = st.slider("Opacity", 0.0, 1.0, step=0.05, **state.bound("opacity", rerun=VIEWS))
    with c2:
        cmap = st.selectbox("Colours", list(interpret.COLORMAPS),
                            **state.bound("cmap", interpret.COLORMAPS, "jet", rerun=VIEWS))
    with c3:
        st.session_state["w_whole_photo"] = state.get("resolution") == "original"
        whole = st.toggle("Whole photo", key="w_whole_photo", on_change=_on_whole_photo,
                          help="Off: on the square the model received. On: the map placed back "
                               "on the original photo (parts the model never saw stay uncoloured).")
    return opacity, cmap, "original" if whole else "input"


def result_panel(ctx: ui.PageContext, sel: Selection, e: interpret.Explanation,
                 under: Optional[Callable[[], None]] = None) -> None:
    """The heatmap over the photo with its controls, caption, details and downloads;
    ``under()`` (e.g. a trust panel) is drawn below them at the column's full width
    (the heatmap keeps the room: beside it, a 226-pixel map stood next to a 400-pixel
    colour bar and the curves' legends were cut, issue 17).  It runs first, so that
    the sentence under the map reads the verdict it has just computed."""
    spec = sel.spec
    if ctx.present:  # presentation mode: the view's colours, no controls
        opacity, cmap, resolution = state.get("opacity"), state.get("cmap"), state.get("resolution")
    else:
        opacity, cmap, resolution = display_controls()
    title = f"{spec.label}: {words.plotly_text(e.target_label)}" + (
        f" rather than {words.plotly_text(e.contrast_label)}" if e.contrast_label else "")
    where = st.container()
    if under is not None:
        with st.container():  # drawn below `where`, run before it
            under()
    with where:
        fig = views.attribution_figure(ctx.handle, ctx.image, e, title, cmap, opacity, resolution)
        explained = getattr(e, "explained", None)
        if explained is not None and explained.kind == "box":  # the detection's outline (issue 20)
            import plotly.graph_objects as go

            fig = interpret.figures.outline_box(go.Figure(fig), explained.box if resolution == "original" else explained.pixels)
        st.plotly_chart(fig, key="overlay", config=NOBAR)
        if explained is not None and explained.kind == "box" and explained.contrast is not None:
            from ui import tasks  # "this box rather than that label", with both scores (issue 20)

            with ui.guard("the label contrasted"):
                st.markdown(tasks.box_contrast_sentence(ctx, explained))
        # the pointing game, the mass inside the box and the context outside it: the trust panel
        _under_the_map(ctx, sel, e, cmap, opacity, resolution)


def _under_the_map(ctx: ui.PageContext, sel: Selection, e: interpret.Explanation, cmap: str,
                   opacity: float, resolution: str) -> None:
    """The sentence, the details and the downloads under the heatmap."""
    spec = sel.spec
    f = trust.cached_faithfulness(ctx, e)  # the panel below has computed it when it could
    ui.plain(_caption(ctx, spec, e, cmap, f.verdict if f is not None else None))
    details = f"{spec.label}" + (f" at layer {words.text(e.layer)}" if e.layer else "") + \
        f" · class *{words.text(e.target_label)}*"
    if e.score == e.score:  # not NaN
        details += f" · score {e.score:.3g}"
    details += f" · {e.seconds:.2f} s"
    if "steps_used" in e.extras:
        details += f" · {e.extras['steps_used']} steps, completeness error {e.extras['relative_error']:.1%}"
    if not ctx.present:
        st.caption(details)
    name = f"{spec.name}_{_slug(e.target_label)}"
    handle, img = ctx.handle, ctx.image
    row = st.container(horizontal=True)
    # the PNGs are made when a button is pressed, not on every run
    row.download_button("Heatmap (PNG)", lambda: views.heatmap_png(handle, img, e, cmap),
                        file_name=f"{name}_heatmap.png", mime="image/png", icon=":material/download:",
                        on_click="ignore", key="dl_heatmap")
    row.download_button("Overlay (PNG)", lambda: views.overlay_png(handle, img, e, cmap, opacity, resolution),
                        file_name=f"{name}_overlay.png", mime="image/png", icon=":material/download:",
                        on_click="ignore", key="dl_overlay")


def _select_all_room(chosen: int) -> int:
    """The ``select_all`` threshold of the comparison's picker: Streamlit shows "Select
    all" (or "Select N matches") only when that many still fit under the limit, so the
    option never offers more than the box takes."""
    return max(0, MAX_COMPARE - chosen)


def _cost_note(ctx: ui.PageContext, spec: interpret.MethodSpec, layer: Optional[str]) -> str:
    """" ~37" after a method that takes more than one pass (the registry's cost for this
    model, layer and settings), "" when it cannot say."""
    try:
        cost = spec.estimate(ctx.handle, layer if spec.needs_layer else None, chosen_params(spec))
        return f" ~{cost.forwards}"
    except interpret.InputError:
        return ""


def _request_compare(names: tuple) -> None:
    st.session_state["compare_run"] = tuple(names)


def comparison(ctx: ui.PageContext, specs) -> None:
    """Up to :data:`MAX_COMPARE` methods side by side (rows of :data:`PER_ROW`), for the
    class, contrast and layer chosen above (read from the view: this part reruns on its
    own), in the same colours and opacity.  Every method the model can run is offered;
    those that take more than one pass show their cost, and the slow ones run through
    the compute gate when asked."""
    st.subheader("Compare methods")
    by_name = {s.name: s for s in specs}
    names = [s.name for s in specs]
    current = [m for m in state.get("compare") if m in by_name][:MAX_COMPARE]
    state.view()["compare"] = tuple(current)
    layer = state.get("layer") or interpret.default_layer(ctx.handle)
    chosen = current
    if not ctx.present:
        chosen = st.multiselect(
            f"Methods side by side (up to {MAX_COMPARE})", names,
            # a label that never changes (a multiselect matches its value by the label):
            # the costs, which depend on the settings, are in the caption below
            format_func=lambda n: by_name[n].label + ("" if by_name[n].speed == "instant"
                                                      else f" ({by_name[n].speed})"),
            max_selections=MAX_COMPARE, select_all=_select_all_room(len(current)),
            key=state.wkey("compare"), on_change=state.commit, args=("compare", tuple),
            help="Every method this model can run. Slow ones (many passes through the model) "
                 "show their cost and run when you ask.")
        heavy = [f"{by_name[n].label}{_cost_note(ctx, by_name[n], layer)}" for n in names
                 if by_name[n].speed != "instant"]
        if heavy:
            st.caption("Passes through the model, for the heavy ones: " + "; ".join(heavy) + ".")
    if not chosen:
        st.caption(f"Pick up to {MAX_COMPARE} methods to see them side by side.")
        return
    target = current_target(ctx)
    contrast = current_contrast(ctx, target)  # a link's contrast, in presentation mode too
    if ctx.handle.task == "embedding":  # no classes: the reference photo chosen above (issue 20)
        from ui import imagetext

        target, contrast = imagetext.chosen_reference(ctx.handle), None
        if target is None:
            st.info("Upload a reference photo above to compare methods.", icon=":material/upload:")
            return
    from ui import tasks

    box = tasks.picked_box(ctx)  # a detector: the box picked above, never the top box of its class
    if box is not None:
        target, contrast = box, None
    requested = set(st.session_state.pop("compare_run", ()) or ())
    items, waiting, costs = [], [], []
    for name in chosen:
        spec = by_name[name]
        params = chosen_params(spec)
        lay = layer if spec.needs_layer else None
        con = contrast if spec.contrastive else None
        tgt = tasks.for_method(target, spec)  # a box's contrast, for the methods it applies to
        key = compute.explanation_key(ctx.handle, ctx.image, name, lay, tgt, con, params)
        done = spec.speed == "instant" or compute.is_cached(key)
        if not done:
            try:
                cost = spec.estimate(ctx.handle, lay, params)
                costs.append((spec, cost.forwards))
            except interpret.InputError:
                costs.append((spec, None))
            if spec.speed == "slow" and name not in requested:
                waiting.append(spec)
                continue
        try:
            e = compute.explain(ctx.handle, ctx.image, name, lay, tgt, con, params)
        except interpret.InputError as exc:
            st.warning(f"{spec.label}: {words.text(exc)}", icon=":material/warning:")
            continue
        items.append((e, spec.label, spec.family_label.lower()))
    if waiting:
        passes = [f for sp, f in costs if sp in waiting and f is not None]
        total = sum(passes)
        listed = ", ".join(f"{sp.label} (about {f} passes)" if f is not None else sp.label
                           for sp, f in costs if sp in waiting)
        if not ctx.present:  # presentation mode: the button alone, no pass counts
            st.info(f"Slow, so they wait for you: {listed}.", icon=":material/hourglass_top:")
        label = ("Compute " + (waiting[0].label if len(waiting) == 1 else f"these {len(waiting)}")
                 + (f" (about {total} passes)" if passes and not ctx.present else ""))
        st.button(label, key="compare_run_btn", icon=":material/play_arrow:",
                  on_click=_request_compare, args=(tuple(sp.name for sp in waiting),),
                  help="Through the server's compute queue, with a progress bar; the result is "
                       "kept, here and on the page above.")
    if items:
        cmap, opacity = state.get("cmap"), state.get("opacity")
        for row in range(0, len(items), PER_ROW):
            cols = st.columns(PER_ROW, gap="small")
            for col, (e, title, family) in zip(cols, items[row:row + PER_ROW]):
                with col:
                    st.image(views.overlay_uri(ctx.handle, ctx.image, e, cmap, opacity),
                             caption=f"{title} · {family}", width="stretch")
        st.caption((f"All for *{words.text(ctx.handle.label(target))}*" if isinstance(target, int)
                    else f"All explaining {target.sentence(ctx.handle.labels)}")
                   + (f" rather than *{words.text(ctx.handle.label(contrast))}*" if contrast is not None else "")
                   + ", with the same colours and opacity as above."
                   + (" CAMs use the layer chosen above." if any(by_name[n].needs_layer for n in chosen) else ""))
        # agreement compares maps of one question: with a contrast class, the maps that
        # do not depend on the class answer another one
        asked = box.contrast if box is not None else contrast  # a box's contrast is in its target
        same = {title: e for e, title, _ in items if e.contrast == asked}
        with ui.guard("the agreement between methods"):
            trust.comparison_trust(ctx, same)
    with ui.guard("the report"):
        current = current_explanation(ctx, specs, target, contrast, layer)
        maps = ([current] if current is not None else []) + [e for e, _, _ in items]
        if maps:
            st.markdown("**A report to hand on**")
            st.caption("The photo, the prediction, the maps above with how far to trust each, "
                       "the settings and the versions: one file that opens offline.")
            trust.report_downloads(ctx, maps)


def current_explanation(ctx: ui.PageContext, specs, target: int, contrast: Optional[int],
                        layer: Optional[str]) -> Optional[interpret.Explanation]:
    """The explanation shown above (the view's method), when it is computed already."""
    spec = next((s for s in specs if s.name == state.get("method")), None)
    if spec is None:
        return None
    from ui import tasks

    sel = Selection(spec, layer if spec.needs_layer else None, tasks.for_method(target, spec),
                    contrast if spec.contrastive else None, chosen_params(spec))
    if spec.speed != "instant" and not compute.is_cached(sel.key(ctx.handle, ctx.image)):
        return None
    return sel.explain(ctx.handle, ctx.image)


# ----------------------------------------------------------------------------------


@st.fragment(key="attr_panel")
def attribution_panel(ctx: ui.PageContext, specs) -> None:
    """The pickers and the result; reruns on its own when one of its widgets changes."""
    left, right = st.columns([2, 3], gap="large")
    with left:
        sel = pickers(ctx, specs)
    if sel is not None:
        with right:
            e = explanation(ctx, sel)
            if e is not None:
                result_view(ctx, sel, e)
    state.sync_url()


@st.fragment(key="attr_result")
def result_view(ctx: ui.PageContext, sel: Selection, e: interpret.Explanation) -> None:
    """The heatmap and its controls: a new colour map or opacity reruns this alone (and
    the comparison, drawn in the same colours)."""
    with ui.guard("drawing the result"):
        result_panel(ctx, sel, e, under=lambda: trust_side(ctx, sel, e))
    state.sync_url()


def trust_side(ctx: ui.PageContext, sel: Selection, e: interpret.Explanation) -> None:
    """Under the heatmap: how far to trust it, and the box a person draws around the
    object (the panel then adds the pointing game and the mass inside).  A check or a
    box reruns this panel and the comparison, whose badges and boxes show the same
    results (:data:`VIEWS`): neither is left stale."""
    with ui.guard("the trust panel"):
        trust.trust_panel(ctx, sel.spec, e, rerun=VIEWS)
    if not ctx.present:
        # a toggle, not an expander: an expander's content is built and sent on every
        # run (the photo figure, ~100 kB), a toggle's only while it is on
        with ui.guard("the region"):
            if st.toggle(MARK_REGION, key="w_mark_region",
                         help="Draw a box around the object; each map is then checked against it."):
                trust.region_picker(ctx, rerun=VIEWS)


@st.fragment(key="attr_compare")
def comparison_panel(ctx: ui.PageContext, specs) -> None:
    with ui.guard("the comparison"):
        comparison(ctx, specs)
    state.sync_url()


def main() -> None:
    ctx = ui.setup("Attributions", "🔥",
                   "Which parts of the photo made the model decide, according to a dozen methods.")
    if ctx is None:
        return
    from ui import tasks

    ctx = tasks.scores_before_nms(ctx)  # a detector's box scores before its NMS, when ticked
    specs = interpret.methods(ctx.handle)
    attribution_panel(ctx, specs)
    st.divider()
    comparison_panel(ctx, specs)
    ui.finish()


with ui.guard("this page"):  # the last safety net: never a traceback
    main()
