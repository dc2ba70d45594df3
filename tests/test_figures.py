"""The figure builders of :mod:`interpret.figures`: what each figure shows, decoded
from the figure itself (pixels of its images, positions of its hover cells, the
numbers of its traces), and that payloads stay small."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import plotly.io as pio
import pytest
from PIL import Image

from interpret import figures


def decode_data_uri(uri: str) -> Image.Image:
    """The picture of a ``data:image/...;base64,`` URI (what a figure's image trace shows)."""
    head, _, data = uri.partition(",")
    assert head.startswith("data:image/") and head.endswith(";base64"), head[:40]
    return Image.open(io.BytesIO(base64.b64decode(data)))


def spec(fig) -> dict:
    """The figure as the browser receives it."""
    return json.loads(pio.to_json(fig, validate=False))


# ----------------------------------------------------------------------------------
# Feature maps


def test_tile_grid_layout_and_hover_cells_line_up():
    maps = np.stack([np.full((3, 4), float(i)) for i in range(5)])
    maps[:, 0, 0] = -1.0  # give every map a range
    img, grid = figures.tile_grid(maps, order=[4, 0, 2], cols=2, min_tile=6, gap=2)
    assert grid.rows == 2 and grid.cols == 2 and grid.channels == (4, 0, 2)
    assert grid.scale == 2 and grid.tile == (6, 8)
    assert img.shape == (2 * 6 + 2, 2 * 8 + 2, 3)
    assert (img[:, 8:10] == 255).all(), "white gap between the columns"
    fig = figures.channel_grid_figure(maps, order=[4, 0, 2], cols=2)
    hover = fig.data[1]
    th, tw = figures.tile_grid(maps, order=[4, 0, 2], cols=2)[1].tile
    assert hover.dx == tw + 2 and hover.dy == th + 2
    assert "channel <b>4</b>" in hover.customdata[0][0] and hover.customdata[1][1] == ""


def test_channel_grid_marks_the_selected_channel_around_its_tile():
    maps = np.random.default_rng(1).random((6, 4, 4), dtype=np.float32)
    fig = figures.channel_grid_figure(maps, order=[5, 4, 3, 2, 1, 0], cols=3, selected=1)
    _, grid = figures.tile_grid(maps, order=[5, 4, 3, 2, 1, 0], cols=3)
    th, tw = grid.tile
    (box,) = fig.layout.shapes
    k = grid.channels.index(1)  # fifth tile: row 1, column 1
    r, c = divmod(k, grid.cols)
    assert (r, c) == (1, 1)
    assert box.x0 == pytest.approx(c * (tw + grid.gap) - 1.5)
    assert box.y0 == pytest.approx(r * (th + grid.gap) - 1.5)
    assert figures.channel_grid_figure(maps, selected=None).layout.shapes == ()


def test_large_maps_are_averaged_down_to_keep_the_png_small():
    maps = np.random.default_rng(0).random((256, 56, 56), dtype=np.float32)
    img, grid = figures.tile_grid(maps, max_pixels=300_000)
    assert grid.scale < 0 and grid.tile == (28, 28)
    assert img.shape[0] * img.shape[1] < 600_000


def test_channel_overlay_carries_the_real_values_over_the_photo():
    photo = np.zeros((224, 224, 3), np.uint8)
    m = np.arange(49, dtype=np.float32).reshape(7, 7)
    fig = figures.channel_overlay_figure(photo, m, opacity=0.4)
    image, heat = fig.data
    assert image.type == "image" and heat.type == "heatmap"
    assert np.array_equal(np.asarray(heat.z), m)
    assert heat.dx == pytest.approx(32) and heat.x0 == pytest.approx(15.5)  # 224 / 7 = 32 px a cell
    assert heat.opacity == pytest.approx(0.4)
    alone = figures.channel_overlay_figure(photo, m, opacity=1.0)
    assert [t.type for t in alone.data] == ["heatmap"], "no photo under an opaque map"


def test_histogram_payload_does_not_grow_with_the_data():
    rng = np.random.default_rng(0)
    small = len(figures.histogram_figure(rng.normal(size=1_000), bins=50).to_json())
    large = len(figures.histogram_figure(rng.normal(size=1_000_000), bins=50).to_json())
    assert large < 1.5 * small


def test_histogram_counts_every_value_once():
    v = np.array([0.0, 0.1, 0.1, 0.9, 1.0, np.nan, np.inf])
    fig = figures.histogram_figure(v, bins=2)
    assert list(fig.data[0].y) == [3, 2], "NaN and inf are left out; [0, .5) and [.5, 1]"


# ----------------------------------------------------------------------------------
# Predictions


def test_prediction_summary_numbers():
    uniform = figures.prediction_summary(np.full(1000, 1 / 1000))
    assert uniform["entropy"] == pytest.approx(np.log2(1000))
    assert uniform["effective_classes"] == pytest.approx(1000)
    certain = figures.prediction_summary([1.0] + [0.0] * 9)
    assert certain["entropy"] == 0 and certain["confidence"] == 1 and certain["head_mass"] == 1


def test_prediction_bars_keep_each_class_index_with_its_bar():
    labels, probs = ["tabby", "tiger cat", "Egyptian cat"], [0.5, 0.3, 0.2]
    fig = figures.predictions_bar(labels, probs, highlight="tiger cat",
                                  customdata=[[281], [282], [285]])
    bar = spec(fig)["data"][0]
    # drawn bottom-up: the most likely class is the last bar (on top)
    assert bar["y"] == ["Egyptian cat", "tiger cat", "tabby"]
    assert [cd[0] for cd in bar["customdata"]] == [285, 282, 281]
    assert bar["marker"]["color"] == [figures.BAR_COLOR, figures.HIGHLIGHT_COLOR, figures.BAR_COLOR]
    assert bar["text"] == ["20.0%", "30.0%", "50.0%"]


def test_distribution_marks_the_explained_rank():
    p = np.sort(np.random.default_rng(2).dirichlet(np.ones(100)))[::-1]
    fig = figures.distribution_figure([f"c{i}" for i in range(100)], p, log=True, highlight=3)
    line, mark = fig.data
    assert np.allclose(np.asarray(line.y), p)
    assert list(mark.x) == [4] and mark.y[0] == pytest.approx(p[3])
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.type == "log"


# ----------------------------------------------------------------------------------
# Images


def test_image_figure_frames_the_crop_box():
    photo = np.full((300, 451, 3), 120, np.uint8)
    fig = figures.image_figure(photo, box=(94.0, 18.75, 357.0, 281.25), box_label="kept")
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.y0, rect.x1, rect.y1) == (93.5, 18.25, 356.5, 280.75)
    assert fig.layout.annotations[0].text == "kept"
    assert decode_data_uri(fig.data[0].source).size == (451, 300)


