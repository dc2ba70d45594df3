""""This box rather than that label" (issue 20): ``targets.box(det, contrast=label)``
explains the box's score for its class minus the score of another label in the same
box (matched by IoU as the box itself), 0 when the detector keeps no detection of that
label there, and then every sentence says so.  Numbers by hand on a detector whose
scores are known functions of the pixels, agreement with a torchvision Faster R-CNN's
own detections, the linearity of the gradient, and the words as a table."""

from __future__ import annotations

import pytest
import torch

import interpret
from interpret import targets, words
from test_detection_app import detector_folder  # noqa: F401  (a fixture)
from test_detection_trust import ContextDetector, _handle, _photo


def _q(v: float) -> float:
    return round(v * 255) / 255  # what a uint8 photo holds


def test_box_rather_than_a_label_found_in_the_same_box_explains_the_difference_by_hand():
    """Red 0.8 inside, 0.4 outside: cat scores 0.6*0.8 + 0.3*0.4, dog 0.25*0.8 in the
    same box; the score explained is their difference."""
    h = _handle(ContextDetector())
    img = _photo(0.8, 0.4)
    cat = next(d for d in interpret.predict(h, img, threshold=0.0) if d.label == "cat")
    e = interpret.explain(h, img, "input_x_gradient", target=targets.box(cat, contrast="dog"))
    s_cat, s_dog = 0.6 * _q(0.8) + 0.3 * _q(0.4), 0.25 * _q(0.8)
    assert e.score == pytest.approx(s_cat - s_dog, abs=1e-5)
    t = e.explained
    assert (t.contrast, t.contrast_found) == (2, True) and t.contrast_score == pytest.approx(s_dog, abs=1e-5)
    assert e.contrast_label == "dog"
    assert t.sentence(h.labels).endswith("rather than dog in the same box")
    assert t.unit == "value"  # a difference of two probabilities is not a probability


def test_a_label_with_no_detection_in_the_box_counts_0_and_the_sentence_says_so():
    """Red 0.1 inside: dog would score 0.025, under the detector's threshold (0.05), so
    the detector keeps no dog: its score counts 0 and the cat's score is explained alone."""
    h = _handle(ContextDetector())
    img = _photo(0.1, 0.8)
    e = interpret.explain(h, img, "saliency", target=targets.box((8, 8, 24, 20), label="cat", contrast="dog"))
    assert e.score == pytest.approx(0.6 * _q(0.1) + 0.3 * _q(0.8), abs=1e-5)
    t = e.explained
    assert t.contrast_found is False and t.contrast_score == 0.0
    said = t.sentence(h.labels)
    assert "the model has no detection of dog in this box, so its score counts as 0" in said
    assert "counts as 0" in words.box_contrast("cat", "dog", e.score, t.contrast_score, t.contrast_found)


def test_the_contrasts_gradient_is_the_difference_of_the_two_boxes_gradients():
    """Input x gradient is linear in the score: the map of "cat rather than dog" equals
    the cat box's map minus the dog box's (both found in the same box)."""
    h = _handle(ContextDetector())
    img = _photo(0.8, 0.4)
    box = (8, 8, 24, 20)
    both = interpret.explain(h, img, "input_x_gradient", target=targets.box(box, label="cat", contrast="dog"))
    cat = interpret.explain(h, img, "input_x_gradient", target=targets.box(box, label="cat"))
    dog = interpret.explain(h, img, "input_x_gradient", target=targets.box(box, label="dog"))
    assert torch.allclose(both.attribution, cat.attribution - dog.attribution, atol=1e-7)
    assert float(both.attribution.abs().sum()) > 0


def test_contrast_on_a_torchvision_faster_rcnn_equals_its_own_two_detections():
    """On a random tiny Faster R-CNN (every detection kept): for a box whose other
    class has a detection matching it by IoU > 0.5, the score explained is the box's
    score minus that detection's, as interpret.predict lists them."""
    from detectors import handle, photo, tiny_rcnn
    from interpret.detection import box_iou

    m = tiny_rcnn()
    m.roi_heads.detections_per_img = 100  # this test's own module: every class of every proposal
    h, img = handle(m), photo()
    dets = interpret.predict(h, img, threshold=0.0)
    checked = 0
    for d in dets:
        other = 3 - d.index
        ious = [(float(box_iou(torch.tensor(d.box), torch.tensor([o.box]))[0]), o)
                for o in dets if o.index == other]
        ious = [(i, o) for i, o in ious if i > 0.5]
        if not ious:
            continue
        # photo pixels -> input pixels moves the IoU a little: compare with the match the target made
        e = interpret.explain(h, img, "gradcam", target=targets.box(d, contrast=other))
        t = e.explained
        assert t.contrast_found is True
        assert any(abs(t.contrast_score - o.score) < 1e-5 for _, o in ious)
        assert e.score == pytest.approx(d.score - t.contrast_score, abs=1e-5)
        checked += 1
    assert checked >= 1


