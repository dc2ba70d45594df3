"""Object detectors (issue 20, detection half): the task read from the output,
predictions in the photo's pixels, the box target, feature pyramids on one grid,
agreement with pytorch-grad-cam's FasterRCNNBoxScoreTarget, D-RISE batched = a plain
loop, torchvision detectors by name and as state dicts.  Numbers, never downloads."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import interpret
from interpret import Detection, InputError, targets
from interpret.detection import BoxTarget, no_match_sentence, pack, photo_box
from interpret.tensors import task_output

from detectors import LABELS, handle, mobilenet_rcnn, photo, tiny_rcnn

pytestmark = pytest.mark.usefixtures("single_thread")


def pearson(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.fixture(scope="module")
def tiny():
    return handle()


@pytest.fixture(scope="module")
def img():
    return photo()


# -- the task and the predictions --------------------------------------------------------

def test_a_torchvision_detector_is_a_detection_model_read_from_its_output(tiny):
    # the output (a list of boxes/labels/scores dicts) says it; no loader told it
    plain = interpret.load_model(tiny_rcnn(), labels=list(LABELS))
    assert plain.task == "detection"
    assert plain.num_classes == 3 and plain.labels == list(LABELS)


def test_detection_task_set_explicitly_and_refused_on_a_classifier():
    h = interpret.load_model(tiny_rcnn(), task="detection", labels=list(LABELS))
    assert h.task == "detection"
    cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()
    with pytest.raises(InputError, match="not an object detector"):
        interpret.load_model(cnn, task="detection", preprocessing=interpret.Preprocessing(32, 32))
    with pytest.raises(InputError, match="boxes"):
        interpret.load_model(tiny_rcnn(), task="classification")


def test_predicted_boxes_are_the_detectors_own_mapped_to_the_photos_pixels(tiny, img):
    # the photo is 160 x 120; the model sees it resized to 64 x 64: a box (u0, v0, u1, v1)
    # on the input is (u0 * 160/64, v0 * 120/64, ...) on the photo
    dets = interpret.predict(tiny, img, threshold=0.0)
    x = tiny.preprocess(img)
    with torch.no_grad():
        own = tiny.module(x)[0]
    assert len(dets) == len(own["scores"]) > 0
    order = torch.argsort(-own["scores"], stable=True)
    for d, i in zip(dets, order.tolist()):
        u0, v0, u1, v1 = own["boxes"][i].tolist()
        assert d.box == pytest.approx((u0 * 2.5, v0 * 1.875, u1 * 2.5, v1 * 1.875), abs=1e-4)
        assert d.score == pytest.approx(float(own["scores"][i]), abs=1e-6)
        assert d.index == int(own["labels"][i]) and d.label == LABELS[d.index]
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    cut = float(np.median([d.score for d in dets]))
    assert all(d.score >= cut for d in interpret.predict(tiny, img, threshold=cut))
    assert len(interpret.predict(tiny, img, threshold=cut)) == sum(d.score >= cut for d in dets)


def test_photo_box_inverts_resize_and_crop():
    pre = interpret.Preprocessing(256, 224)  # shorter side 256, centre crop 224
    # a 512 x 256 photo: resized to 512 x 256 (shorter side 256), crop x in [144, 368), y in [16, 240)
    assert photo_box(pre, (0, 0, 224, 224), (512, 256), (224, 224)) == pytest.approx((144, 16, 368, 240))
    assert photo_box(pre, (10, 20, 30, 40), (512, 256), (224, 224)) == pytest.approx((154, 36, 174, 56))


def test_pack_reads_hugging_face_queries_as_boxes_in_input_pixels():
    from types import SimpleNamespace

    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])  # two queries, 2 classes + no-object
    boxes = torch.tensor([[[0.5, 0.5, 0.5, 0.25], [0.1, 0.1, 0.1, 0.1]]])  # cx, cy, w, h
    p = pack(SimpleNamespace(logits=logits, pred_boxes=boxes), (100, 200))
    e = torch.exp(torch.tensor(2.0))
    assert p[0, 0].tolist() == pytest.approx([50.0, 37.5, 150.0, 62.5, float(e / (e + 2)), 0.0], rel=1e-5)
    assert p[0, 1, 5] == 0.0 and p[0, 1, 4] == pytest.approx(float(1 / (2 + torch.exp(torch.tensor(5.0)))), rel=1e-5)


# -- the box target ---------------------------------------------------------------------------

def test_box_score_is_the_matching_detections_score_by_hand():
    out = torch.tensor([[[0, 0, 10, 10, 0.9, 1], [0, 0, 10, 8, 0.7, 2], [20, 20, 30, 30, 0.6, 1],
                         [0, 0, 0, 0, 0, -1]]], dtype=torch.float32)
    t = BoxTarget(1, None, (0, 0, 10, 10), 0.5, False, (0.0, 0.0, 10.0, 9.0), (40, 40))
    # IoU with row 0: 90/100; row 2 does not overlap; row 1 is another class
    assert float(t.score(out)[0]) == pytest.approx(0.9)
    assert float(BoxTarget(2, None, (0, 0, 1, 1), 0.5, False, (0, 0, 10, 9), (40, 40)).score(out)[0]) == \
        pytest.approx(0.7)
    with_iou = BoxTarget(1, None, (0, 0, 1, 1), 0.5, True, (0, 0, 10, 9), (40, 40))
    assert float(with_iou.score(out)[0]) == pytest.approx(0.9 + 0.9)
    # nothing of class 1 above IoU 0.5 on a second image: 0 (the detection is gone)
    gone = torch.stack([out[0], torch.tensor([[0, 0, 3, 3, 0.9, 1]] + [[0, 0, 0, 0, 0, -1]] * 3)])
    assert t.score(gone).tolist() == pytest.approx([0.9, 0.0])


def test_box_target_on_a_photo_box_finds_the_detection_and_its_label(tiny, img):
    dets = interpret.predict(tiny, img, threshold=0.0)
    d = dets[0]
    x = tiny.preprocess(img)
    t = targets.resolve(tiny, targets.box(d.box), x, photo_size=img.size)
    assert t.index == d.index
    with torch.no_grad():
        out = task_output(tiny.module(x), (64, 64))
    assert float(t.score(out)[0]) == pytest.approx(d.score, abs=1e-6)
    assert targets.resolve(tiny, None, x, photo_size=img.size).key == t.key  # the top detection


def test_a_box_with_no_matching_detection_is_a_sentence_not_a_flat_map(tiny, img, model_state):
    x = tiny.preprocess(img)
    before = model_state.snapshot(tiny.module)
    with pytest.raises(InputError, match="No detection of .* overlaps this box"):
        interpret.explain(tiny, img, "gradcam", target=targets.box((0, 0, 2, 2), label="disc"))
    model_state.assert_unchanged(before, tiny.module)
    assert no_match_sentence("cat", 0.5, None).startswith("The model detects nothing")
    assert "IoU 0.31" in no_match_sentence("cat", 0.5, (0.31, "dog", 0.8))
    assert "no detection touches it" in no_match_sentence("cat", 0.5, (0.0, "dog", 0.8))
    with pytest.raises(InputError, match="x1 > x0"):
        targets.box((5, 5, 1, 9))
    with pytest.raises(InputError, match="does not fit a classifier"):
        targets.resolve(interpret.load_model(torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2)).eval(),
            preprocessing=interpret.Preprocessing(8, 8)), targets.box((0, 0, 4, 4), 1), torch.zeros(1, 3, 8, 8))


# -- layers: the pyramid on one grid --------------------------------------------------------

def test_the_suggested_layer_is_the_pyramid_brought_to_one_grid(tiny, img):
    assert interpret.default_layer(tiny) == "backbone"
    maps = interpret.layer_maps(tiny, img, "backbone")
    assert maps.shape == (16, 32, 32)  # two levels of 8 channels on the finer 32 x 32 grid
    x = tiny.preprocess(img)
    with torch.no_grad():
        lv = tiny.module.backbone(tiny.module.transform(x)[0].tensors)
    want = torch.cat([lv["0"], F.interpolate(lv["1"], size=(32, 32), mode="bilinear", align_corners=False)], 1)
    assert torch.allclose(maps.activation, want, atol=1e-6)


def test_pyramid_gradcam_equals_grad_cam_by_hand_from_each_levels_gradient(tiny, img):
    dets = interpret.predict(tiny, img, threshold=0.0)
    e = interpret.explain(tiny, img, "gradcam", target=targets.box(dets[0]))
    x = tiny.preprocess(img)
    m = tiny.module
    levels = {}
    h = m.backbone.register_forward_hook(lambda mod, i, o: levels.update(o))
    try:
        xin = x.clone()
        out = task_output(m(xin), (64, 64))
    finally:
        h.remove()
    s = e.explained.score(out).sum()
    gs = torch.autograd.grad(s, [levels["0"], levels["1"]])
    up = lambda t: F.interpolate(t, size=(32, 32), mode="bilinear", align_corners=False)  # noqa: E731
    A = torch.cat([levels["0"].detach(), up(levels["1"].detach())], 1)
    G = torch.cat([gs[0], up(gs[1])], 1)
    cam = (G.mean(dim=(2, 3), keepdim=True) * A).sum(1, keepdim=True)
    assert torch.allclose(e.attribution.reshape(32, 32), cam.reshape(32, 32), atol=1e-6 * float(cam.abs().max()) + 1e-9)


# -- agreement with pytorch-grad-cam ------------------------------------------------------

def test_box_gradcam_equals_pytorch_grad_cams_fasterrcnn_box_score_target(model_state):
    """Our box target with ``with_iou=True`` is FasterRCNNBoxScoreTarget's definition
    (IoU + score of the matching detection).  The layer is one FPN level's output
    convolution, a plain tensor: pytorch-grad-cam records no gradient for a layer that
    returns a dict (ActivationsAndGradients.save_gradient skips outputs without
    ``requires_grad``), so its Grad-CAM cannot run on the whole FPN, which is what
    ``fasterrcnn_reshape_transform`` is meant for (its tutorial uses Eigen-CAM)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    h = handle(mobilenet_rcnn(), side=128)
    img = photo(1)
    dets = interpret.predict(h, img, threshold=0.0)
    layer = "backbone.fpn.layer_blocks.0"
    x = h.preprocess(img)
    with torch.no_grad():
        own = h.module(x)[0]
    i = int(own["scores"].argmax())
    before = model_state.snapshot(h.module)
    e = interpret.explain(h, x, "gradcam", layer=layer,
                          target=targets.box(tuple(own["boxes"][i].tolist()), int(own["labels"][i]), with_iou=True))
    model_state.assert_unchanged(before, h.module)
    module = copy.deepcopy(h.module)
    with GradCAM(module, [module.get_submodule(layer)]) as cam:
        ref = cam(x.clone(), targets=[FasterRCNNBoxScoreTarget([int(own["labels"][i])],
                                                                 [own["boxes"][i].numpy()])])[0]
    r = pearson(e.heatmap, ref)
    print(f"\nbox Grad-CAM vs pytorch-grad-cam FasterRCNNBoxScoreTarget: r = {r:.5f}")
    assert r > 0.99
    assert e.score == pytest.approx(float(own["scores"][i]) + 1.0, rel=1e-5)
    assert dets[0].score == pytest.approx(float(own["scores"][i]), abs=1e-6)


