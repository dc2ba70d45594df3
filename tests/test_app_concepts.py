"""The Concepts page with Streamlit's AppTest (no browser): the bundled model on a
sample photo, its top concepts with their shares and heatmaps as the backend computes
them, and the discovered concepts on request."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit.testing.v1")

import interpret  # noqa: E402
from test_app import no_errors, page  # noqa: E402

CONCEPTS = "pages/7_Concepts.py"


def captions(at) -> list:
    return [im.caption for el in at.get("image") for im in el.proto.imgs if im.caption]


def test_the_concepts_page_shows_the_top_concepts_the_backend_finds():
    at = page(CONCEPTS)
    at.run()
    no_errors(at)
    caps = [c for c in captions(at) if "of the layer's relevance" in c]
    assert len(caps) == 6
    # the same channels and shares as interpret.concepts for the page's photo, layer and class
    from ui.samples import DEFAULT_SAMPLE, sample

    handle = interpret.load_model()
    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    top = interpret.predict(handle, photo, top_k=1)[0].index
    cs = interpret.concepts(handle, photo, layer=interpret.default_layer(handle), target=top, k=6)
    want = [f"channel {c.channel}: {c.relevance:.0%} of the layer's relevance" for c in cs]
    # the same top concept and shares; channels whose relevances tie to float rounding
    # (1% each here) may swap between thread counts
    assert caps[0] == want[0]
    assert [c.split(": ")[1] for c in caps] == [w.split(": ")[1] for w in want]
    assert len(set(caps) & set(want)) >= 4
    sentence = " ".join(m.value for m in at.markdown)
    assert "here rests" in sentence or "spread over many concepts" in sentence


def test_fewer_concepts_when_asked_and_discovery_on_request():
    at = page(CONCEPTS)
    at.run()
    at.number_input(key="w_cx_k").set_value(3).run()
    no_errors(at)
    assert len([c for c in captions(at) if "of the layer's relevance" in c]) == 3
    at.slider(key="w_cx_k_discover").set_value(2).run()
    at.button(key="cx_discover_btn").click().run()
    no_errors(at)
    assert len([c for c in captions(at) if c.startswith("discovered concept")]) == 2


def test_reference_patches_and_the_class_table_on_request():
    at = page(CONCEPTS)
    at.run()
    at.number_input(key="w_cx_k").set_value(2).run()
    at.button(key="cx_refs_btn").click().run()
    no_errors(at)
    assert len(at.dataframe) >= 1
    df = at.dataframe[0].value
    assert "class" in df.columns and df["photos"].sum() >= 1
