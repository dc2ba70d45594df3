"""Box scores before a torchvision detector's NMS and score threshold (issue 20:
"computed where the gradient is meaningful, which for most detectors is before
non-maximum suppression"): interpret.detection_prenms.before_nms(handle).

(a) a detection the detector keeps has the same score before NMS (same proposal or
anchor, same class); (b) on a photo perturbed so that the detection falls under the
detector's score threshold, the box target reads its small score before NMS (equal to
the softmax of the box predictor's logits, or the score of torchvision's own
postprocessing with no threshold and no NMS) where after NMS it reads 0; (c) methods
run on the before-NMS handle and the model is unchanged.  Faster R-CNN, RetinaNet and
FCOS; SSD refused with a sentence."""

from __future__ import annotations

import copy

import pytest
import torch

import interpret
from interpret import InputError, targets
from interpret.detection import box_iou, pack
from interpret.detection_prenms import BeforeNMS, before_nms

from detectors import LABELS, TinyPyramid, handle, photo, tiny_rcnn

pytestmark = pytest.mark.usefixtures("single_thread")

SIDE = 64


def _anchors(per_loc: int):
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes = ((8, 16), (16, 32)) if per_loc == 2 else ((8,), (16,))
    return AnchorGenerator(sizes, ((1.0,), (1.0,)))


def tiny_retinanet(seed: int = 0) -> torch.nn.Module:
    from functools import partial

    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.retinanet import RetinaNetHead

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        # group-normalised towers (RetinaNet v2's): a random tower without them gives
        # features that hardly depend on the photo, so every score is its prior
        head = RetinaNetHead(8, 2, 3, norm_layer=partial(torch.nn.GroupNorm, 4))
        m = RetinaNet(TinyPyramid(), num_classes=3, min_size=SIDE, max_size=SIDE,
                      image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
                      anchor_generator=_anchors(2), head=head,
                      score_thresh=0.0, detections_per_img=10,
                      topk_candidates=10000)  # every (anchor, class) pair: 6144 at level 0
        with torch.no_grad():  # peaked scores: a random head's are all near its prior
            m.head.classification_head.cls_logits.weight.mul_(10.0)
            m.head.classification_head.cls_logits.bias.fill_(0.0)
    return m.eval()


class WidePyramid(TinyPyramid):
    """TinyPyramid with 32 channels: FCOS's head normalises in groups of 32."""

    out_channels = 32

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(32, 32, 3, stride=2, padding=1)


def tiny_fcos(seed: int = 0) -> torch.nn.Module:
    from torchvision.models.detection import FCOS

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = FCOS(WidePyramid(), num_classes=3, min_size=SIDE, max_size=SIDE,
                 image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
                 anchor_generator=_anchors(1), score_thresh=0.0, detections_per_img=10,
                 topk_candidates=10000)  # every (location, class) pair: 3072 at level 0
        with torch.no_grad():
            m.head.classification_head.cls_logits.weight.mul_(40.0)
            m.head.classification_head.cls_logits.bias.fill_(0.0)
            # boxes of about an anchor's size (a random head's ReLU'd distances are mostly 0)
            m.head.regression_head.bbox_reg.bias.fill_(1.0)
    return m.eval()


def peaked_rcnn(seed: int = 0) -> torch.nn.Module:
    m = tiny_rcnn(seed)
    with torch.no_grad():  # a random predictor's softmax is near 1/3 everywhere: make it peaked
        m.roi_heads.box_predictor.cls_score.weight.mul_(40.0)
    return m


def tiny_maskrcnn(seed: int = 0) -> torch.nn.Module:
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = MaskRCNN(TinyPyramid(), num_classes=None, min_size=SIDE, max_size=SIDE,
                     image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
                     rpn_anchor_generator=_anchors(2), box_roi_pool=MultiScaleRoIAlign(["0", "1"], 4, 2),
                     box_head=TwoMLPHead(8 * 16, 32), box_predictor=FastRCNNPredictor(32, 3),
                     mask_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2), mask_head=MaskRCNNHeads(8, (16,), 1),
                     mask_predictor=MaskRCNNPredictor(16, 16, 3), box_score_thresh=0.0,
                     rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20, box_detections_per_img=10)
    return m.eval()


BUILDERS = {"fasterrcnn": peaked_rcnn, "retinanet": tiny_retinanet, "fcos": tiny_fcos}


def thresholds(m):
    """Every threshold the detector reads (values, to see that none was changed)."""
    if hasattr(m, "roi_heads"):
        r = m.roi_heads
        return (r.score_thresh, r.nms_thresh, r.detections_per_img, m.rpn._pre_nms_top_n,
                m.rpn._post_nms_top_n, m.rpn.nms_thresh)
    return (m.score_thresh, m.nms_thresh, m.detections_per_img, m.topk_candidates)


