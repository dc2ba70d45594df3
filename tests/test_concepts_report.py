"""The report's concepts section: in plain words for a stakeholder in the presentation
report (the sentence and each picture's caption pure functions of the shares, the label
escaped), and passed from the app: the Attributions page's report gets the concepts the
person computed on the Concepts page for the same photo and class, and none otherwise."""

from __future__ import annotations

import html as _html
import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import Preprocessing
from interpret.concepts import ConceptSet, concept_caption, concept_sentence
from interpret.concepts.crp import Concept

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("name, share, target, want", [
    ("concept 12", 0.41, "tabby",
     "Bright where concept 12 counts for tabby; it carries 41% of what this layer weighs."),
    ("concept 3", 0.004, "tabby",
     "Bright where concept 3 counts for tabby; it carries less than 1% of what this layer weighs."),
    ("concept 3", -0.07, "tabby",
     "Concept 3 counts against tabby overall (7% of what this layer weighs); bright where it still counts for it."),
    ("concept 3", 0.0, "tabby", "Concept 3 counts neither for nor against tabby."),
    ("concept 3", float("nan"), "tabby", "Where concept 3 lies on the photo."),
])
def test_concept_caption_says_what_the_share_says(name, share, target, want):
    assert concept_caption(name, share, target) == want


def tiny():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(8, 8, 3, padding=1)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(8, 3)),
        ])).eval()


PHOTO = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def concept_set(label: str, shares, layer: str = "conv2") -> ConceptSet:
    """A result with the given shares (channel 12 then 7, ...) and heatmaps lit in one
    corner each."""
    items = []
    for i, (ch, s) in enumerate(shares):
        heat = np.zeros((32, 32), np.float32)
        heat[i * 4:(i + 1) * 4, :4] = s
        items.append(Concept(channel=ch, relevance=s, value=s, heatmap=heat))
    rel = np.zeros(16)
    for ch, s in shares:
        rel[ch] = s
    return ConceptSet(layer=layer, target=None, target_label=label, score=1.0, total=float(rel.sum()),
                      channel_relevance=rel, concepts=tuple(items), composite="epsilon_plus_flat",
                      canonizers=(), seconds=0.0)


def section(html: str) -> str:
    return html.split("<h2>What the decision rests on</h2>", 1)[1].split("<h2>", 1)[0]


def test_the_plain_report_says_in_words_what_the_decision_rests_on_with_the_shares():
    from interpret.report import report_html

    handle = interpret.load_model(tiny(), preprocessing=Preprocessing(32, 32), labels=["tabby", "dog", "car"])
    e = interpret.explain(handle, PHOTO, "gradcam", layer="conv2", target=0)
    cs = concept_set("tabby", [(12, 0.41), (7, 0.18), (3, -0.05)])
    page = report_html(handle, PHOTO, [e], steps=4, plain=True, concepts=cs)
    part = section(page)
    assert "<p class='sentence'><i>tabby</i> here rests mostly on channel 12 (41%) and channel 7 (18%).</p>" in part
    assert "Bright where channel 12 counts for <i>tabby</i>; it carries 41% of what this layer weighs." in part
    assert "Channel 3 counts against <i>tabby</i> overall (5% of what this layer weighs)" in part
    assert part.count('<img class="photo"') == 3
    # presentation mode: no technical settings in it
    assert "epsilon" not in part.lower() and "conv2" not in part
    # without concepts: no section
    assert "What the decision rests on" not in report_html(handle, PHOTO, [e], steps=4, plain=True)


def test_the_plain_concepts_section_escapes_the_label():
    from interpret.report import report_html

    bad = "<img src=x onerror=alert(1)>*x*"
    handle = interpret.load_model(tiny(), preprocessing=Preprocessing(32, 32), labels=[bad, "b", "c"])
    e = interpret.explain(handle, PHOTO, "gradcam", layer="conv2", target=0)
    part = section(report_html(handle, PHOTO, [e], steps=4, plain=True, concepts=concept_set(bad, [(1, 0.6)])))
    assert "<img src=x" not in part and "<i>x</i>" not in part
    assert "here rests mostly on channel 1 (60%)." in part


def test_the_plain_report_from_a_computed_result_uses_its_shares():
    from interpret.report import report_html

    handle = interpret.load_model(tiny(), preprocessing=Preprocessing(32, 32), labels=["tabby", "dog", "car"])
    cs = interpret.concepts(handle, PHOTO, layer="conv2", target=0, k=3)
    e = interpret.explain(handle, PHOTO, "gradcam", layer="conv2", target=0)
    part = section(report_html(handle, PHOTO, [e], steps=4, plain=True, concepts=cs))
    want = concept_sentence("*tabby*", [(f"channel {c.channel}", c.relevance) for c in cs])
    assert interpret.words.html(want) in part
    pos = [c for c in cs if c.relevance > 0]
    assert pos, "the top class's top concept carries positive relevance"
    assert f"channel {pos[0].channel} ({round(100 * pos[0].relevance)}%)" in _html.unescape(part)


def test_the_attributions_report_gets_the_concepts_computed_on_the_concepts_page():
    pytest.importorskip("streamlit.testing.v1")
    from test_app import no_errors, page

    at = page("tests/apps/concepts_report_page.py")
    at.run()
    no_errors(at)
    before = json.loads(at.text[0].value)
    assert before["concepts"] is None  # nothing computed: no section
    at.button(key="t_concepts").click().run()
    no_errors(at)
    after = json.loads(at.text[0].value)
    handle = interpret.load_model()
    from ui.samples import DEFAULT_SAMPLE, sample

    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    cs = interpret.concepts(handle, photo, layer=interpret.default_layer(handle), target=after["target"], k=3)
    assert [c for c, _ in after["concepts"]] == cs.channels
    np.testing.assert_allclose([s for _, s in after["concepts"]], [c.relevance for c in cs], rtol=1e-4, atol=1e-6)
    assert after["plain"] is False