def test_heatmap_overlay_has_one_image_and_its_colour_bar():
    overlay = np.zeros((224, 224, 3), np.uint8)
    overlay[:, 112:] = 255
    d = spec(figures.heatmap_overlay_figure(overlay, "viridis", title="Grad-CAM: tabby",
                                            low="no effect", high="important"))
    image, bar = d["data"]
    shown = np.asarray(decode_data_uri(image["source"]).convert("RGB"), np.int16)
    assert np.abs(shown - overlay).max() <= 8  # JPEG
    cb = bar["marker"]
    assert cb["showscale"] is True and cb["colorbar"]["ticktext"] == ["no effect", "important"]
    assert cb["colorscale"] == figures.colorscale("viridis")
    assert d["layout"]["title"]["text"] == "Grad-CAM: tabby"


def test_comparison_is_one_image_with_each_panel_in_place_and_titled():
    panels = [np.full((60, 80, 3), v, np.uint8) for v in (0, 90, 180, 250)]
    fig = figures.comparison_figure(panels, ["A", "B", "C", "D"], subtitles=["a", "", "c", "d"],
                                    photo=False, gap=6)
    d = spec(fig)
    (trace,) = d["data"]
    strip = np.asarray(decode_data_uri(trace["source"]).convert("RGB"))
    assert strip.shape == (60, 4 * 80 + 3 * 6, 3)
    for k, v in enumerate((0, 90, 180, 250)):
        x = k * (80 + 6)
        assert (strip[:, x:x + 80] == v).all(), f"panel {k}"
        if k < 3:
            assert (strip[:, x + 80:x + 86] == 255).all(), "white gap"
    notes = d["layout"]["annotations"]
    assert [n["text"].split("<br>")[0] for n in notes] == ["<b>A</b>", "<b>B</b>", "<b>C</b>", "<b>D</b>"]
    assert "a" in notes[0]["text"] and "<br>" not in notes[1]["text"]
    assert [n["x"] for n in notes] == [39.5, 125.5, 211.5, 297.5]  # the centre of each panel


def test_side_by_side_scales_panels_to_one_height():
    strip, spans = figures.side_by_side([np.zeros((40, 40, 3), np.uint8), np.zeros((20, 40, 3), np.uint8)])
    assert strip.shape == (40, 120, 3) and spans == [(0, 40), (40, 120)]
