"""What a segmentation, multi-label, binary or regression model says, on the Outputs
page (issue 19): the predicted mask over the photo with a legend and each class's
share of the pixels (a click on it picks the class to explain), every label's own
probability against a threshold, the positive class's probability, the value.

Only drawing: the numbers come from :func:`interpret.predict` (through
``ui.compute.predictions``), the figures from :mod:`interpret.figures`, the words from
:func:`words` below (numbers in, sentence out; labels escaped)."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import streamlit as st

import interpret
from interpret import figures
from interpret import words as w

from . import state

TASK_WORDS = {
    "multilabel": "a multi-label model: each label has its own probability (a sigmoid); "
                  "they need not add up to 100%",
    "binary": "a binary classifier: one output, the probability of its positive class (a sigmoid)",
    "regression": "a regressor: it outputs values, not probabilities",
    "segmentation": "a segmentation model: it names a class for every pixel",
}


def rows(segmentation: "interpret.Segmentation", labels: Sequence[str]) -> List[interpret.Prediction]:
    """One row per class of a segmentation model (the pickers' options), the classes
    present first by their share of the pixels; no probability (a share of the pixels
    is not one)."""
    present = [c.index for c in segmentation.classes]
    rest = [i for i in range(len(labels)) if i not in set(present)]
    return [interpret.Prediction(i, labels[i], None, float("nan"), None, "segmentation")
            for i in present + rest]


def labels_sentence(names: Sequence[Tuple[str, float]], threshold: float) -> str:
    """The labels a multi-label model gives at least ``threshold``, in words (names
    escaped): ``names`` is (label, probability), most likely first."""
    on = [(n, p) for n, p in names if p >= threshold]
    t = w.percent(threshold)
    if not on:
        best = names[0] if names else None
        tail = (f"; the most likely is ***{w.text(best[0])}*** at {w.percent(best[1])}"
                if best else "")
        return f"No label reaches {t}{tail}."
    listed = ", ".join(f"***{w.text(n)}*** ({w.percent(p)})" for n, p in on)
    return f"{len(on)} label{'s' if len(on) != 1 else ''} at or above {t}: {listed}."


def binary_sentence(label: str, p: float) -> str:
    """A binary model's answer in words: the positive class's probability, and which
    side of one half it is on."""
    side = "yes" if p >= 0.5 else "no"
    return (f"The model gives ***{w.text(label)}*** a probability of {w.percent(p)} "
            f"(a {side} at the usual 50% threshold).")


def segmentation_sentence(classes: Sequence[Tuple[str, float]]) -> str:
    """The classes a segmentation model finds, with their share of the pixels (names
    escaped); ``classes`` largest first."""
    if not classes:
        return "The model assigns no class to any pixel it sees."
    head = ", ".join(f"***{w.text(n)}*** ({s:.0%})" for n, s in classes[:4])
    more = f" and {len(classes) - 4} more" if len(classes) > 4 else ""
    return (f"The model finds {len(classes)} class{'es' if len(classes) != 1 else ''} in this "
            f"photo: {head}{more} of the pixels it sees.")


def _on_mask_click() -> None:
    point = figures.point_from_selection(st.session_state.get("seg_mask"))
    if point is not None:
        state.set("target", int(point[2]))


def outputs(ctx) -> None:
    """The Outputs page for a model whose task is not single-label classification."""
    task = ctx.handle.task
    st.caption(f"This is {TASK_WORDS.get(task, task)}.")
    if task == "segmentation":
        seg = ctx.segmentation
        names = [(c.label, c.share) for c in seg.classes]
        st.markdown(segmentation_sentence(names))
        opacity = st.slider("Mask opacity", 0.0, 1.0, 0.5, 0.05, key="w_seg_opacity")
        fig = figures.segmentation_figure(ctx.image.image, seg, opacity)
        st.plotly_chart(fig, key="seg_mask", on_select=_on_mask_click, selection_mode="points",
                        config={"displayModeBar": False})
        st.caption("Click a segment to explain its class on the other pages. The legend gives "
                   "each class's share of the pixels the model sees.")
        st.dataframe({"class": [c.label for c in seg.classes],
                      "share of the pixels": [f"{c.share:.1%}" for c in seg.classes],
                      "pixels": [c.pixels for c in seg.classes]}, hide_index=True)
        return
    preds = ctx.predictions
    if task == "multilabel":
        threshold = st.slider("Threshold", 0.05, 0.95, 0.5, 0.05, key="w_ml_threshold",
                              help="A label counts as present at or above this probability.")
        st.markdown(labels_sentence([(p.label, p.probability) for p in preds], threshold))
        st.plotly_chart(figures.labels_figure([p.label for p in preds], [p.probability for p in preds],
                                              threshold), key="labels_bars",
                        config={"displayModeBar": False})
        return
    if task == "binary":
        p = preds[0]
        st.metric(f"Probability of {p.label}", f"{p.probability:.1%}",
                  help="The sigmoid of the model's one output (its logit "
                       f"{p.logit:.3f}). Never a softmax: a softmax of one number is always 100%.")
        st.markdown(binary_sentence(p.label, p.probability))
        return
    if task == "regression":
        cols = st.columns(min(4, len(preds)))
        for i, p in enumerate(preds):
            cols[i % len(cols)].metric(p.label, f"{p.value:.4g}")
        st.caption("The model's raw output values (a regressor has no probabilities). On the "
                   "Attributions page you can ask what raises or lowers each value.")
        return
    st.warning(f"This page does not draw {w.text(task)} outputs yet.")


def target_sentence(target, labels: Sequence[str]) -> Optional[str]:
    """The explained target in words for a page (escaped), or None for a plain class."""
    if target is None or getattr(target, "kind", "class") == "class":
        return None
    return target.sentence(labels)


def map_caption(sentence: str, hot: str, class_specific: bool = True) -> str:
    """The sentence under a map of a target that is not a plain class (a label, an
    output, a segment): ``sentence`` is the target's own (already escaped,
    :meth:`interpret.targets.Target.sentence`)."""
    h = f"**{w.text(hot)}**"
    if not class_specific:
        return (f"The {h} areas are where this layer of the network reacts most strongly; this "
                f"map does not depend on what is explained ({sentence}).")
    return f"The {h} areas are what this method marks as driving the score explained: {sentence}."


REGION_KINDS = ("the whole class", "a segment I click", "a box I draw")


def task_target(ctx, target: int):
    """What the Attributions page explains for this model's task, from the class picked
    (``target``) and the task's own choices: for a binary model or a regressor, what
    raises or lowers the output; for a segmentation model, the whole class, a clicked
    segment of the mask (its connected region) or a box drawn on it.  Returns what
    :func:`interpret.explain` takes as ``target`` (an int for a plain class)."""
    task = ctx.handle.task
    if task in ("binary", "regression"):
        way = st.radio("Explain", ("what raises it", "what lowers it"), horizontal=True, key="w_sign",
                       help="The output's own score (its logit or value), or minus it: what pushes "
                            "the model towards a lower output.")
        return interpret.targets.output(int(target), sign=1 if way == "what raises it" else -1)
    if task != "segmentation" or ctx.segmentation is None:
        return target
    seg = ctx.segmentation
    how = st.radio("Region", REGION_KINDS, horizontal=True, key="w_region_kind",
                   help="The class's mean score over every pixel the model gives it, over one "
                        "segment (click it on the mask), or over a box you draw.")
    if how == REGION_KINDS[0]:
        return target
    memo_key = ("seg_target", ctx.image.hash, ctx.handle.fingerprint(), how)
    chosen = st.session_state.get("seg_target")
    chosen = chosen[1] if chosen and chosen[0] == memo_key else None
    selected = chosen.mask if chosen is not None and chosen.how == "mask" else None
    fig = figures.segmentation_figure(ctx.image.image, seg, 0.45, height=300, selected=selected)
    if how == REGION_KINDS[1]:
        event = st.plotly_chart(fig, key="w_seg_click", on_select="rerun", selection_mode="points",
                                config={"displayModeBar": False})
        point = figures.point_from_selection(event)
        if point is not None:
            chosen = seg.segment_at(point[0], point[1])
    else:
        fig.update_layout(dragmode="select")
        event = st.plotly_chart(fig, key="w_seg_box", on_select="rerun", selection_mode="box",
                                config={"displayModeBar": False})
        box = figures.box_from_selection(event, seg.mask.shape)
        if box is not None:
            chosen = interpret.targets.region(int(target), mask=box)
    if chosen is None:
        st.info("Click a segment of the mask." if how == REGION_KINDS[1] else
                "Draw a box on the mask (drag across it).", icon=":material/touch_app:")
        return target
    st.session_state["seg_target"] = (memo_key, chosen)
    st.caption(f"Explaining {chosen.sentence(ctx.handle.labels)}.")
    return chosen
