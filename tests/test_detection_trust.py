"""Trust that follows the box (issue 20): how much a detection relies on context
outside its box (interpret.box_context), with numbers a person can predict: on a
hand-made detector whose score is a known function of the pixels inside and outside
its box, and on the tiny detector trained in tests/test_detection_localisation.py
(a shape on noise: the box alone keeps the score, the surroundings alone do not);
its cost (three images, one batch); the words, as a table.  Mask R-CNN's masks
(Detection.mask, drawn on the photo) are tested here too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import targets, words
from test_detection_app import detector_folder  # noqa: F401  (a fixture)

SIDE = 32
BOX = (8.0, 8.0, 24.0, 20.0)  # input pixels: columns 8..23, rows 8..19


class ContextDetector(nn.Module):
    """One detection, always in ``BOX``, of class 1, scoring ``a * mean(inside) + b *
    mean(outside)`` of the red channel, and a second detection of class 2 in the same
    box scoring ``c * mean(inside)`` (torchvision's output format: a list of dicts).
    ``seen`` counts the images that went through it."""

    def __init__(self, a=0.6, b=0.3, c=0.25):
        super().__init__()
        self.a, self.b, self.c = a, b, c
        self.w = nn.Parameter(torch.ones(()))  # a parameter, so that the guard has one to watch
        self.seen = 0

    def forward(self, x):
        self.seen += int(x.shape[0])
        inside = torch.zeros(x.shape[-2:], dtype=torch.bool)
        inside[8:20, 8:24] = True
        red = x[:, 0] * self.w
        m_in = red[:, inside].mean(1)
        m_out = red[:, ~inside].mean(1)
        out = []
        for i in range(x.shape[0]):
            s1 = self.a * m_in[i] + self.b * m_out[i]
            s2 = self.c * m_in[i]
            keep = [s1 > 0.05, s2 > 0.05]  # the detector's own threshold drops weak boxes
            boxes = torch.tensor([BOX, BOX], dtype=x.dtype)
            scores = torch.stack([s1, s2])
            labels = torch.tensor([1, 2])
            k = torch.tensor(keep)
            out.append({"boxes": boxes[k], "scores": scores[k], "labels": labels[k]})
        return out


def _handle(module):
    return interpret.load_model(module.eval(), labels=["background", "cat", "dog"],
                                preprocessing=interpret.Preprocessing((SIDE, SIDE), None, (0, 0, 0), (1, 1, 1)))


def _photo(red_in: float, red_out: float) -> Image.Image:
    a = np.zeros((SIDE, SIDE, 3), np.uint8)
    a[..., 0] = round(red_out * 255)
    a[8:20, 8:24, 0] = round(red_in * 255)
    return Image.fromarray(a)


def test_box_context_equals_the_detectors_score_with_each_part_replaced_by_hand():
    """Red 0.8 inside, 0.4 outside, constant baseline 0.2: score 0.6*0.8 + 0.3*0.4 =
    0.60; the box alone 0.6*0.8 + 0.3*0.2 = 0.54; the surroundings alone 0.6*0.2 +
    0.3*0.4 = 0.24; reliance (0.60 - 0.54) / 0.60 = 0.10."""
    det = ContextDetector()
    h = _handle(det)
    img = _photo(0.8, 0.4)
    r_in, r_out, ref = round(0.8 * 255) / 255, round(0.4 * 255) / 255, 0.2
    d = interpret.predict(h, img, threshold=0.0)
    cat = next(x for x in d if x.label == "cat")
    det.seen = 0
    c = interpret.box_context(h, img, cat, baseline="constant", constant=ref)
    assert c.score == pytest.approx(0.6 * r_in + 0.3 * r_out, abs=1e-5)
    assert c.box_only == pytest.approx(0.6 * r_in + 0.3 * ref, abs=1e-5)
    assert c.context_only == pytest.approx(0.6 * ref + 0.3 * r_out, abs=1e-5)
    assert c.reliance == pytest.approx((c.score - c.box_only) / c.score)
    assert c.reliance == pytest.approx(0.3 * (r_out - ref) / (0.6 * r_in + 0.3 * r_out), abs=1e-5)
    # bounded: the photo, the box alone and the surroundings alone, nothing more
    assert c.forwards == 3 and det.seen == 3


def test_box_context_says_a_detection_that_only_its_surroundings_make_relies_strongly_on_them():
    """a = 0, b = 0.9: the score is all surroundings.  Black outside the box (constant
    0) leaves nothing above the detector's threshold: the box alone is 0 (gone), the
    reliance 1, and the sentence says so."""
    h = _handle(ContextDetector(a=0.0, b=0.9))
    img = _photo(0.9, 0.5)
    c = interpret.box_context(h, img, targets.box((8, 8, 24, 20), label="cat"), baseline="constant")
    assert c.score == pytest.approx(0.9 * round(0.5 * 255) / 255, abs=1e-5)
    assert c.box_only == 0.0 and c.reliance == 1.0
    assert c.context_only == pytest.approx(c.score, abs=1e-6)
    s = c.sentence
    assert "the detection is gone (its score counts as 0" in s and "**relies strongly**" in s
    assert "the surroundings alone keep at least half of its score" in s


def test_box_context_follows_an_explanations_own_box_and_the_deletion_baseline():
    det = ContextDetector()
    h = _handle(det)
    img = _photo(0.8, 0.4)
    e = interpret.explain(h, img, "saliency", target=targets.box((8, 8, 24, 20), label="cat"))
    c = interpret.box_context(h, img, e, baseline="mean")  # mean colour: 0 after this normalisation
    r_in, r_out = round(0.8 * 255) / 255, round(0.4 * 255) / 255
    assert c.box_only == pytest.approx(0.6 * r_in, abs=1e-5)
    assert c.context_only == pytest.approx(0.3 * r_out, abs=1e-5)
    assert det.w.grad is None and det.training is False


def test_box_context_refuses_what_is_not_a_box():
    h = _handle(ContextDetector())
    with pytest.raises(interpret.InputError, match="needs a box"):
        interpret.box_context(h, _photo(0.5, 0.5), 1)


def test_box_context_is_registered_with_its_cost():
    spec = interpret.trust.get_measure("box_context")
    assert spec.estimate(None).forwards == 3


# -- on the detector trained in the test ---------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    """The detector of tests/test_detection_localisation.py, trained the same way (120
    steps of Adam on a red square and a blue disc on noise, about 15 s)."""
    from test_detection_localisation import LABELS, SIDE as S, build, sample

    torch.set_num_threads(1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = build()
        m.train()
        rng = np.random.default_rng(0)
        opt = torch.optim.Adam(m.parameters(), lr=3e-3)
        for _ in range(120):
            batch = [sample(rng) for _ in range(8)]
            loss = sum(m([b[0] for b in batch], [b[1] for b in batch]).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    for p in m.parameters():
        p.grad = None
    return interpret.load_model(m, labels=LABELS,
                                preprocessing=interpret.Preprocessing((S, S), None, (0, 0, 0), (1, 1, 1)))


@pytest.mark.usefixtures("single_thread")
def test_a_shape_on_noise_hardly_relies_on_its_surroundings_on_the_trained_detector(trained):
    """The tiny Faster R-CNN of test_detection_localisation, trained on a red square and
    a blue disc on noise: the shape is all inside its box, so replacing everything
    outside it keeps the detection (it loses little of its score), and replacing the
    box itself with the mean colour takes most of it away.  Measured (12 boxes on 6 held-out
    photos, scores 0.91-0.97): with the mean colour, reliance +0.01 to +0.07 and the
    surroundings alone score 0.00-0.06; with the blur, the surroundings alone still
    score 0.75-0.96: a 9-pixel blur of a flat red square 14-19 pixels wide is still a
    red blob, which is what this detector learnt (the panel's sentence names the
    reference it used).  Bars: |reliance| <= 0.1, median share kept <= 0.2."""
    from test_detection_localisation import LABELS, sample

    h = trained
    rows = []
    for seed in range(600, 606):
        x, _ = sample(np.random.default_rng(seed))
        dets = interpret.predict(h, x[None], threshold=0.5)
        for label in (1, 2):
            own = [d for d in dets if d.index == label]
            if not own:
                continue
            d = max(own, key=lambda d: d.score)
            c = interpret.box_context(h, x[None], d, baseline="mean")
            b = interpret.box_context(h, x[None], d)  # blur, the panel's default
            rows.append((LABELS[label], c.score, c.box_only, c.context_only, c.reliance,
                         b.box_only, b.context_only))
    print("\n" + "\n".join(f"{n}: score {s:.2f}; mean colour: box alone {bo:.2f}, surroundings alone "
                           f"{o:.2f}, reliance {r:+.2f}; blur: box alone {bb:.2f}, surroundings alone {ob:.2f}"
                           for n, s, bo, o, r, bb, ob in rows))
    rel = np.array([r[4] for r in rows])
    ctx = np.array([r[3] / r[1] for r in rows])
    assert len(rows) >= 10
    assert np.abs(rel).max() <= 0.1  # the box alone keeps the score: the noise around says nothing
    assert np.median(ctx) <= 0.2  # the shape replaced by the mean colour: the detection is (nearly) gone


# -- the words ------------------------------------------------------------------------------

@pytest.mark.parametrize("score,box_only,context_only,baseline,want", [
    (0.6, 0.5, 0.24, "blur",
     "With everything outside the box blurred, the detection scores 50%, against 60% on the photo: it loses "
     "17% of its score, so it **relies in part** on context outside its box. With the box itself blurred and "
     "its surroundings kept, it scores 24%."),
    (0.9, 0.0, 0.0, "blur",
     "With everything outside the box blurred, the detection is gone (its score counts as 0, against 90% on "
     "the photo): it loses 100% of its score, so it **relies strongly** on context outside its box. With the "
     "box itself blurred and its surroundings kept, the detection is gone (counted as 0)."),
    (0.8, 0.78, 0.5, "mean",
     "With everything outside the box replaced by the mean colour, the detection scores 78%, against 80% on "
     "the photo: its score changes by less than a tenth, so it **hardly relies** on context outside its box. "
     "With the box itself replaced by the mean colour and its surroundings kept, it scores 50%: the "
     "surroundings alone keep at least half of its score."),
    (0.5, 0.7, 0.1, "constant",
     "With everything outside the box replaced by a flat colour, the detection scores 70%, against 50% on the "
     "photo: its score rises without its surroundings, so the context outside its box **holds it back**. "
     "With the box itself replaced by a flat colour and its surroundings kept, it scores 10%."),
    (0.0, 0.0, 0.3, "blur",
     "The detection has no score on the photo itself, so how much it relies on its surroundings cannot be "
     "measured."),
    (0.4, 0.19, 0.2, "blur",
     "With everything outside the box blurred, the detection scores 19%, against 40% on the photo: it loses "
     "52% of its score, so it **relies strongly** on context outside its box. With the box itself blurred "
     "and its surroundings kept, it scores 20%: the surroundings alone keep at least half of its score."),
])
def test_box_context_sentence(score, box_only, context_only, baseline, want):
    assert words.box_context(score, box_only, context_only, baseline) == want


@pytest.mark.parametrize("hit,mass,area,want", [
    (True, 0.62, 0.08, "The map's strongest point is inside the box; 62% of the map lies inside the box, "
                       "which covers 8% of what the model sees, 7.8 times what a uniform map would put there."),
    (False, 0.0, 0.0, "The map's strongest point is outside the box; 0% of the map lies inside the box, "
                      "which covers 0% of what the model sees."),
])
def test_box_localisation_sentence(hit, mass, area, want):
    assert words.box_localisation(hit, mass, area) == want


# -- Mask R-CNN's masks ------------------------------------------------------------------------

def tiny_mask_rcnn(seed: int = 0, side: int = 64):
    """A torchvision Mask R-CNN on the tiny two-level pyramid of tests/detectors.py
    (random init, every detection kept)."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    from detectors import TinyPyramid

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = MaskRCNN(
            TinyPyramid(), num_classes=None, min_size=side, max_size=side,
            image_mean=[0.0] * 3, image_std=[1.0] * 3,
            rpn_anchor_generator=AnchorGenerator(((8, 16), (16, 32)), ((1.0,), (1.0,))),
            box_roi_pool=MultiScaleRoIAlign(["0", "1"], 4, 2),
            box_head=TwoMLPHead(8 * 16, 32), box_predictor=FastRCNNPredictor(32, 3),
            mask_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2), mask_head=MaskRCNNHeads(8, (8,), 1),
            mask_predictor=MaskRCNNPredictor(8, 8, 3),
            box_score_thresh=0.0, rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20,
            box_detections_per_img=10)
    return m.eval()


