"""The Outputs and Attributions pages for an object detector (issue 20), with
Streamlit's AppTest: the boxes drawn on the photo with a threshold slider, a click on
a box picks it on the Attributions page, whose map is that detection's with its
outline; Dataset mode refuses a detector; the words those pages use, as a table."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("streamlit.testing.v1")

import interpret  # noqa: E402
from test_app import charts, no_errors, page  # noqa: E402
from ui import tasks  # noqa: E402


@pytest.fixture
def detector_folder(tmp_path, monkeypatch):
    from torchvision.models import get_model

    torch.manual_seed(0)
    m = get_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None, num_classes=3)
    torch.save(m.state_dict(), tmp_path / "det.pth")
    (tmp_path / "det.txt").write_text("background\nsquare\n<b>disc</b>\n")
    (tmp_path / "models.toml").write_text(
        '[[model]]\nname = "Shapes"\nfile = "det.pth"\narch = "fasterrcnn_mobilenet_v3_large_320_fpn"\n'
        'labels = "det.txt"\n')
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(tmp_path))
    return tmp_path


def test_outputs_draws_the_boxes_and_a_click_explains_that_box(detector_folder):
    at = page("app.py", {"model": "team:Shapes", "img": "cat", "method": "gradcam"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    assert any("an object detector" in c.value for c in at.caption)
    at.slider(key="w_det_threshold").set_value(0.0).run()
    no_errors(at)
    spec = charts(at)["det_boxes"]
    shapes = spec["layout"].get("shapes", [])
    assert len(shapes) > 1 and any("objects scoring 0% or more" in m.value for m in at.markdown)
    # a visitor's label is text, never markup, in the figure
    assert "<b>disc</b>" not in str(spec["layout"].get("annotations"))
    # a click on the second box picks it for the Attributions page
    # (AppTest cannot fire a chart's on_select callback: the state it writes is set here)
    at.session_state["w_det_box"] = 1
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    assert at.selectbox(key="w_det_box").value == 1
    said = " ".join(c.value for c in at.caption)
    assert "Explaining the detection of" in said
    overlay = charts(at)["overlay"]
    assert len(overlay["layout"].get("shapes", [])) == 1  # the box's outline on the map
    assert any("of the map lies inside the box" in m.value for m in at.markdown)


def test_dataset_mode_refuses_a_detector_with_a_sentence(tmp_path):
    from detectors import handle

    with pytest.raises(interpret.InputError, match="is an object detector"):
        interpret.analyze_dataset(handle(), tmp_path, out=tmp_path / "out")


@pytest.mark.parametrize("found,threshold,want", [
    ([("cat", 0.9), ("cat", 0.7), ("dog", 0.6), ("cup", 0.1)], 0.5,
     "The model finds 3 objects scoring 50% or more: 2 ***cat***, 1 ***dog***."),
    ([("cat", 0.3)], 0.5, "The model finds no object scoring 50% or more; the best scores 30% (***cat***)."),
    ([], 0.5, "The model finds no object scoring 50% or more."),
    ([("cat", 0.5)], 0.5, "The model finds 1 object scoring 50% or more: 1 ***cat***."),
])
def test_detection_sentence(found, threshold, want):
    assert tasks.detection_sentence(found, threshold) == want


def test_detection_sentence_escapes_labels():
    s = tasks.detection_sentence([("<img src=x>", 0.9)], 0.5)
    assert "<img" not in s and interpret.words.text("<img src=x>") in s


def test_detection_rows_put_detected_classes_first_by_best_score():
    D = interpret.Detection
    rows = tasks.detection_rows([D((0, 0, 1, 1), 2, "b", 0.4), D((0, 0, 1, 1), 1, "a", 0.9),
                                 D((0, 0, 2, 2), 2, "b", 0.8)], ["bg", "a", "b", "c"])
    assert [r.index for r in rows] == [1, 2, 0, 3]
    assert [r.probability for r in rows] == [0.9, 0.8, None, None]


@pytest.mark.parametrize("hit,mass,area,want", [
    (True, 0.62, 0.08, "The map's strongest point is inside the box; 62% of the map lies inside the box, "
                       "which covers 8% of what the model sees, 7.8 times what a uniform map would put there."),
    (False, 0.05, 0.1, "The map's strongest point is outside the box; 5% of the map lies inside the box, "
                       "which covers 10% of what the model sees, 0.5 times what a uniform map would put there."),
    (False, 0.0, 0.0, "The map's strongest point is outside the box; 0% of the map lies inside the box, "
                      "which covers 0% of what the model sees."),
])
def test_box_localisation_sentence(hit, mass, area, want):
    assert tasks.box_localisation_sentence(hit, mass, area) == want
