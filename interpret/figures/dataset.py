"""Dataset views: the confusion matrix (click a cell), per-class mean maps, the "where
it looks" grid, galleries of images with their maps (click an image), and the set's
embedding coloured by class or by correct / wrong.

Clickable figures carry ``customdata`` on scatter points (heatmap cells and images
cannot be selected in Plotly): the confusion matrix has one transparent marker per
cell, ``[true index, predicted index, count]``; a gallery one per image, ``[path]``;
the embedding one per point, ``[path]``.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from ..overlay import colorize, overlay
from ..scaling import heatmap as to_heatmap
from ..words import plotly_text
from ._base import BAR_COLOR, HIGHLIGHT_COLOR, ImageLike, _base_layout, _clean_axes, jpeg_data_uri
from .features import class_colors

__all__ = ["confusion_figure", "class_maps_figure", "where_figure", "map_gallery_figure",
           "dataset_embedding_figure", "map_heatmap", "CORRECT_COLORS", "per_label_figure",
           "per_label_caption"]

Box = Tuple[float, float, float, float]
CORRECT_COLORS = {"correct": "#54A24B", "wrong": HIGHLIGHT_COLOR}


def _short(label: str, n: int = 22) -> str:
    """A class or file name for a figure: shortened, and text (Plotly reads a few HTML
    tags, <a href> among them, in titles, ticks and hover)."""
    return plotly_text(label if len(label) <= n else label[: n - 1] + "…")


def confusion_figure(matrix: np.ndarray, labels: Sequence[str], rows: Sequence[int],
                     cols: Optional[Sequence[int]] = None, selected: Optional[Tuple[int, int]] = None,
                     height: Optional[int] = None) -> go.Figure:
    """The confusion matrix restricted to label indices ``rows`` (true classes) and
    ``cols`` (predictions; default the same): counts written in the cells, colour the
    share of the row (so classes of different sizes compare), the diagonal outlined.
    ``selected`` = (true, predicted) index pair rings that cell."""
    cols = list(rows if cols is None else cols)
    rows = list(rows)
    m = np.asarray(matrix)[np.ix_(rows, cols)]
    totals = m.sum(1, keepdims=True)
    share = np.divide(m, totals, out=np.zeros(m.shape, dtype=np.float64), where=totals > 0)
    xl = [_short(labels[c]) for c in cols]
    yl = [_short(labels[r]) for r in rows]
    text = [[str(v) if v else "" for v in row] for row in m]
    fig = go.Figure(go.Heatmap(
        z=share, x=list(range(len(cols))), y=list(range(len(rows))), colorscale="Blues", zmin=0, zmax=1,
        text=text, texttemplate="%{text}", hoverinfo="skip", showscale=True,
        colorbar=dict(title=dict(text="share of the row", side="right"), thickness=12, tickformat=".0%")))
    xs, ys, cd, hover = [], [], [], []
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            xs.append(j)
            ys.append(i)
            cd.append([int(r), int(c), int(m[i, j])])
            hover.append(f"true <b>{plotly_text(labels[r])}</b>, predicted <b>{plotly_text(labels[c])}</b>: {int(m[i, j])} image(s) "
                         f"({share[i, j]:.0%} of the row)")
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers", customdata=cd, text=hover, hovertemplate="%{text}<extra></extra>",
        marker=dict(symbol="square", size=max(10, min(60, int(420 / max(len(rows), len(cols), 1)))),
                    color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)), showlegend=False))
    for k in range(min(len(rows), len(cols))):
        if rows[k] in cols:
            j = cols.index(rows[k])
            fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=k - 0.5, y1=k + 0.5,
                          line=dict(color="rgba(0,0,0,0.35)", width=1))
    if selected is not None and selected[0] in rows and selected[1] in cols:
        i, j = rows.index(selected[0]), cols.index(selected[1])
        fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                      line=dict(color=HIGHLIGHT_COLOR, width=3))
    fig.update_xaxes(tickvals=list(range(len(cols))), ticktext=xl, title_text="predicted", side="bottom",
                     showgrid=False, zeroline=False, tickangle=-35)
    fig.update_yaxes(tickvals=list(range(len(rows))), ticktext=yl, title_text="true class",
                     autorange="reversed", showgrid=False, zeroline=False)
    fig.update_layout(clickmode="event+select", dragmode=False)
    h = height or int(120 + 34 * len(rows))
    return _base_layout(fig, None, h, margin=dict(l=0, r=0, t=8, b=0))


def _pct(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.0%}"


def per_label_caption(threshold: float, images: int, labels: int, binary: bool = False) -> str:
    """The sentence under :func:`per_label_figure` (numbers in, words out)."""
    what = "the positive class" if binary else f"each of the {labels} labels"
    return (f"Precision and recall of {what} on {images} image{'s' if images != 1 else ''}, at a "
            f"threshold of {threshold:.2f}: a label counts as predicted when its own (sigmoid) "
            "probability is at least that. Precision: of the images where it is predicted, the share "
            "where it is present; recall: of the images where it is present, the share where it is "
            "predicted (n/a: no image to count).")


def per_label_figure(table, height: Optional[int] = None) -> go.Figure:
    """Precision and recall per label (the table of
    :meth:`interpret.DatasetResult.per_label`), side by side, each bar labelled with its
    value and its counts (true positives / predicted, true positives / present); the
    threshold in the title.  Undefined values (nothing predicted, nothing present) are
    drawn as no bar and written "n/a"."""
    labels = [str(l) for l in table["label"]]
    x = [_short(l) for l in labels]
    prec = [float(v) for v in table["precision"]]
    rec = [float(v) for v in table["recall"]]
    tp, pred, pres = (list(map(int, table[c])) for c in ("true_positives", "predicted", "present"))
    t = float(table["threshold"].iloc[0]) if len(table) else 0.5
    fig = go.Figure()
    fig.add_bar(name="precision", x=x, y=[0 if not np.isfinite(v) else v for v in prec],
                text=[f"{_pct(v)} ({a}/{b})" for v, a, b in zip(prec, tp, pred)], textposition="outside",
                marker_color=BAR_COLOR, hovertemplate="%{x}: precision %{text}<extra></extra>")
    fig.add_bar(name="recall", x=x, y=[0 if not np.isfinite(v) else v for v in rec],
                text=[f"{_pct(v)} ({a}/{b})" for v, a, b in zip(rec, tp, pres)], textposition="outside",
                marker_color=HIGHLIGHT_COLOR, hovertemplate="%{x}: recall %{text}<extra></extra>")
    _base_layout(fig, f"Precision and recall per label at threshold {t:.2f}", height or 320)
    fig.update_layout(barmode="group", yaxis=dict(range=[0, 1.15], tickformat=".0%"), showlegend=True)
    return fig


def map_heatmap(raw: np.ndarray, size: Tuple[int, int], kind: str = "cam") -> np.ndarray:
    """A stored map (h x w) as a [0, 1] heatmap at ``size`` (H, W): the CAM rule (ReLU,
    min-max, bilinear upsampling) for raw CAMs, bilinear upsampling for heatmaps."""
    t = torch.from_numpy(np.nan_to_num(np.asarray(raw, dtype=np.float32)))
    return to_heatmap(t, "cam" if kind == "cam" else "maps", tuple(size))


def class_maps_figure(maps: Dict[str, np.ndarray], titles: Optional[Sequence[str]] = None,
                      colormap: str = "jet", side: int = 96, cols: int = 6) -> go.Figure:
    """Each class's mean map (h x w mass), min-max scaled and colour-mapped, on a grid."""
    from .features import image_grid_figure

    names = list(maps)
    tiles = [colorize(map_heatmap(maps[n], (side, side), "maps"), colormap) for n in names]
    heads = list(titles) if titles is not None else [_short(n, 16) for n in names]
    return image_grid_figure(tiles, heads, hover=[f"<b>{plotly_text(n)}</b>: mean map" for n in names],
                             cols=min(cols, max(1, len(names))), photo=False)