def test_box_keeps_its_old_signature_and_refuses_a_bad_contrast():
    D = interpret.Detection((1.0, 2.0, 10.0, 12.0), 1, "cat", 0.9)  # four fields, as before
    assert D.mask is None and D == interpret.Detection((1.0, 2.0, 10.0, 12.0), 1, "cat", 0.9)
    t = targets.box(D)
    assert t.contrast is None and t.index == 1
    assert targets.box((1, 2, 10, 12), label=None).index == -1
    with pytest.raises(interpret.InputError, match="contrast is a class index or a label"):
        targets.box(D, contrast=1.5)
    h = _handle(ContextDetector())
    img = _photo(0.8, 0.4)
    with pytest.raises(interpret.InputError, match="rather than itself"):
        interpret.explain(h, img, "saliency", target=targets.box((8, 8, 24, 20), label="cat", contrast="cat"))
    with pytest.raises(interpret.InputError, match="D-RISE .* cannot explain"):
        interpret.explain(h, img, "drise", target=targets.box((8, 8, 24, 20), label="cat", contrast="dog"),
                          masks=8, grid=4, batch_size=4)
    with pytest.raises(interpret.InputError, match="applies to one box"):
        interpret.explain(h, img, "saliency", target=None, contrast="dog")


def test_contrast_given_to_explain_is_the_same_as_in_the_box():
    h = _handle(ContextDetector())
    img = _photo(0.8, 0.4)
    a = interpret.explain(h, img, "saliency", target=targets.box((8, 8, 24, 20), label="cat"), contrast="dog")
    b = interpret.explain(h, img, "saliency", target=targets.box((8, 8, 24, 20), label="cat", contrast="dog"))
    assert a.score == pytest.approx(b.score) and a.explained.key == b.explained.key


# -- the words -------------------------------------------------------------------------------

@pytest.mark.parametrize("args,want", [
    (("cat", "dog", 0.9, 0.2, True),
     "In this box the model gives ***cat*** 90% and ***dog*** 20%: the map explains the difference, 70 points."),
    (("cat", "dog", 0.3, 0.5, True),
     "In this box the model gives ***cat*** 30% and ***dog*** 50%: the map explains the difference, -20 points; "
     "***dog*** scores higher here."),
    (("cat", "dog", 0.42, 0.0, False, 0.05),
     "The model keeps no detection of ***dog*** in this box (none overlapping it by more than IoU 0.50 with a "
     "score above its own threshold of 5.0%), so the score of ***dog*** counts as 0 and the map explains the "
     "score of ***cat*** alone (42%)."),
    (("cat", "dog", 0.42, 0.0, False, None, 0.7),
     "The model keeps no detection of ***dog*** in this box (none overlapping it by more than IoU 0.70), so "
     "the score of ***dog*** counts as 0 and the map explains the score of ***cat*** alone (42%)."),
    (("cat", "dog", 0.5004, 0.5001, True),
     "In this box the model gives ***cat*** 50.04% and ***dog*** 50.01%: the map explains the difference, "
     "0.03 points."),
])
def test_box_contrast_sentence(args, want):
    assert words.box_contrast(*args) == want


def test_box_contrast_sentence_escapes_labels():
    s = words.box_contrast("<b>cat</b>", "*dog*", 0.9, 0.0, False)
    assert "<b>" not in s and words.text("<b>cat</b>") in s and words.text("*dog*") in s


@pytest.mark.parametrize("contrast,found,want", [
    (None, None, "the detection of cat in the box (1, 2)-(10, 12)"),
    ("dog", True, "the detection of cat in the box (1, 2)-(10, 12) rather than dog in the same box"),
    ("dog", None, "the detection of cat in the box (1, 2)-(10, 12) rather than dog in the same box"),
    ("dog", False, "the detection of cat in the box (1, 2)-(10, 12) rather than dog (the model has no "
                   "detection of dog in this box, so its score counts as 0)"),
])
def test_box_target_words(contrast, found, want):
    assert words.box_target("cat", (1.2, 2.0, 9.6, 12.4), contrast, found) == want


# -- the Attributions page (AppTest) -----------------------------------------------------------

@pytest.fixture
def recorded(monkeypatch):
    """What the Compare view explains (ui.compute.explain's targets) and what the report
    would hold (ui.trust.report_downloads' explanations), recorded as the page runs."""
    from ui import compute, trust

    seen = {"compare": [], "report": []}
    explain = compute.explain

    def spy_explain(handle, img, method, layer, target, contrast, params):
        seen["compare"].append(target)
        return explain(handle, img, method, layer, target, contrast, params)

    def spy_report(ctx, explanations, settings=None):
        seen["report"].append([getattr(e, "explained", None) for e in explanations])

    monkeypatch.setattr(compute, "explain", spy_explain)
    monkeypatch.setattr(trust, "report_downloads", spy_report)
    return seen


