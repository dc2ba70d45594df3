"""Predictions: the top-k bars, the distribution over every class, and the numbers
a caption quotes (entropy, effective number of classes)."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from ..words import plotly_text
from ._base import BAR_COLOR, HIGHLIGHT_COLOR, _layout

GRID = "rgba(128,128,128,0.2)"

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
    customdata: Optional[Sequence] = None,
) -> go.Figure:
    """Horizontal bars, most likely class on top, probability printed on each bar.
    ``highlight`` colours one label (the class being explained); ``customdata`` (one
    entry per label, in the order given) comes back in a selection event, e.g. the
    class index of each bar."""
    raw = list(labels)
    # Plotly reads a few HTML tags in tick labels and hover text (<a href>, <b>...):
    # a class name is text (interpret.words.plotly_text)
    labels = [plotly_text(l) for l in raw]
    probs = [float(p) for p in probabilities]
    colors = [HIGHLIGHT_COLOR if highlight is not None and l == highlight else BAR_COLOR for l in raw]
    text = [_percent(p) for p in probs]
    top = max(probs) if probs else 1.0
    # long bars carry their number inside, short ones just after their end
    inside = [p > 0.6 * top for p in probs]
    bar = go.Bar(
        x=probs[::-1], y=labels[::-1], orientation="h", marker_color=colors[::-1],
        text=text[::-1], textposition=["inside" if i else "outside" for i in inside][::-1],
        insidetextanchor="end", insidetextfont=dict(color="white"), cliponaxis=False,
        hovertemplate="<b>%{y}</b><br>probability %{x:.2%}<extra></extra>",
        customdata=None if customdata is None else list(customdata)[::-1],
    )
    return go.Figure(data=[bar], layout=_layout(
        title, height or max(220, 36 * len(labels) + 60),
        margin=dict(l=0, r=10, t=36 if title else 4, b=0), bargap=0.25, showlegend=False,
        xaxis=dict(range=[0, min(1.0, top * 1.12 + 0.02)], tickformat=".0%",
                   title=dict(text="probability"), gridcolor=GRID),
        yaxis=dict(automargin=True, tickfont=dict(size=14))))


def distribution_figure(
    labels: Sequence[str], probabilities: Sequence[float], log: bool = False,
    highlight: Optional[int] = None, height: int = 280,
) -> go.Figure:
    """Every class's probability, sorted from most to least likely (x = rank).  ``log``
    shows the long tail; ``highlight`` (a rank, 0-based) marks the explained class."""
    p = np.asarray(probabilities, dtype=np.float64)
    labels = [plotly_text(l) for l in labels]  # text, not Plotly's HTML
    ranks = np.arange(1, p.size + 1)
    data = [go.Scatter(
        x=ranks, y=p, mode="lines", line=dict(color=BAR_COLOR, width=2), fill="tozeroy",
        customdata=np.asarray(labels, dtype=object),
        hovertemplate="#%{x}: <b>%{customdata}</b><br>%{y:.3%}<extra></extra>",
    )]
    if highlight is not None and 0 <= highlight < p.size:
        data.append(go.Scatter(
            x=[highlight + 1], y=[p[highlight]], mode="markers+text",
            marker=dict(color=HIGHLIGHT_COLOR, size=10), text=["  " + labels[highlight]],
            textposition="middle right", hoverinfo="skip", showlegend=False,
            textfont=dict(color=HIGHLIGHT_COLOR),
        ))
    return go.Figure(data=data, layout=_layout(
        None, height, margin=dict(l=0, r=10, t=10, b=0), showlegend=False,
        xaxis=dict(title=dict(text="classes, most to least likely"),
                   type="log" if p.size > 50 else None, gridcolor=GRID,
                   # a rank is a whole number: no 1.5 on a class axis
                   **({} if p.size > 50 else {"tick0": 1, "dtick": max(1, -(-int(p.size) // 10))})),
        yaxis=dict(title=dict(text="probability"), type="log" if log else None,
                   tickformat=".0e" if log else ".0%", gridcolor=GRID, exponentformat="power")))
