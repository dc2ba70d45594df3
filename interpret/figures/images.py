"""Images: a photo (with the crop the model keeps), its colour channels, a heatmap
overlay with its colour bar, and several overlays side by side."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go

from ._base import (ImageLike, _base_layout, _clean_axes, _colorbar_trace,
                    image_trace, to_uint8_rgb)

def image_figure(
    image: ImageLike, title: Optional[str] = None, height: Optional[int] = None,
    box: Optional[Tuple[float, float, float, float]] = None, box_label: str = "",
    photo: bool = True,
) -> go.Figure:
    """A picture as one image trace (JPEG for photos, PNG with ``photo=False``), axes
    hidden, pixels square.  ``box`` (left, top, right, bottom) draws a rectangle, e.g.
    the region the model's centre crop keeps."""
    arr = to_uint8_rgb(image)
    fig = go.Figure(image_trace(arr, photo=photo))
    if box is not None:
        l, t, r, b = box
        fig.add_shape(type="rect", x0=l - 0.5, y0=t - 0.5, x1=r - 0.5, y1=b - 0.5,
                      line=dict(color="#FFD400", width=3, dash="dash"))
        if box_label:
            fig.add_annotation(x=l, y=t, text=box_label, showarrow=False, xanchor="left",
                               yanchor="bottom", font=dict(color="#FFD400", size=13),
                               bgcolor="rgba(0,0,0,0.55)")
    _clean_axes(fig)
    fig.update_yaxes(scaleanchor="x", autorange="reversed")
    return _base_layout(fig, title, height)


def channel_views(image: ImageLike, tint: bool = True) -> list:
    """The red, green and blue channels of an RGB image as three images: each shown in
    its own colour (``tint``) or in grey."""
    arr = to_uint8_rgb(image)
    out = []
    for c in range(3):
        view = np.zeros_like(arr)
        if tint:
            view[..., c] = arr[..., c]
        else:
            view[:] = arr[..., c:c + 1]
        out.append(view)
    return out


def heatmap_overlay_figure(
    image: ImageLike, colormap: str = "jet", title: Optional[str] = None,
    height: Optional[int] = None, colorbar: bool = True,
    low: str = "low", high: str = "high", colorbar_title: str = "importance", photo: bool = True,
) -> go.Figure:
    """An overlay (or a colour-mapped heatmap) as one PNG, with a colour bar explaining
    the colours."""
    fig = image_figure(image, title=title, height=height, photo=photo)
    if colorbar:
        fig.add_trace(_colorbar_trace(colormap, colorbar_title, low, high))
        fig.update_layout(margin=dict(l=0, r=0, t=36 if title else 4, b=0))
    return fig


def comparison_figure(
    images: Sequence[ImageLike], titles: Sequence[str], height: int = 300,
    subtitles: Optional[Sequence[str]] = None, photo: bool = True,
) -> go.Figure:
    """Up to a handful of images on one row, one PNG trace per panel."""
    from plotly.subplots import make_subplots

    n = max(1, len(images))
    names = [
        f"<b>{t}</b>" + (f"<br><span style='font-size:11px'>{s}</span>" if s else "")
        for t, s in zip(titles, subtitles or [""] * len(titles))
    ]
    fig = make_subplots(rows=1, cols=n, subplot_titles=names, horizontal_spacing=0.015)
    for i, img in enumerate(images):
        fig.add_trace(image_trace(img, name=titles[i], photo=photo), row=1, col=i + 1)
    _clean_axes(fig)
    for i in range(n):
        key = "yaxis" if i == 0 else f"yaxis{i + 1}"
        fig.layout[key].update(scaleanchor="x" if i == 0 else f"x{i + 1}", autorange="reversed")
    fig.update_annotations(font=dict(size=13))
    return _base_layout(fig, None, height, margin=dict(l=0, r=0, t=48, b=0))


