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
    "detection": "an object detector: it finds boxes, each with a class and a score",
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


def detection_rows(found: Sequence, labels: Sequence[str]) -> List[interpret.Prediction]:
    """One row per class of a detector (the pickers' options): the classes detected
    first, by their best score (``probability``), then the others (no probability)."""
    best: dict = {}
    for d in found:
        best[d.index] = max(best.get(d.index, 0.0), float(d.score))
    order = sorted(best, key=lambda i: -best[i]) + [i for i in range(len(labels)) if i not in best]
    return [interpret.Prediction(i, labels[i] if 0 <= i < len(labels) else f"class {i}", best.get(i),
                                 float("nan"), None, "detection") for i in order]


def detection_sentence(found: Sequence[Tuple[str, float]], threshold: float) -> str:
    """The detections at or above ``threshold`` in words (names escaped): ``found`` is
    (label, score) of every detection, best first."""
    on = [(n, p) for n, p in found if p >= threshold]
    t = w.percent(threshold)
    if not on:
        tail = (f"; the best scores {w.percent(found[0][1])} (***{w.text(found[0][0])}***)"
                if found else "")
        return f"The model finds no object scoring {t} or more{tail}."
    counts: dict = {}
    for n, _ in on:
        counts[n] = counts.get(n, 0) + 1
    listed = ", ".join(f"{c} ***{w.text(n)}***" for n, c in list(counts.items())[:6])
    more = f" and {len(counts) - 6} more classes" if len(counts) > 6 else ""
    return (f"The model finds {len(on)} object{'s' if len(on) != 1 else ''} scoring {t} or more: "
            f"{listed}{more}.")


def box_localisation_sentence(hit: bool, mass: float, area: float) -> str:
    """Where a box's map lies (:func:`interpret.words.box_localisation`)."""
    return w.box_localisation(hit, mass, area)


def box_contrast_sentence(ctx, explained) -> str:
    """"This box rather than that label" with both scores on the photo, for a resolved
    box target with a contrast (:func:`interpret.words.box_contrast`: when the detector
    keeps no detection of that label in the box, it says its score counts as 0)."""
    labels = ctx.handle.labels
    return w.box_contrast(labels[explained.index], labels[explained.contrast], explained.box_score or 0.0,
                          explained.contrast_score or 0.0, bool(explained.contrast_found),
                          explained.detector_threshold, explained.iou_threshold)


def detections(ctx) -> list:
    """Every detection of the photo, best first (cached by content; the light lane): the
    model's own, also while its scores are read before NMS (:func:`scores_before_nms`)."""
    from interpret.detection_prenms import original

    return all_detections(original(ctx.handle), ctx.image)


BEFORE_NMS = "Scores before NMS"


def scores_before_nms(ctx):
    """For a torchvision detector (Faster/Mask R-CNN, RetinaNet, FCOS), a checkbox:
    explain the box's score read before the detector's NMS and score threshold
    (:func:`interpret.detection_prenms.before_nms`); ``ctx`` with that view of the model
    when it is ticked, else ``ctx``.  Drawn outside the page's fragments, so that a
    change reruns the whole page and every part of it explains the same score."""
    from dataclasses import replace

    from interpret.detection_prenms import before_nms, offered

    if ctx.handle.task != "detection" or not offered(ctx.handle):
        return ctx
    on = st.checkbox(BEFORE_NMS, key="w_det_before_nms",
                     help="Read the box's score from the detector's candidates before its non-maximum "
                          "suppression and its score threshold: a perturbed photo whose detection falls "
                          "under the threshold then counts its small score, not 0. For occlusion, D-RISE "
                          "and the trust curves; the gradient maps of a box are the same either way.")
    if not on:
        return ctx
    return replace(ctx, handle=ctx.handle.runtime.memo("before_nms_view", lambda: before_nms(ctx.handle)))


