"""The dashboard's figures for given inputs, built once and shared by every session.

Every function here takes plain inputs (the model, the photo, a result, display
settings) and returns a Plotly figure or image bytes from the shared result cache
(:func:`ui.compute.cached`), keyed by everything it depends on: the model's weight
fingerprint, the photo's content hash and the settings.  A person who opens a page
someone opened before, or returns to a view, gets the figure without it being built
again; only its serialization remains.  The warm start (:mod:`ui.warmup`) calls the
same functions with the default view, so the first visitor finds them built too.

No widgets here, and no maths: the numbers come from :mod:`interpret`, the figures
from :mod:`interpret.figures`.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from PIL import Image

import interpret
from interpret import figures

from . import compute
from .compute import ImageChoice

#: photos larger than this (pixels, longer side) are drawn scaled down
MAX_PHOTO_SIDE = 1024

# ----------------------------------------------------------------------------------
# Outputs


def top_bars(handle: interpret.ModelHandle, img: ImageChoice, preds: Sequence[interpret.Prediction],
             k: int, target: int):
    """The ``k`` most likely classes as bars, the explained class in red; each bar's
    ``customdata`` is its class index (a click picks that class)."""
    def build():
        shown = list(preds[:k])
        return figures.predictions_bar([p.label for p in shown], [p.probability for p in shown],
                                       highlight=handle.label(target),
                                       customdata=[[p.index] for p in shown])

    return compute.figure(("top_bars", handle.fingerprint(), img.hash, int(k), int(target)), build)


def distribution(handle: interpret.ModelHandle, img: ImageChoice, preds: Sequence[interpret.Prediction],
                 log: bool, target_rank: int):
    def build():
        return figures.distribution_figure([p.label for p in preds], [p.probability for p in preds],
                                           log=log, highlight=target_rank)

    return compute.figure(("distribution", handle.fingerprint(), img.hash, bool(log), int(target_rank)),
                          build)


# ----------------------------------------------------------------------------------
# Input


def photo_with_crop(handle: interpret.ModelHandle, img: ImageChoice):
    """The original photo with the region the model keeps framed."""
    def build():
        box = compute.model_input(handle, img).crop_box
        photo = img.image
        if max(photo.size) > MAX_PHOTO_SIDE:  # a 40-megapixel upload is not sent whole
            scale = MAX_PHOTO_SIDE / max(photo.size)
            photo = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))),
                                 Image.Resampling.LANCZOS)
            box = tuple(v * scale for v in box)
        return figures.image_figure(photo, box=box, box_label="what the model sees", height=420)

    return compute.figure(("photo_with_crop", handle.fingerprint(), img.hash), build)


def model_view(handle: interpret.ModelHandle, img: ImageChoice):
    """What the model receives, de-normalised so that the colours look natural."""
    return compute.figure(("model_view", handle.fingerprint(), img.hash),
                          lambda: figures.image_figure(compute.model_input(handle, img).seen, height=420))


def colour_channels(handle: interpret.ModelHandle, img: ImageChoice, tint: bool):
    def build():
        seen = compute.model_input(handle, img).seen
        # PNG: JPEG's halved colour resolution would smear a single-channel picture
        return figures.comparison_figure(figures.channel_views(seen, tint=tint),
                                         ["Red", "Green", "Blue"], height=320, photo=False)

    return compute.figure(("colour_channels", handle.fingerprint(), img.hash, bool(tint)), build)


def input_histograms(handle: interpret.ModelHandle, img: ImageChoice):
    return compute.figure(("input_histograms", handle.fingerprint(), img.hash), lambda: (
        figures.channel_histograms_figure(compute.model_input(handle, img).values,
                                          title="Values per channel, after normalisation")))


# ----------------------------------------------------------------------------------
# Activations (and the Features page's map over the photo)


def channel_grid(handle: interpret.ModelHandle, img: ImageChoice, layer: str,
                 maps: interpret.LayerMaps, order: Sequence[int], rank: str, value_name: str,
                 per_channel: bool, selected: Optional[int]):
    """A page of the layer's feature maps as one tiled image with a hover layer."""
    order = tuple(int(c) for c in order)
    values = maps.channel_means if rank == "mean" else maps.channel_maxes

    def build():
        return figures.channel_grid_figure(maps.maps, order, values=values, value_name=value_name,
                                           colormap="viridis", per_channel=per_channel,
                                           selected=selected)

    return compute.figure(("channel_grid", handle.fingerprint(), img.hash, layer, order, rank,
                           bool(per_channel), selected), build)


def channel_over_photo(handle: interpret.ModelHandle, img: ImageChoice, layer: str,
                       maps: interpret.LayerMaps, channel: int, opacity: float,
                       title: Optional[str] = None, height: int = 420):
    """One feature map stretched over the photo the model saw (real values on hover)."""
    def build():
        photo = compute.model_input(handle, img).image
        return figures.channel_overlay_figure(photo, maps.maps[channel], opacity=opacity,
                                              height=height, title=title)

    return compute.figure(("channel_over_photo", handle.fingerprint(), img.hash, layer, int(channel),
                           round(float(opacity), 4), title, height), build)


