"""Outputs: what the model predicts for the photo, and how sure it is."""

from __future__ import annotations

import streamlit as st

import ui
from interpret import figures, words
from ui import state, views
from ui.widgets import target_picker


def _on_bar_select() -> None:
    """A click on a bar picks that class to explain."""
    event = st.session_state.get("top_bars")
    points = (event or {}).get("selection", {}).get("points", [])
    if points and points[0].get("customdata") is not None:
        cd = points[0]["customdata"]
        state.set("target", int(cd[0] if isinstance(cd, (list, tuple)) else cd))


def main() -> None:
    ctx = ui.setup("Outputs", "📊",
                   "What the model predicts for this photo, and how sure it is.")
    if ctx is None:
        return
    if ctx.handle.task != "classification":  # segmentation, multi-label, binary, regression
        from ui import tasks

        with ui.guard("the outputs"):
            tasks.outputs(ctx)
        ui.finish()
        return
    preds = ctx.predictions
    top = preds[0]
    probs = [p.probability for p in preds]
    summary = figures.prediction_summary(probs)
    entropy, max_entropy = summary["entropy"], summary["max_entropy"]

    if ctx.present:
        ui.plain(words.prediction_plain(top.label, top.probability,
                                        [(p.label, p.probability) for p in preds[1:3]]))

    left, right = st.columns([3, 2], gap="large")
    with left:
        with ui.guard("the top-k chart"):
            head = st.container()
            k = 10
            if not ctx.present:
                k = st.slider("Classes shown", 3, 30, help="The k most likely classes.",
                              **state.bound("topk"))
            head.subheader(f"Top {k} predictions")
            st.plotly_chart(views.top_bars(ctx.handle, ctx.image, preds, k, ctx.target),
                            key="top_bars", on_select=_on_bar_select, selection_mode="points",
                            config={"displayModeBar": False})
            st.caption("Click a bar to explain that class on the other pages. Red: the class "
                       "being explained.")
    with right:
        with ui.guard("the summary"):
            st.subheader("How sure is it?")
            eff = summary["effective_classes"]
            like = ("the model is practically certain" if eff < 1.5 else
                    f"like hesitating between about **{eff:.0f}** equally likely classes")
            if ctx.present:  # no entropy in presentation mode: the same in words
                st.markdown(f"The model gives ***{words.text(top.label)}*** "
                            f"{words.percent(top.probability)}: {like}.")
            else:
                a, b = st.columns(2)
                a.metric("Confidence", f"{top.probability:.1%}",
                         help="The probability the model gives its top class.")
                b.metric("Entropy", f"{entropy:.2f} bits",
                         help=f"0 bits: certain; {max_entropy:.2f} bits: all {len(probs)} classes "
                              "equally likely.")
                st.markdown(
                    f"**Confidence** is the probability of the top class: {top.probability:.0%} for "
                    f"*{words.text(top.label)}*, out of {len(probs)} classes.  \n"
                    f"**Entropy** measures how spread out the guesses are: at {entropy:.1f} bits, "
                    f"{like} (0 bits = certain, {max_entropy:.1f} = no idea at all).")
            st.subheader("Explain a class")
            target = target_picker(ctx)
            st.caption(f"The other pages now explain **{words.text(ctx.handle.label(target))}**.")
            try:
                st.page_link("pages/4_Attributions.py", label="See what made the model say it",
                             icon=":material/arrow_forward:", query_params=state.url_params())
            except Exception:  # noqa: BLE001 - page run on its own (tests)
                pass

    with ui.guard("the full distribution"):
        st.subheader("All classes")
        log = False
        if not ctx.present:
            log = st.toggle("Logarithmic scale", help="Shows the long tail of unlikely classes.",
                            **state.bound("log"))
        st.plotly_chart(views.distribution(ctx.handle, ctx.image, preds, log, ctx.rank(ctx.target)),
                        key="distribution", config={"displayModeBar": False})
        n, head = summary["classes"], summary["head"]
        st.caption(f"Every one of the {n} classes, most to least likely. The top {head} hold "
                   f"{summary['head_mass']:.1%} of the probability; the other {n - head} share "
                   f"{1 - summary['head_mass']:.1%}.")
    ui.finish()


with ui.guard("this page"):  # the last safety net: never a traceback
    main()
