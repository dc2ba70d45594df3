"""Feature visualisation: galleries of images or patches, the optimisation trace, and
the embedding of an image set coloured by class."""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go

from ..words import plotly_text
from ._base import (BAR_COLOR, HIGHLIGHT_COLOR, ImageLike, _base_layout, _clean_axes, jpeg_data_uri, png_data_uri)

CLASS_PALETTE = (
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1",
    "#FF9DA7", "#9C755F", "#BAB0AC", "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D",
    "#DA16FF", "#222A2A", "#B68100", "#750D86", "#EB663B", "#511CFB",
)


def class_colors(labels: Sequence[str]) -> "dict[str, str]":
    """A colour per distinct label: the most frequent first (ties: first seen), from
    :data:`CLASS_PALETTE`, cycling after its last colour."""
    counts: "dict[str, int]" = {}
    first: "dict[str, int]" = {}
    for i, lab in enumerate(labels):
        counts[lab] = counts.get(lab, 0) + 1
        first.setdefault(lab, i)
    order = sorted(counts, key=lambda lab: (-counts[lab], first[lab]))
    return {lab: CLASS_PALETTE[k % len(CLASS_PALETTE)] for k, lab in enumerate(order)}


def image_grid_figure(
    images: Sequence[ImageLike], titles: Optional[Sequence[str]] = None,
    hover: Optional[Sequence[str]] = None, cols: int = 3, height: Optional[int] = None,
    photo: bool = True, gap: float = 0.02,
) -> go.Figure:
    """Small images (e.g. dataset-example patches) on a grid of ``cols`` columns, one
    JPEG (or PNG) trace per cell, each with an optional title above it and a hover
    text.  Cells keep square pixels; the figure's height follows the number of rows
    unless given."""
    from plotly.subplots import make_subplots

    n = len(images)
    cols = max(1, min(int(cols), n or 1))
    rows = max(1, int(math.ceil(n / cols)))
    names = list(titles) if titles is not None else None
    lines = max((t.count("<br>") + 1 for t in names), default=0) if names else 0
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=gap,
                        vertical_spacing=min(0.3, (0.05 + 0.06 * lines) if names else gap))
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        text = hover[k] if hover is not None else (names[k] if names else "")
        fig.add_trace(go.Image(
            source=jpeg_data_uri(img) if photo else png_data_uri(img), name=text,
            hovertemplate=f"{text}<extra></extra>" if text else None,
            hoverinfo="skip" if not text else None,
        ), row=r + 1, col=c + 1)
    _clean_axes(fig)
    for k in range(rows * cols):
        key = "yaxis" if k == 0 else f"yaxis{k + 1}"
        fig.layout[key].update(scaleanchor="x" if k == 0 else f"x{k + 1}", autorange="reversed")
    fig.update_annotations(font=dict(size=11))
    if height is None:
        height = int(8 + rows * (300 / max(cols, 1) + 16 * lines + 4))
    return _base_layout(fig, None, height, margin=dict(l=0, r=0, t=16 * lines + 4, b=0))


def optimization_trace_figure(trace: Sequence[float], height: int = 220,
                              value_name: str = "mean activation") -> go.Figure:
    """How an activation maximization went: the objective at each step."""
    y = np.asarray(trace, dtype=np.float64)
    fig = go.Figure(go.Scatter(
        x=np.arange(1, y.size + 1), y=y, mode="lines", line=dict(color=BAR_COLOR, width=2),
        hovertemplate=f"step %{{x}}<br>{value_name} %{{y:.3g}}<extra></extra>"))
    fig.update_xaxes(title_text="step", showgrid=False, zeroline=False)
    fig.update_yaxes(title_text=value_name, gridcolor="rgba(128,128,128,0.2)", zeroline=False)
    return _base_layout(fig, None, height, margin=dict(l=0, r=0, t=8, b=0))