def layer_histogram(handle: interpret.ModelHandle, img: ImageChoice, layer: str,
                    maps: interpret.LayerMaps, log_y: bool, title: str):
    return compute.figure(("layer_histogram", handle.fingerprint(), img.hash, layer, bool(log_y), title),
                          lambda: figures.histogram_figure(maps.maps, bins=80, xaxis="activation value",
                                                           log_y=log_y, title=title))


def layer_means(handle: interpret.ModelHandle, img: ImageChoice, summary, stat: str, label: str,
                layer: str):
    def build():
        return figures.layer_means_figure([r.name for r in summary], [getattr(r, stat) for r in summary],
                                          selected=layer, kinds=[r.kind for r in summary],
                                          value_label=label)

    return compute.figure(("layer_means", handle.fingerprint(), img.hash, stat, layer), build)


def module_table(handle: interpret.ModelHandle) -> List[dict]:
    """Every module with its output shape and parameter count, for ``st.dataframe``."""
    def build():
        return [{
            "layer": "\u2003" * (info.depth - 1) + info.name,
            "type": info.kind,
            "output shape": " × ".join(map(str, info.output_shape[1:])) if info.output_shape else "",
            "parameters": info.num_params,
            "shown as maps": info.spatial and info.calls > 0,
        } for info in interpret.list_layers(handle)]

    return compute.cached(("module_table", handle.fingerprint()), build)


# ----------------------------------------------------------------------------------
# Attributions


def _explained(handle: interpret.ModelHandle, img: ImageChoice, e: interpret.Explanation) -> tuple:
    """What an explanation is of, for cache keys."""
    return (handle.fingerprint(), img.hash, e.method, e.layer, e.target, e.contrast,
            tuple(sorted(e.params.items())))


def overlay_image(handle: interpret.ModelHandle, img: ImageChoice, e: interpret.Explanation,
                  cmap: str, opacity: float, resolution: str = "input") -> Image.Image:
    """The heatmap blended over the photo (the model's view, or the whole photo)."""
    return compute.cached(
        ("overlay", _explained(handle, img, e), cmap, round(float(opacity), 4), resolution),
        lambda: interpret.overlay(img.image, e.heatmap, handle, colormap=cmap, opacity=opacity,
                                  resolution=resolution))


def attribution_figure(handle: interpret.ModelHandle, img: ImageChoice, e: interpret.Explanation,
                       title: str, cmap: str, opacity: float, resolution: str = "input"):
    """The overlay as one image with the colour bar of its colour map."""
    def build():
        ov = overlay_image(handle, img, e, cmap, opacity, resolution)
        return figures.heatmap_overlay_figure(ov, cmap, title=title, height=500,
                                              low="no effect", high="important")

    return compute.figure(("attribution", _explained(handle, img, e), title, cmap,
                           round(float(opacity), 4), resolution), build)


def heatmap_png(handle: interpret.ModelHandle, img: ImageChoice, e: interpret.Explanation,
                cmap: str) -> bytes:
    """The colour-mapped heatmap alone as PNG bytes (a download)."""
    return compute.cached(("heatmap_png", _explained(handle, img, e), cmap),
                          lambda: figures.png_bytes(interpret.heatmap_image(e.heatmap, cmap)))


def overlay_png(handle: interpret.ModelHandle, img: ImageChoice, e: interpret.Explanation,
                cmap: str, opacity: float, resolution: str = "input") -> bytes:
    return compute.cached(("overlay_png", _explained(handle, img, e), cmap, round(float(opacity), 4),
                           resolution),
                          lambda: figures.png_bytes(overlay_image(handle, img, e, cmap, opacity, resolution)))


def overlay_uri(handle: interpret.ModelHandle, img: ImageChoice, e: interpret.Explanation,
                cmap: str, opacity: float) -> str:
    """The overlay on the model's view as a JPEG ``data:`` URI, for ``st.image``: the
    comparison row shows pictures, not Plotly figures, so the browser draws four images
    instead of building a second chart."""
    return compute.cached(("overlay_uri", _explained(handle, img, e), cmap, round(float(opacity), 4)),
                          lambda: figures.jpeg_data_uri(overlay_image(handle, img, e, cmap, opacity)))


# ----------------------------------------------------------------------------------
# Home


def thumbnail_uri(path: str, mtime: float, size: Tuple[int, int] = (320, 240)) -> str:
    """A sample photo cropped to ``size`` as a JPEG ``data:`` URI (the gallery's tiles:
    sent inside the page's message, no request per tile)."""
    def build() -> str:
        import base64
        import io

        from PIL import ImageOps

        with Image.open(path) as im:
            thumb = ImageOps.fit(im.convert("RGB"), size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        thumb.save(buf, "JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

    return compute.cached(("thumbnail", path, mtime, size), build)
