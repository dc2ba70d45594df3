"""Colour maps and heatmap overlays (pure numpy + Pillow; colour scales from Plotly)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from .errors import InputError

COLORMAPS = ("jet", "turbo", "inferno", "viridis", "magma", "plasma", "hot", "greys", "rdbu")


@lru_cache(maxsize=None)
def colormap_lut(name: str) -> np.ndarray:
    """256 x 3 uint8 lookup table for a named colour scale."""
    import plotly.colors as pc

    key = name.lower()
    if key not in COLORMAPS:
        raise InputError(f"Unknown colormap '{name}'; choose one of {', '.join(COLORMAPS)}.")
    plotly_name = {"jet": "Jet", "turbo": "Turbo", "inferno": "Inferno", "viridis": "Viridis",
                   "magma": "Magma", "plasma": "Plasma", "hot": "Hot", "greys": "Greys",
                   "rdbu": "RdBu_r"}[key]
    scale = pc.get_colorscale(plotly_name)
    cols = pc.sample_colorscale(scale, list(np.linspace(0, 1, 256)), colortype="tuple")
    arr = np.array([[float(v) for v in c] for c in cols])
    if arr.max() <= 1.0:
        arr = arr * 255.0
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """H x W values in [0, 1] -> H x W x 3 uint8 colours."""
    h = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    idx = np.clip(np.round(h * 255), 0, 255).astype(np.uint8)
    return colormap_lut(colormap)[idx]


def heatmap_image(heatmap: np.ndarray, colormap: str = "jet") -> Image.Image:
    return Image.fromarray(colorize(heatmap, colormap), "RGB")


def overlay(
    image: Image.Image,
    heatmap: np.ndarray,
    model=None,
    colormap: str = "jet",
    opacity: float = 0.5,
    resolution: str = "input",
) -> Image.Image:
    """Blend ``heatmap`` (at the model-input resolution) over ``image``.

    ``resolution="input"``: on the image exactly as the model saw it (needs ``model``
    for its preprocessing, else the image is simply resized).  ``"original"``: at the
    photo's own resolution; the heatmap is mapped back through the resize and crop, and
    areas the model never saw (cropped away) are left uncoloured.  The blend is
    weighted by the heatmap itself, so cold regions stay close to the photo.
    """
    if not 0.0 <= float(opacity) <= 1.0:
        raise InputError(f"Opacity must be between 0 and 1; got {opacity}.")
    if resolution not in ("input", "original"):
        raise InputError("resolution must be 'input' or 'original'.")
    hm = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0, 1)
    image = image.convert("RGB")
    pre = getattr(model, "preprocessing", None)
    if resolution == "input":
        base = pre.model_view(image) if pre is not None else image.resize(hm.shape[::-1])
        if base.size != hm.shape[::-1]:
            base = base.resize(hm.shape[::-1])
        heat_full = hm
        seen = np.ones_like(hm, dtype=bool)
    else:
        base = image
        W, H = image.size
        if pre is not None:
            l, t, r, b = pre.crop_box(image.size)
        else:
            l, t, r, b = 0, 0, W, H
        bw, bh = max(1, int(round(r - l))), max(1, int(round(b - t)))
        resized = np.asarray(
            Image.fromarray(hm).resize((bw, bh), Image.Resampling.BILINEAR), dtype=np.float32)
        heat_full = np.zeros((H, W), np.float32)
        seen = np.zeros((H, W), bool)
        x0, y0 = int(round(l)), int(round(t))
        xs0, ys0 = max(0, x0), max(0, y0)
        xs1, ys1 = min(W, x0 + bw), min(H, y0 + bh)
        heat_full[ys0:ys1, xs0:xs1] = resized[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
        seen[ys0:ys1, xs0:xs1] = True
    colors = colorize(heat_full, colormap).astype(np.float32)
    photo = np.asarray(base, dtype=np.float32)
    alpha = float(opacity) * (0.35 + 0.65 * heat_full)[..., None] * seen[..., None]
    out = photo * (1 - alpha) + colors * alpha
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
