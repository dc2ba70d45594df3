"""Trust figures: the deletion / insertion curves against random maps, ROAD's curves,
the agreement matrix of several methods, and a photo to draw a region on.  Data in
(the results of :mod:`interpret.trust`), ``go.Figure`` out; no Streamlit."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import plotly.graph_objects as go

from ..words import plotly_text
from ._base import FONT, ImageLike, _base_layout, _clean_axes, image_trace, to_uint8_rgb

__all__ = ["faithfulness_figure", "road_figure", "agreement_figure", "region_figure",
           "box_from_selection", "TRUST_COLORS"]

#: deletion, insertion, random
TRUST_COLORS = {"deletion": "#E45756", "insertion": "#4C78A8", "random": "#9D9D9D"}


def faithfulness_figure(result, height: int = 260, title: Optional[str] = None,
                        numbers: bool = True) -> go.Figure:
    """The two curves of a :class:`~interpret.trust.Faithfulness` (fraction of pixels
    hidden or shown -> class probability), each with the random maps' curve dotted.
    ``numbers=False`` (presentation mode) leaves the AUCs out of the legend.  A
    regressor's curves (``result.unit`` "value") are drawn in its value, no percentage:
    the axis, the hover and the areas are in the value's unit."""
    f = np.asarray(result.fractions) * 100
    fig = go.Figure()
    value = getattr(result, "unit", "probability") == "value"
    scale, suffix, fmt = (1.0, "", ".4g") if value else (100.0, "%", ".1f")

    def name(label: str, value: float) -> str:
        return f"{label} (area {value:.2f})" if numbers else label

    c = TRUST_COLORS
    # the map's curve, then random maps' dotted one; deletion (hiding), then insertion
    for kind, verb, done in (("deletion", "hiding", "hidden"), ("insertion", "showing", "shown")):
        fig.add_trace(go.Scatter(x=f, y=np.asarray(getattr(result, kind)) * scale, mode="lines",
                                 name=name(f"{verb} the map's pixels first", getattr(result, f"{kind}_auc")),
                                 line=dict(color=c[kind], width=2.5),
                                 hovertemplate=f"%{{x:.0f}}% {done}: %{{y:{fmt}}}{suffix}<extra>{kind}</extra>"))
        fig.add_trace(go.Scatter(x=f, y=np.asarray(getattr(result, f"random_{kind}")) * scale, mode="lines",
                                 name=name(f"{verb} random pixels", getattr(result, f"random_{kind}_auc")),
                                 line=dict(color=c[kind], width=1.5, dash="dot"),
                                 hovertemplate=f"%{{x:.0f}}% {done} at random: %{{y:{fmt}}}{suffix}<extra></extra>"))
    fig.update_xaxes(title=dict(text="% of the photo hidden / shown", font=dict(size=12)),
                     range=[0, 100], ticksuffix="%", showgrid=True, gridcolor="rgba(128,128,128,.2)")
    minus = getattr(result, "sign", 1) < 0
    region = getattr(result, "over_region", False)
    ytitle = ("minus the value" if minus else "value") if value else (
        "mean probability over the region" if region else "probability")
    fig.update_yaxes(title=dict(text=ytitle, font=dict(size=12)),
                     rangemode="normal" if value else "tozero", ticksuffix=suffix, showgrid=True,
                     gridcolor="rgba(128,128,128,.2)")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.42, x=0, font=dict(size=11)),
                      hovermode="x unified")
    if title is None:  # class names are text in Plotly's HTML-like title
        title = f"Probability of “{plotly_text(result.target_label)}”"
        if value:
            title = f"{'Minus the value' if minus else 'Value'} of “{plotly_text(result.target_label)}”"
        elif result.contrast_label:
            title = (f"“{plotly_text(result.target_label)}” rather than "
                     f"“{plotly_text(result.contrast_label)}”")
        if region and not value:  # the curves are the class's mean probability over its pixels
            title = (f"{title}, over the region" if result.contrast_label else
                     f"Mean probability of “{plotly_text(result.target_label)}” over the region")
    # r=28: room for the last tick ("100%"), which Plotly drops when it would overflow
    fig = _base_layout(fig, title, height + 90, margin=dict(l=4, r=28, t=30, b=4))
    fig.update_layout(title=dict(font=dict(size=13)))
    return fig