def set_score_threshold(m, t: float):
    """The test's own copy of a detector with its score threshold at ``t``."""
    m = copy.deepcopy(m)
    if hasattr(m, "roi_heads"):
        m.roi_heads.score_thresh = t
    else:
        m.score_thresh = t
    return m


def load(m):
    return handle(m, side=SIDE)


@pytest.fixture(scope="module")
def img():
    return photo(3)


@pytest.mark.parametrize("family", sorted(BUILDERS) + ["maskrcnn"])
def test_a_kept_detection_scores_the_same_before_nms_as_after(family, img):
    h = load(tiny_maskrcnn() if family == "maskrcnn" else BUILDERS[family]())
    hp = before_nms(h)
    x = h.preprocess(img)
    dets = interpret.predict(h, img, threshold=0.0)
    assert len(dets) >= 3
    with torch.no_grad():
        post, pre = pack(h.module(x)), pack(hp.module(x))
    assert pre.shape[1] > post.shape[1]  # the candidates, not only the kept detections
    for d in dets[:5]:
        t = targets.resolve(h, targets.box(d), x, photo_size=img.size)
        a, b = float(t.score(post)[0]), float(t.score(pre)[0])
        assert a == pytest.approx(d.score, abs=1e-6)
        assert b == pytest.approx(a, abs=1e-6)
    # the same candidate: a kept row's box and label are among the candidates, same score
    for r in post[0]:
        same = ((pre[0, :, :4] - r[:4]).abs().max(1).values < 1e-4) & (pre[0, :, 5] == r[5])
        assert bool(same.any())
        assert float(pre[0, same, 4].max()) == pytest.approx(float(r[4]), abs=1e-6)


def matched_max(t, packed):
    """The best score among every candidate of the target's class that overlaps its box
    by more than its IoU threshold (what the detector could keep there)."""
    iou = box_iou(torch.tensor(t.pixels), packed[0, :, :4])
    ok = (packed[0, :, 5] == t.index) & (iou > t.iou_threshold)
    return packed[0, :, 4].masked_fill(~ok, -1.0).max()


def matched_sum(t, packed):
    """The sum of the scores of those candidates: lowered all together by a step."""
    iou = box_iou(torch.tensor(t.pixels), packed[0, :, :4])
    ok = (packed[0, :, 5] == t.index) & (iou > t.iou_threshold)
    return packed[0, :, 4].masked_fill(~ok, 0.0).sum()


def _perturbed_under(h, hp, img, make_oracle):
    """The top detection ``d`` on ``img`` and a perturbed input ``x2`` (signed-gradient
    steps that lower the best matching candidate's score before NMS) where every
    candidate matching it scores well under ``d.score`` and the box target's score before
    NMS is still positive; the resolved target, that score, ``top`` (the best matching
    candidate's) and the oracle's score on ``x2``."""
    x = h.preprocess(img)
    d = interpret.predict(h, img, threshold=0.0)[0]
    t = targets.resolve(h, targets.box(d), x, photo_size=img.size)
    y = x.clone()
    for _ in range(120):
        y = y.detach().requires_grad_(True)
        out = pack(hp.module(y))
        top, low = matched_max(t, out).detach(), t.score(out)[0].detach()
        if 0.0 < float(low) and float(top) < 0.6 * d.score:
            break
        g, = torch.autograd.grad(matched_sum(t, out), y)
        y = (y - 0.01 * g.sign()).clamp(0, 1)
    else:
        raise AssertionError("no perturbation lowered the detection's score")
    x2 = y.detach()
    return d, t, x2, float(low), float(top), make_oracle(h.module, x2, t)


def rcnn_softmax_oracle(model, x2, t):
    """Computed here from the model's own forward (hooks record the proposals and the
    box predictor's logits): the softmax of class ``t.index`` for the proposal whose
    decoded, clipped class box matches the target's box best."""
    from torchvision.ops import boxes as box_ops

    seen = {}
    hooks = [model.rpn.register_forward_hook(lambda m, i, o: seen.__setitem__("proposals", o[0])),
             model.roi_heads.box_predictor.register_forward_hook(lambda m, i, o: seen.__setitem__("pred", o))]
    try:
        with torch.no_grad():
            model(x2)
    finally:
        for k in hooks:
            k.remove()
    logits, reg = seen["pred"]
    props = seen["proposals"][0]
    boxes = model.roi_heads.box_coder.decode(reg, [props])[:, t.index]
    boxes = box_ops.clip_boxes_to_image(boxes, (SIDE, SIDE))  # the input is SIDE x SIDE: no resize
    probs = torch.softmax(logits, -1)[:, t.index]
    iou = box_iou(torch.tensor(t.pixels), boxes)
    ok = iou > t.iou_threshold
    assert bool(ok.any())
    top = iou >= iou[ok].max() - 1e-6
    return float(torch.where(ok & top, probs, torch.full_like(probs, -1.0)).max())