def all_detections(handle, img) -> list:
    """Every detection of photo ``img`` (an ImageChoice), best first, whatever its score."""
    from . import compute

    return compute.cached(("detect", handle.fingerprint(), img.hash),
                          lambda: compute.run_gated(lambda _p: interpret.predict(handle, img.image, threshold=0.0),
                                                    handle=handle, light=True))


def _on_box_click() -> None:
    i = figures.detection_from_selection(st.session_state.get("det_boxes"))
    if i is not None:
        st.session_state["w_det_box"] = i  # the Attributions page's box picker


def _on_mask_click() -> None:
    point = figures.point_from_selection(st.session_state.get("seg_mask"))
    if point is not None:
        state.set("target", int(point[2]))


def outputs(ctx) -> None:
    """The Outputs page for a model whose task is not single-label classification."""
    task = ctx.handle.task
    if task in ("image-text", "embedding"):  # ui/imagetext.py (issue 20)
        from . import imagetext

        return imagetext.outputs(ctx)
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
    if task == "detection":
        dets = detections(ctx)
        threshold = st.slider("Score threshold", 0.0, 1.0, float(st.session_state.get("det_threshold", 0.5)),
                              0.05, key="w_det_threshold", help="A detection is shown at or above this score.")
        st.session_state["det_threshold"] = threshold  # kept for the Attributions page's boxes
        shown = [d for d in dets if d.score >= threshold]
        st.markdown(detection_sentence([(d.label, d.score) for d in dets], threshold))
        st.plotly_chart(figures.detections_figure(ctx.image.image, shown, len(ctx.handle.labels)),
                        key="det_boxes", on_select=_on_box_click, selection_mode="points",
                        config={"displayModeBar": False})
        st.caption("Click a box to explain it on the Attributions page.")
        st.dataframe({"class": [d.label for d in shown], "score": [f"{d.score:.1%}" for d in shown],
                      "box (x0, y0, x1, y1)": [", ".join(f"{v:.0f}" for v in d.box) for d in shown]},
                     hide_index=True)
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


def task_target(ctx, target: int, rerun: Optional[Sequence[str]] = None):
    """What the Attributions page explains for this model's task, from the class picked
    (``target``) and the task's own choices: for a binary model or a regressor, what
    raises or lowers the output; for a segmentation model, the whole class, a clicked
    segment of the mask (its connected region) or a box drawn on it.  Returns what
    :func:`interpret.explain` takes as ``target`` (an int for a plain class).
    ``rerun``: the page's fragments a new box or contrast reruns (those that explain
    the same target: the comparison and the report follow the picked box)."""
    task = ctx.handle.task
    if task in ("image-text", "embedding"):  # a prompt, or a reference photo (ui/imagetext.py)
        from . import imagetext

        return imagetext.task_target(ctx, target)
    if task in ("binary", "regression"):
        way = st.radio("Explain", ("what raises it", "what lowers it"), horizontal=True, key="w_sign",
                       help="The output's own score (its logit or value), or minus it: what pushes "
                            "the model towards a lower output.")
        return interpret.targets.output(int(target), sign=1 if way == "what raises it" else -1)
    if task == "detection":
        return _box_target(ctx, rerun)
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


def _shown_detections(ctx) -> list:
    """The detections at or above the Outputs page's threshold, best first."""
    return [d for d in detections(ctx) if d.score >= float(st.session_state.get("det_threshold", 0.5))]


def _rerun(rerun: Optional[Sequence[str]]) -> None:
    if rerun:
        st.rerun(scope=list(rerun))


def _on_det_click(rerun: Optional[Sequence[str]] = None) -> None:
    """A click on a box of the Attributions photo picks it (before the page draws the
    box list, so that every part of the page sees the same box)."""
    i = figures.detection_from_selection(st.session_state.get("w_det_click"))
    if i is not None:
        st.session_state["w_det_box"] = i
    _rerun(rerun)


