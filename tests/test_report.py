"""The trust report: one self-contained HTML file (no script, no address it must
load), with the model, the photo, the prediction, each map with its trust figures and
curves, the settings, versions and a timestamp; and the same as a PDF from Chromium."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image

import interpret
from interpret import words
from interpret.report import find_chromium, html_to_pdf

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def made(lite0, coffee, tmp_path_factory):
    es = [interpret.explain(lite0, coffee, m) for m in ("gradcam", "layercam")]
    sanity = interpret.sanity_check(lite0, coffee, es[0], layers=2)
    path = tmp_path_factory.mktemp("report") / "trust.html"
    out = interpret.report(lite0, coffee, es, path, steps=4, sanity={"gradcam": sanity},
                           box=(0, 0, 224, 224))
    return out, es, sanity


def test_the_html_is_self_contained_and_complete(made, lite0):
    path, es, sanity = made
    text = Path(path).read_text()
    assert "<script" not in text.lower() and "<link" not in text.lower()
    # every src / href is a data URI (links to papers are text, not loaded)
    assert not re.findall(r'(?:src|href)="(?!data:)', text)
    images = re.findall(r'src="data:image/(jpeg|png);base64,([^"]+)"', text)
    assert len(images) == 3  # the photo and two overlays
    for _, data in images:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        assert img.size == (224, 224)
    assert text.count("<svg") == 2  # one chart per map
    for needle in ("efficientnet_lite0", "espresso", "Grad-CAM", "LayerCAM", "sanity check passed",
                   "sanity check not run", "Showing the photo back in the map", "pointing game",
                   "torch", "numpy", "Petsiuk", "Adebayo", "Do the methods agree?"):
        assert needle in text, needle
    assert re.search(r"Made \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", text)


def test_the_numbers_are_the_librarys(made, lite0, coffee):
    path, es, _ = made
    text = Path(path).read_text()
    f = interpret.faithfulness(lite0, coffee, es[0], steps=4)
    assert f"{f.deletion_auc:.3f}" in text and f"{f.insertion_auc:.3f}" in text
    assert words.html(f.sentence_for()) in text


def test_bad_input(lite0, coffee, tmp_path):
    with pytest.raises(interpret.InputError, match="at least one"):
        interpret.report(lite0, coffee, [], tmp_path / "r.html")
    with pytest.raises(interpret.InputError, match="explanations"):
        interpret.report(lite0, coffee, ["gradcam"], tmp_path / "r.html")


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium to print with")
def test_the_pdf_comes_from_chromium(made, lite0, coffee, tmp_path):
    path, _, _ = made
    data = html_to_pdf(Path(path).read_text(), tmp_path / "trust.pdf")
    assert data.startswith(b"%PDF-") and (tmp_path / "trust.pdf").read_bytes() == data
    assert len(data) > 20_000  # the images are in it
    assert b"/Image" in data or b"/XObject" in data


# ----------------------------------------------------------------------------------
# issue 17: the report's labels, axis and legend, and its plain variant


def test_agreement_table_names_the_methods_not_their_ids(lite0, coffee):
    from interpret.report import report_html

    es = [interpret.explain(lite0, coffee, m) for m in ("gradcam", "gradcam_plus_plus")]
    text = report_html(lite0, coffee, es, steps=4)
    table = text.split("Do the methods agree?")[1]
    assert "<th>Grad-CAM++</th>" in table and "Grad-CAM</th>" in table
    assert "gradcam_plus_plus</th>" not in table and ">gradcam<" not in table


@pytest.mark.parametrize("peak", [0.99, 0.97, 1.0, 0.5, 0.031, 0.0004])
def test_the_probability_axis_never_reads_above_100_percent(peak):
    import numpy as np
    from types import SimpleNamespace

    from interpret.report import _svg_curves

    fr = np.linspace(0, 1, 5)
    curve = np.array([peak, peak / 2, peak / 3, 0.0, 0.0])
    f = SimpleNamespace(fractions=fr, deletion=curve, random_deletion=curve, insertion=curve[::-1],
                        random_insertion=curve[::-1])
    svg = _svg_curves(f)
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([\d.]+)%<', svg)]
    assert ticks and max(ticks) <= 100.0, ticks
    assert max(ticks) >= 100 * peak - 1e-9  # the top tick is at or above the curves' peak
    assert ticks[0] == 0.0


def test_every_map_has_a_colour_legend(made):
    path, es, _ = made
    text = Path(path).read_text()
    assert text.count('class="legend"') == len(es)
    assert "least important" in text and "most important" in text
    assert "linear-gradient(to right, rgb(" in text


def test_presentation_report_is_in_plain_words_without_technical_numbers(lite0, coffee):
    from interpret.report import report_html

    es = [interpret.explain(lite0, coffee, m) for m in ("gradcam", "layercam")]
    text = report_html(lite0, coffee, es, steps=4, plain=True)
    body = re.sub(r'src="[^"]*"|style="[^"]*"|<style>.*?</style>', "", text, flags=re.S)
    words_only = re.sub(r"<[^>]+>", " ", body)
    for technical in ("<svg", "area", "rank correlation", "Spearman", "steps", "baseline", "grid",
                      "deletion", "insertion"):
        assert technical not in body.replace("areas are", ""), technical
    assert "what made the model say" in words_only and "espresso" in words_only
    f = interpret.faithfulness(lite0, coffee, es[0], steps=4)
    assert words.html(words.trust_plain(f.verdict, "red")) in text
    assert text.count('class="legend"') == 2
    # correlation values and curve areas: no decimal number but the predictions' percentages
    assert not re.search(r"\b0\.\d+(?![\d]*%)", words_only.split("Made ")[0]), words_only
