"""An object detector's answer, drawn: the photo with each detection's box outlined in
its class's colour and labelled with its class and score, and a click target at each
box's centre (``customdata`` = the detection's position in the list), so that
``st.plotly_chart(on_select=..., selection_mode="points")`` names the box clicked.
A Mask R-CNN's instance masks (:attr:`interpret.Detection.mask`) are painted over the
photo in the same colour as their box (:func:`paint_masks`).
:func:`outline_box` draws a box on any image figure (an attribution map).  Data in,
``go.Figure`` out; visitor-supplied labels go through :func:`interpret.words.plotly_text`."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from ..words import plotly_text
from ._base import _layout, image_trace, to_uint8_rgb
from .tasks import segment_colors


def _rgb(index: int, n: int) -> str:
    r, g, b = (int(v) for v in segment_colors(max(n, index + 1))[index])
    return f"rgb({r},{g},{b})"


#: how much of a mask's colour covers the photo under it
MASK_OPACITY = 0.45


def _rgb_values(index: int, n: int) -> np.ndarray:
    return np.asarray(segment_colors(max(n, index + 1))[index], dtype=np.float32)


def paint_masks(img: np.ndarray, detections: Sequence, n_classes: int, selected: Optional[int] = None,
                opacity: float = MASK_OPACITY) -> np.ndarray:
    """``img`` (H x W x 3 uint8, the photo) with each detection's instance mask
    (``Detection.mask``: a boolean array over its box, see
    :func:`interpret.detection.mask_origin`) blended in its class's colour at
    ``opacity`` (``selected``: the others at a third of it), later detections over
    earlier ones; detections without a mask leave the photo as it is.  Returns a new
    array."""
    from ..detection import mask_origin

    out = img.astype(np.float32)
    h, w = out.shape[:2]
    for i, d in enumerate(detections):
        m = getattr(d, "mask", None)
        if m is None:
            continue
        m = np.asarray(m, dtype=bool)
        c0, r0, mw, mh = mask_origin(d.box)
        if m.shape != (mh, mw):
            continue  # not this box's mask: never paint it somewhere else
        a = opacity if selected is None or i == selected else opacity / 3
        # the part of the box inside the photo
        x0, y0, x1, y1 = max(c0, 0), max(r0, 0), min(c0 + mw, w), min(r0 + mh, h)
        if x1 <= x0 or y1 <= y0:
            continue
        sub = m[y0 - r0:y1 - r0, x0 - c0:x1 - c0]
        region = out[y0:y1, x0:x1]
        region[sub] = (1 - a) * region[sub] + a * _rgb_values(int(d.index), n_classes)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def outline_box(fig: go.Figure, box, color: str = "white", width: int = 3, dash: Optional[str] = None) -> go.Figure:
    """``fig`` with the rectangle ``box`` = (x0, y0, x1, y1) drawn on it, in the image's
    pixels (returns the same figure)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    fig.add_shape(type="rect", x0=x0 - 0.5, y0=y0 - 0.5, x1=x1 - 0.5, y1=y1 - 0.5,
                  line=dict(color=color, width=width, dash=dash), fillcolor="rgba(0,0,0,0)")
    return fig


def detections_figure(photo, detections: Sequence, n_classes: int, selected: Optional[int] = None,
                      height: Optional[int] = None, title: Optional[str] = None) -> go.Figure:
    """The photo with every detection of ``detections`` (:class:`interpret.Detection`,
    boxes in the photo's pixels) outlined and labelled "label 87%", and a Mask R-CNN's
    masks painted in their box's colour (:func:`paint_masks`); ``selected``: the
    position of the one being explained (drawn thicker, the others dimmed)."""
    img = paint_masks(to_uint8_rgb(photo), detections, n_classes, selected)
    h, w = img.shape[:2]
    fig = go.Figure([image_trace(img, name="photo", hover=False, photo=True)])
    xs, ys, text, idx = [], [], [], []
    for i, d in enumerate(detections):
        color = _rgb(int(d.index), n_classes)
        dim = selected is not None and i != selected
        outline_box(fig, d.box, color="rgba(200,200,200,0.5)" if dim else color,
                    width=4 if i == selected else 2)
        name = f"{plotly_text(d.label)} {d.score:.0%}"
        fig.add_annotation(x=d.box[0], y=d.box[1], text=name, showarrow=False, xanchor="left",
                           yanchor="bottom", font=dict(color="white", size=11),
                           bgcolor="rgba(80,80,80,0.6)" if dim else color, borderpad=1)
        xs.append((d.box[0] + d.box[2]) / 2)
        ys.append((d.box[1] + d.box[3]) / 2)
        text.append(name)
        idx.append(i)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", customdata=idx, text=text, name="",
                             marker=dict(size=18, opacity=0.01, color="white"), showlegend=False,
                             hovertemplate="%{text}<extra>click to explain</extra>"))
    fig.update_layout(_layout(title, height or 420, clickmode="event+select", dragmode=False))
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5], showgrid=False, zeroline=False)
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], showgrid=False, zeroline=False, scaleanchor="x")
    return fig


def detection_from_selection(selection) -> Optional[int]:
    """The position of the detection a click on :func:`detections_figure` picked, or None."""
    points = ((selection or {}).get("selection") or {}).get("points") or []
    for p in points:
        cd = p.get("customdata")
        if cd is None:
            continue
        v = cd[0] if isinstance(cd, (list, tuple)) else cd
        try:
            return int(v)
        except (TypeError, ValueError):
            return None
    return None
