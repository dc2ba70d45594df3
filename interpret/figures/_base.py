"""What every figure builder shares: image encodings (PNG / JPEG data URIs, so a
figure with a photo or hundreds of tiled maps stays a few tens of kilobytes), the
dashboard's colours and fonts, the common layout, image traces and colour bars."""

from __future__ import annotations

import base64
import io
from typing import Optional, Union

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from ..overlay import colormap_lut

ImageLike = Union[Image.Image, np.ndarray]

#: Colours used across the dashboard (Plotly's default blue, and an accent).
BAR_COLOR = "#4C78A8"
HIGHLIGHT_COLOR = "#E45756"
CHANNEL_COLORS = ("#E45756", "#54A24B", "#4C78A8")
FONT = dict(family="Source Sans Pro, Segoe UI, Helvetica, Arial, sans-serif", size=13)


# ----------------------------------------------------------------------------------
# Small helpers


def to_uint8_rgb(image: ImageLike) -> np.ndarray:
    """H x W x 3 uint8 from a PIL image or an array (H x W greys, floats in [0, 1] or 0-255)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.nan_to_num(arr.astype(np.float64))
        if arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an H x W x 3 image, got shape {arr.shape}")
    return arr[..., :3]


def png_bytes(image: ImageLike) -> bytes:
    """PNG encoding of an image (for downloads and for figure payloads)."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8_rgb(image), "RGB").save(buf, "PNG", compress_level=4)
    return buf.getvalue()


def png_data_uri(image: ImageLike) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def jpeg_data_uri(image: ImageLike, quality: int = 90) -> str:
    """Photos (and overlays on photos) compress 4-8x better as JPEG than as PNG."""
    buf = io.BytesIO()
    Image.fromarray(to_uint8_rgb(image), "RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hidden_axis(**extra) -> dict:
    """An axis with nothing drawn (images)."""
    return dict(visible=False, showgrid=False, zeroline=False, **extra)


def _layout(title: Optional[str], height: Optional[int], margin=None, **extra) -> dict:
    """The common layout as one dict: a figure built as ``go.Figure(data, layout)`` in
    one call is validated once, several times faster than one ``update_*`` call after
    another (what this module used to do, 20-90 ms a figure)."""
    return dict(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)) if title else None,
        height=height,
        margin=margin or dict(l=0, r=0, t=36 if title else 4, b=0),
        font=FONT,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        **extra,
    )


def _clean_axes(fig: go.Figure, **grid) -> None:
    fig.update_xaxes(visible=False, showgrid=False, zeroline=False, **grid)
    fig.update_yaxes(visible=False, showgrid=False, zeroline=False, **grid)


def _base_layout(fig: go.Figure, title: Optional[str], height: Optional[int], margin=None) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)) if title else None,
        height=height,
        margin=margin or dict(l=0, r=0, t=36 if title else 4, b=0),
        font=FONT,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def image_trace(image: ImageLike, name: str = "", hover: bool = True, photo: bool = False,
                **kwargs) -> go.Image:
    """A ``go.Image`` that carries the picture as one PNG (not as a matrix of numbers);
    ``photo=True`` uses JPEG instead, for photographs, where it is much smaller."""
    return go.Image(
        source=jpeg_data_uri(image) if photo else png_data_uri(image),
        name=name,
        hoverinfo="x+y" if hover else "skip",
        hovertemplate="x %{x}, y %{y}<extra></extra>" if hover else None,
        **kwargs,
    )


def colorscale(colormap: str, steps: int = 11) -> list:
    """A Plotly colour scale sampled from one of :data:`interpret.COLORMAPS`."""
    lut = colormap_lut(colormap)
    idx = np.linspace(0, 255, steps).astype(int)
    return [[i / (steps - 1), f"rgb({lut[s][0]},{lut[s][1]},{lut[s][2]})"] for i, s in enumerate(idx)]


def _colorbar_trace(colormap: str, title: str, low: str, high: str, cmin=0.0, cmax=1.0,
                    length_px: Optional[int] = None) -> go.Scatter:
    """An invisible scatter whose only purpose is to draw a colour bar next to a PNG image.
    ``length_px``: the bar's length in pixels (default: 90% of the plot's height)."""
    scale = colorscale(colormap)
    return go.Scatter(
        x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
        marker=dict(
            colorscale=scale, cmin=cmin, cmax=cmax, color=[cmin], showscale=True,
            colorbar=dict(
                title=dict(text=title, side="right"), thickness=12,
                **(dict(len=0.9) if length_px is None else dict(len=int(length_px), lenmode="pixels")),
                tickvals=[cmin, cmax], ticktext=[low, high], outlinewidth=0,
            ),
        ),
    )


