"""The Trust panel, the comparison, the region and the report buttons of ui/trust.py,
driven with AppTest on tests/apps/trust_page.py (a page set up with ui.setup that calls
them as the Attributions page will)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

from interpret.figures.trust import box_from_selection  # noqa: E402
from ui import trust  # noqa: E402

PAGE = Path(__file__).resolve().parent / "apps" / "trust_page.py"
# small settings; auto_seconds=100000: CAMs always checked by themselves (the real budget
# depends on the machine's measured speed, which a test must not)
FAST = {"steps": "4", "seeds": "1", "sanity_layers": "2", "auto_seconds": "100000"}


def page(**query) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.query_params.update({**FAST, **query})
    return at


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption])


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> dict:
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_cams_are_checked_by_themselves_when_cheap_and_the_panel_says_so_plainly():
    at = page()
    at.run()
    no_errors(at)
    t = texts(at)
    assert trust.TITLE in t
    verdicts = [w for w in trust.BADGE.values() if f" {w}]" in t]
    assert verdicts, t
    assert trust.SANITY_BADGE[None] in t
    # the trust sentence quotes the areas the verdict rests on (issue 17)
    assert "Showing the photo back in the map's order" in t
    figs = charts(at)
    curves = figs["trust_curves_gradcam"]
    assert [tr["name"].split(" (")[0] for tr in curves["data"]] == [
        "hiding the map's pixels first", "hiding random pixels", "showing the map's pixels first",
        "showing random pixels"]
    assert "trust_agreement" in figs and "w_trust_region" in figs
    labels = [b.label for b in at.button]
    assert trust.SANITY_BUTTON in labels and trust.ROAD_BUTTON in labels
    downloads = [d.proto.label for d in at.get("download_button")]
    assert downloads == [trust.HTML_BUTTON, trust.PDF_BUTTON]


def test_other_maps_wait_for_a_click_then_the_sanity_check_runs_through_the_gate():
    at = page(methods="saliency,gradcam", auto_seconds="0")
    at.run()
    no_errors(at)
    assert trust.NOT_CHECKED in texts(at)
    at.button(key="trust_check_saliency").click().run()
    no_errors(at)
    t = texts(at)
    assert trust.NOT_CHECKED not in t.split(trust.COMPARE_TITLE)[0]
    assert "Showing the photo back in the map's order" in t
    at.button(key="trust_sanity_saliency").click().run()
    no_errors(at)
    t = texts(at)
    assert trust.SANITY_BADGE["passed"] in t or trust.SANITY_BADGE["failed"] in t
    assert "2 blocks" in t  # sanity_layers=2 reached the backend


def test_presentation_mode_shows_badge_and_sentence_but_no_numbers():
    at = page(present="1")
    at.run()
    no_errors(at)
    t = texts(at)
    # the verdict in words, without the areas (issue 17)
    assert "Checked:" in t and "Showing the photo back" not in t
    assert "Deletion area" not in t and "insertion 0." not in t
    assert not any(k.startswith("trust_curves") for k in charts(at))
    assert trust.ROAD_BUTTON not in [b.label for b in at.button]


def _sample_hash(key: str = "cat") -> str:
    import interpret
    from interpret.images import image_hash
    from ui.samples import sample

    return image_hash(interpret.load_image(sample(key).path))


def test_a_drawn_region_adds_pointing_game_and_mass_for_each_map():
    at = page()
    at.run()
    assert "In the box you drew" not in texts(at)
    # what the chart's box selection gives back (Plotly's image coordinates, pixel j
    # centred on j), as the page keeps it for this photo
    box = box_from_selection({"selection": {"box": [{"x": [-0.5, 111.5], "y": [-0.5, 223.5]}]}}, (224, 224))
    assert box == (0.0, 0.0, 112.0, 224.0)
    at.session_state[f"trust_region_{_sample_hash()}"] = box
    at.run()
    no_errors(at)
    t = texts(at)
    assert "In the box you drew" in t and "of the map lies inside" in t
    assert t.count("box: hit") + t.count("box: miss") == 2  # both maps of the comparison
    assert trust.CLEAR_REGION in [b.label for b in at.button]
    at.button(key="trust_clear_region").click().run()
    assert "In the box you drew" not in texts(at)


def test_box_from_selection_ignores_empty_and_tiny_boxes():
    assert box_from_selection(None, (224, 224)) is None
    assert box_from_selection({"selection": {"box": []}}, (224, 224)) is None
    assert box_from_selection({"selection": {"box": [{"x": [3, 3.2], "y": [5, 90]}]}}, (224, 224)) is None
    assert box_from_selection({"selection": {"box": [{"x": [300, -20], "y": [10, 40]}]}}, (224, 224)) == (
        0.0, 10.5, 224.0, 40.5)
