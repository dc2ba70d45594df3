"""Hugging Face ``AutoModelForObjectDetection`` folders (issue 20): DETR, Conditional
DETR, Deformable DETR, YOLOS and RT-DETR built from tiny configs (a small ResNet backbone config, no timm, no
downloads), saved with their image processors, loaded with ``load_model(folder)``.

What is checked, in numbers: the predictions equal the folder's own image processor's
``post_process_object_detection`` on the same pixel values (DETR's softmax without the
"no object" class, as YOLOS; Conditional/Deformable DETR's and RT-DETR's sigmoid per (query, class), the best
k pairs; the old softmax reading of the sigmoid families fails this); a box target's
score is the processor's score for that box; Grad-CAM on the backbone's last stage
equals Grad-CAM by hand from hooks on that stage; saliency is the input gradient of the
processor's score; occlusion and D-RISE equal their definitions computed with the
processor's detections on the occluded / masked inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import interpret
from interpret import InputError, targets
from interpret.detection import HF_SCORING, box_iou, hf_scoring

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("single_thread")

SIDE = 96
LABELS = {0: "cat", 1: "dog", 2: "car"}


def _backbone(stages):
    return transformers.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                                     layer_type="basic", out_features=stages)


def build(kind: str, folder, **extra):
    """A tiny random-init detector of ``kind`` saved with its image processor in
    ``folder``; returns the module and the processor."""
    torch.manual_seed(0)
    common = dict(use_timm_backbone=False, use_pretrained_backbone=False, backbone=None,
                  num_queries=12, num_labels=3, id2label=LABELS,
                  label2id={v: k for k, v in LABELS.items()}, init_std=0.3)
    small = dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32)
    if kind == "detr":
        model = transformers.DetrForObjectDetection(transformers.DetrConfig(
            backbone_config=_backbone(["stage4"]), **common, **small))
        proc = transformers.DetrImageProcessor(size={"shortest_edge": SIDE, "longest_edge": 160})
    elif kind == "conditional_detr":
        model = transformers.ConditionalDetrForObjectDetection(transformers.ConditionalDetrConfig(
            backbone_config=_backbone(["stage4"]), **common, **small))
        proc = transformers.ConditionalDetrImageProcessor(size={"shortest_edge": SIDE, "longest_edge": 160})
    elif kind == "deformable_detr":
        model = transformers.DeformableDetrForObjectDetection(transformers.DeformableDetrConfig(
            backbone_config=_backbone(["stage2", "stage3", "stage4"]), num_feature_levels=3,
            encoder_n_points=2, decoder_n_points=2, **common, **dict(small, decoder_layers=2)))
        proc = transformers.DeformableDetrImageProcessor(size={"shortest_edge": SIDE, "longest_edge": 160})
    elif kind == "yolos":
        model = transformers.YolosForObjectDetection(transformers.YolosConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            image_size=[SIDE, SIDE], patch_size=16, num_detection_tokens=12, num_labels=3, id2label=LABELS,
            label2id={v: k for k, v in LABELS.items()}, initializer_range=0.3))
        proc = transformers.YolosImageProcessor(size={"shortest_edge": SIDE, "longest_edge": 160})
        with torch.no_grad():  # initialised as zeros: every query would be the same
            model.vit.embeddings.detection_tokens.normal_(0, 1)
    elif kind == "rt_detr":
        cfg = transformers.RTDetrConfig(
            backbone_config=_backbone(["stage2", "stage3", "stage4"]), encoder_in_channels=[16, 16, 32],
            encoder_hidden_dim=32, decoder_in_channels=[32, 32, 32], num_denoising=0,
            **{k: v for k, v in common.items() if k != "init_std"}, **small, **extra)
        model = transformers.RTDetrForObjectDetection(cfg)
        proc = transformers.RTDetrImageProcessor(size={"height": SIDE, "width": SIDE})
    else:
        raise ValueError(kind)
    model.eval()
    model.save_pretrained(str(folder))
    proc.save_pretrained(str(folder))
    return model, proc


def photo() -> Image.Image:
    """A non-square photo (boxes must come back in its own pixels)."""
    rng = np.random.RandomState(0)
    a = (rng.rand(70, 120, 3) * 80).astype(np.uint8)
    a[10:50, 20:70] = (200, 60, 40)
    a[30:65, 80:115] = (30, 180, 90)
    return Image.fromarray(a)


@pytest.fixture(scope="module", params=["detr", "conditional_detr", "deformable_detr", "yolos", "rt_detr"])
def family(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    _, proc = build(request.param, folder)
    return request.param, interpret.load_model(str(folder)), proc


@pytest.fixture(scope="module")
def detr(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detr_methods")
    _, proc = build("detr", folder)
    return interpret.load_model(str(folder)), proc


def own(handle, proc, x, threshold, size):
    """The processor's own detections of the model's output on ``x``: sorted
    (score, label, box) tuples, the boxes clipped to the photo as ours are (the
    processor leaves them as the model gives them)."""
    with torch.no_grad():
        out = handle.module(pixel_values=x)
    r = proc.post_process_object_detection(out, threshold=threshold, target_sizes=[size])[0]
    W, H = size[1], size[0]
    rows = []
    for s, lab, b in zip(r["scores"].tolist(), r["labels"].tolist(), r["boxes"].tolist()):
        b = (min(max(b[0], 0), W), min(max(b[1], 0), H), min(max(b[2], 0), W), min(max(b[3], 0), H))
        rows.append((s, int(lab), b))
    return sorted(rows, key=lambda t: (-t[0], t[1], t[2]))


def processor_box_score(handle, proc, x, t, size) -> float:
    """The box target by the processor: the score of its detection of the target's
    class whose IoU with the box is largest above the threshold, 0 when none is."""
    rows = own(handle, proc, x, 0.0, size)
    box = torch.tensor(t.box)
    best, score = t.iou_threshold, 0.0
    for s, lab, b in rows:
        iou = float(box_iou(box, torch.tensor([b]))[0])
        if lab == t.index and iou > best:
            best, score = iou, s
    return score


# -- loading and predictions ------------------------------------------------------------

def test_a_detector_folder_loads_as_detection_with_its_processors_preprocessing_and_labels(family):
    kind, h, proc = family
    assert h.task == "detection"
    assert h.info.labels == ("cat", "dog", "car")
    assert h.info.preprocessing.input_size == (SIDE, SIDE)
    assert h.info.preprocessing.crop is None  # no part of the photo is cut off
    want_mean = proc.image_mean if proc.do_normalize else (0.0, 0.0, 0.0)
    assert np.allclose(h.info.preprocessing.mean, want_mean)
    if kind != "yolos":  # a ViT: no convolutional backbone
        assert h.info.suggested_layer == "model.backbone.model.encoder.stages.3"
    # the pixel values equal the processor's own for an exact resize to the same size
    img = photo()
    x = h.preprocess(img)
    theirs = proc(images=img, size={"height": SIDE, "width": SIDE}, do_pad=False,
                  return_tensors="pt")["pixel_values"]
    assert theirs.shape == x.shape
    step = float(np.max(np.asarray(h.info.preprocessing.std))) ** -1 / 255  # one grey level, normalised
    assert float((theirs - x).abs().mean()) < 2 * step


def test_predictions_equal_the_image_processors_post_processing(family):
    """Per family, the score the processor gives: DETR softmax without "no object";
    Conditional DETR and RT-DETR a sigmoid per (query, class), the best pairs (the old
    softmax reading of those gives other scores and labels, and fails here)."""
    kind, h, proc = family
    img = photo()
    x = h.preprocess(img)
    every = own(h, proc, x, 0.0, (img.height, img.width))
    scores = sorted(s for s, _, _ in every)
    threshold = scores[len(scores) // 2]  # about half of them pass
    want = [r for r in every if r[0] > threshold]
    got = interpret.predict(h, img, threshold=threshold)
    got = sorted(((d.score, d.index, d.box) for d in got if d.score > threshold),
                 key=lambda t: (-t[0], t[1], t[2]))
    assert 0 < len(want) < len(every)
    assert len(got) == len(want)
    for (s, lab, b), (s2, lab2, b2) in zip(got, want):
        assert lab == lab2 and abs(s - s2) < 1e-6
        assert np.allclose(b, b2, atol=1e-3)
    assert all(d.label == LABELS[d.index] for d in interpret.predict(h, img, threshold=threshold))
    if kind not in ("detr", "yolos"):  # a query may hold two classes: the processor's top k pairs
        assert hf_scoring(h.module(pixel_values=x))[0] == "sigmoid"
        assert len(every) == min(12 if kind == "rt_detr" else 100, 12 * 3)


def test_the_box_targets_score_is_the_processors_score_for_that_box(family):
    kind, h, proc = family
    img = photo()
    x = h.preprocess(img)
    size = (img.height, img.width)
    for d in interpret.predict(h, img, threshold=0.0)[:3]:
        t = targets.resolve(h, targets.box(d), x, photo_size=(img.width, img.height))
        with torch.no_grad():
            from interpret.tensors import task_output

            ours = float(t.score(task_output(h.module(x), (SIDE, SIDE)))[0])
        assert ours == pytest.approx(processor_box_score(h, proc, x, targets.box(d), size), abs=1e-6)
        assert ours == pytest.approx(d.score, abs=1e-6)


def test_rt_detr_without_focal_loss_is_refused_not_scored_by_another_rule(tmp_path):
    build("rt_detr", tmp_path, use_focal_loss=False)
    with pytest.raises(InputError, match="focal loss"):
        interpret.load_model(str(tmp_path))


def test_an_unknown_transformers_detector_output_is_refused_by_name():
    Out = type("OwlViTObjectDetectionOutput", (), {"__module__": "transformers.models.owlvit"})
    out = Out()
    out.logits, out.pred_boxes = torch.zeros(1, 4, 3), torch.full((1, 4, 4), 0.5)
    with pytest.raises(InputError, match="OwlViT"):
        interpret.detection.pack(out, (SIDE, SIDE))
    assert {"DetrObjectDetectionOutput", "RTDetrObjectDetectionOutput"} <= set(HF_SCORING)


# -- box targets on a DETR query: the methods against their definitions ----------------

def _top(h, img):
    d = interpret.predict(h, img, threshold=0.0)[0]
    return d, targets.box(d)


def _query_score(h, x, t):
    """The explained score by hand: softmax over the classes at the query whose box
    matches (same best class, largest IoU above the threshold), from the raw output."""
    out = h.module(pixel_values=x)
    probs = torch.softmax(out.logits, -1)[0, :, :-1]
    best = probs.argmax(-1)
    cx, cy, bw, bh = out.pred_boxes[0].unbind(-1)
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1) * SIDE
    iou = box_iou(torch.tensor(t.pixels), boxes.detach())
    iou = torch.where(best == t.index, iou, torch.full_like(iou, -1.0))
    q = int(iou.argmax())
    assert float(iou[q]) > t.iou_threshold
    return probs[q, t.index]


def test_box_gradcam_on_the_backbones_last_stage_equals_grad_cam_by_hand(detr, model_state):
    h, proc = detr
    img = photo()
    d, t = _top(h, img)
    before = model_state.snapshot(h.module)
    e = interpret.explain(h, img, "gradcam", target=t)
    model_state.assert_unchanged(before, h.module)
    assert e.layer == "model.backbone.model.encoder.stages.3"
    assert e.score == pytest.approx(d.score, abs=1e-6)
    x = h.preprocess(img)
    rt = targets.resolve(h, t, x, photo_size=(img.width, img.height))
    kept = {}
    layer = h.module.get_submodule(e.layer)
    hook = layer.register_forward_hook(lambda m, i, o: kept.update(a=o))
    try:
        s = _query_score(h, x, rt)
    finally:
        hook.remove()
    a = kept["a"]
    g, = torch.autograd.grad(s, a)
    cam = (g.mean(dim=(2, 3), keepdim=True) * a.detach()).sum(1, keepdim=True)
    assert tuple(e.attribution.shape[-2:]) == tuple(a.shape[-2:])
    scale = float(cam.abs().max())
    assert scale > 0
    assert torch.allclose(e.attribution.reshape(cam.shape[-2:]), cam[0, 0], atol=1e-5 * scale)
    assert float(s.detach()) == pytest.approx(processor_box_score(h, proc, x, t, (img.height, img.width)), abs=1e-6)


def test_box_saliency_is_the_input_gradient_of_the_processors_score(detr):
    h, _ = detr
    img = photo()
    _, t = _top(h, img)
    e = interpret.explain(h, img, "saliency", target=t)
    x = h.preprocess(img).clone().requires_grad_(True)
    rt = targets.resolve(h, t, x.detach(), photo_size=(img.width, img.height))
    g, = torch.autograd.grad(_query_score(h, x, rt), x)
    assert float(g.abs().max()) > 0
    assert torch.allclose(e.attribution, g, atol=1e-5 * float(g.abs().max()))


def test_box_occlusion_is_the_drop_of_the_processors_box_score(detr):
    h, proc = detr
    img = photo()
    _, t = _top(h, img)
    win = SIDE // 2
    e = interpret.explain(h, img, "occlusion", target=t, window=win, stride=win, baseline="black",
                          batch_size=4)
    x = h.preprocess(img)
    size = (img.height, img.width)
    base = processor_box_score(h, proc, x, t, size)
    black = h.preprocessing.normalize(torch.zeros(1, 3, SIDE, SIDE))
    drops = []
    for r in (0, win):
        for c in (0, win):
            xo = x.clone()
            xo[..., r:r + win, c:c + win] = black[..., r:r + win, c:c + win]
            drop = base - processor_box_score(h, proc, xo, t, size)
            drops.append(drop)
            cell = e.attribution[0, :, r:r + win, c:c + win]
            assert torch.allclose(cell, torch.full_like(cell, drop), atol=1e-5), (r, c)
    assert max(abs(v) for v in drops) > 1e-4  # not a flat map


def test_box_drise_equals_its_definition_with_the_processors_detections(detr):
    from interpret.methods.drise import masks

    h, proc = detr
    img = photo()
    _, t = _top(h, img)
    e = interpret.explain(h, img, "drise", target=t, masks=12, grid=4, batch_size=4, seed=5)
    x = h.preprocess(img)
    size = (img.height, img.width)
    rt = e.explained
    black = h.preprocessing.normalize(torch.zeros(1, 3, SIDE, SIDE))
    gen = torch.Generator().manual_seed(5)
    ms = torch.cat([masks(4, (SIDE, SIDE), 4, 0.5, gen) for _ in range(3)])
    sal = torch.zeros(SIDE, SIDE)
    weights = []
    for m in ms:  # eq. 2-4: max over the masked photo's detections of IoU x score, same class
        rows = own(h, proc, x * m + black * (1 - m), 0.0, size)
        w = max([float(box_iou(torch.tensor(rt.box), torch.tensor([b]))[0]) * s
                 for s, lab, b in rows if lab == rt.index] or [0.0])
        weights.append(w)
        sal += w * m[0]
    sal /= 12 * 0.5
    assert sum(w > 0 for w in weights) > 0
    assert torch.allclose(e.attribution[0, 0], sal, atol=1e-4 * float(sal.abs().max()))


def test_a_query_box_past_the_input_is_clipped_so_its_detection_can_be_explained():
    """A query whose box runs past the input (random init, or an object at the edge):
    clipped as torchvision clips, so that the photo box interpret.predict shows (in the
    photo) matches its own detection.  Unclipped, the box (-30, 10)-(50, 40) shown as
    (0, 10)-(50, 40) overlapped itself by IoU 0.62 only, and a box half outside by less
    than 0.5: no match, an InputError for a box the model had just drawn."""
    from types import SimpleNamespace

    from interpret.detection import pack

    logits = torch.tensor([[[3.0, 0.0, 0.0, 0.0]]])
    boxes = torch.tensor([[[0.1, 0.25, 0.8, 0.3]]])  # cx, cy, w, h of a 100 x 100 input
    p = pack(SimpleNamespace(logits=logits, pred_boxes=boxes), (100, 100))
    assert p[0, 0, :4].tolist() == pytest.approx([0.0, 10.0, 50.0, 40.0])


def test_yolos_blocks_are_refused_by_the_cams_not_read_as_a_wrong_grid(tmp_path):
    """YOLOS's tokens are [class, 6 x 6 patches, 12 detection tokens] = 49 here, which
    the square-grid guess read as a 7 x 7 map mixing detection tokens into the photo;
    now its blocks have no spatial layout (a sentence), and the input methods run."""
    build("yolos", tmp_path)
    h = interpret.load_model(str(tmp_path))
    img = photo()
    t = targets.box(interpret.predict(h, img, threshold=0.0)[0])
    with pytest.raises(InputError, match="no spatial layout"):
        interpret.explain(h, img, "gradcam", target=t)
    e = interpret.explain(h, img, "saliency", target=t)
    assert tuple(e.attribution.shape) == (1, 3, SIDE, SIDE) and float(e.attribution.abs().max()) > 0


# -- lifecycle: every method on a Hugging Face DETR leaves it untouched --------------------

def test_every_method_on_a_hf_detr_runs_or_says_why_and_leaves_it_unchanged(detr, model_state):
    """The lifecycle matrix of tests/test_detection_lifecycle.py on a Hugging Face DETR
    folder: each offered method (preview settings) runs on a box, its heatmap finite,
    the model unchanged (hooks, gradients, flags, weights, buffers, module tree); each
    method not offered says why."""
    h, _ = detr
    img = photo()
    t = targets.box(interpret.predict(h, img, threshold=0.0)[0])
    offered = {m.name for m in interpret.methods(h)}
    assert {"gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "eigencam", "saliency",
            "integrated_gradients", "occlusion", "drise"} <= offered
    for spec in interpret.methods():
        if spec.name not in offered:
            why = spec.unavailable(h)
            assert why and isinstance(why, str), spec.name
    for name in sorted(offered):
        before = model_state.snapshot(h.module)
        e = interpret.explain(h, img, name, target=t, **dict(interpret.get_method(name).preview))
        model_state.assert_unchanged(before, h.module)
        assert e.heatmap.shape == (SIDE, SIDE) and np.isfinite(e.heatmap).all(), name