def dense_oracle(model, x2, t):
    """torchvision's own postprocessing on the test's copy of the detector with no
    score threshold and an NMS that suppresses nothing (IoU 1.0): the best-matching
    (anchor, class) pair's score."""
    m = copy.deepcopy(model)
    m.score_thresh, m.nms_thresh, m.detections_per_img = -1.0, 1.0, 10 ** 6
    with torch.no_grad():
        return float(t.score(pack(m(x2)))[0])


@pytest.mark.parametrize("family,oracle", [("fasterrcnn", rcnn_softmax_oracle), ("retinanet", dense_oracle),
                                           ("fcos", dense_oracle)])
def test_a_detection_under_the_score_threshold_keeps_its_small_score_before_nms(family, oracle, img):
    base = BUILDERS[family]()
    h0 = load(base)
    d, t, x2, low, top, expected = _perturbed_under(h0, before_nms(h0), img, oracle)
    assert low == pytest.approx(expected, abs=1e-6)
    # the detector's own threshold between the two: it keeps d on the photo, drops every
    # candidate that could match it on x2
    thr = 0.5 * (top + d.score)
    h = load(set_score_threshold(base, thr))
    hp = before_nms(h)
    x = h.preprocess(img)
    with torch.no_grad():
        assert float(t.score(pack(h.module(x)))[0]) == pytest.approx(d.score, abs=1e-6)  # kept
        assert float(t.score(pack(h.module(x2)))[0]) == 0.0  # after NMS: under the threshold, 0
        assert float(t.score(pack(hp.module(x2)))[0]) == pytest.approx(expected, abs=1e-6)
    assert 0.0 < expected < thr


@pytest.mark.parametrize("family", ["fasterrcnn", "retinanet"])
def test_methods_before_nms_leave_the_model_unchanged_and_gradcam_equals_after_nms(family, img, model_state):
    m = BUILDERS[family]()
    h = load(m)
    hp = before_nms(h)
    before = model_state.snapshot(m)
    limits = thresholds(m)
    d = interpret.predict(h, img, threshold=0.0)[0]
    post = interpret.explain(h, img, "gradcam", target=targets.box(d))
    pre = interpret.explain(hp, img, "gradcam", target=targets.box(d))
    # the same score, the same function of the input: the same map
    assert pre.score == pytest.approx(post.score, abs=1e-6)
    assert torch.allclose(torch.as_tensor(pre.heatmap), torch.as_tensor(post.heatmap), atol=1e-5)
    occ = interpret.explain(hp, img, "occlusion", target=targets.box(d), window=16, stride=16)
    assert torch.isfinite(torch.as_tensor(occ.heatmap)).all()
    for name, kw in (("saliency", {}), ("integrated_gradients", {"n_steps": 4, "adaptive": False}), ("drise", {"masks": 8, "grid": 4}),
                     ("eigencam", {}), ("xgradcam", {})):
        e = interpret.explain(hp, img, name, target=targets.box(d), **kw)
        assert torch.isfinite(torch.as_tensor(e.heatmap)).all(), name
        model_state.assert_unchanged(before, m)
    model_state.assert_unchanged(before, m)

    def stop(done, total):
        raise interpret.Cancelled()

    for name in ("drise", "occlusion"):  # cancelled midway: nothing left behind either
        with pytest.raises(interpret.Cancelled):
            interpret.explain(hp, img, name, target=targets.box(d), progress=stop,
                              **({"masks": 16, "batch_size": 4} if name == "drise" else {"window": 16, "stride": 8,
                                                                                         "batch_size": 2}))
        model_state.assert_unchanged(before, m)
    assert thresholds(m) == limits
    assert hp.module.backbone is m.backbone  # the model's own submodules, nothing copied


def test_occlusion_before_nms_counts_a_masked_detections_small_score_not_zero(img):
    base = peaked_rcnn()
    h0 = load(base)
    d = interpret.predict(h0, img, threshold=0.0)[0]
    h = load(set_score_threshold(base, 0.99 * d.score))  # kept on the photo, barely
    hp = before_nms(h)
    kw = dict(target=targets.box(d), window=16, stride=16)
    post = interpret.explain(h, img, "occlusion", **kw)
    pre = interpret.explain(hp, img, "occlusion", **kw)
    assert pre.score == pytest.approx(post.score, abs=1e-6) and post.score > 0
    # where a patch drops the detection under 0.99 * d.score, after NMS the drop is the whole
    # score; before NMS only what the score actually lost: never more
    a, b = torch.as_tensor(post.attribution).float(), torch.as_tensor(pre.attribution).float()
    assert (b <= a + 1e-5).all()
    assert (b < a - 1e-3).any()


