"""The floor's figure builder, in a module of its own so that the benchmark's probe
can time it as "figure building", as it times :mod:`interpret.figures`."""

import numpy as np
import plotly.graph_objects as go


def image_figure(pixels: np.ndarray, title: str) -> go.Figure:
    fig = go.Figure(go.Image(z=pixels))
    fig.update_layout(title=title, height=500)
    return fig
