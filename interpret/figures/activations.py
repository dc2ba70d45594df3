"""Activations: histograms, a layer's statistics across the network, and a layer's
feature maps tiled into one image (with a hover layer naming each channel) or one map
over the photo."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go

from ..overlay import colorize
from ..scaling import minmax, tile
from ._base import (BAR_COLOR, CHANNEL_COLORS, HIGHLIGHT_COLOR, ImageLike, _hidden_axis, _layout,
                    colorscale, image_trace, to_uint8_rgb)

GRID = "rgba(128,128,128,0.2)"

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
    bars = go.Bar(
        x=centers, y=counts, width=np.diff(edges), marker_color=color, marker_line_width=0,
        hovertemplate="%{customdata}<br>%{y:,} values<extra></extra>",
        customdata=[f"{a:.3g} to {b:.3g}" for a, b in zip(edges[:-1], edges[1:])],
    )
    return go.Figure(data=[bars], layout=_layout(
        title, height, margin=dict(l=0, r=10, t=36 if title else 10, b=0), bargap=0,
        showlegend=False, xaxis=dict(title=dict(text=xaxis), gridcolor=GRID),
        yaxis=dict(title=dict(text="count"), type="log" if log_y else None, gridcolor=GRID)))


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
    data = []
    for i in range(t.shape[0]):
        counts, _ = np.histogram(t[i].ravel(), bins=edges)
        name = names[i] if i < len(names) else f"channel {i}"
        data.append(go.Scatter(
            x=centers, y=counts, mode="lines", name=name, line=dict(
                color=CHANNEL_COLORS[i % len(CHANNEL_COLORS)], width=2, shape="hvh"),
            hovertemplate=f"{name}: %{{x:.2f}}<br>%{{y:,}} pixels<extra></extra>",
        ))
    return go.Figure(data=data, layout=_layout(
        title, height, margin=dict(l=0, r=10, t=40 if title else 30, b=0),
        xaxis=dict(title=dict(text=xaxis), gridcolor=GRID),
        yaxis=dict(title=dict(text="pixels"), gridcolor=GRID),
        legend=dict(orientation="h", y=1.0, yanchor="bottom", x=1, xanchor="right")))


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
    data = [go.Scatter(
        x=x, y=list(means), mode="lines+markers", marker=dict(size=4, color=BAR_COLOR),
        line=dict(color=BAR_COLOR, width=1.5), customdata=custom,
        hovertemplate="%{customdata}<br>" + value_label + " %{y:.3g}<extra></extra>",
    )]
    shapes = []
    if selected is not None and selected in names:
        i = list(names).index(selected)
        data.append(go.Scatter(
            x=[i], y=[means[i]], mode="markers", marker=dict(size=12, color=HIGHLIGHT_COLOR,
                                                              symbol="diamond"),
            hovertemplate=f"selected: {selected}<br>{value_label} %{{y:.3g}}<extra></extra>",
        ))
        shapes.append(dict(type="line", x0=i, x1=i, xref="x", y0=0, y1=1, yref="y domain",
                           line=dict(color=HIGHLIGHT_COLOR, width=1, dash="dot")))
    return go.Figure(data=data, layout=_layout(
        None, height, margin=dict(l=0, r=10, t=10, b=0), showlegend=False, shapes=shapes,
        xaxis=dict(title=dict(text="layers, input to output"), showticklabels=False, gridcolor=GRID),
        yaxis=dict(title=dict(text=value_label), gridcolor=GRID)))


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
    if n:
        norm = minmax(c_all[idx_local], per_item=per_channel)
        colored = colorize(norm.reshape(n * h, w), colormap).reshape(n, h, w, 3)
        if scale > 1:
            colored = colored.repeat(scale, axis=1).repeat(scale, axis=2)
    else:
        colored = np.zeros((0, th, tw, 3), np.uint8)
    out, _ = tile(colored, cols=cols, gap=gap, fill=gap_color)
    if out.shape[:2] != (H, W):  # fewer tiles than one row: keep the grid's full size
        full = np.empty((H, W, 3), np.uint8)
        full[:] = np.asarray(gap_color, np.uint8)
        full[:out.shape[0], :out.shape[1]] = out
        out = full
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
    image = image_trace(img, hover=False, photo=grid.scale <= 1)
    # hover layer: a rows x cols heatmap aligned with the tiles, fully transparent
    labels = np.full((grid.rows, grid.cols), "", dtype=object)
    for k, ch in enumerate(grid.channels):
        r, c = divmod(k, grid.cols)
        v = f"<br>{value_name} {values[ch]:.3g}" if values is not None else ""
        labels[r, c] = f"channel <b>{ch}</b> (rank {k + 1}){v}"
    hover = go.Heatmap(
        z=np.zeros((grid.rows, grid.cols)), x0=(tw - 1) / 2, dx=tw + g, y0=(th - 1) / 2, dy=th + g,
        customdata=labels, hovertemplate="%{customdata}<extra></extra>",
        colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]], showscale=False, hoverongaps=False,
    )
    shapes = []
    if selected is not None and selected in grid.channels:
        k = grid.channels.index(selected)
        r, c = divmod(k, grid.cols)
        y, x = r * (th + g), c * (tw + g)
        shapes.append(dict(type="rect", x0=x - 1.5, y0=y - 1.5, x1=x + tw + 0.5, y1=y + th + 0.5,
                           line=dict(color=HIGHLIGHT_COLOR, width=3)))
    H, W = grid.size
    if height is None:
        height = int(min(900, max(260, 760 * H / max(W, 1))))
    return go.Figure(data=[image, hover], layout=_layout(
        None, height, shapes=shapes, xaxis=_hidden_axis(range=[-0.5, W - 0.5]),
        yaxis=_hidden_axis(range=[H - 0.5, -0.5], scaleanchor="x")))


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
    data = [image_trace(arr, hover=False, photo=True)] if opacity < 0.999 else []
    data.append(go.Heatmap(
        z=m, x0=(W / w - 1) / 2, dx=W / w, y0=(H / h - 1) / 2, dy=H / h, colorscale=colorscale(colormap),
        opacity=float(opacity), zsmooth=False,
        hovertemplate=f"{value_name} %{{z:.3g}}<extra></extra>",
        colorbar=dict(thickness=12, len=0.9, title=dict(text=value_name, side="right"), outlinewidth=0),
    ))
    return go.Figure(data=data, layout=_layout(
        title, height, xaxis=_hidden_axis(range=[-0.5, W - 0.5]),
        yaxis=_hidden_axis(range=[H - 0.5, -0.5], scaleanchor="x")))
