"""Plotly figure builders for the dashboard (and notebooks): data in, ``go.Figure`` out.

No Streamlit here.  Images are sent as PNG (or, for photos, JPEG) data URIs
(``go.Image(source=...)``) rather than as arrays of numbers, so a figure with a
224 x 224 photo or a tiled image of hundreds of feature maps stays a few tens of
kilobytes; colour mapping is done here
with :func:`interpret.overlay.colorize`, because a PNG-backed trace carries no colour
scale of its own.  Histograms are binned here (``np.histogram``) and drawn as bars,
so their payload does not grow with the number of values.

A few small display summaries live here too (:func:`entropy_bits`,
:func:`activation_stats`, :func:`tile_grid`): they turn results into the numbers a
figure or a caption shows.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from .overlay import colorize, colormap_lut

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


def decode_data_uri(uri: str) -> Image.Image:
    """Inverse of :func:`png_data_uri` (used by tests to check what a figure shows)."""
    head, _, data = uri.partition(",")
    if not head.endswith(";base64"):
        raise ValueError("not a base64 data URI")
    return Image.open(io.BytesIO(base64.b64decode(data)))


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


def _colorbar_trace(colormap: str, title: str, low: str, high: str, cmin=0.0, cmax=1.0) -> go.Scatter:
    """An invisible scatter whose only purpose is to draw a colour bar next to a PNG image."""
    lut = colormap_lut(colormap)
    steps = np.linspace(0, 255, 11).astype(int)
    scale = [[i / 10, f"rgb({lut[s][0]},{lut[s][1]},{lut[s][2]})"] for i, s in enumerate(steps)]
    return go.Scatter(
        x=[None], y=[None], mode="markers", hoverinfo="skip", showlegend=False,
        marker=dict(
            colorscale=scale, cmin=cmin, cmax=cmax, color=[cmin], showscale=True,
            colorbar=dict(
                title=dict(text=title, side="right"), thickness=12, len=0.9,
                tickvals=[cmin, cmax], ticktext=[low, high], outlinewidth=0,
            ),
        ),
    )


# ----------------------------------------------------------------------------------
# Images


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


# ----------------------------------------------------------------------------------
# Predictions


def entropy_bits(probabilities: Sequence[float]) -> float:
    """Shannon entropy of a probability vector, in bits (0 = certain; log2(N) = uniform)."""
    p = np.asarray(probabilities, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) if p.size else 0.0


def prediction_summary(probabilities: Sequence[float], head: int = 10) -> dict:
    """Numbers the Outputs page explains in words: ``confidence`` (top probability),
    ``entropy`` and ``max_entropy`` in bits, ``effective_classes`` (2 ** entropy: the
    number of equally likely classes with the same uncertainty) and ``head_mass`` (the
    probability held by the ``head`` most likely classes)."""
    p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    h = entropy_bits(p)
    return {
        "confidence": float(p[0]) if p.size else float("nan"),
        "entropy": h,
        "max_entropy": float(np.log2(p.size)) if p.size else 0.0,
        "effective_classes": float(2.0 ** h),
        "head": min(head, int(p.size)),
        "head_mass": float(p[:head].sum()),
        "classes": int(p.size),
    }


def _percent(p: float) -> str:
    """37.9%, 0.12%, 0.0034%: enough digits to tell small probabilities apart."""
    if p >= 0.01:
        return f"{p:.1%}"
    if p <= 0:
        return "0%"
    digits = max(0, 1 - int(math.floor(math.log10(p * 100))))
    return f"{p * 100:.{digits}f}%"


def predictions_bar(
    labels: Sequence[str], probabilities: Sequence[float], highlight: Optional[str] = None,
    height: Optional[int] = None, title: Optional[str] = None,
) -> go.Figure:
    """Horizontal bars, most likely class on top, probability printed on each bar.
    ``highlight`` colours one label (the class being explained)."""
    labels = list(labels)
    probs = [float(p) for p in probabilities]
    colors = [HIGHLIGHT_COLOR if highlight is not None and l == highlight else BAR_COLOR for l in labels]
    text = [_percent(p) for p in probs]
    top = max(probs) if probs else 1.0
    # long bars carry their number inside, short ones just after their end
    inside = [p > 0.6 * top for p in probs]
    fig = go.Figure(go.Bar(
        x=probs[::-1], y=labels[::-1], orientation="h", marker_color=colors[::-1],
        text=text[::-1], textposition=["inside" if i else "outside" for i in inside][::-1],
        insidetextanchor="end", insidetextfont=dict(color="white"), cliponaxis=False,
        hovertemplate="<b>%{y}</b><br>probability %{x:.2%}<extra></extra>",
    ))
    fig.update_xaxes(range=[0, min(1.0, top * 1.12 + 0.02)], tickformat=".0%", title="probability",
                     gridcolor="rgba(128,128,128,0.2)")
    fig.update_yaxes(automargin=True, tickfont=dict(size=14))
    fig.update_layout(bargap=0.25, showlegend=False)
    return _base_layout(fig, title, height or max(220, 36 * len(labels) + 60),
                        margin=dict(l=0, r=10, t=36 if title else 4, b=0))


def distribution_figure(
    labels: Sequence[str], probabilities: Sequence[float], log: bool = False,
    highlight: Optional[int] = None, height: int = 280,
) -> go.Figure:
    """Every class's probability, sorted from most to least likely (x = rank).  ``log``
    shows the long tail; ``highlight`` (a rank, 0-based) marks the explained class."""
    p = np.asarray(probabilities, dtype=np.float64)
    ranks = np.arange(1, p.size + 1)
    fig = go.Figure(go.Scatter(
        x=ranks, y=p, mode="lines", line=dict(color=BAR_COLOR, width=2), fill="tozeroy",
        customdata=np.asarray(labels, dtype=object),
        hovertemplate="#%{x}: <b>%{customdata}</b><br>%{y:.3%}<extra></extra>",
    ))
    if highlight is not None and 0 <= highlight < p.size:
        fig.add_trace(go.Scatter(
            x=[highlight + 1], y=[p[highlight]], mode="markers+text",
            marker=dict(color=HIGHLIGHT_COLOR, size=10), text=["  " + labels[highlight]],
            textposition="middle right", hoverinfo="skip", showlegend=False,
            textfont=dict(color=HIGHLIGHT_COLOR),
        ))
    fig.update_xaxes(title="classes, most to least likely", type="log" if p.size > 50 else None,
                     gridcolor="rgba(128,128,128,0.2)")
    fig.update_yaxes(title="probability", type="log" if log else None,
                     tickformat=".0e" if log else ".0%", gridcolor="rgba(128,128,128,0.2)",
                     exponentformat="power")
    fig.update_layout(showlegend=False)
    return _base_layout(fig, None, height, margin=dict(l=0, r=10, t=10, b=0))


# ----------------------------------------------------------------------------------
# Histograms and statistics


def histogram_figure(
    values: np.ndarray, bins: int = 60, title: Optional[str] = None, xaxis: str = "value",
    log_y: bool = False, height: int = 240, color: str = BAR_COLOR,
) -> go.Figure:
    """A histogram binned here, drawn as bars: the payload is ``bins`` numbers whatever
    the number of values."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(v, bins=bins) if v.size else (np.zeros(1), np.array([0.0, 1.0]))
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure(go.Bar(
        x=centers, y=counts, width=np.diff(edges), marker_color=color, marker_line_width=0,
        hovertemplate="%{customdata}<br>%{y:,} values<extra></extra>",
        customdata=[f"{a:.3g} to {b:.3g}" for a, b in zip(edges[:-1], edges[1:])],
    ))
    fig.update_xaxes(title=xaxis, gridcolor="rgba(128,128,128,0.2)")
    fig.update_yaxes(title="count", type="log" if log_y else None, gridcolor="rgba(128,128,128,0.2)")
    fig.update_layout(bargap=0, showlegend=False)
    return _base_layout(fig, title, height, margin=dict(l=0, r=10, t=36 if title else 10, b=0))