def test_pyramid_is_fasterrcnn_reshape_transform_without_abs_on_a_finer_grid():
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    from interpret.detection import combine, pyramid_grid

    g = torch.Generator().manual_seed(0)
    lv = {"0": torch.randn(1, 4, 8, 8, generator=g).abs(), "1": torch.randn(1, 4, 4, 4, generator=g).abs(),
          "pool": torch.randn(1, 4, 2, 2, generator=g).abs()}
    # on non-negative maps and the same (coarsest) grid, the two are the same function
    ours = torch.cat([F.interpolate(v, size=(2, 2), mode="bilinear", align_corners=False) for v in lv.values()], 1)
    assert torch.allclose(ours, fasterrcnn_reshape_transform(lv), atol=1e-6)
    assert pyramid_grid([(8, 8), (4, 4), (2, 2)]) == (8, 8)
    assert pyramid_grid([(200, 200), (100, 100), (50, 50), (25, 25)]) == (50, 50)
    assert combine(list(lv.values())).shape == (1, 12, 8, 8)


# -- D-RISE -----------------------------------------------------------------------------------

def test_drise_batched_equals_a_plain_loop_of_one_masked_forward_each(tiny, img, model_state):
    from interpret.methods.drise import masks, similarity

    d = interpret.predict(tiny, img, threshold=0.0)[0]
    before = model_state.snapshot(tiny.module)
    seen = []
    e = interpret.explain(tiny, img, "drise", target=targets.box(d), masks=24, grid=4, batch_size=8,
                          seed=3, progress=lambda done, total: seen.append((done, total)))
    model_state.assert_unchanged(before, tiny.module)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    x = tiny.preprocess(img)
    gen = torch.Generator().manual_seed(3)
    ms = torch.cat([masks(8, (64, 64), 4, 0.5, gen) for _ in range(3)])
    sal = torch.zeros(64, 64)
    weights = []
    for m in ms:  # the paper's loop: one masked forward each
        with torch.no_grad():
            out = task_output(tiny.module(x * m), (64, 64))
        w = float(similarity(e.explained, out)[0])
        weights.append(w)
        sal += w * m[0]
    sal /= 24 * 0.5
    assert torch.allclose(e.attribution[0, 0], sal, atol=1e-5 * float(sal.abs().max()))
    assert sum(w > 0 for w in weights) > 0  # some masks keep the detection: not a flat map
    assert e.extras["weights_nonzero"] == sum(w > 0 for w in weights)


