"""The figures of segmentation and multi-label outputs (issue 19): the mask's colours
are the classes', the legend's shares are the segmentation's, a click on the figure
names the pixel and its class, and the labels' bars are their own sigmoids."""

from __future__ import annotations

import numpy as np
import pytest

import interpret
from interpret import figures
from interpret.explain import SegmentClass, Segmentation
import torch


def _segmentation(mask: np.ndarray, labels):
    seen = mask >= 0
    counts = np.bincount(mask[seen], minlength=len(labels))
    classes = [SegmentClass(int(i), labels[i], int(counts[i]), float(counts[i] / seen.sum()))
               for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    return Segmentation(mask=mask, classes=classes, labels=tuple(labels),
                        scores=torch.zeros(1, len(labels), *mask.shape))


def test_mask_overlay_tints_each_pixel_with_its_class_colour_and_leaves_unseen_pixels():
    mask = np.array([[0, 1], [2, -1]])
    photo = np.full((2, 2, 3), 100, np.uint8)
    out = figures.mask_overlay(photo, mask, 3, opacity=1.0)
    colors = figures.segment_colors(3)
    assert (out[0, 0] == colors[0]).all() and (out[0, 1] == colors[1]).all() and (out[1, 0] == colors[2]).all()
    assert (out[1, 1] == 100).all()  # not seen by the model: the photo as it is
    half = figures.mask_overlay(photo, mask, 3, opacity=0.5)
    np.testing.assert_allclose(half[0, 0], np.round(0.5 * 100 + 0.5 * colors[0].astype(float)), atol=1)


def test_segmentation_figure_legend_shares_and_click_points():
    mask = np.zeros((40, 60), np.int64)
    mask[10:30, 20:50] = 2  # 600 of 2400 pixels: 25%
    seg = _segmentation(mask, ["sky", "road", "<b>car</b>"])
    fig = figures.segmentation_figure(np.zeros((40, 60, 3), np.uint8), seg)
    legend = [t.name for t in fig.data if t.type == "scatter" and t.showlegend is not False]
    assert legend == ["sky (75.0%)", "&lt;b&gt;car&lt;/b&gt; (25.0%)"]
    clicks = fig.data[-1]
    xs, ys, cls = np.asarray(clicks.customdata).T
    assert (cls == mask[ys.astype(int), xs.astype(int)]).all()
    sel = {"selection": {"points": [{"customdata": [25, 15, 2]}]}}
    assert figures.point_from_selection(sel) == (25.0, 15.0, 2)
    # the browser's event, as Streamlit hands it over: the array as an index-keyed object
    as_dict = {"selection": {"points": [{"x": 25, "y": 15, "customdata": {"0": 25, "1": 15, "2": 2}}]}}
    assert figures.point_from_selection(as_dict) == (25.0, 15.0, 2)
    assert figures.point_from_selection({"selection": {"points": [{"customdata": [1, 1, -1]}]}}) is None
    # the click names its segment: the connected region of that class
    t = seg.segment_at(25, 15)
    assert t.index == 2 and int(t.mask.sum()) == 600


def test_labels_figure_bars_are_the_given_probabilities_with_the_threshold():
    fig = figures.labels_figure(["a", "b", "c"], [0.9, 0.2, 0.6], threshold=0.5)
    bar = fig.data[0]
    assert list(bar.x) == [0.9, 0.2, 0.6]
    assert [c == figures.HIGHLIGHT_COLOR for c in bar.marker.color] == [True, False, True]
    assert fig.layout.shapes[0].x0 == 0.5