def channel_histograms_figure(
    tensor: np.ndarray, names: Sequence[str] = ("red", "green", "blue"), bins: int = 64,
    height: int = 260, title: Optional[str] = None, xaxis: str = "value after normalisation",
) -> go.Figure:
    """One outline histogram per channel of a C x H x W array, on shared bins."""
    t = np.asarray(tensor, dtype=np.float64)
    lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for i in range(t.shape[0]):
        counts, _ = np.histogram(t[i].ravel(), bins=edges)
        name = names[i] if i < len(names) else f"channel {i}"
        fig.add_trace(go.Scatter(
            x=centers, y=counts, mode="lines", name=name, line=dict(
                color=CHANNEL_COLORS[i % len(CHANNEL_COLORS)], width=2, shape="hvh"),
            hovertemplate=f"{name}: %{{x:.2f}}<br>%{{y:,}} pixels<extra></extra>",
        ))
    fig.update_xaxes(title=xaxis, gridcolor="rgba(128,128,128,0.2)")
    fig.update_yaxes(title="pixels", gridcolor="rgba(128,128,128,0.2)")
    fig.update_layout(legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1, xanchor="right"))
    return _base_layout(fig, title, height, margin=dict(l=0, r=10, t=40 if title else 30, b=0))


def activation_stats(values: np.ndarray) -> dict:
    """Mean, std, min, max and the fraction of exact zeros of a layer's output (ReLU
    layers zero out much of their input; a high fraction means sparse features)."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
        "max": float(v.max()), "zero_fraction": float((v == 0).mean()), "count": int(v.size),
    }


def layer_means_figure(
    names: Sequence[str], means: Sequence[float], selected: Optional[str] = None,
    kinds: Optional[Sequence[str]] = None, height: int = 240, value_label: str = "mean activation",
) -> go.Figure:
    """The mean activation of every layer in forward order; the selected layer marked."""
    x = np.arange(len(names))
    custom = np.asarray(
        [f"{n} ({k})" for n, k in zip(names, kinds)] if kinds else list(names), dtype=object)
    fig = go.Figure(go.Scatter(
        x=x, y=list(means), mode="lines+markers", marker=dict(size=4, color=BAR_COLOR),
        line=dict(color=BAR_COLOR, width=1.5), customdata=custom,
        hovertemplate="%{customdata}<br>" + value_label + " %{y:.3g}<extra></extra>",
    ))
    if selected is not None and selected in names:
        i = list(names).index(selected)
        fig.add_trace(go.Scatter(
            x=[i], y=[means[i]], mode="markers", marker=dict(size=12, color=HIGHLIGHT_COLOR,
                                                              symbol="diamond"),
            hovertemplate=f"selected: {selected}<br>{value_label} %{{y:.3g}}<extra></extra>",
        ))
        fig.add_vline(x=i, line=dict(color=HIGHLIGHT_COLOR, width=1, dash="dot"))
    fig.update_xaxes(title="layers, input to output", showticklabels=False,
                     gridcolor="rgba(128,128,128,0.2)")
    fig.update_yaxes(title=value_label, gridcolor="rgba(128,128,128,0.2)")
    fig.update_layout(showlegend=False)
    return _base_layout(fig, None, height, margin=dict(l=0, r=10, t=10, b=0))


# ----------------------------------------------------------------------------------
# Feature maps


@dataclass(frozen=True)
class TileGrid:
    """Geometry of a tiled image: ``rows`` x ``cols`` tiles of ``tile`` (h, w) pixels
    (maps upscaled by ``scale``, or averaged down by ``-scale`` when negative),
    separated by ``gap`` pixels; ``channels`` lists the channel in each tile, row by row."""

    rows: int
    cols: int
    tile: Tuple[int, int]
    gap: int
    scale: int
    channels: Tuple[int, ...]

    @property
    def size(self) -> Tuple[int, int]:
        """(height, width) of the whole image in pixels."""
        th, tw = self.tile
        return (self.rows * (th + self.gap) - self.gap, self.cols * (tw + self.gap) - self.gap)


def rank_channels(values: Sequence[float]) -> np.ndarray:
    """Channel indices from the highest to the lowest value (ties: lower index first)."""
    v = np.asarray(values, dtype=np.float64)
    return np.argsort(-v, kind="stable")


def _normalise(maps: np.ndarray, per_channel: bool) -> np.ndarray:
    m = np.asarray(maps, dtype=np.float32)
    if per_channel:
        lo = m.reshape(m.shape[0], -1).min(1)[:, None, None]
        hi = m.reshape(m.shape[0], -1).max(1)[:, None, None]
    else:
        lo, hi = m.min(), m.max()
    rng = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    return np.clip((m - lo) / rng, 0, 1)


def _block_mean(maps: np.ndarray, f: int) -> np.ndarray:
    """Downsample n x h x w maps by an integer factor, averaging f x f blocks."""
    n, h, w = maps.shape
    h2, w2 = max(1, h // f), max(1, w // f)
    m = maps[:, :h2 * f, :w2 * f].astype(np.float32)
    return m.reshape(n, h2, f, w2, f).mean(axis=(2, 4))


def tile_grid(
    channels: np.ndarray, order: Optional[Sequence[int]] = None, cols: Optional[int] = None,
    colormap: str = "viridis", per_channel: bool = True, min_tile: int = 28,
    gap: int = 2, gap_color: Tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = 450_000,
) -> Tuple[np.ndarray, TileGrid]:
    """Lay out the feature maps ``channels`` (C x h x w) listed in ``order`` as one
    colour-mapped RGB image.  Small maps are upscaled by an integer factor (nearest
    neighbour, so every activation stays a crisp block) to at least ``min_tile`` px;
    when the maps together exceed ``max_pixels`` they are averaged down by an integer
    factor instead (``TileGrid.scale`` is then negative), which keeps the PNG small.
    ``per_channel`` scales each map to its own range (shows patterns) or all maps to the
    layer's range (shows which channels are strong)."""
    c_all = np.asarray(channels)
    if c_all.ndim != 3:
        raise ValueError(f"channels must be C x h x w, got shape {c_all.shape}")
    idx = list(range(c_all.shape[0])) if order is None else [int(i) for i in order]
    n = len(idx)
    h, w = c_all.shape[1:]
    shrink = 1
    if n * h * w > max_pixels and min(h, w) > min_tile:
        shrink = min(int(math.ceil(math.sqrt(n * h * w / max_pixels))), max(1, min(h, w) // min_tile))
    if shrink > 1:
        c_all = _block_mean(c_all[idx], shrink)
        idx_local = list(range(n))
        h, w = c_all.shape[1:]
    else:
        idx_local = idx
    scale = max(1, int(math.ceil(min_tile / max(1, min(h, w)))))
    th, tw = h * scale, w * scale
    if cols is None:
        cols = max(1, int(math.ceil(math.sqrt(n * th / tw)))) if n else 1
    rows = max(1, int(math.ceil(n / cols)))
    grid = TileGrid(rows, cols, (th, tw), gap, scale if shrink == 1 else -shrink, tuple(idx))
    H, W = grid.size
    out = np.empty((H, W, 3), np.uint8)
    out[:] = np.asarray(gap_color, np.uint8)
    if n:
        norm = _normalise(c_all[idx_local], per_channel)
        colored = colorize(norm.reshape(n * h, w), colormap).reshape(n, h, w, 3)
        if scale > 1:
            colored = colored.repeat(scale, axis=1).repeat(scale, axis=2)
        for k in range(n):
            r, c = divmod(k, cols)
            y, x = r * (th + gap), c * (tw + gap)
            out[y:y + th, x:x + tw] = colored[k]
    return out, grid


def channel_grid_figure(
    channels: np.ndarray, order: Optional[Sequence[int]] = None, values: Optional[Sequence[float]] = None,
    value_name: str = "mean", colormap: str = "viridis", per_channel: bool = True,
    cols: Optional[int] = None, height: Optional[int] = None, selected: Optional[int] = None,
) -> go.Figure:
    """All (or a page of) the feature maps of a layer as ONE tiled PNG image, plus a
    transparent hover layer that names the channel under the mouse (one number per tile,
    not per pixel).  ``values`` (per channel, indexed by channel) are shown on hover."""
    img, grid = tile_grid(channels, order, cols=cols, colormap=colormap, per_channel=per_channel)
    th, tw = grid.tile
    g = grid.gap
    # upscaled maps are flat blocks: PNG keeps them crisp and small; maps at their own
    # resolution are photo-like: JPEG is several times smaller
    fig = go.Figure(image_trace(img, hover=False, photo=grid.scale <= 1))
    # hover layer: a rows x cols heatmap aligned with the tiles, fully transparent
    labels = np.full((grid.rows, grid.cols), "", dtype=object)
    for k, ch in enumerate(grid.channels):
        r, c = divmod(k, grid.cols)
        v = f"<br>{value_name} {values[ch]:.3g}" if values is not None else ""
        labels[r, c] = f"channel <b>{ch}</b> (rank {k + 1}){v}"
    fig.add_trace(go.Heatmap(
        z=np.zeros((grid.rows, grid.cols)), x0=(tw - 1) / 2, dx=tw + g, y0=(th - 1) / 2, dy=th + g,
        customdata=labels, hovertemplate="%{customdata}<extra></extra>",
        colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]], showscale=False, hoverongaps=False,
    ))
    if selected is not None and selected in grid.channels:
        k = grid.channels.index(selected)
        r, c = divmod(k, grid.cols)
        y, x = r * (th + g), c * (tw + g)
        fig.add_shape(type="rect", x0=x - 1.5, y0=y - 1.5, x1=x + tw + 0.5, y1=y + th + 0.5,
                      line=dict(color=HIGHLIGHT_COLOR, width=3))
    _clean_axes(fig)
    H, W = grid.size
    fig.update_xaxes(range=[-0.5, W - 0.5])
    fig.update_yaxes(range=[H - 0.5, -0.5], scaleanchor="x")
    if height is None:
        height = int(min(900, max(260, 760 * H / max(W, 1))))
    return _base_layout(fig, None, height)