@pytest.mark.parametrize("size", [(64, 64), (150, 100)])
def test_mask_rcnn_detections_carry_the_models_own_masks_in_the_photos_pixels(size):
    """Each detection's mask equals the detector's own mask for that box (probability
    above one half), resized to the photo bilinearly as F.interpolate does, over the
    box's pixels; a Faster R-CNN's detections have none."""
    import torch.nn.functional as F

    from detectors import handle, photo
    from interpret.detection import mask_origin

    m = tiny_mask_rcnn()
    h = handle(m)
    img = photo(3, size)
    dets = interpret.predict(h, img, threshold=0.0)
    from interpret.explain import input_tensor

    with torch.no_grad():
        own = m(input_tensor(h, img))[0]
    full = F.interpolate(own["masks"], size=(size[1], size[0]), mode="bilinear", align_corners=False)[:, 0] > 0.5
    assert dets and all(d.mask is not None for d in dets)
    painted = 0
    for d in dets:
        # the model's row of this detection: same score and class
        i = int(torch.argmin((own["scores"] - d.score).abs() + 10 * (own["labels"] != d.index)))
        c0, r0, w, hh = mask_origin(d.box)
        want = full[i, r0:r0 + hh, c0:c0 + w].numpy()
        assert d.mask.shape == want.shape
        assert (d.mask != want).mean() <= 0.002
        painted += int(d.mask.sum())
    assert painted > 0
    from detectors import tiny_rcnn

    assert all(d.mask is None for d in interpret.predict(handle(tiny_rcnn()), img, threshold=0.0))