def _box_target(ctx, rerun: Optional[Sequence[str]] = None):
    """The detection explained: a click on a box of the photo (or the list under it);
    the top detection until one is picked; and "rather than" another label in it."""
    dets = _shown_detections(ctx)
    if not dets:
        threshold = float(st.session_state.get("det_threshold", 0.5))
        raise interpret.InputError(f"The model finds no box scoring {threshold:.0%} or more in this photo; "
                                   "lower the score threshold on the Outputs page.")
    if not 0 <= int(st.session_state.get("w_det_box", 0)) < len(dets):
        st.session_state["w_det_box"] = 0
    names = [f"{i + 1}. {d.label} {d.score:.0%} at ({d.box[0]:.0f}, {d.box[1]:.0f})" for i, d in enumerate(dets)]
    pick = st.selectbox("Box", range(len(dets)), format_func=lambda i: names[i], key="w_det_box",
                        on_change=_rerun, args=(rerun,),
                        help="The detection to explain (or click it on the photo).")
    st.plotly_chart(figures.detections_figure(ctx.image.image, dets, len(ctx.handle.labels),
                                              selected=pick, height=300),
                    key="w_det_click", on_select=lambda: _on_det_click(rerun), selection_mode="points",
                    config={"displayModeBar": False})
    contrast = _box_contrast_picker(ctx, dets[pick], rerun)
    chosen = interpret.targets.box(dets[pick], contrast=contrast)
    st.caption(f"Explaining {chosen.sentence(ctx.handle.labels)}.")
    return chosen


NO_CONTRAST = -1
BACKGROUND = ("background", "__background__")


def _box_contrast_picker(ctx, det, rerun: Optional[Sequence[str]] = None) -> Optional[int]:
    """"Rather than" another label in the same box (None: the box's own score alone).
    Every label but the box's own and the background is offered, detected there or
    not: one the detector keeps no detection of in that box counts 0, and the words
    under the map say so."""
    labels = ctx.handle.labels
    options = [NO_CONTRAST] + [i for i, n in enumerate(labels)
                               if i != det.index and str(n).strip().lower() not in BACKGROUND]
    if st.session_state.get("w_det_contrast") not in options:
        st.session_state["w_det_contrast"] = NO_CONTRAST
    chosen = st.selectbox("Rather than (another label in this box)", options, key="w_det_contrast",
                          on_change=_rerun, args=(rerun,),
                          format_func=lambda i: "no other label" if i == NO_CONTRAST else str(labels[i]),
                          help="Explain why the model calls this box one thing rather than another: the "
                               "box's score minus the other label's score in the same box (0 when the "
                               "model keeps no detection of it there).")
    return None if chosen == NO_CONTRAST else int(chosen)


def for_method(target, spec):
    """``target`` as ``spec`` can explain it: a box's "rather than" label dropped for a
    method that does not depend on what is explained (Eigen-CAM, the activations):
    with it, :func:`interpret.explain` refuses ("a contrast has no effect")."""
    if getattr(target, "kind", None) == "box" and target.contrast is not None and not spec.contrastive:
        from dataclasses import replace

        return replace(target, contrast=None, contrast_found=None, contrast_score=None)
    return target


def picked_box(ctx):
    """The box target picked on the Attributions page (its box and contrast, read
    from the pickers' state), or None when the model is not a detector: what the
    Compare view and the report explain, so that they follow the picked box rather
    than the top detection of its class."""
    if ctx.handle.task != "detection":
        return None
    dets = _shown_detections(ctx)
    if not dets:
        return None
    pick = st.session_state.get("w_det_box", 0)
    pick = pick if isinstance(pick, int) and 0 <= pick < len(dets) else 0
    c = st.session_state.get("w_det_contrast", NO_CONTRAST)
    labels = ctx.handle.labels
    ok = isinstance(c, int) and c != NO_CONTRAST and 0 <= c < len(labels) and c != dets[pick].index
    return interpret.targets.box(dets[pick], contrast=int(c) if ok else None)
