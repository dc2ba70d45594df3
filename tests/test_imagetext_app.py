"""Image-text models in the app (AppTest): an open_clip model picked by name, two
prompts typed in the sidebar (the template applied), the Outputs page's probabilities
over them, and on the Attributions page a map for each prompt; plus the words those
parts use, as tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("streamlit.testing.v1")
pytest.importorskip("open_clip")

from test_app import charts, image_of, no_errors, page, values  # noqa: E402
from ui import imagetext as it_ui  # noqa: E402


def _overlay(at):
    spec = charts(at)["overlay"]
    img = next(t for t in spec["data"] if t.get("type") == "image")
    return np.asarray(image_of(img).convert("RGB"), dtype=np.float32)


def test_two_typed_prompts_give_probabilities_and_a_map_for_each():
    at = page("app.py", {"model": "open_clip:ViT-B-32", "img": "cat"}).run()
    at.sidebar.text_area(key="w_prompts").input("cat\n<b>dog</b>").run()
    no_errors(at)
    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    bars = charts(at)["prompt_bars"]["data"][0]
    labels = json.dumps(bars["y"])
    assert "a photo of a cat" in labels and "&lt;b&gt;dog&lt;/b&gt;" in labels and "<b>dog" not in labels
    probs = values(bars["x"]).astype(float) if isinstance(bars["x"], dict) else np.asarray(bars["x"], float)
    assert probs.sum() == pytest.approx(1.0, abs=1e-3)  # a softmax over the two prompts
    assert any("Of the 2 prompts" in m.value for m in at.markdown)

    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    at.text_input(key="w_it_prompt").input("a photo of a cat").run()
    no_errors(at)
    first = _overlay(at)
    assert any("the prompt “a photo of a cat”" in c.value for c in at.caption)
    at.text_input(key="w_it_prompt").input("a photo of a <b>dog</b>").run()
    no_errors(at)
    second = _overlay(at)
    assert any("the prompt “a photo of a &#60;b&#62;dog&#60;/b&#62;”" in c.value for c in at.caption)
    assert np.abs(first - second).mean() > 0.5  # a map of its own for each prompt


def test_a_link_to_an_open_clip_model_not_offered_is_refused_with_a_sentence():
    at = page("app.py", {"model": "open_clip:ViT-bigG-14"}).run()
    assert not at.exception
    said = " ".join(e.value for e in at.sidebar.error)
    assert "This server offers the open_clip models ViT-B-32, ViT-B-16, RN50, not that one." in said


@pytest.mark.parametrize("text,template,want", [
    ("cat\ndog", "a photo of a {}", ["a photo of a cat", "a photo of a dog"]),
    ("  cat \n\n dog\n", "", ["cat", "dog"]),
    ("a red car", "no placeholder", ["a red car"]),
    ("", "a photo of a {}", []),
])
def test_prompts_from_the_box(text, template, want):
    assert it_ui.prompts_from(text, template) == want


@pytest.mark.parametrize("rows,want", [
    ([("a cat", 0.7), ("a dog", 0.3)], "Of the 2 prompts, the model finds the photo closest to *a cat* (70%)."),
    ([("a cat", 1.0)], "With one prompt, *a cat* gets 100% by construction: add other prompts to compare."),
    ([("**x**", 0.5), ("y", 0.5)], "Of the 2 prompts, the model finds the photo closest to *&#42;&#42;x&#42;&#42;* (50%)."),
    ([], "There are no prompts."),
])
def test_zero_shot_sentence(rows, want):
    assert it_ui.zero_shot_sentence(rows) == want


def test_similar_to_an_uploaded_reference_photo_on_the_attributions_page():
    from test_app import photo_bytes

    at = page("app.py", {"model": "open_clip:ViT-B-32", "img": "cat"}).run()
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    at.radio(key="w_it_way").set_value("similar to a photo").run()
    asked = [e.value for e in list(at.error) + list(at.warning) + list(at.info)]
    assert any("Upload a reference photo above." in v for v in asked), asked  # no map until then
    at.file_uploader(key="w_it_reference").upload("<b>ref</b>.png", photo_bytes("espresso.jpg")).run()
    no_errors(at)
    said = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "look like the reference photo &#60;b&#62;ref&#60;/b&#62;.png" in said
    assert "<b>ref</b>" not in said
    assert "overlay" in charts(at)