def test_paint_masks_blends_each_mask_in_its_class_colour_and_nothing_else():
    from interpret.figures.detection import MASK_OPACITY, paint_masks
    from interpret.figures.tasks import segment_colors

    img = np.full((10, 12, 3), 100, np.uint8)
    mask = np.zeros((4, 5), bool)  # box (2, 3)-(7, 7): columns 2..6, rows 3..6
    mask[1:3, 1:4] = True
    d = interpret.Detection((2.0, 3.0, 7.0, 7.0), 1, "cat", 0.9, mask)
    out = paint_masks(img, [d, interpret.Detection((0.0, 0.0, 4.0, 4.0), 2, "dog", 0.8)], 3)
    colour = np.asarray(segment_colors(3)[1], np.float32)
    want = np.rint((1 - MASK_OPACITY) * 100 + MASK_OPACITY * colour).astype(np.uint8)
    assert (out[4:6, 3:6] == want).all()
    changed = (out != img).any(-1)
    assert changed.sum() == 6 and changed[4:6, 3:6].all()
    # a mask that is not its box's shape is never painted elsewhere
    bad = interpret.Detection((2.0, 3.0, 7.0, 7.0), 1, "cat", 0.9, np.ones((2, 2), bool))
    assert (paint_masks(img, [bad], 3) == img).all()
    # the one explained in full, the others at a third
    dim = paint_masks(img, [d], 3, selected=5)
    assert (dim[4, 3] == np.rint((1 - MASK_OPACITY / 3) * 100 + MASK_OPACITY / 3 * colour)).all()


