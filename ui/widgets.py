"""Pickers several pages share: the layer, the target class, the contrast class."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import streamlit as st

import interpret
from interpret import words

from . import compute, state
from .page import PageContext, class_format


NO_CLASS = -1


def _shape(shape) -> str:
    if not shape:
        return "?"
    dims = list(shape[1:]) if len(shape) > 1 else list(shape)
    return "×".join(str(d) for d in dims)


def layer_infos(ctx: PageContext) -> List[interpret.LayerInfo]:
    """Layers whose output can be shown as maps (spatial, and used in the forward)."""
    return [i for i in interpret.list_layers(ctx.handle) if i.spatial and i.calls > 0]


def layer_label(info: interpret.LayerInfo, default: Optional[str]) -> str:
    indent = "\u2003" * max(0, info.depth - 1)
    star = "  ★ suggested" if info.name == default else ""
    return f"{indent}{info.name}  ·  {info.kind}  ·  {_shape(info.output_shape)}{star}"


def layer_options(ctx: PageContext) -> Tuple[List[str], Dict[str, str], Optional[str]]:
    """(names, labels, suggested layer) of the layers that can be shown as maps, built
    once per model for everyone (a ResNet-50 has ~150)."""
    def build():
        infos = layer_infos(ctx)
        default = interpret.default_layer(ctx.handle) if infos else None
        return [i.name for i in infos], {i.name: layer_label(i, default) for i in infos}, default

    return compute.cached(("layer_options", ctx.handle.fingerprint()), build)


def layer_picker(ctx: PageContext, label: str = "Layer", help: Optional[str] = None,
                 rerun: Optional[Sequence[str]] = None) -> Optional[str]:
    """A searchable layer picker listing the module tree (indented by depth) with each
    output shape; the backend's suggested layer is the default.  Returns the layer name
    (or None when the model has no spatial layer)."""
    names, labels, default = layer_options(ctx)
    if not names:
        st.info("This model has no layer with a spatial output to show.", icon=":material/info:")
        return None
    view_layer = state.get("layer")
    if view_layer is not None and view_layer not in labels:
        st.warning(f"Layer '{words.text(view_layer)}' cannot be shown for {words.text(ctx.handle.name)} (it does not "
                   "exist or has no spatial output); using the suggested layer.",
                   icon=":material/warning:")
        state.view()["layer"] = None
    chosen = st.selectbox(
        label, names, format_func=labels.get,
        help=help or "Every module of the network in forward order, indented by depth, with "
                     "its output shape (channels×height×width). Type to search. ★ marks the "
                     "layer suggested for class activation maps: the last block with a spatial "
                     "output.",
        **state.bound("layer", names, default, convert=lambda n: None if n == default else n,
                      rerun=rerun))
    return chosen


def target_picker(ctx: PageContext, label: str = "Class to explain",
                  rerun: Optional[Sequence[str]] = None) -> int:
    """Searchable picker over every class, most likely first; default: the top prediction."""
    options = [p.index for p in ctx.predictions]
    top = options[0]
    return st.selectbox(
        label, options, format_func=class_format(ctx),
        help="Type to search all classes. The default is the model's top prediction.",
        **state.bound("target", options, top, convert=lambda i: None if i == top else i, rerun=rerun))


def current_target(ctx: PageContext) -> int:
    """The class being explained now: the view's (a picker in a fragment may have
    changed it since ``ctx`` was made), else the top prediction."""
    t = state.get("target")
    n = len(ctx.predictions)
    return t if isinstance(t, int) and not isinstance(t, bool) and 0 <= t < n else ctx.predictions[0].index


def current_contrast(ctx: PageContext, target: int) -> Optional[int]:
    c = state.get("contrast")
    n = len(ctx.predictions)
    ok = isinstance(c, int) and not isinstance(c, bool) and 0 <= c < n and c != target
    return c if ok else None


def contrast_picker(ctx: PageContext, target: int, rerun: Optional[Sequence[str]] = None) -> Optional[int]:
    """Optional second class: explain 'target rather than contrast'."""
    # -1 stands for "none": a selectbox showing None would look empty
    options: List[int] = [NO_CLASS] + [p.index for p in ctx.predictions if p.index != target]
    fmt = class_format(ctx)
    chosen = st.selectbox(
        "Rather than (optional contrast class)", options,
        format_func=lambda i: "no contrast class" if i == NO_CLASS else fmt(i),
        help="Explain the difference between two classes: which pixels make the model say "
             "the first class rather than this one.",
        **state.bound("contrast", options, NO_CLASS, convert=lambda i: None if i == NO_CLASS else i,
                      rerun=rerun))
    return None if chosen == NO_CLASS else chosen