def _attributions(detector_folder):
    from test_app import page

    at = page("app.py", {"model": "team:Shapes", "img": "cat", "method": "gradcam",
                         "compare": "gradcam,saliency"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    at.slider(key="w_det_threshold").set_value(0.0).run()
    at.switch_page("pages/4_Attributions.py").run()
    return at


def _label_and_corner(option: str):
    """("square", "(12, 40)") from "3. square 36% at (12, 40)"."""
    head, corner = option.split(" at ")
    return head.split(". ", 1)[1].rsplit(" ", 1)[0], corner


def test_compare_and_report_explain_the_picked_box_not_the_top_box_of_its_class(detector_folder, recorded):
    """A second, lower-scoring box of the same class as the top one is picked: every map
    of the Compare view and every card of the report explain that box (before, they
    took its class and explained the class's top box)."""
    from test_app import no_errors

    at = _attributions(detector_folder)
    no_errors(at)
    options = at.selectbox(key="w_det_box").options
    first_label, first_corner = _label_and_corner(options[0])
    same = [j for j in range(1, len(options)) if _label_and_corner(options[j])[0] == first_label
            and _label_and_corner(options[j])[1] != first_corner]
    assert same, options
    j = same[0]
    recorded["compare"].clear()
    recorded["report"].clear()
    at.selectbox(key="w_det_box").set_value(j).run()
    no_errors(at)
    corner = _label_and_corner(options[j])[1]

    def at_corner(t):
        return t is not None and t.kind == "box" and f"({t.box[0]:.0f}, {t.box[1]:.0f})" == corner

    assert recorded["compare"] and all(at_corner(t) for t in recorded["compare"]), recorded["compare"]
    assert recorded["report"] and all(at_corner(t) for cards in recorded["report"] for t in cards)
    assert any(corner.replace("(", "").split(",")[0] in c.value and "All explaining the detection of" in c.value
               for c in at.caption)


def test_rather_than_another_label_next_to_the_picked_box(detector_folder):
    """The contrast picker beside the box: the map explains "square rather than disc"
    in that box, and the words under it give both scores, or say that the other label
    counts 0 when the detector keeps none of it there."""
    from test_app import no_errors

    at = _attributions(detector_folder)
    pick = at.selectbox(key="w_det_contrast")
    own = _label_and_corner(at.selectbox(key="w_det_box").options[0])[0]
    other, other_name = (1, "square") if "disc" in own else (2, "<b>disc</b>")
    # "no other label", then every label but the box's own and the background
    assert pick.value == -1 and list(pick.options) == ["no other label", other_name]
    pick.set_value(other).run()
    no_errors(at)
    said = " ".join(c.value for c in at.caption) + " ".join(m.value for m in at.markdown)
    name = words.text(other_name)
    assert f"rather than {name}" in said and "<b>" not in said
    assert (f"In this box the model gives" in said) or (f"the score of ***{name}*** counts as 0" in said)
    assert "On the segment explained" not in said  # a box is not a segment
    overlay = None
    from test_app import charts

    overlay = charts(at)["overlay"]
    assert "rather than" in str(overlay["layout"].get("title"))



def test_the_trust_sentence_of_a_box_contrast_quotes_the_difference_it_follows():
    """The curves follow cat's score minus dog's in the box (a value, not a
    probability); the sentence says so instead of "the value of cat"."""
    h = _handle(ContextDetector())
    img = _photo(0.8, 0.4)
    e = interpret.explain(h, img, "saliency", target=targets.box((8, 8, 24, 20), label="cat", contrast="dog"))
    f = interpret.faithfulness(h, img, e, steps=4, seeds=1)
    assert f.unit == "value" if hasattr(f, "unit") else True
    assert "the score of \u201c*cat*\u201d minus that of \u201c*dog*\u201d" in f.sentence_for()
    # the curve starts at the difference on the full photo
    assert float(f.insertion[-1]) == pytest.approx(0.6 * _q(0.8) + 0.3 * _q(0.4) - 0.25 * _q(0.8), abs=1e-5)


def test_a_box_contrast_is_dropped_only_for_methods_that_do_not_depend_on_the_target(detector_folder):
    """Eigen-CAM (the layer's first principal component) cannot take "rather than":
    with a contrast picked, the page shows its map of the box without it instead of a
    refusal, and Grad-CAM beside it in the Compare view explains the contrast."""
    from test_app import no_errors, page

    at = page("app.py", {"model": "team:Shapes", "img": "cat", "method": "eigencam",
                         "compare": "eigencam,gradcam"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    at.slider(key="w_det_threshold").set_value(0.0).run()
    at.switch_page("pages/4_Attributions.py").run()
    pick = at.selectbox(key="w_det_contrast")
    pick.set_value(1 if "disc" in _label_and_corner(at.selectbox(key="w_det_box").options[0])[0] else 2).run()
    no_errors(at)
    assert not any("no effect" in w.value for w in at.warning)
    said = " ".join(c.value for c in at.caption)
    assert "All explaining the detection of" in said and "rather than" in said