def road_figure(road, label: str, height: int = 240, title: Optional[str] = None,
                unit: str = "probability") -> go.Figure:
    """ROAD's two curves (most relevant removed first, least relevant first) of a
    :class:`~interpret.trust.Road`; ``unit`` "value": a regressor's, in its value."""
    f = np.asarray(road.fractions) * 100
    scale = 1.0 if unit == "value" else 100.0
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=f, y=np.asarray(road.morf) * scale, mode="lines+markers",
                             name="most relevant removed first", line=dict(color=TRUST_COLORS["deletion"])))
    fig.add_trace(go.Scatter(x=f, y=np.asarray(road.lerf) * scale, mode="lines+markers",
                             name="least relevant removed first", line=dict(color=TRUST_COLORS["insertion"])))
    fig.update_xaxes(title="% of the photo removed and filled in", ticksuffix="%")
    if unit == "value":
        fig.update_yaxes(title=f"value of {plotly_text(label)}")
    else:
        fig.update_yaxes(title=f"probability of {plotly_text(label)}", ticksuffix="%", rangemode="tozero")
    fig.update_layout(legend=dict(orientation="h", y=-0.3, x=0, font=dict(size=11)))
    return _base_layout(fig, title, height, margin=dict(l=4, r=4, t=30 if title else 6, b=4))


def agreement_figure(agreement, height: int = 320, title: Optional[str] = None) -> go.Figure:
    """The rank-correlation matrix of an :class:`~interpret.trust.Agreement` as a
    heatmap (-1 blue, 0 white, 1 red), each cell labelled with its value."""
    m = np.asarray(agreement.matrix, dtype=float)
    labels = list(agreement.labels)
    text = [["n/a" if v != v else f"{v:.2f}" for v in row] for row in m]
    fig = go.Figure(go.Heatmap(
        z=np.nan_to_num(m, nan=0.0), x=labels, y=labels, zmin=-1, zmax=1,
        colorscale="RdBu", reversescale=True, text=text, texttemplate="%{text}",
        hovertemplate="%{y} vs %{x}: rank correlation %{text}<extra></extra>",
        colorbar=dict(title=dict(text="agreement", side="right"), thickness=12,
                      tickvals=[-1, 0, 1], ticktext=["opposite", "unrelated", "same"])))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(font=FONT)
    return _base_layout(fig, title, height, margin=dict(l=4, r=4, t=30 if title else 6, b=4))


def region_figure(image: ImageLike, box: Optional[Tuple[float, float, float, float]] = None,
                  height: Optional[int] = None, title: Optional[str] = None) -> go.Figure:
    """The photo as the model sees it, set up for drawing a box on it (Plotly's box
    select; Streamlit returns it as the chart's selection, see
    :func:`box_from_selection`).  ``box`` (x0, y0, x1, y1 in pixel-edge coordinates)
    is drawn when given."""
    arr = to_uint8_rgb(image)
    h, w = arr.shape[:2]
    fig = go.Figure(image_trace(arr, photo=True))
    # an invisible grid of points makes the image selectable by box select
    ys, xs = np.mgrid[0:h:8, 0:w:8]
    fig.add_trace(go.Scatter(x=xs.ravel(), y=ys.ravel(), mode="markers", showlegend=False,
                             marker=dict(size=6, opacity=0), hoverinfo="skip", name="pixels"))
    if box is not None:
        x0, y0, x1, y1 = box
        fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5, y1=y1 - 0.5,
                      line=dict(color="#FFD400", width=3))
    _clean_axes(fig)
    fig.update_xaxes(range=[-0.5, w - 0.5])
    fig.update_yaxes(range=[h - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(dragmode="select", selectdirection="any", newselection=dict(
        line=dict(color="#FFD400", width=3)), activeselection=dict(fillcolor="#FFD400", opacity=0.15))
    return _base_layout(fig, title, height)


def box_from_selection(selection, size: Tuple[int, int]) -> Optional[Tuple[float, float, float, float]]:
    """The box a person drew, from Streamlit's ``st.plotly_chart(..., on_select=...)``
    selection state (its ``box`` entries, in Plotly's image coordinates, where pixel j
    is centred on j), as (x0, y0, x1, y1) in pixel-edge coordinates clipped to ``size``
    (h, w); None when nothing was drawn."""
    if selection is None:
        return None
    sel = selection.get("selection", selection) if isinstance(selection, dict) else getattr(selection, "selection", None)
    if sel is None:
        return None
    boxes = sel.get("box", []) if isinstance(sel, dict) else getattr(sel, "box", [])
    if not boxes:
        return None
    b = boxes[-1]
    xs, ys = b.get("x", []), b.get("y", [])
    if len(xs) < 2 or len(ys) < 2:
        return None
    h, w = size
    x0, x1 = sorted((float(xs[0]) + 0.5, float(xs[-1]) + 0.5))
    y0, y1 = sorted((float(ys[0]) + 0.5, float(ys[-1]) + 0.5))
    x0, x1 = max(0.0, x0), min(float(w), x1)
    y0, y1 = max(0.0, y0), min(float(h), y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (x0, y0, x1, y1)
