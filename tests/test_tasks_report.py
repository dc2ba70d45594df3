"""The report and the `trust` command name what is explained in words (issue 19): a
regressor's value (never a percentage), a segment of a segmentation model (its own
sentence, each present class's share of the pixels, the map's mass on the segment),
labels escaped."""

from __future__ import annotations

import json
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import Preprocessing, targets
from interpret.report import report_html

pytestmark = pytest.mark.usefixtures("single_thread")


def regressor() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()),
            ("fc", nn.Linear(8, 1))])).eval()


def segmenter() -> nn.Module:
    """Three classes per pixel, from one convolution: class 0 = red, 1 = green, 2 = blue
    (the channels' own values, so each class owns the pixels where its colour leads)."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3)[:, :, None, None])
        conv.bias.zero_()
    return nn.Sequential(OrderedDict([("conv", conv), ("relu", nn.ReLU())])).eval()


@pytest.fixture(scope="module")
def photo():
    a = np.zeros((32, 32, 3), np.uint8)
    a[:, :16, 0] = 220   # left half red
    a[:, 16:, 2] = 220   # right half blue
    a[8:24, 4:12, 1] = 250  # a green patch on the red
    return Image.fromarray(a)


PRE = Preprocessing((32, 32), None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def test_report_of_a_regressor_quotes_its_value_and_says_what_is_explained(photo):
    h = interpret.load_model(regressor(), preprocessing=PRE, task="regression", labels=["age"])
    v = interpret.predict(h, photo)[0].value
    e = interpret.explain(h, photo, "gradcam", layer="relu1")
    page = report_html(h, photo, [e], steps=4)
    assert "Grad-CAM: what raises the value of age</h3>" in page
    assert '<th class="l">output</th><th>value</th>' in page and f"<td>{v:.4g}</td>" in page
    f = interpret.faithfulness(h, photo, e, steps=4)
    assert f.unit == "value"
    # the curves' axis is in the value's own unit: its ticks span the curves, no percentage
    curves = [f.deletion, f.random_deletion, f.insertion, f.random_insertion]
    lo, hi = min(float(np.min(c)) for c in curves), max(float(np.max(c)) for c in curves)
    ticks = re.findall(r'text-anchor="end">([^<]*)</text>', page)
    assert ticks == [f"{lo:.3g}", f"{lo + 0.5 * (hi - lo):.3g}", f"{hi:.3g}"]
    assert "class probability" not in page


def test_report_of_a_segment_names_it_and_lists_each_class_share(photo):
    labels = ["<b>red</b>", "green", "blue"]
    h = interpret.load_model(segmenter(), preprocessing=PRE, labels=labels)
    assert h.task == "segmentation"
    e = interpret.explain(h, photo, "gradcam", layer="relu", target=targets.region(1))
    page = report_html(h, photo, [e], steps=4)
    assert "Grad-CAM: the pixels the model calls green</h3>" in page
    # 16x8 green, 16x16 - 16x8 red-only... by hand: green 128, red 512 - 128 = 384, blue 512 of 1024
    assert '<th class="l">class</th><th>share of the pixels</th>' in page
    rows = re.findall(r'<tr><td class="l">([^<]*)</td><td>([^<]*)</td></tr>', page)
    assert rows[:3] == [("blue", "50.0%"), ("&lt;b&gt;red&lt;/b&gt;", "37.5%"), ("green", "12.5%")]
    assert "<b>red</b>" not in page
    plain = report_html(h, photo, [e], steps=4, plain=True)
    assert "what this method marks as driving the score explained: the pixels the model calls green" in plain


def test_trust_command_names_the_segment_and_measures_the_map_on_it(photo, tmp_path, capsys, monkeypatch):
    from interpret.cli import main
    from interpret.cli import trust as cli_trust

    labels = ["red", "green", "blue"]
    h = interpret.load_model(segmenter(), preprocessing=PRE, labels=labels)
    monkeypatch.setattr(cli_trust, "_model", lambda args: h)
    path = tmp_path / "p.png"
    photo.save(path)
    assert main(["trust", str(path), "-m", "gradcam", "--layer", "relu", "--target", "green",
                 "--steps", "4", "--seeds", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Grad-CAM for the pixels the model calls green at layer relu: ")
    e = interpret.explain(h, photo, "gradcam", layer="relu", target=targets.region("green"))
    loc = interpret.localization(e)
    assert (f"on the segment explained: pointing game {'hit' if loc.hit else 'miss'}, relevance mass "
            f"{loc.mass:.0%} on it and {1 - loc.mass:.0%} on context outside it (the segment is "
            f"{loc.area:.0%} of the photo)") in text
    assert "Explained: the pixels the model calls green." in text
    assert main(["trust", str(path), "-m", "gradcam", "--layer", "relu", "--target", "green",
                 "--steps", "4", "--seeds", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["explained"] == "the pixels the model calls green"
    assert out["localization"]["mass"] == pytest.approx(loc.mass)
