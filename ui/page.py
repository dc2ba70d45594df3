"""What every page does first: page config, the shared sidebar, the current model,
photo and predictions, and the class being explained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import streamlit as st

import interpret
from interpret import words

from . import access, compute, sidebar, state
from .errors import guard

_CSS = """
<style>
/* a little air and calmer headings; nothing that fights Streamlit's theme */
.block-container {padding-top: 2.2rem; padding-bottom: 3rem;}
[data-testid="stSidebar"] [data-testid="stImage"] img {border-radius: 6px;}
[class*="st-key-plain_caption_"] {font-size: 1.15rem; line-height: 1.5; padding: .6rem .9rem;
  border-radius: .5rem; background: rgba(79, 70, 229, .08); border-left: 4px solid #4F46E5;
  margin: .4rem 0 .8rem 0;}
[class*="st-key-plain_caption_"] p {font-size: 1.15rem; margin: 0;}
</style>
"""


@dataclass
class PageContext:
    handle: interpret.ModelHandle
    image: compute.ImageChoice
    predictions: List[interpret.Prediction]
    target: int
    contrast: Optional[int]
    present: bool
    segmentation: Optional[interpret.Segmentation] = None  # a segmentation model's answer

    @property
    def target_label(self) -> str:
        return self.handle.label(self.target)

    @property
    def top(self) -> interpret.Prediction:
        """The model's prediction (its most likely class)."""
        return self.predictions[0]

    def predicted(self, index: int) -> bool:
        """Whether class ``index`` is what the model says (its top class)."""
        return bool(self.predictions) and self.predictions[0].index == index

    def probability(self, index: int) -> float:
        for p in self.predictions:
            if p.index == index:
                return p.probability
        return float("nan")

    def rank(self, index: int) -> int:
        for i, p in enumerate(self.predictions):
            if p.index == index:
                return i
        return -1


def configure(title: str, icon: str) -> None:
    st.set_page_config(page_title=title, page_icon=icon, layout="wide",
                       initial_sidebar_state="auto")  # "auto": collapsed on narrow screens
    st.html(_CSS)


def plain(markup: str) -> None:
    """A plain-language caption (presentation mode's voice).  ``markup``: a sentence of
    :mod:`interpret.words` (Markdown whose visitor-supplied parts are escaped); it is
    drawn as Markdown, never as HTML (the box is the container's CSS).  The containers'
    keys are numbered from 0 in each full run (:func:`setup`), so they stay the same
    from run to run; a fragment's rerun continues the count, so none repeats."""
    n = st.session_state.get("_plain_ids", 0)
    st.session_state["_plain_ids"] = n + 1
    with st.container(key=f"plain_caption_{n}"):
        st.markdown(markup)


def _valid_class(value, n: int) -> Optional[int]:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n:
        return value
    return None


def setup(title: str, icon: str, subtitle: str = "", tab_title: Optional[str] = None) -> Optional[PageContext]:
    """Configure the page, draw the sidebar and the title, and return the context; None
    (after showing why) when there is no usable model or photo."""
    configure(f"{tab_title or title} · Interpret", icon)
    st.session_state["_plain_ids"] = 0  # plain()'s container keys, per full run
    compute.server_settings()
    if not access.gate():
        st.stop()
    compute.runtime()  # torch threads and device from the server settings, once per process
    state.view()
    model, image = sidebar.draw()
    st.title(f"{title}")
    if subtitle:
        st.caption(subtitle)
    sidebar.main_area_errors()  # where the person is looking
    for note in state.take_link_notes():  # markup, the link's values escaped (state._read_url)
        st.info(note, icon=":material/link:")
    if model.handle is None or image is None:
        st.error("No model could be loaded; pick another one in the sidebar.", icon=":material/error:")
        state.sync_url()
        return None
    preds = None
    with guard("computing the predictions"):
        preds = compute.predictions(model.handle, image)
        if model.handle.task == "detection":  # one row per class for the pickers (issue 20)
            from . import tasks

            preds = tasks.detection_rows(tasks.all_detections(model.handle, image), model.handle.labels)
    if model.handle.task == "embedding":  # no classes: one row for the pickers (ui/imagetext.py)
        preds = [interpret.Prediction(0, "similarity to the reference photo", None, 0.0, 0.0, "embedding")]
    if not preds:
        state.sync_url()
        return None
    segmentation = None
    if isinstance(preds, interpret.Segmentation):  # one row per class for the pickers
        from . import tasks

        segmentation, preds = preds, tasks.rows(preds, model.handle.labels)
    n = len(model.handle.labels)
    view = state.view()
    target = _valid_class(view["target"], n)
    if view["target"] is not None and target is None:
        st.warning(f"Class {words.text(view['target'])} does not exist in this model; showing the "
                   "top prediction instead.", icon=":material/warning:")
        view["target"] = None
    contrast = _valid_class(view["contrast"], n)
    if contrast is not None and contrast == (target if target is not None else preds[0].index):
        contrast = None
    view["contrast"] = contrast
    ctx = PageContext(model.handle, image, preds, target if target is not None else preds[0].index,
                      contrast, state.presentation(), segmentation)
    state.sync_url()
    return ctx


def finish() -> None:
    """Call at the end of a page: writes the final view to the URL."""
    state.sync_url()


def class_labels(ctx: PageContext) -> Dict[int, str]:
    """``"label  (37.9%)"`` for every class (``"label  (#i)"`` below 0.1%), for the
    searchable class pickers; built once per (model, photo) for everyone."""
    def build() -> Dict[int, str]:
        return {p.index: (f"{p.label}  ({p.probability:.1%})"
                          if p.probability is not None and p.probability >= 0.001
                          else f"{p.label}  (#{p.index})") for p in ctx.predictions}

    return compute.cached(("class_labels", ctx.handle.fingerprint(), ctx.image.hash), build)


def class_format(ctx: PageContext) -> Callable[[Optional[int]], str]:
    labels = class_labels(ctx)

    def fmt(i: Optional[int]) -> str:
        if i is None:
            return "none"
        return labels.get(i) or f"{ctx.handle.label(i)}  (#{i})"

    return fmt