def channel_overlay_figure(
    photo: ImageLike, channel_map: np.ndarray, opacity: float = 0.6, colormap: str = "viridis",
    title: Optional[str] = None, height: Optional[int] = None, value_name: str = "activation",
) -> go.Figure:
    """One feature map stretched over the photo the model saw, with its real values on
    hover: the photo is a JPEG, the map a small heatmap (h x w numbers) drawn on top
    (alone when ``opacity`` is 1)."""
    arr = to_uint8_rgb(photo)
    H, W = arr.shape[:2]
    m = np.asarray(channel_map, dtype=np.float64)
    h, w = m.shape
    lut = colormap_lut(colormap)
    steps = np.linspace(0, 255, 11).astype(int)
    scale = [[i / 10, f"rgb({lut[s][0]},{lut[s][1]},{lut[s][2]})"] for i, s in enumerate(steps)]
    fig = go.Figure(image_trace(arr, hover=False, photo=True) if opacity < 0.999 else None)
    fig.add_trace(go.Heatmap(
        z=m, x0=(W / w - 1) / 2, dx=W / w, y0=(H / h - 1) / 2, dy=H / h, colorscale=scale,
        opacity=float(opacity), zsmooth=False,
        hovertemplate=f"{value_name} %{{z:.3g}}<extra></extra>",
        colorbar=dict(thickness=12, len=0.9, title=dict(text=value_name, side="right"), outlinewidth=0),
    ))
    _clean_axes(fig)
    fig.update_xaxes(range=[-0.5, W - 0.5])
    fig.update_yaxes(range=[H - 0.5, -0.5], scaleanchor="x")
    return _base_layout(fig, title, height)


# ----------------------------------------------------------------------------------
# Feature visualization: dataset examples, optimization trace, embeddings

#: Categorical colours for predicted classes (Tableau 10, then Plotly's Dark 24 hues):
#: the most frequent class gets the first colour; beyond 20 classes colours repeat.
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
            x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=lab,
            marker=dict(color=color, size=11, line=dict(color="white", width=1)),
            customdata=[[i, names[i], float(probs[i])] for i in idx],
            hovertemplate=("<b>%{customdata[1]}</b><br>predicted <i>" + lab.replace("%", "%%")
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