def where_figure(shares: Sequence[np.ndarray], labels: Sequence[str], grid: int,
                 extras: Optional[Sequence[str]] = None, cols: int = 4) -> go.Figure:
    """"Where it looks": per class, the mean share of map mass in each cell of a
    ``grid`` x ``grid`` grid (``shares``: one grid x grid array per class), written
    in the cells, on one colour scale for all classes; ``extras``: a line under each
    class's name (e.g. its border and centre shares)."""
    from plotly.subplots import make_subplots

    n = len(labels)
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    heads = [f"<b>{_short(l, 18)}</b>" + (f"<br>{extras[k]}" if extras else "") for k, l in enumerate(labels)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=heads, horizontal_spacing=0.04,
                        vertical_spacing=0.12 if rows > 1 else 0.05)
    top = max([float(np.nanmax(s)) for s in shares if np.isfinite(s).any()] + [1e-9])
    for k, s in enumerate(shares):
        r, c = divmod(k, cols)
        s = np.asarray(s, dtype=np.float64)
        fig.add_trace(go.Heatmap(
            z=s, zmin=0, zmax=top, colorscale="Reds", showscale=k == 0,
            text=[[f"{v:.0%}" if np.isfinite(v) else "" for v in row] for row in s],
            texttemplate="%{text}", hovertemplate=f"{plotly_text(labels[k])}: %{{z:.1%}} of the map<extra></extra>",
            coloraxis=None, colorbar=dict(title=dict(text="share of map mass", side="right"),
                                          thickness=12, tickformat=".0%")), row=r + 1, col=c + 1)
    _clean_axes(fig)
    for k in range(rows * cols):
        key = "yaxis" if k == 0 else f"yaxis{k + 1}"
        fig.layout[key].update(autorange="reversed", scaleanchor="x" if k == 0 else f"x{k + 1}")
    fig.update_annotations(font=dict(size=11))
    return _base_layout(fig, None, int(40 + rows * (280 / cols * 2.2 + 36)), margin=dict(l=0, r=0, t=40, b=0))