# -- the trust panel (AppTest) -----------------------------------------------------------------

@pytest.mark.parametrize("how", ["by itself", "on a click"])
def test_the_trust_panel_of_a_box_shows_its_pointing_game_mass_and_context(detector_folder, how, monkeypatch):
    """In the trust panel, with no annotation: the pointing game and the map's mass
    inside the detected box as numbers and a sentence, and how much the detection
    relies on context outside its box (its three scores in words); the numbers are the
    backend's own for that box."""
    from test_app import no_errors, page
    from ui import trust as ui_trust

    removed = "blurred"
    if how == "on a click":  # the 3 passes estimated over the bound: a button, then the numbers
        monkeypatch.setitem(ui_trust.SETTINGS, "auto_seconds", 0.0)
        # and the panel's baseline is the measure's (a new key: nothing cached from before)
        monkeypatch.setitem(ui_trust.SETTINGS, "baseline", "mean")
        removed = "replaced by the mean colour"
    at = page("app.py", {"model": "team:Shapes", "img": "cat", "method": "gradcam"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    at.slider(key="w_det_threshold").set_value(0.0).run()
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    # the context runs by itself when its 3 passes are estimated at most 2 s, else on a click
    asked = [b for b in at.button if b.key == "trust_context_gradcam"]
    if how == "on a click":
        assert asked and not any(m.value.startswith("With everything outside") for m in at.markdown)
    if asked:
        asked[0].click().run()
        no_errors(at)
    assert not [b for b in at.button if b.key == "trust_context_gradcam"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Strongest point"] in ("inside the box", "outside the box")
    inside = metrics["Map inside the box"]
    said = [m.value for m in at.markdown]
    loc = next(s for s in said if s.startswith("The map's strongest point is"))
    assert f"; {inside} of the map lies inside the box" in loc
    assert (metrics["Strongest point"] == "inside the box") == loc.startswith("The map's strongest point is inside")
    ctx_line = next(s for s in said if s.startswith(f"With everything outside the box {removed}"))
    lost = metrics["Score lost without the surroundings"]
    assert ctx_line and lost.endswith("%")
    assert not any(s.startswith("On the segment explained") for s in said)


def test_the_report_card_of_a_box_is_about_that_box_with_its_own_measures():
    """A report of the second detection of a class: its card names that box (not the
    top box of its class), with the pointing game, the mass inside the box, the
    context outside it and, for a contrast, both scores."""
    from detectors import handle, photo
    from interpret.report import report_html

    h, img = handle(), photo()
    dets = interpret.predict(h, img, threshold=0.0)
    second = next(d for d in dets[1:] if d.index == dets[0].index and d.box != dets[0].box)
    e = interpret.explain(h, img, "gradcam", target=targets.box(second, contrast=3 - second.index))
    html = report_html(h, img, [e], steps=4)
    x0, y0 = (int(round(v)) for v in second.box[:2])
    tx0, ty0 = (int(round(v)) for v in dets[0].box[:2])
    assert f"in the box ({x0}, {y0})" in html and f"in the box ({tx0}, {ty0})" not in html
    assert "of the map lies inside the box" in html and "With everything outside the box blurred" in html
    assert ("In this box the model gives" in html) or ("counts as 0 and the map explains" in html)
    c = interpret.box_context(h, img, e)
    assert words.html(words.box_context(c.score, c.box_only, c.context_only, "blur")) in html


def test_the_outputs_figure_shows_a_mask_rcnn_mask_in_its_boxs_colour():
    """detections_figure paints the mask on the photo it sends (a JPEG: colours within
    JPEG's error), in the box's colour, and leaves the photo alone outside the mask."""
    import base64
    import io

    from interpret.figures import detections_figure
    from interpret.figures.detection import MASK_OPACITY
    from interpret.figures.tasks import segment_colors

    grey = Image.new("RGB", (40, 30), (128, 128, 128))
    mask = np.zeros((20, 20), bool)
    mask[4:16, 4:16] = True
    d = interpret.Detection((10.0, 5.0, 30.0, 25.0), 1, "cat", 0.9, mask)
    fig = detections_figure(grey, [d], 3)
    src = fig.data[0].source
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"), float)
    colour = np.asarray(segment_colors(3)[1], float)
    want = (1 - MASK_OPACITY) * 128 + MASK_OPACITY * colour
    assert np.abs(shown[12:18, 17:23] - want).max() <= 12  # inside the mask
    assert np.abs(shown[0:3, 0:8] - 128).max() <= 12  # far from it


@pytest.mark.parametrize("how", ["done", "cancelled", "contrast"])
def test_box_context_leaves_the_detector_unchanged(how, model_state):
    """After the three forwards, after a cancel from its progress callback, and for a
    box with a contrast: no hook, no .grad, no flag or weight changed."""
    from detectors import handle, photo

    h, img = handle(), photo(2)
    det = interpret.predict(h, img, threshold=0.0)[0]
    before = model_state.snapshot(h.module)
    if how == "cancelled":
        def stop(done, total):
            raise interpret.Cancelled()

        with pytest.raises(interpret.Cancelled):
            interpret.box_context(h, img, det, progress=stop)
    else:
        t = targets.box(det, contrast=3 - det.index) if how == "contrast" else det
        c = interpret.box_context(h, img, t)
        assert c.forwards == 3 and np.isfinite([c.score, c.box_only, c.context_only]).all()
        # the box's own score, a contrast set aside
        assert c.score == pytest.approx(det.score, abs=1e-5)
    model_state.assert_unchanged(before, h.module)