def test_drise_is_offered_only_for_detectors(tiny):
    assert interpret.get_method("drise").unavailable(tiny) is None
    cnn = interpret.load_model(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1),
                                                   torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval(),
                               preprocessing=interpret.Preprocessing(32, 32))
    assert "this is a classifier" in interpret.get_method("drise").unavailable(cnn)
    assert "drise" not in {m.name for m in interpret.methods(cnn)}
    assert "no LRP rule" in interpret.get_method("lrp").unavailable(tiny)


def test_drise_is_cancelled_from_progress(tiny, img, model_state):
    d = interpret.predict(tiny, img, threshold=0.0)[0]

    def stop(done, total):
        raise interpret.Cancelled()

    before = model_state.snapshot(tiny.module)
    with pytest.raises(interpret.Cancelled):
        interpret.explain(tiny, img, "drise", target=targets.box(d), masks=16, batch_size=4, progress=stop)
    model_state.assert_unchanged(before, tiny.module)


# -- torchvision detectors by name and as state dicts -----------------------------------------

def test_torchvision_detectors_by_name_are_detection_models_with_their_preprocessing():
    from interpret.sources import torchvision as tv

    for arch, side in [("fasterrcnn_mobilenet_v3_large_320_fpn", 320), ("retinanet_resnet50_fpn", 800),
                       ("fcos_resnet50_fpn", 800), ("ssd300_vgg16", 300), ("ssdlite320_mobilenet_v3_large", 320),
                       ("maskrcnn_resnet50_fpn", 800), ("fasterrcnn_resnet50_fpn", 800)]:
        assert tv.is_detector(arch)
        pre = tv.preprocessing(arch)
        assert pre.input_size == (side, side) and pre.mean == (0, 0, 0) and pre.std == (1, 1, 1)
    h = interpret.load_model("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", weights=None)
    assert h.task == "detection" and h.labels[1] == "person" and interpret.default_layer(h) == "backbone"


@pytest.mark.parametrize("arch,classes", [("fcos_resnet50_fpn", 4), ("ssdlite320_mobilenet_v3_large", 5),
                                          ("fasterrcnn_mobilenet_v3_large_320_fpn", 3)])
def test_a_detector_state_dict_loads_with_its_class_count(arch, classes, tmp_path):
    from torchvision.models import get_model

    torch.manual_seed(0)
    m = get_model(arch, weights=None, weights_backbone=None, num_classes=classes)
    path = tmp_path / "det.pth"
    torch.save(m.state_dict(), path)
    h = interpret.load_model(str(path), arch=arch)
    assert h.task == "detection" and h.num_classes == classes
    for k, v in m.state_dict().items():
        assert torch.equal(h.module.state_dict()[k], v)
