"""What a segmentation, multi-label, binary or regression model says, drawn: the
predicted mask over the photo with a legend and each class's share of the pixels (and
invisible click targets, so that a click names a segment), the labels' independent
probabilities against a threshold, and a single probability or value.  Data in,
``go.Figure`` out; visitor-supplied labels go through :func:`interpret.words.plotly_text`."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go

from ..words import plotly_text
from ._base import BAR_COLOR, HIGHLIGHT_COLOR, _layout, image_trace, to_uint8_rgb
from .features import CLASS_PALETTE

GRID = "rgba(128,128,128,0.2)"


def segment_colors(n: int) -> np.ndarray:
    """An RGB colour per class index (n x 3 uint8), from the dashboard's class palette,
    cycling after its last colour."""
    rgb = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in CLASS_PALETTE]
    return np.array([rgb[i % len(rgb)] for i in range(max(1, n))], dtype=np.uint8)


def mask_overlay(photo, mask: np.ndarray, n_classes: int, opacity: float = 0.5) -> np.ndarray:
    """The photo with each pixel tinted by its class's colour (``opacity`` of the
    colour); pixels the model does not see (mask -1) are left as they are.  H x W x 3
    uint8 at the photo's size."""
    base = to_uint8_rgb(photo).astype(np.float32)
    if base.shape[:2] != mask.shape:
        raise ValueError(f"the mask is {mask.shape} but the photo is {base.shape[:2]}")
    colors = segment_colors(n_classes).astype(np.float32)
    seen = mask >= 0
    tint = colors[np.clip(mask, 0, None)]
    a = float(np.clip(opacity, 0.0, 1.0))
    out = base.copy()
    out[seen] = (1 - a) * base[seen] + a * tint[seen]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def click_grid(mask: np.ndarray, step: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(xs, ys) of the pixel centres a segmentation figure listens to for clicks: a
    grid about 64 points on its long side (a click lands on the nearest)."""
    h, w = mask.shape
    step = step or max(1, int(round(max(h, w) / 64)))
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    return xs.ravel(), ys.ravel()


def segmentation_figure(photo, segmentation, opacity: float = 0.5, height: Optional[int] = None,
                        selected: Optional[np.ndarray] = None, title: Optional[str] = None) -> go.Figure:
    """The predicted mask over the photo (``segmentation``: an
    :class:`interpret.Segmentation`), a legend entry per class present with its share of
    the pixels, and an invisible grid of click points whose ``customdata`` is (x, y,
    class index) in the photo's pixels (``st.plotly_chart(on_select=...,
    selection_mode="points")`` gets them).  ``selected``: an H x W boolean region to
    outline (the segment being explained)."""
    mask = segmentation.mask
    n = len(segmentation.labels)
    img = mask_overlay(photo, mask, n, opacity)
    if selected is not None and selected.shape == mask.shape:
        edge = selected & ~(np.roll(selected, 1, 0) & np.roll(selected, -1, 0)
                            & np.roll(selected, 1, 1) & np.roll(selected, -1, 1))
        img[edge] = (255, 255, 255)
    h, w = mask.shape
    data = [image_trace(img, name="mask", hover=False, photo=True)]
    colors = segment_colors(n)
    for c in segmentation.classes:
        r, g, b = (int(v) for v in colors[c.index])
        data.append(go.Scatter(
            x=[None], y=[None], mode="markers", name=f"{plotly_text(c.label)} ({c.share:.1%})",
            marker=dict(size=12, color=f"rgb({r},{g},{b})", symbol="square"), hoverinfo="skip"))
    xs, ys = click_grid(mask)
    cls = mask[ys, xs]
    names = [plotly_text(segmentation.labels[i]) if i >= 0 else "not seen" for i in cls]
    data.append(go.Scatter(
        x=xs, y=ys, mode="markers", marker=dict(size=max(4, int(600 / max(h, w) * (xs[1] - xs[0] if len(xs) > 1 else 1))),
                                                 opacity=0.0, color="white"),
        customdata=np.stack([xs, ys, cls], axis=1), text=names, showlegend=False, name="",
        hovertemplate="%{text}<br>x %{x}, y %{y}<extra></extra>"))
    layout = _layout(title, height or 420, legend=dict(orientation="h", y=-0.02, yanchor="top", x=0),
                     clickmode="event+select", dragmode=False)
    fig = go.Figure(data, layout)
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5], showgrid=False, zeroline=False)
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], showgrid=False, zeroline=False,
                     scaleanchor="x")
    return fig


def point_from_selection(selection) -> Optional[Tuple[float, float, int]]:
    """The (x, y, class) a person clicked on a :func:`segmentation_figure`, from
    Streamlit's selection state; None when nothing was clicked (or the click was
    outside the part of the photo the model sees)."""
    if selection is None:
        return None
    sel = selection.get("selection", selection) if isinstance(selection, dict) else getattr(selection, "selection", None)
    points = (sel or {}).get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, dict):  # Streamlit may hand an array over as {"0": x, "1": y, ...}
            try:
                cd = [cd[k] for k in sorted(cd, key=lambda k: int(k))]
            except (TypeError, ValueError):
                cd = None
        if cd is not None and len(cd) >= 3 and int(cd[2]) >= 0:
            return float(cd[0]), float(cd[1]), int(cd[2])
    return None


def labels_figure(labels: Sequence[str], probabilities: Sequence[float], threshold: float = 0.5,
                  height: Optional[int] = None, highlight: Optional[int] = None) -> go.Figure:
    """A multi-label model's answer: every label's own (sigmoid) probability as a bar,
    in the order given, with the threshold as a line; labels at or above it in the
    accent colour (``highlight``: one more label's position to mark)."""
    p = np.asarray(probabilities, dtype=np.float64)
    names = [plotly_text(l) for l in labels]
    colors = [HIGHLIGHT_COLOR if (v >= threshold or i == highlight) else BAR_COLOR for i, v in enumerate(p)]
    n = len(p)
    bars = go.Bar(x=p, y=names, orientation="h", marker_color=colors, customdata=list(range(n)),
                  text=[f"{v:.1%}" for v in p], textposition="outside", cliponaxis=False,
                  hovertemplate="%{y}: %{x:.1%}<extra></extra>")
    layout = _layout(None, height or max(160, 26 * n + 60), margin=dict(l=0, r=40, t=10, b=30),
                     shapes=[dict(type="line", x0=threshold, x1=threshold, y0=-0.5, y1=n - 0.5,
                                  line=dict(color="#888", dash="dash"))],
                     xaxis=dict(range=[0, 1.08], tickformat=".0%", gridcolor=GRID, title="probability (each label on its own)"),
                     yaxis=dict(autorange="reversed"), showlegend=False)
    return go.Figure([bars], layout)
