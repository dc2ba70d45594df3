"""The Trust panel and its friends, for the Attributions page (drawing only: every
number comes from :mod:`interpret.trust`).

* :func:`trust_panel` beside a heatmap: a plain-language badge (faithful / weak / no
  better than random; sanity check passed / failed / not run), a sentence a
  stakeholder understands, the two curves, ROAD and the sanity check on request
  (through the compute gate, with progress; any click stops them), and the pointing
  game and relevance mass for a region drawn with :func:`region_picker`.
* :func:`comparison_trust`: the agreement matrix of several maps with each map's
  faithfulness next to it.
* :func:`region_picker`: draw a box on the photo ("the object is here").
* :func:`report_downloads`: the report as HTML and PDF.

Presentation mode shows the badges and the sentence and hides the numbers.

Deletion and insertion run by themselves on the CAMs when they should take at most
:data:`AUTO_SECONDS` (estimated from this model's measured speed: on a GPU always; on
the 2-core CPU server once the layer's random maps are computed, see docs/trust.md);
otherwise the panel offers a button.

The texts a person (and the browser test) sees are the constants below.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import streamlit as st

import interpret
from interpret import words
from interpret.figures.trust import (agreement_figure, box_from_selection, faithfulness_figure,
                                     region_figure)

from . import compute, state
from .page import PageContext, plain

log = logging.getLogger("interpret.app")

#: run deletion/insertion without asking when the estimate is at most this (seconds)
AUTO_SECONDS = 2.0
#: the families whose maps are checked automatically (when cheap enough)
AUTO_FAMILIES = ("cam",)
#: the measures' settings (the backend's defaults); a page may pass others
SETTINGS: Dict[str, Any] = {"steps": 20, "baseline": "blur", "seeds": 3, "sanity_layers": None,
                            "auto_seconds": AUTO_SECONDS}


def _settings(settings: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    out = dict(SETTINGS)
    out.update(settings or {})
    return out

# -- visible texts (the browser test relies on TITLE, the badge words and the buttons)
TITLE = "How far to trust this map"
BADGE = {"faithful": "faithful", "weak": "weak", "no better than random": "no better than random"}
BADGE_COLOR = {"faithful": "green", "weak": "orange", "no better than random": "red"}
SANITY_BADGE = {"passed": "sanity check passed", "failed": "sanity check failed",
                None: "sanity check not run"}
SANITY_COLOR = {"passed": "green", "failed": "red", None: "gray"}
NOT_CHECKED = "faithfulness not checked yet"
CHECK_BUTTON = "Check faithfulness"
SANITY_BUTTON = "Run the sanity check"
ROAD_BUTTON = "Add ROAD"
HTML_BUTTON = "Download report (HTML)"
PDF_BUTTON = "Download report (PDF)"
REGION_HELP = "Draw a box on the photo around the object (box select), to see whether each map points at it."
CLEAR_REGION = "Clear the region"
COMPARE_TITLE = "Do the methods agree?"

HOT_WORD = {"jet": "red", "turbo": "red", "inferno": "bright yellow", "viridis": "yellow",
            "magma": "pale yellow", "plasma": "yellow", "hot": "white-hot", "greys": "white",
            "rdbu": "red"}


# ----------------------------------------------------------------------------------
# results (cached by content, shared by everyone on the server)


def _key(kind: str, ctx: PageContext, e: interpret.Explanation, settings: Mapping[str, Any],
         **extra) -> tuple:
    keep = ("sanity_layers",) if kind == "sanity" else ("steps", "baseline", "seeds")
    return ("trust", kind, ctx.handle.fingerprint(), ctx.image.hash, e.method, e.layer, e.target,
            getattr(getattr(e, "explained", None), "key", None), e.contrast, tuple(sorted(e.params.items())),
            tuple((k, settings[k]) for k in keep), tuple(sorted(extra.items())))


def cached_faithfulness(ctx: PageContext, e: interpret.Explanation,
                        settings: Optional[Mapping[str, Any]] = None) -> Optional[interpret.Faithfulness]:
    """The map's faithfulness if anyone computed it (with ROAD when that was added)."""
    cfg = _settings(settings)
    return (compute.lookup(_key("faithfulness", ctx, e, cfg, road=True))
            or compute.lookup(_key("faithfulness", ctx, e, cfg, road=False)))


def cached_sanity(ctx: PageContext, e: interpret.Explanation,
                  settings: Optional[Mapping[str, Any]] = None) -> Optional[interpret.SanityCheck]:
    return compute.lookup(_key("sanity", ctx, e, _settings(settings)))


