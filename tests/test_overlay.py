"""Heatmap colouring and overlays, checked pixel by pixel against hand computations.

The blend (interpret.overlay): alpha = opacity * (0.35 + 0.65 * heat), then
out = floor(photo * (1 - alpha) + colour(heat) * alpha), and pixels the model never saw
(cropped away) are left as they are.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torch import nn

import interpret
from interpret import InputError, Preprocessing
from interpret.overlay import colormap_lut

JET0, JET1 = (0, 0, 131), (128, 0, 0)  # Plotly's Jet: dark blue ... dark red


def uniform(w, h, rgb=(100, 150, 200)) -> Image.Image:
    return Image.new("RGB", (w, h), rgb)


def tiny_model(pre: Preprocessing) -> interpret.ModelHandle:
    return interpret.load_model(nn.Identity(), preprocessing=pre, name="identity")


# ----------------------------------------------------------------------------------
# colour maps


@pytest.mark.parametrize("name,lo,hi", [
    ("jet", JET0, JET1),
    ("viridis", (68, 1, 84), (253, 231, 37)),   # matplotlib's #440154 ... #fde725
    ("hot", (0, 0, 0), (255, 255, 255)),
    ("greys", (255, 255, 255), (0, 0, 0)),      # as matplotlib: 0 is white
    ("rdbu", (5, 48, 97), (103, 0, 31)),        # reversed RdBu: blue (low) to red (high)
])
def test_colormap_endpoints(name, lo, hi):
    lut = colormap_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[0]) == lo and tuple(lut[255]) == hi


def test_jet_midpoint_is_green_and_colormap_names_ignore_case():
    mid = colormap_lut("JET")[128].astype(int)
    assert mid[1] == 255 and mid[0] < 140 and mid[2] < 140


def test_colorize_indexes_the_lut_by_rounding_and_clips():
    hm = np.array([[0.0, 1.0], [0.5, np.nan], [-3.0, 7.0]], np.float32)
    c = interpret.colorize(hm, "jet")
    lut = colormap_lut("jet")
    assert c.shape == (3, 2, 3) and c.dtype == np.uint8
    assert tuple(c[0, 0]) == JET0 and tuple(c[0, 1]) == JET1
    assert tuple(c[1, 0]) == tuple(lut[128])          # round(0.5 * 255) = 128
    assert tuple(c[1, 1]) == JET0                     # NaN counts as 0
    assert tuple(c[2, 0]) == JET0 and tuple(c[2, 1]) == JET1
    img = interpret.heatmap_image(hm[:1], "viridis")
    assert img.mode == "RGB" and img.size == (2, 1)
    assert img.getpixel((1, 0)) == (253, 231, 37)


# ----------------------------------------------------------------------------------
# overlay at the input resolution


def test_overlay_blend_matches_a_hand_computation():
    hm = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    out = np.asarray(interpret.overlay(uniform(2, 2), hm, opacity=0.5)).astype(int)
    # heat 0: alpha = .5 * .35 = .175 -> (100*.825, 150*.825, 200*.825 + 131*.175)
    #                                  = (82.5, 123.75, 187.925) -> floor (82, 123, 187)
    # heat 1: alpha = .5 -> (50 + 64, 75 + 0, 100 + 0) = (114, 75, 100)
    assert tuple(out[0, 0]) == (82, 123, 187) and tuple(out[1, 1]) == (82, 123, 187)
    assert tuple(out[0, 1]) == (114, 75, 100) and tuple(out[1, 0]) == (114, 75, 100)


def test_overlay_opacity_extremes():
    hm = np.array([[0.0, 1.0]], np.float32)
    photo = uniform(2, 1)
    np.testing.assert_array_equal(np.asarray(interpret.overlay(photo, hm, opacity=0.0)), np.asarray(photo))
    full = np.asarray(interpret.overlay(photo, hm, opacity=1.0)).astype(int)
    # heat 1, opacity 1: alpha = 1, the colour alone; heat 0: alpha = .35
    assert tuple(full[0, 1]) == JET1
    assert tuple(full[0, 0]) == (65, 97, 175)  # (100*.65, 150*.65, 200*.65 + 131*.35 = 175.85)


def test_overlay_at_input_resolution_uses_the_models_view():
    # a 16x8 photo, left half red, right half blue; resize shorter side to 4 (-> 8x4)
    # and centre-crop 4x4: the model sees columns 2-5 of the 8x4 image, half red, half blue
    a = np.zeros((8, 16, 3), np.uint8)
    a[:, :8] = (255, 0, 0)
    a[:, 8:] = (0, 0, 255)
    model = tiny_model(Preprocessing(resize=4, crop=4, interpolation="nearest"))
    out = interpret.overlay(Image.fromarray(a), np.zeros((4, 4), np.float32), model, opacity=0.5)
    assert out.size == (4, 4)
    o = np.asarray(out).astype(int)
    # red under heat 0: (255*.825, 0, 131*.175) = (210.375, 0, 22.925) -> (210, 0, 22)
    assert tuple(o[0, 0]) == (210, 0, 22) and tuple(o[3, 1]) == (210, 0, 22)
    # blue under heat 0: (0, 0, 255*.825 + 131*.175 = 233.3) -> (0, 0, 233)
    assert tuple(o[0, 3]) == (0, 0, 233)


def test_overlay_on_composite_at_both_resolutions(lite0, cat_cup_composite):
    image = cat_cup_composite.image
    hm = np.ones((224, 224), np.float32)
    small = interpret.overlay(image, hm, lite0, resolution="input")
    big = interpret.overlay(image, hm, lite0, resolution="original")
    assert small.size == (224, 224) and big.size == (448, 448)
    b, photo = np.asarray(big).astype(int), np.asarray(image).astype(int)
    # lite0: resize 448 -> 256, crop 224 at offset 16 -> the crop box starts at
    # 16 * 448 / 256 = 28 px in the original.  Outside it the photo is untouched.
    np.testing.assert_array_equal(b[:28], photo[:28])
    np.testing.assert_array_equal(b[:, :28], photo[:, :28])
    np.testing.assert_array_equal(b[-28:], photo[-28:])
    # inside, heat 1 at opacity .5: the grey (128,128,128) gap becomes
    # (64 + 64, 64, 64) = (128, 64, 64)
    assert tuple(b[224, 224]) == (128, 64, 64)
    assert tuple(b[28, 224]) == (128, 64, 64)
    assert tuple(b[27, 224]) == (128, 128, 128)


def test_overlay_at_original_resolution_maps_the_heatmap_back_through_the_crop():
    # 16x8 photo with a distinct value in every column; resize 4 -> 8x4, crop 4x4 at
    # x = 2..6 of the resized image = x = 4..12 of the original.
    a = np.zeros((8, 16, 3), np.uint8)
    a[..., 0] = np.arange(16) * 10
    a[..., 1] = 100
    a[..., 2] = 200
    photo = Image.fromarray(a)
    model = tiny_model(Preprocessing(resize=4, crop=4))
    assert model.preprocessing.crop_box(photo.size) == (4.0, 0.0, 12.0, 8.0)
    hm = np.array([[0, 0, 1, 1]] * 4, np.float32)  # cold left half, hot right half
    out = interpret.overlay(photo, hm, model, opacity=0.5, resolution="original")
    assert out.size == (16, 8)
    o = np.asarray(out).astype(int)
    np.testing.assert_array_equal(o[:, :4], a[:, :4])    # never seen: untouched
    np.testing.assert_array_equal(o[:, 12:], a[:, 12:])
    # column 4 (red 40) under heat 0: (40*.825, 100*.825, 200*.825 + 131*.175)
    #                                 = (33, 82.5, 187.925) -> (33, 82, 187)
    assert tuple(o[0, 4]) == (33, 82, 187) and tuple(o[7, 4]) == (33, 82, 187)
    # column 11 (red 110) under heat 1: (55 + 64, 50, 100) = (119, 50, 100)
    assert tuple(o[0, 11]) == (119, 50, 100)


# ----------------------------------------------------------------------------------
# refused


@pytest.mark.parametrize("kw,message", [
    ({"colormap": "rainbow"}, "Unknown colormap 'rainbow'"),
    ({"opacity": 1.5}, "Opacity must be between 0 and 1"),
    ({"opacity": -0.1}, "Opacity must be between 0 and 1"),
    ({"resolution": "thumbnail"}, "resolution must be 'input' or 'original'"),
])
def test_invalid_overlay_settings_are_refused(kw, message):
    with pytest.raises(InputError, match=message):
        interpret.overlay(uniform(2, 2), np.zeros((2, 2), np.float32), **kw)


def test_unknown_colormap_in_colorize_is_refused():
    with pytest.raises(InputError, match="choose one of jet"):
        interpret.colorize(np.zeros((2, 2)), "parula")