def test_ssd_and_classifiers_are_refused_and_before_nms_models_come_back_as_they_are():
    from torchvision.models import get_model

    ssd = get_model("ssdlite320_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=3).eval()
    with pytest.raises(InputError, match="not offered for SSD"):
        before_nms(interpret.load_model(ssd, labels=list(LABELS)))
    h = load(tiny_rcnn())
    hp = before_nms(h)
    assert before_nms(hp) is hp
    assert hp.task == "detection" and hp.labels == h.labels
    # never one cache entry for both: the fingerprint differs; one lock for both
    assert hp.fingerprint() != h.fingerprint() and hp.name == h.name + " (scores before NMS)"
    assert hp.rwlock is h.rwlock
    with pytest.raises(InputError, match="Faster/Mask R-CNN, RetinaNet and FCOS"):
        BeforeNMS(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_predict_on_the_before_nms_view_applies_the_detectors_own_nms(family, img):
    # the view's candidates go through the same per-class NMS (the detector's IoU) in
    # interpret.predict: its best detections are the detector's own, same boxes, same scores
    from interpret.detection import is_detector, score_threshold

    h = load(BUILDERS[family]())
    hp = before_nms(h)
    own = interpret.predict(h, img, threshold=0.0)
    view = interpret.predict(hp, img, threshold=0.0)
    assert len(view) >= len(own) > 0
    for a, b in zip(own, view):
        assert (a.index, a.label) == (b.index, b.label)
        assert b.score == pytest.approx(a.score, abs=1e-6)
        assert b.box == pytest.approx(a.box, abs=1e-3)
    # a view is a detector (LRP refuses it as it refuses the model) with no score threshold
    assert is_detector(hp.module) and score_threshold(hp.module) is None
    assert score_threshold(h.module) == 0.0


# -- the Attributions page -------------------------------------------------------------------

from test_detection_app import detector_folder  # noqa: E402,F401  (a fixture)


def _explained(kind: str):
    """(fingerprint, value) of every result of ``kind`` in the app's shared cache."""
    from ui import compute

    cache = compute.results()
    with cache._lock:
        return [(k[1], v[0]) for k, v in cache._data.items() if isinstance(k, tuple) and k and k[0] == kind]


def test_the_attributions_page_explains_the_box_before_nms_when_ticked(detector_folder):
    """A checkbox on the Attributions page (a torchvision detector): ticked, the map is
    computed on the before-NMS view (a result under the view's own fingerprint, the same
    score as after NMS for a box the detector keeps), while the boxes offered stay the
    model's own."""
    pytest.importorskip("streamlit.testing.v1")
    from test_app import charts, no_errors, page
    from ui import compute

    compute.results.clear()  # the shared cache holds other tests' results: only this page's count
    at = page("app.py", {"model": "team:Shapes", "img": "cat", "method": "gradcam"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    at.slider(key="w_det_threshold").set_value(0.0).run()
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    box = at.checkbox(key="w_det_before_nms")
    assert box.value is False and box.label == "Scores before NMS"
    options = list(at.selectbox(key="w_det_box").options)
    after = _explained("explain")
    seen = {fp for fp, _ in after}
    assert len(seen) == 1  # the model's own
    box.check().run()
    no_errors(at)
    assert list(at.selectbox(key="w_det_box").options) == options  # the model's own boxes
    new = [(fp, e) for fp, e in _explained("explain") if fp not in seen]
    # the page's map and its comparison computed on the view, under its own fingerprint
    assert new and len({fp for fp, _ in new}) == 1
    fp = new[0][0]
    pairs = [(a, b) for _, a in after for _, b in new
             if a.method == b.method and a.explained.key == b.explained.key]
    assert any(a.method == "gradcam" for a, _ in pairs)
    for a, b in pairs:  # a box the detector keeps: the same score either way
        assert b.score == pytest.approx(a.score, abs=1e-5, nan_ok=True)  # NaN: class-independent
    assert len(charts(at)["overlay"]["layout"].get("shapes", [])) == 1  # the box's outline
    at.checkbox(key="w_det_before_nms").uncheck().run()
    no_errors(at)
    # unticked: the model's own results again, nothing new on the view
    assert {f for f, _ in _explained("explain") if f not in seen} == {fp}
    assert len([1 for f, _ in _explained("explain") if f == fp]) == len(new)