def _progress(bar, label: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        bar.progress(frac, text=f"{label}: {done} of {total}. Click anything to stop.")
    return report


def _waiting(bar, label: str) -> Callable[[int], None]:
    def wait(position: int) -> None:
        bar.progress(0.0, text=f"{label}: the server is busy with other people's computations; "
                               f"you are number {position} in the queue.")
    return wait


def _gated(label: str, work: Callable[[Callable[[int, int], Any]], Any], handle=None) -> Any:
    """``work(progress)`` through the compute gate, with a progress bar that any click
    stops (Streamlit interrupts the run at the bar's next update; the backend leaves
    the model as it was)."""
    bar = st.progress(0.0, text=f"{label}: starting...")
    try:
        return compute.run_gated(work, progress=_progress(bar, label), on_wait=_waiting(bar, label),
                                 handle=handle)  # its forwards time-limited too
    finally:
        bar.empty()


def compute_faithfulness(ctx: PageContext, e: interpret.Explanation, road: bool = False,
                         settings: Optional[Mapping[str, Any]] = None) -> interpret.Faithfulness:
    """Deletion and insertion (and ROAD with ``road``), computed now through the gate."""
    cfg = _settings(settings)
    key = _key("faithfulness", ctx, e, cfg, road=road)
    out = compute.lookup(key)
    if out is None:
        label = "Checking the map with ROAD" if road else "Checking how faithful the map is"
        out = _gated(label, lambda prog: interpret.faithfulness(
            ctx.handle, ctx.image.image, e, steps=cfg["steps"], baseline=cfg["baseline"],
            seeds=cfg["seeds"], road=road, progress=prog), handle=ctx.handle)
    compute.store(key, out)  # shared, and kept for this session (it took seconds)
    return out


def compute_sanity(ctx: PageContext, e: interpret.Explanation,
                   settings: Optional[Mapping[str, Any]] = None) -> interpret.SanityCheck:
    cfg = _settings(settings)
    key = _key("sanity", ctx, e, cfg)
    out = compute.lookup(key)
    if out is None:
        out = _gated("Sanity check: randomising the model's layers one by one",
                     lambda prog: interpret.sanity_check(ctx.handle, ctx.image.image, e,
                                                         layers=cfg["sanity_layers"], progress=prog))
    compute.store(key, out)
    return out


def estimate(ctx: PageContext, e: interpret.Explanation,
             settings: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The backend's estimate of deletion/insertion's cost for this map."""
    cfg = _settings(settings)
    return interpret.trust.estimate(ctx.handle, ctx.image.image, e, steps=cfg["steps"],
                                    baseline=cfg["baseline"], seeds=cfg["seeds"])


def runs_automatically(ctx: PageContext, spec: interpret.MethodSpec, e: interpret.Explanation,
                       settings: Optional[Mapping[str, Any]] = None) -> bool:
    """Whether deletion/insertion run without a click: CAMs, when the estimate is at most
    ``auto_seconds`` (:data:`AUTO_SECONDS`)."""
    if spec.family not in AUTO_FAMILIES:
        return False
    cfg = _settings(settings)
    try:
        return float(estimate(ctx, e, cfg)["seconds"]) <= float(cfg["auto_seconds"])
    except interpret.InputError:
        return False


def _run_flag(kind: str, e: interpret.Explanation) -> str:
    return f"trust_run_{kind}_{e.method}"


def _request(kind: str, method: str, rerun: Optional[Sequence[str]] = None) -> None:
    """A check was asked for: noted for the panel's next run.  ``rerun``: the fragments
    (``@st.fragment(key=...)``) to rerun, the panel's own first, then every other one
    that shows the same badges, so that none of them is left saying "not checked" for
    a map that was just checked (a click in a fragment reruns only that fragment)."""
    st.session_state[f"trust_run_{kind}_{method}"] = True
    if rerun:
        st.rerun(scope=list(rerun))


# ----------------------------------------------------------------------------------
# the panel


def badges(f: Optional[interpret.Faithfulness], s: Optional[interpret.SanityCheck]) -> None:
    """The two plain-language badges."""
    row = st.container(horizontal=True)
    with row:
        if f is None:
            st.badge(NOT_CHECKED, icon=":material/help:", color="gray")
        else:
            st.badge(BADGE[f.verdict], icon=":material/verified:" if f.verdict == "faithful" else
                     ":material/warning:", color=BADGE_COLOR[f.verdict])
        status = s.status if s is not None else None
        st.badge(SANITY_BADGE[status], icon=":material/shuffle:", color=SANITY_COLOR[status])


def _region_lines(ctx: PageContext, e: interpret.Explanation) -> Optional[str]:
    box = current_region(ctx)
    if box is None:
        # a segment's own region: measured on it, no box to draw (interpret.localization(e))
        t = getattr(e, "explained", None)
        if t is None or getattr(t, "region", None) is None or t.kind == "box":
            return None  # a box: its own lines (_box_lines), in a box's words
        try:
            loc = interpret.localization(e)
        except interpret.InputError:
            return None
        return words.segment_localization(loc.hit, loc.mass, loc.area,
                                          t.sentence(ctx.handle.labels))
    loc = interpret.localization(e.heatmap, box)
    return (f"In the box you drew: the map's hottest point is **{'inside' if loc.hit else 'outside'}** "
            f"it, and **{loc.mass:.0%}** of the map lies inside (the box is {loc.area:.0%} of the photo).")


CONTEXT_BUTTON = "Measure the context outside the box"


def box_context(ctx: PageContext, e: interpret.Explanation,
                settings: Optional[Mapping[str, Any]] = None,
                run: bool = True) -> Optional["interpret.BoxContext"]:
    """How much the explained detection relies on context outside its box
    (:func:`interpret.box_context`, three images through the model, with the deletion
    curve's reference image): cached per model, photo, box and baseline; with ``run``,
    computed now (the light lane of the compute gate) when not cached.  None when the
    map is not of a box, or not computed."""
    t = getattr(e, "explained", None)
    if t is None or getattr(t, "kind", None) != "box":
        return None
    cfg = _settings(settings)
    key = ("box_context", ctx.handle.fingerprint(), ctx.image.hash, t.key, cfg["baseline"])
    handle, image = ctx.handle, ctx.image.image
    if not run:
        return compute.lookup(key)
    return compute.cached(key, lambda: compute.run_gated(
        lambda p: interpret.box_context(handle, image, e, baseline=cfg["baseline"], progress=p),
        handle=handle, light=True))


def _box_lines(ctx: PageContext, e: interpret.Explanation, cfg: Mapping[str, Any],
               rerun: Optional[Sequence[str]] = None) -> None:
    """Trust that follows the box (no annotation needed: the box is the detection's
    own): the pointing game and the map's mass inside the box, and how much the
    detection relies on context outside it, each as numbers and a sentence.  The
    context (three passes through the model) runs by itself when they are estimated at
    most ``auto_seconds``, as deletion/insertion do, else on a click."""
    t = getattr(e, "explained", None)
    if t is None or getattr(t, "kind", None) != "box" or t.pixels is None:
        return
    loc = interpret.localization(e.heatmap, t.pixels)
    est = interpret.trust.context.estimate_seconds(ctx.handle)
    asked = st.session_state.pop(_run_flag("box_context", e), False)
    c = box_context(ctx, e, cfg, run=asked or (est is not None and est <= float(cfg["auto_seconds"])))
    if not ctx.present:
        row = st.container(horizontal=True)
        row.metric("Strongest point", "inside the box" if loc.hit else "outside the box",
                   help="The pointing game: is the map's maximum inside the detected box?")
        row.metric("Map inside the box", f"{loc.mass:.0%}",
                   help=f"The share of the map's total inside the box; the box is {loc.area:.0%} of what "
                        "the model sees (a uniform map's share).")
        if c is not None and c.score > 0:
            row.metric("Score lost without the surroundings", f"{c.reliance:.0%}",
                       help="The detection's score with everything outside its box replaced by the "
                            f"deletion curve's reference ({cfg['baseline']}), against its score on the photo.")
    st.markdown(words.box_localisation(loc.hit, loc.mass, loc.area))
    if c is not None:
        st.markdown(words.box_context(c.score, c.box_only, c.context_only, c.baseline))
    else:
        st.button(CONTEXT_BUTTON, icon=":material/crop_free:", on_click=_request,
                  args=("box_context", e.method, rerun), key=f"trust_context_{e.method}",
                  help="The box's score with everything outside it, and with the box itself, replaced "
                       "as the deletion curve replaces pixels: 3 passes through the model"
                       + (f" (~{est:.0f} s)." if est is not None else "."))


def trust_panel(ctx: PageContext, spec: interpret.MethodSpec, explanation: interpret.Explanation,
                settings: Optional[Mapping[str, Any]] = None,
                rerun: Optional[Sequence[str]] = None) -> Optional[interpret.Faithfulness]:
    """The Trust panel for one map: badges, the sentence, the curves (not in
    presentation mode), ROAD and the sanity check on request, and the drawn region's
    pointing game and relevance mass.  ``settings``: steps, baseline, seeds,
    sanity_layers (default :data:`SETTINGS`).  ``rerun``: on a page made of fragments,
    the keys of the fragments a check reruns (this panel's first, then those that show
    the same badges, e.g. a comparison).  Returns the faithfulness (or None when not
    computed)."""
    e = explanation
    cfg = _settings(settings)
    st.markdown(f"**{TITLE}**")
    f = cached_faithfulness(ctx, e, cfg)
    flag = _run_flag("faithfulness", e)
    if f is None and (st.session_state.pop(flag, False) or runs_automatically(ctx, spec, e, cfg)):
        f = compute_faithfulness(ctx, e, settings=cfg)
    road_flag = _run_flag("road", e)
    if st.session_state.pop(road_flag, False):
        f = compute_faithfulness(ctx, e, road=True, settings=cfg)
    s = cached_sanity(ctx, e, cfg)
    sanity_flag = _run_flag("sanity", e)
    if s is None and st.session_state.pop(sanity_flag, False):
        s = compute_sanity(ctx, e, cfg)
    badges(f, s)
    hot = HOT_WORD.get(state.get("cmap"), "brightest")
    if f is not None:
        # markup from interpret.words (labels escaped there): the quantities the verdict
        # rests on, or in presentation mode the verdict in words alone
        plain(words.trust_plain(f.verdict, hot) if ctx.present else f.sentence_for())
    region = _region_lines(ctx, e)
    if region:
        st.markdown(region)
    from .errors import guard

    with guard("the box's own measures"):  # a detection: its box needs no annotation (issue 20)
        _box_lines(ctx, e, cfg, rerun)
    buttons = st.container(horizontal=True)
    if f is None:
        est = None
        try:
            est = estimate(ctx, e, cfg)
        except interpret.InputError:
            pass
        helptext = (f"About {est['forwards']} passes through the model (~{est['seconds']:.0f} s)."
                    if est else None)
        buttons.button(CHECK_BUTTON, icon=":material/fact_check:", on_click=_request,
                       args=("faithfulness", e.method, rerun), key=f"trust_check_{e.method}",
                       help=helptext)
    if s is None:
        buttons.button(SANITY_BUTTON, icon=":material/shuffle:", on_click=_request,
                       args=("sanity", e.method, rerun), key=f"trust_sanity_{e.method}",
                       help="Replaces the model's weights by random ones, block after block from the "
                            "output down (on a copy), and checks that the map changes (Adebayo et al. "
                            "2018). One explanation per block: slow.")
    if f is not None and f.road is None and not ctx.present:
        buttons.button(ROAD_BUTTON, icon=":material/add_road:", on_click=_request,
                       args=("road", e.method, rerun), key=f"trust_road_{e.method}",
                       help="ROAD (Rong et al. 2022) removes pixels and fills them in from their "
                            "neighbours, so the shape of the hole gives nothing away; it joins the verdict.")
    if ctx.present:
        return f
    if f is not None:
        curves = compute.figure(("trust_curves", _key("faithfulness", ctx, e, cfg,
                                                     road=f.road is not None)),
                                lambda: faithfulness_figure(f, height=250))
        st.plotly_chart(curves, key=f"trust_curves_{e.method}", config={"displayModeBar": False})
        with st.expander("The numbers behind the verdict", icon=":material/functions:"):
            for r in f.reasons:
                st.markdown(f"- {r}")
            st.caption(f"Deletion area {f.deletion_auc:.3f} (random maps {f.random_deletion_auc:.3f} ± "
                       f"{f.random_deletion_auc_std:.3f}), insertion area {f.insertion_auc:.3f} (random "
                       f"maps {f.random_insertion_auc:.3f} ± {f.random_insertion_auc_std:.3f}); "
                       f"{f.steps} steps, {f.baseline} baseline, {f.seeds} random maps on a "
                       f"{f.grid[0]}×{f.grid[1]} grid; {f.forwards} passes, {f.seconds:.1f} s.")
            if f.road is not None:
                amt = (lambda v: f"{v:.4g}") if getattr(f, "unit", "") == "value" else (lambda v: f"{v:.1%}")
                st.caption(f"ROAD: {amt(f.road.morf_mean)} with the most relevant pixels removed first, "
                           f"{amt(f.road.lerf_mean)} with the least relevant first (gap {f.road.gap:+.3f}).")
    if s is not None:
        st.caption(f"{s.sentence} Spearman after the full cascade {s.correlation:.2f}, SSIM "
                   f"{s.final_ssim:.2f}; {len(s.steps)} blocks, {s.seconds:.0f} s.")
    return f


# ----------------------------------------------------------------------------------
# comparison


def comparison_trust(ctx: PageContext, explanations,
                     settings: Optional[Mapping[str, Any]] = None) -> Optional[interpret.Agreement]:
    """The agreement matrix of several maps of this photo and class (a list of
    explanations, or a dict label -> explanation) and each map's faithfulness badge
    (computed only where it is cached or cheap).  Returns the agreement."""
    items = list(explanations.items()) if isinstance(explanations, Mapping) else [
        (interpret.get_method(e.method).label, e) for e in explanations]
    if len(items) < 2:
        return None
    st.markdown(f"**{COMPARE_TITLE}**")
    # the maps' identities (not the maps): the agreement and its figure are computed once
    maps = tuple((label, _key("map", ctx, e, SETTINGS)) for label, e in items)
    agr = compute.cached(("trust_agreement",) + maps, lambda: interpret.agreement(dict(items)))
    left, right = st.columns([3, 2], gap="medium")
    with left:
        if ctx.present:  # no correlation values: the agreement in words
            plain(words.agreement_plain(_mean_agreement(agr), len(items)))
        else:
            fig = compute.figure(("trust_agreement",) + maps, lambda: agreement_figure(agr, height=300))
            st.plotly_chart(fig, key="trust_agreement", config={"displayModeBar": False})
            st.caption("Spearman's rank correlation between the maps: 1 = the same order of pixels, "
                       "0 = unrelated. Maps that disagree cannot all be right.")
    with right:
        region = current_region(ctx)
        for label, e in items:
            f = cached_faithfulness(ctx, e, settings)
            spec = interpret.get_method(e.method)
            if f is None and runs_automatically(ctx, spec, e, settings):
                f = compute_faithfulness(ctx, e, settings=settings)
            s = cached_sanity(ctx, e, settings)
            st.markdown(f"**{words.text(label)}**")
            badges(f, s)
            bits = []
            if f is not None and not ctx.present:
                bits.append(f"insertion {f.insertion_auc:.2f} vs {f.random_insertion_auc:.2f} random")
            if region is not None:
                loc = interpret.localization(e.heatmap, region)
                bits.append(f"box: {'hit' if loc.hit else 'miss'}, {loc.mass:.0%} inside")
            elif getattr(getattr(e, "explained", None), "region", None) is not None:
                try:
                    loc = interpret.localization(e)  # a segment's own region, or a detection's box
                    what = "detected box" if e.explained.kind == "box" else "segment"
                    bits.append(f"{what}: {'hit' if loc.hit else 'miss'}, {loc.mass:.0%} on it, "
                                f"{1 - loc.mass:.0%} on context outside")
                except interpret.InputError:
                    pass
            if bits:
                st.caption(" · ".join(bits))
    return agr


def _mean_agreement(agr: interpret.Agreement) -> float:
    """The mean rank correlation over the pairs of maps."""
    import numpy as np

    m = np.asarray(agr.matrix, dtype=float)
    pairs = m[np.triu_indices(len(m), k=1)]
    pairs = pairs[~np.isnan(pairs)]
    return float(pairs.mean()) if pairs.size else float("nan")


# ----------------------------------------------------------------------------------
# drawn region


def _region_key(ctx: PageContext) -> str:
    return f"trust_region_{ctx.image.hash}"


def current_region(ctx: PageContext) -> Optional[Tuple[float, float, float, float]]:
    """The box drawn on this photo in this session (model-input pixels), if any."""
    return st.session_state.get(_region_key(ctx))


def _clear_region(key: str, rerun: Optional[Sequence[str]] = None) -> None:
    st.session_state.pop(key, None)
    st.session_state.pop("w_trust_region", None)
    if rerun:
        st.rerun(scope=list(rerun))


def _on_region(key: str, size: Tuple[int, int], rerun: Optional[Sequence[str]] = None) -> None:
    """A box was drawn: kept before the page runs, so the panels drawn above the picker
    (and, with ``rerun``, the other fragments) show it in the same run."""
    new = box_from_selection(st.session_state.get("w_trust_region"), size)
    if new is not None:
        st.session_state[key] = new
    if rerun:
        st.rerun(scope=list(rerun))


def region_picker(ctx: PageContext, rerun: Optional[Sequence[str]] = None
                  ) -> Optional[Tuple[float, float, float, float]]:
    """The photo as the model sees it, with box select: the box a person draws is kept
    for this photo in this session and returned as (x0, y0, x1, y1) in model-input
    pixels (None until one is drawn).  ``rerun``: the fragments a new box reruns (those
    that show the pointing game), as in :func:`trust_panel`."""
    key = _region_key(ctx)
    box = st.session_state.get(key)
    size = tuple(int(v) for v in ctx.handle.input_size)  # (height, width) of the model's view

    def build():
        view = ctx.handle.preprocessing.model_view(ctx.image.image.convert("RGB"))
        return region_figure(view, box=box, height=320)

    fig = compute.figure(("trust_region", ctx.handle.fingerprint(), ctx.image.hash, box), build)
    event = st.plotly_chart(fig, key="w_trust_region",
                            on_select=lambda: _on_region(key, size, rerun), selection_mode=("box",),
                            config={"displayModeBar": True, "modeBarButtonsToRemove": ["lasso2d"]})
    new = box_from_selection(event, size)
    if new is not None and new != box:
        st.session_state[key] = new
        box = new
    if box is None:
        st.caption(REGION_HELP)
    else:
        st.caption(f"Box: x {box[0]:.0f}–{box[2]:.0f}, y {box[1]:.0f}–{box[3]:.0f} (model-input pixels).")
        st.button(CLEAR_REGION, on_click=_clear_region, args=(key, rerun), key="trust_clear_region",
                  icon=":material/close:")
    return box


# ----------------------------------------------------------------------------------
# report


def _report_kwargs(ctx: PageContext, items: Sequence[interpret.Explanation],
                   settings: Mapping[str, Any]) -> Dict[str, Any]:
    faith = {e.method: f for e in items if (f := cached_faithfulness(ctx, e, settings)) is not None}
    sanity = {e.method: s for e in items if (s := cached_sanity(ctx, e, settings)) is not None}
    # the concepts the person computed on the Concepts page for this photo and class
    from . import concepts as _concepts

    targets = {e.target for e in items}
    classes = all(getattr(getattr(e, "explained", None), "kind", "class") == "class" for e in items)
    cs = (_concepts.for_report(ctx.handle, ctx.image, next(iter(targets)))
          if len(targets) == 1 and classes else None)
    return {"faithfulness": faith, "sanity": sanity, "box": current_region(ctx),
            "steps": settings["steps"], "baseline": settings["baseline"],
            "colormap": state.get("cmap") or "jet", "opacity": float(state.get("opacity") or 0.5),
            "plain": ctx.present,  # presentation mode: the report in the same plain words
            "concepts": cs}


def report_downloads(ctx: PageContext, explanations,
                     settings: Optional[Mapping[str, Any]] = None) -> None:
    """Two download buttons: the trust report of ``explanations`` (one, a list, or a
    dict label -> explanation) as HTML and as PDF.  The report is made when a button is
    clicked (maps whose faithfulness nobody computed yet get it then)."""
    if isinstance(explanations, interpret.Explanation):
        items = [explanations]
    elif isinstance(explanations, Mapping):
        items = list(explanations.values())
    else:
        items = list(explanations)
    seen, unique = set(), []
    for e in items:  # one card per method
        if e.method not in seen:
            seen.add(e.method)
            unique.append(e)
    if not unique:
        return
    handle, image = ctx.handle, ctx.image.image
    kwargs = _report_kwargs(ctx, unique, _settings(settings))
    name = f"trust_{unique[0].method}_{unique[0].target_label}".replace(" ", "_")[:60]

    from interpret.report import html_to_pdf, report_html

    def html() -> str:
        return report_html(handle, image, unique, **kwargs)

    def pdf() -> bytes:
        return html_to_pdf(html())

    row = st.container(horizontal=True)
    row.download_button(HTML_BUTTON, html, file_name=f"{name}.html", mime="text/html",
                        icon=":material/description:", on_click="ignore", key="trust_report_html")
    row.download_button(PDF_BUTTON, pdf, file_name=f"{name}.pdf", mime="application/pdf",
                        icon=":material/picture_as_pdf:", on_click="ignore", key="trust_report_pdf")