def embedding_figure(
    coords: np.ndarray, labels: Sequence[str], names: Sequence[str],
    probabilities: Optional[Sequence[float]] = None,
    thumbnails: Optional[Sequence[ImageLike]] = None, thumb_fraction: float = 0.11,
    selected: Optional[int] = None, axis_titles: Tuple[str, str] = ("", ""),
    height: int = 520,
) -> go.Figure:
    """Images as points in a 2-D embedding, one trace (and legend entry) per
    predicted class, coloured by :func:`class_colors`.  Each point carries
    ``customdata = [image index, name, probability]`` so that a click can be mapped
    back to its image (Plotly shows no images in hover labels).  With
    ``thumbnails`` (one small image per point) each thumbnail is drawn just above its
    point, ``thumb_fraction`` of the plot's span wide; ``selected`` rings one point."""
    xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    n = xy.shape[0]
    if len(labels) != n or len(names) != n:
        raise ValueError(f"{n} points but {len(labels)} labels and {len(names)} names")
    probs = np.full(n, np.nan) if probabilities is None else np.asarray(probabilities, dtype=np.float64)
    colors = class_colors(labels)
    fig = go.Figure()
    for lab, color in colors.items():
        idx = [i for i in range(n) if labels[i] == lab]
        fig.add_trace(go.Scatter(
            # class and file names are text in Plotly's HTML-like legend and hover
            x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=plotly_text(lab),
            marker=dict(color=color, size=11, line=dict(color="white", width=1)),
            customdata=[[i, plotly_text(names[i]), float(probs[i])] for i in idx],
            hovertemplate=("<b>%{customdata[1]}</b><br>predicted <i>" + plotly_text(lab).replace("%", "%%")
                           + "</i>" + ("" if probabilities is None else " (%{customdata[2]:.0%})")
                           + "<extra></extra>"),
        ))
    span_x = float(np.ptp(xy[:, 0])) if n else 1.0
    span_y = float(np.ptp(xy[:, 1])) if n else 1.0
    span_x = span_x if span_x > 1e-12 else 1.0
    span_y = span_y if span_y > 1e-12 else 1.0
    pad_top = 0.0
    if thumbnails is not None:
        sx, sy = thumb_fraction * span_x, thumb_fraction * span_y * 1.4
        pad_top = sy * 1.1
        for i, thumb in enumerate(thumbnails):
            fig.add_layout_image(dict(
                source=jpeg_data_uri(thumb, quality=80), xref="x", yref="y",
                x=xy[i, 0], y=xy[i, 1] + 0.015 * span_y, sizex=sx, sizey=sy,
                xanchor="center", yanchor="bottom", sizing="contain", layer="above"))
    if selected is not None and 0 <= selected < n:
        fig.add_trace(go.Scatter(
            x=[xy[selected, 0]], y=[xy[selected, 1]], mode="markers", showlegend=False,
            hoverinfo="skip", marker=dict(size=22, color="rgba(0,0,0,0)",
                                          line=dict(color=HIGHLIGHT_COLOR, width=3))))
    margin_x, margin_y = 0.08 * span_x, 0.08 * span_y
    if n:
        fig.update_xaxes(range=[xy[:, 0].min() - margin_x - (0.5 * thumb_fraction * span_x if thumbnails is not None else 0),
                                xy[:, 0].max() + margin_x + (0.5 * thumb_fraction * span_x if thumbnails is not None else 0)])
        fig.update_yaxes(range=[xy[:, 1].min() - margin_y, xy[:, 1].max() + margin_y + pad_top])
    fig.update_xaxes(title_text=axis_titles[0], showgrid=True, gridcolor="rgba(128,128,128,0.15)",
                     zeroline=False, showticklabels=False)
    fig.update_yaxes(title_text=axis_titles[1], showgrid=True, gridcolor="rgba(128,128,128,0.15)",
                     zeroline=False, showticklabels=False)
    fig.update_layout(legend=dict(title=dict(text="predicted class"), itemsizing="constant"),
                      hoverlabel=dict(align="left"), clickmode="event+select", dragmode="pan")
    return _base_layout(fig, None, height, margin=dict(l=0, r=0, t=8, b=0))

