"""Images: a photo (with the crop the model keeps), its colour channels, a heatmap
overlay with its colour bar, and several overlays side by side.

Each figure is built in one ``go.Figure(data, layout)`` call (validated once) and holds
one image trace: a picture is one JPEG or PNG, whatever it shows."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go

from ._base import ImageLike, _colorbar_trace, _hidden_axis, _layout, image_trace, to_uint8_rgb


#: length of an overlay's colour bar (pixels): at most the height of the smallest map
#: drawn (a 390-pixel phone shows a ~270-pixel map)
COLORBAR_PX = 220


def _image_axes() -> dict:
    """Hidden axes with square pixels, y downwards (image coordinates)."""
    return dict(xaxis=_hidden_axis(), yaxis=_hidden_axis(scaleanchor="x", autorange="reversed"))


def image_figure(
    image: ImageLike, title: Optional[str] = None, height: Optional[int] = None,
    box: Optional[Tuple[float, float, float, float]] = None, box_label: str = "",
    photo: bool = True,
) -> go.Figure:
    """A picture as one image trace (JPEG for photos, PNG with ``photo=False``), axes
    hidden, pixels square.  ``box`` (left, top, right, bottom) draws a rectangle, e.g.
    the region the model's centre crop keeps."""
    arr = to_uint8_rgb(image)
    shapes, notes = [], []
    if box is not None:
        l, t, r, b = box
        shapes.append(dict(type="rect", x0=l - 0.5, y0=t - 0.5, x1=r - 0.5, y1=b - 0.5,
                           line=dict(color="#FFD400", width=3, dash="dash")))
        if box_label:
            notes.append(dict(x=l, y=t, text=box_label, showarrow=False, xanchor="left",
                              yanchor="bottom", font=dict(color="#FFD400", size=13),
                              bgcolor="rgba(0,0,0,0.55)"))
    return go.Figure(data=[image_trace(arr, photo=photo)],
                     layout=_layout(title, height, shapes=shapes, annotations=notes, **_image_axes()))


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
    """An overlay (or a colour-mapped heatmap) as one image, with a colour bar explaining
    the colours.  The bar is :data:`COLORBAR_PX` long whatever the figure's height: in
    a narrow column the square image shrinks with the width, and a bar of 90% of the
    height stood twice as tall as the map beside it."""
    data = [image_trace(to_uint8_rgb(image), photo=photo)]
    if colorbar:
        data.append(_colorbar_trace(colormap, colorbar_title, low, high,
                                    length_px=min(COLORBAR_PX, int(0.9 * height)) if height else COLORBAR_PX))
    return go.Figure(data=data, layout=_layout(title, height, **_image_axes()))


def side_by_side(images: Sequence[ImageLike], gap: int = 0) -> Tuple[np.ndarray, list]:
    """Images on one row as one H x W x 3 array (each scaled to the first one's height,
    ``gap`` white pixels apart), and the (left, right) pixel columns of each."""
    from PIL import Image

    arrs = [to_uint8_rgb(im) for im in images]
    if not arrs:
        return np.full((1, 1, 3), 255, np.uint8), []
    h = arrs[0].shape[0]
    fitted = []
    for a in arrs:
        if a.shape[0] != h:
            w = max(1, round(a.shape[1] * h / a.shape[0]))
            a = np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BILINEAR))
        fitted.append(a)
    width = sum(a.shape[1] for a in fitted) + gap * (len(fitted) - 1)
    out = np.full((h, width, 3), 255, np.uint8)
    spans, x = [], 0
    for a in fitted:
        out[:, x:x + a.shape[1]] = a
        spans.append((x, x + a.shape[1]))
        x += a.shape[1] + gap
    return out, spans


def comparison_figure(
    images: Sequence[ImageLike], titles: Sequence[str], height: int = 300,
    subtitles: Optional[Sequence[str]] = None, photo: bool = True, gap: Optional[int] = None,
) -> go.Figure:
    """A handful of images on one row, each titled, as ONE image trace: the panels are
    laid side by side into one picture (one JPEG to send and decode instead of one per
    panel) and the titles are annotations above each panel."""
    arrs = [to_uint8_rgb(im) for im in images]
    if gap is None:
        gap = max(4, arrs[0].shape[1] // 28) if arrs else 4
    strip, spans = side_by_side(arrs, gap)
    subs = list(subtitles) if subtitles is not None else [""] * len(titles)
    notes = [dict(x=(l + r - 1) / 2, y=1.0, xref="x", yref="paper", xanchor="center",
                  yanchor="bottom", showarrow=False, font=dict(size=13),
                  text=f"<b>{t}</b>" + (f"<br><span style='font-size:11px'>{s}</span>" if s else ""))
             for (l, r), t, s in zip(spans, titles, subs)]
    trace = image_trace(strip, photo=photo, hover=False)
    W = strip.shape[1]
    return go.Figure(data=[trace], layout=_layout(
        None, height, margin=dict(l=0, r=0, t=48, b=0), annotations=notes,
        xaxis=_hidden_axis(range=[-0.5, W - 0.5]),
        yaxis=_hidden_axis(scaleanchor="x", autorange="reversed")))