def _draw_box(fig: go.Figure, k: int, box: Box, w: int, h: int, color: str, dash: str = "solid") -> None:
    x0, y0, x1, y1 = box
    sx = "x" if k == 0 else f"x{k + 1}"
    sy = "y" if k == 0 else f"y{k + 1}"
    fig.add_shape(type="rect", xref=sx, yref=sy, x0=x0 * w - 0.5, x1=x1 * w - 0.5, y0=y0 * h - 0.5,
                  y1=y1 * h - 0.5, line=dict(color=color, width=2, dash=dash))


def map_gallery_figure(images: Sequence[ImageLike], maps: Sequence[Optional[np.ndarray]],
                       titles: Sequence[str], keys: Sequence[str], hover: Optional[Sequence[str]] = None,
                       box: Optional[Box] = None, given_box: Optional[Box] = None,
                       colormap: str = "jet", opacity: float = 0.5, cols: int = 6,
                       kind: str = "cam") -> go.Figure:
    """Images (the stored thumbnails of the model's view) with their maps overlaid, on a
    grid; each carries a transparent marker with ``customdata = [key]``, so a click
    selects the image.  ``box`` (a flag's region, solid) and ``given_box`` (a
    person's box, dashed) are drawn on every image, in fractions of the image."""
    from plotly.subplots import make_subplots

    n = len(images)
    cols = max(1, min(int(cols), n or 1))
    rows = max(1, math.ceil(n / cols))
    lines = max((t.count("<br>") + 1 for t in titles), default=1)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.015,
                        vertical_spacing=min(0.3, 0.05 + 0.05 * lines) if rows > 1 else 0.02)
    for k, (img, raw) in enumerate(zip(images, maps)):
        r, c = divmod(k, cols)
        pil = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img))
        pil = pil.convert("RGB")
        w, h = pil.size
        shown = overlay(pil, map_heatmap(raw, (h, w), kind), None, colormap, opacity) if raw is not None else pil
        text = hover[k] if hover is not None else titles[k]
        fig.add_trace(go.Image(source=jpeg_data_uri(shown, quality=85), hoverinfo="skip"), row=r + 1, col=c + 1)
        fig.add_trace(go.Scatter(
            x=[w / 2 - 0.5], y=[h / 2 - 0.5], mode="markers", customdata=[[keys[k]]], text=[text],
            hovertemplate="%{text}<extra></extra>", showlegend=False,
            marker=dict(size=max(20, int(420 / cols)), symbol="square", color="rgba(0,0,0,0)"),
            selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1))),
            row=r + 1, col=c + 1)
        if box is not None:
            _draw_box(fig, k, box, w, h, HIGHLIGHT_COLOR)
        if given_box is not None:
            _draw_box(fig, k, given_box, w, h, "white", "dash")
    _clean_axes(fig)
    for k in range(rows * cols):
        key = "yaxis" if k == 0 else f"yaxis{k + 1}"
        fig.layout[key].update(scaleanchor="x" if k == 0 else f"x{k + 1}", autorange="reversed")
    fig.update_annotations(font=dict(size=11))
    fig.update_layout(clickmode="event+select", dragmode=False)
    height = int(8 + rows * (1100 / max(cols, 1) + 16 * lines + 4))
    return _base_layout(fig, None, height, margin=dict(l=0, r=0, t=16 * lines + 4, b=0))


def dataset_embedding_figure(coords: np.ndarray, groups: Sequence[str], keys: Sequence[str],
                             hover: Sequence[str], legend: str = "true class",
                             colors: Optional[Dict[str, str]] = None, height: int = 520) -> go.Figure:
    """The images as points of a 2-D embedding, one trace (legend entry) per group (a
    class, or "correct" / "wrong"), each point with ``customdata = [key]``."""
    xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    n = xy.shape[0]
    if not (len(groups) == len(keys) == len(hover) == n):
        raise ValueError(f"{n} points but {len(groups)} groups, {len(keys)} keys, {len(hover)} hovers")
    colors = colors or class_colors(list(groups))
    fig = go.Figure()
    for g in dict.fromkeys(groups):
        idx = [i for i in range(n) if groups[i] == g]
        fig.add_trace(go.Scatter(
            x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=plotly_text(g),
            marker=dict(color=colors.get(g, BAR_COLOR), size=10, line=dict(color="white", width=1)),
            customdata=[[keys[i]] for i in idx], text=[hover[i] for i in idx],
            hovertemplate="%{text}<extra></extra>"))
    fig.update_xaxes(showgrid=True, gridcolor="rgba(128,128,128,0.15)", zeroline=False, showticklabels=False)
    fig.update_yaxes(showgrid=True, gridcolor="rgba(128,128,128,0.15)", zeroline=False, showticklabels=False)
    fig.update_layout(legend=dict(title=dict(text=legend), itemsizing="constant"), clickmode="event+select",
                      dragmode="pan", hoverlabel=dict(align="left"))
    return _base_layout(fig, None, height, margin=dict(l=0, r=0, t=8, b=0))
