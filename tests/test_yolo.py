"""Ultralytics YOLO as a model source (issue 20): built from the package's own YAML for
a safetensors / torch.save state dict (keys with the ``model.`` prefix), an ONNX export,
pickled ``.pt`` checkpoints refused unless untrusted models are allowed; predictions
equal the model's own forward + Ultralytics' NMS in the photo's pixels; Grad-CAM of a
box equals one computed by hand from hooks on the neck; every method leaves the model
unchanged, also after an injected exception.  Random init, nothing downloaded."""

from __future__ import annotations

import copy
import importlib.util
import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

if importlib.util.find_spec("ultralytics") is None:  # found, not imported: importing it patches
    pytest.skip("ultralytics is not installed", allow_module_level=True)  # Pillow (ul.unpatch)

import interpret  # noqa: E402
from interpret import Cancelled, InputError, targets  # noqa: E402
from interpret.sources import ultralytics as ul  # noqa: E402
from interpret.sources.files import UNTRUSTED_WHY  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")

NAMES = ["square", "disc", "star"]
SIDE = 64  # a multiple of 32: 8x8, 4x4 and 2x2 cells, 84 anchors


def detection_model(seed: int = 0, nc: int = 3, arch: str = "yolov8n.yaml"):
    """A random-init Ultralytics DetectionModel.  Ultralytics' own init (PyTorch's
    default for convolutions, batch norms at mean 0 / variance 1) shrinks the
    activations about 10x per stage: at the head they are ~1e-9 and every anchor scores
    0.5000 with the same box, so nothing could be told apart.  The batch norms'
    statistics are therefore measured on the test's photos (as one epoch of training
    would set them), and the class convolutions re-drawn so that the scores spread."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = ul.build_detection_model(arch, nc)
        bns = [b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)]
        for b in bns:
            b.reset_running_stats()
            b.momentum = None  # a plain average over the batches
        m.train()
        batch = torch.stack([torch.from_numpy(np.asarray(photo(i).resize((SIDE, SIDE)), np.float32) / 255)
                             .permute(2, 0, 1) for i in range(12)])
        with torch.no_grad():
            m(batch)
        for b in bns:
            b.momentum = 0.03
        for seq in [*m.model[-1].cv3, *m.model[-1].cv2]:  # class scores and box sides spread
            torch.nn.init.normal_(seq[-1].weight, std=0.3)
            torch.nn.init.zeros_(seq[-1].bias)
        for seq in m.model[-1].cv2:  # each side's distance: the first of its 16 bins likelier
            if seq[-1].out_channels == 64:
                seq[-1].bias.data.copy_(-0.7 * torch.arange(16.0).repeat(4))
            else:  # no DFL (YOLO26, reg_max 1): the distance itself, about one cell
                seq[-1].bias.data.fill_(1.0)
    return m.eval()


def photo(seed: int = 0, size=(150, 100)) -> Image.Image:
    rng = np.random.default_rng(seed)
    a = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
    a[20:60, 30:90] = (230, 40, 40)
    return Image.fromarray(a)


def xyxy(y: torch.Tensor) -> torch.Tensor:
    """Ultralytics' inference output (B x (4 + nc) x A, centre/size) as B x A x 6 rows."""
    cx, cy, w, h = y[:, :4].unbind(1)
    s, c = y[:, 4:].max(1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, s, c.float()], -1)


@pytest.fixture(scope="module")
def model():
    return detection_model()


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("yolo") / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"names": json.dumps(NAMES)})
    return path


@pytest.fixture(scope="module")
def yolo(weights):
    return interpret.load_model(weights, arch="ultralytics:yolov8n.yaml", preprocessing=ul.preprocessing(SIDE))


# -- loading --------------------------------------------------------------------------------

def test_yolo_safetensors_state_dict_loads_with_its_model_prefix_and_equals_the_original(model, weights, yolo):
    sd = model.state_dict()
    assert all(k.startswith("model.") for k in sd)  # every key carries the prefix...
    assert list(yolo.module.state_dict()) == list(sd)  # ...and it was kept, not stripped
    assert yolo.task == "detection" and yolo.labels == NAMES and yolo.num_classes == 3
    assert yolo.info.suggested_layer == "neck"
    x = torch.rand(2, 3, SIDE, 96)
    with torch.no_grad():
        ours = yolo.module(x)
        theirs = xyxy(copy.deepcopy(model)(x)[0])
    assert ours.shape == (2, 8 * 12 + 4 * 6 + 2 * 3, 6)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_yolo_torch_save_state_dict_and_a_wrappers_prefix(model, tmp_path):
    buf = io.BytesIO()
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, buf)  # DataParallel
    h = interpret.load_model(buf.getvalue(), arch="ultralytics:yolov8n.yaml", preprocessing=ul.preprocessing(SIDE))
    x = torch.rand(1, 3, SIDE, SIDE)
    with torch.no_grad():
        assert torch.allclose(h.module(x), xyxy(copy.deepcopy(model)(x)[0]), atol=1e-4)
    assert h.labels == ["0", "1", "2"] or h.labels is None or len(h.labels) == 3
    # names beside the tensors of a torch.save dict
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "names": {0: "a", 1: "b", 2: "c"}}, buf)
    h = interpret.load_model(buf.getvalue(), arch="ultralytics:yolov8n.yaml", preprocessing=ul.preprocessing(SIDE))
    assert h.labels == ["a", "b", "c"]


@pytest.mark.parametrize("arch", ["yolo11n.yaml", "yolo26n.yaml", "yolov10n.yaml"])
def test_later_yolos_load_from_their_yaml_and_equal_their_own_forward(arch):
    m = detection_model(arch=arch)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    h = interpret.load_model(buf.getvalue(), arch=f"ultralytics:{arch}", labels=["p", "q", "r"],
                             preprocessing=ul.preprocessing(SIDE))
    assert h.task == "detection" and h.labels == ["p", "q", "r"]
    x = torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # Ultralytics' default inference: the one-to-many head, then NMS
        torch.testing.assert_close(h.module(x), xyxy(copy.deepcopy(m)(x)[0]), atol=1e-4, rtol=1e-5)
    assert h.module.detection_nms_iou == 0.7


def test_a_detection_model_given_as_a_module_is_pointed_to_wrap(model):
    with pytest.raises(InputError, match="ultralytics.wrap"):
        interpret.load_model(model)
    h = interpret.load_model(ul.wrap(model), labels=NAMES, preprocessing=ul.preprocessing(SIDE))
    assert h.task == "detection" and h.info.suggested_layer == "neck"


def test_yolo_80_classes_get_cocos_names_and_metadata_names_that_do_not_fit_are_not_used():
    names = ul.coco_names()
    assert len(names) == 80 and names[0] == "person" and names[79] == "toothbrush"
    assert ul.parse_names('["a", "b"]', 2) == ("a", "b")
    assert ul.parse_names("{0: 'a', 1: 'b'}", 2) == ("a", "b")  # Ultralytics' export metadata
    assert ul.parse_names('["a", "b"]', 3) is None
    assert ul.parse_names("__import__('os')", None) is None  # a literal or nothing
    assert ul._default_names(("0", "1", "2"), 3) is None  # placeholders: numbered by the handle


def test_yolo_arch_names_only_the_packages_own_yaml():
    for bad in ("ultralytics:../../etc/passwd.yaml", "ultralytics:https://x.org/a.yaml",
                "ultralytics:/tmp/a.yaml", "ultralytics:nosuchmodel.yaml"):
        with pytest.raises(InputError, match="YAML"):
            ul.resolve(bad)
    assert ul.resolve("ultralytics:yolov8s.yaml")[1].name == "yolov8.yaml"
    assert {"yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml", "yolov10n.yaml"} <= set(ul.architectures())


@pytest.mark.parametrize("arch, head", [("yolov8n-seg.yaml", "Segment"), ("yolov8n-pose.yaml", "Pose")])
def test_yolo_heads_other_than_detection_are_refused_with_a_sentence(arch, head):
    m = ul.build_detection_model(arch, 3)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    with pytest.raises(InputError, match=f"head is {head}, not a detection head"):
        interpret.load_model(buf.getvalue(), arch=f"ultralytics:{arch}")


def test_yolo_input_sides_must_be_multiples_of_its_stride(model):
    h = interpret.load_model(ul.wrap(model), labels=NAMES,
                             preprocessing=interpret.Preprocessing((64, 96), None, (0, 0, 0), (1, 1, 1)))
    assert interpret.predict(h, photo(), threshold=0.0)  # 64 x 96 runs
    with pytest.raises(InputError, match="multiples of its largest stride"):  # said when loaded
        interpret.load_model(ul.wrap(model), labels=NAMES, task="detection",
                             preprocessing=interpret.Preprocessing((64, 70), None, (0, 0, 0), (1, 1, 1)))


def test_yolo_state_dict_for_the_wrong_size_says_what_differs(model):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    with pytest.raises(InputError, match="does not match the architecture 'ultralytics:yolov8s.yaml'"):
        interpret.load_model(buf.getvalue(), arch="ultralytics:yolov8s.yaml")


def test_an_uploaded_yolo_pt_is_refused_with_the_same_words_as_every_pickle(model):
    ckpt = {"date": "2026", "version": "8.4.190", "model": copy.deepcopy(model).half(), "ema": None,
            "optimizer": None, "train_args": {}, "epoch": -1}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    data = buf.getvalue()
    other = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), other)  # any pickled module
    with pytest.raises(InputError) as yolo_err:
        interpret.load_model(data)
    with pytest.raises(InputError) as other_err:
        interpret.load_model(other.getvalue())
    assert str(yolo_err.value) == str(other_err.value)
    assert UNTRUSTED_WHY in str(yolo_err.value) and "pickled Python objects" in str(yolo_err.value)
    # the operator allowed it: it loads, as a detector, in float
    h = interpret.load_model(data, allow_untrusted=True, preprocessing=ul.preprocessing(SIDE))
    assert h.task == "detection" and "untrusted allowed" in h.info.source
    x = torch.rand(1, 3, SIDE, SIDE)
    ref = copy.deepcopy(model).half().float()
    with torch.no_grad():
        assert torch.allclose(h.module(x), xyxy(ref(x)[0]), atol=1e-3)


def test_an_onnx_export_of_yolo_loads_as_a_detector(model, tmp_path, monkeypatch):
    """Ultralytics' own exporter, offline, at opset 17: its default opset here (18) writes
    Split and Resize in a form onnx2torch cannot convert (the loader says so and asks
    for opset 17)."""
    from ultralytics import YOLO

    import yaml

    cfg = yaml.safe_load(ul.resolve("yolov8n.yaml")[1].read_text())
    cfg["nc"] = 3
    (tmp_path / "yolov8n.yaml").write_text(yaml.safe_dump(cfg))
    y = YOLO(str(tmp_path / "yolov8n.yaml"))
    y.model.load_state_dict(model.state_dict())  # our weights, in Ultralytics' own exporter (offline)
    y.model.names = dict(enumerate(NAMES))
    monkeypatch.chdir(tmp_path)  # the exporter writes next to the working directory
    path = y.export(format="onnx", imgsz=SIDE, simplify=False, dynamic=False, opset=17, verbose=False)
    h = interpret.load_model(path)
    assert h.task == "detection" and h.labels == NAMES and h.input_size == (SIDE, SIDE)
    assert "model/15/" in h.info.suggested_layer  # P3, the finest map the head reads
    x = torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # the exporter fuses convolutions and batch norms: so does the reference
        got, want = h.module(x), xyxy(copy.deepcopy(model).fuse(verbose=False)(x)[0])
        unfused = xyxy(copy.deepcopy(model)(x)[0])
    # float32 through another graph: boxes within a tenth of a pixel, scores within 1e-3
    torch.testing.assert_close(got[..., :4], want[..., :4], atol=0.1, rtol=0)
    torch.testing.assert_close(got[..., 4], want[..., 4], atol=1e-3, rtol=0)
    torch.testing.assert_close(got[..., 4], unfused[..., 4], atol=1e-3, rtol=0)
    assert (got[..., 5] == want[..., 5]).float().mean() > 0.99
    assert interpret.predict(h, photo(), threshold=0.3)


def test_a_torch_onnx_export_without_metadata_is_read_from_its_anchor_count(model, tmp_path):
    m = copy.deepcopy(model)
    m.model[-1].export = True  # the head returns its inference tensor alone
    path = tmp_path / "plain.onnx"
    torch.onnx.export(m, torch.zeros(1, 3, SIDE, SIDE), str(path), dynamo=False, opset_version=17)
    h = interpret.load_model(path.read_bytes(), labels=NAMES)  # as uploaded
    assert h.task == "detection" and h.num_classes == 3
    assert h.info.suggested_layer.endswith("model/15/cv2/act/Mul")  # P3: every level reads it
    img = photo(2)
    d = interpret.predict(h, img, threshold=0.0)[0]
    e = interpret.explain(h, img, "gradcam", target=targets.box(d))
    assert e.layer == h.info.suggested_layer and float(np.ptp(e.heatmap)) > 0
    x = torch.rand(1, 3, SIDE, SIDE)
    with torch.no_grad():
        got, want = h.module(x), xyxy(copy.deepcopy(model)(x)[0])
    torch.testing.assert_close(got[..., :4], want[..., :4], atol=0.1, rtol=0)  # a tenth of a pixel
    torch.testing.assert_close(got[..., 4], want[..., 4], atol=1e-3, rtol=0)


# -- predictions ----------------------------------------------------------------------------

def test_yolo_predictions_equal_its_forward_and_ultralytics_nms_in_photo_pixels(model, yolo):
    from ultralytics.utils.nms import non_max_suppression

    img = photo(1)
    x = yolo.preprocess(img)
    # preprocessing: RGB in [0, 1], a plain resize, no normalisation
    want_x = np.asarray(img.resize((SIDE, SIDE), Image.BILINEAR), np.float32) / 255
    assert np.abs(x[0].permute(1, 2, 0).numpy() - want_x).max() < 0.02
    for t in (0.3, 0.5, 0.0):
        dets = interpret.predict(yolo, img, threshold=t)
        with torch.no_grad():
            ref = non_max_suppression(copy.deepcopy(model)(x)[0], conf_thres=t, iou_thres=0.7)[0]
        assert len(dets) == len(ref) > 0
        ref = ref[torch.argsort(-ref[:, 4], stable=True)]
        W, H = img.size
        for d, r in zip(dets, ref.tolist()):
            box = (r[0] * W / SIDE, r[1] * H / SIDE, r[2] * W / SIDE, r[3] * H / SIDE)
            box = tuple(min(max(v, 0.0), lim) for v, lim in zip(box, (W, H, W, H)))
            assert d.box == pytest.approx(box, abs=1e-3)
            assert d.score == pytest.approx(r[4], abs=1e-5) and d.index == int(r[5])
            assert d.label == NAMES[d.index]
    # NMS happened: the rows before it are every anchor
    with torch.no_grad():
        assert yolo.module(x).shape[1] == 84 > len(interpret.predict(yolo, img, threshold=0.0))


def test_yolo_box_target_scores_the_anchor_of_the_detection_before_nms(yolo):
    img = photo(1)
    d = interpret.predict(yolo, img, threshold=0.0)[0]
    x = yolo.preprocess(img)
    with torch.no_grad():
        rows = yolo.module(x)[0]
    t = targets.resolve(yolo, targets.box(d), x, photo_size=img.size)
    # the row whose box is the detection's (IoU 1) and whose class is the detection's
    i = int(rows[:, 4].argmax())
    assert t.score(rows[None])[0] == pytest.approx(float(rows[i, 4]), abs=1e-6)
    assert d.score == pytest.approx(float(rows[i, 4]), abs=1e-6)


# -- methods --------------------------------------------------------------------------------

def test_yolo_gradcam_of_a_box_equals_grad_cam_by_hand_from_the_necks_levels(yolo, model_state):
    img = photo(1)
    d = interpret.predict(yolo, img, threshold=0.0)[0]
    before = model_state.snapshot(yolo.module)
    e = interpret.explain(yolo, img, "gradcam", target=targets.box(d))
    model_state.assert_unchanged(before, yolo.module)
    x = yolo.preprocess(img)
    levels = {}
    hk = yolo.module.neck.register_forward_hook(lambda mod, i, o: levels.update(o))
    try:
        out = yolo.module(x.clone())
    finally:
        hk.remove()
    assert list(levels) == ["P3", "P4", "P5"]
    s = e.explained.score(out).sum()
    gs = torch.autograd.grad(s, list(levels.values()))
    up = lambda t: F.interpolate(t, size=(8, 8), mode="bilinear", align_corners=False)  # noqa: E731
    A = torch.cat([up(v.detach()) for v in levels.values()], 1)
    G = torch.cat([up(g) for g in gs], 1)
    cam = (G.mean(dim=(2, 3), keepdim=True) * A).sum(1, keepdim=True)
    assert float(cam.abs().max()) > 0
    assert torch.allclose(e.attribution.reshape(8, 8), cam.reshape(8, 8), atol=1e-5 * float(cam.abs().max()))
    assert e.score == pytest.approx(d.score, abs=1e-6)


def test_yolo_saliency_is_the_input_gradient_of_the_box_score(yolo):
    img = photo(1)
    d = interpret.predict(yolo, img, threshold=0.0)[0]
    e = interpret.explain(yolo, img, "saliency", target=targets.box(d))
    x = yolo.preprocess(img).clone().requires_grad_(True)
    g, = torch.autograd.grad(e.explained.score(yolo.module(x)).sum(), x)
    want = g.abs().amax(1)[0]
    got = e.attribution.reshape(-1, SIDE, SIDE)
    got = got[0] if got.shape[0] == 1 else got.abs().amax(0)
    assert torch.allclose(got, want, atol=1e-5 * float(want.max()))


METHODS = ["gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "eigencam", "saliency",
           "integrated_gradients", "occlusion", "drise"]


@pytest.mark.parametrize("method", METHODS)
def test_yolo_model_unchanged_after_each_method(yolo, method, model_state):
    h = interpret.load_model(yolo.module, labels=yolo.labels, preprocessing=yolo.preprocessing,
                             task="detection")  # fresh caches
    img = photo(2)
    box = targets.box(interpret.predict(h, img, threshold=0.0)[0])
    before = model_state.snapshot(h.module)
    e = interpret.explain(h, img, method, target=box, **dict(interpret.get_method(method).preview))
    model_state.assert_unchanged(before, h.module)
    assert np.isfinite(e.heatmap).all()
    if method not in ("occlusion", "integrated_gradients"):
        # (at the preview settings on a 64-pixel photo every 32-pixel occlusion window and
        # each of IG's four dimmed path points removes the detection: their maps are flat;
        # both are checked at full settings below)
        assert float(np.ptp(e.heatmap)) > 0


def test_yolo_occlusion_of_a_box_is_the_score_drop_of_each_window_by_hand(yolo):
    img = photo(2)
    d = interpret.predict(yolo, img, threshold=0.0)[0]
    e = interpret.explain(yolo, img, "occlusion", target=targets.box(d), window=16, stride=16)
    x = yolo.preprocess(img)
    with torch.no_grad():
        base = float(e.explained.score(yolo.module(x))[0])
        want = torch.zeros(SIDE, SIDE)
        for r in range(0, SIDE, 16):
            for c in range(0, SIDE, 16):
                xo = x.clone()
                xo[..., r:r + 16, c:c + 16] = 0  # black
                want[r:r + 16, c:c + 16] = base - float(e.explained.score(yolo.module(xo))[0])
    got = e.attribution.reshape(-1, SIDE, SIDE)[0]
    assert float(want.abs().max()) > 0.05 and float(want.std()) > 0
    assert torch.allclose(got, want, atol=1e-5)


def test_yolo_integrated_gradients_of_a_box_equal_the_path_integral_by_hand(yolo):
    """IG of the box score from a black photo, at 15 of Fejér's nodes, by hand: the
    score is 0 on the dim part of the path (no matching detection there), so the
    attributions add up to the part of the path where the detection exists."""
    from interpret.methods.integrated_gradients import fejer2

    img = photo(2)
    d = interpret.predict(yolo, img, threshold=0.0)[0]
    e = interpret.explain(yolo, img, "integrated_gradients", target=targets.box(d), n_steps=15,
                          adaptive=False, baseline="black")
    x = yolo.preprocess(img)
    total = torch.zeros_like(x)
    for _, a, w in fejer2(15):
        xa = (a * x).requires_grad_(True)
        g, = torch.autograd.grad(e.explained.score(yolo.module(xa)).sum(), xa)
        total += w * g
    want = x * total
    assert float(want.abs().max()) > 0
    assert torch.allclose(e.attribution, want, atol=1e-5 * float(want.abs().max()))


def test_yolo_drise_batched_equals_a_plain_loop(yolo):
    from interpret.methods.drise import masks, similarity
    from interpret.tensors import task_output

    img = photo(2)
    d = interpret.predict(yolo, img, threshold=0.0)[0]
    e = interpret.explain(yolo, img, "drise", target=targets.box(d), masks=24, grid=4, batch_size=8, seed=3)
    x = yolo.preprocess(img)
    gen = torch.Generator().manual_seed(3)
    ms = torch.cat([masks(8, (SIDE, SIDE), 4, 0.5, gen) for _ in range(3)])
    sal = torch.zeros(SIDE, SIDE)
    for m in ms:
        with torch.no_grad():
            out = task_output(yolo.module(x * m), (SIDE, SIDE))
        sal += float(similarity(e.explained, out)[0]) * m[0]
    sal /= 24 * 0.5
    assert float(sal.std()) > 0
    assert torch.allclose(e.attribution[0, 0], sal, atol=1e-5 * float(sal.abs().max()))


@pytest.mark.parametrize("method", ["gradcam", "saliency", "integrated_gradients", "occlusion", "drise"])
def test_yolo_model_unchanged_after_an_injected_exception(yolo, method, model_state):
    img = photo(2)
    box = targets.box(interpret.predict(yolo, img, threshold=0.0)[0])
    h = interpret.load_model(yolo.module, labels=yolo.labels, preprocessing=yolo.preprocessing,
                             task="detection")
    before = model_state.snapshot(h.module)
    calls = {"n": 0}

    def boom(mod, inputs):
        calls["n"] += 1
        raise RuntimeError("injected")

    hk = h.module.model[8].register_forward_pre_hook(boom)  # inside the backbone
    try:
        with pytest.raises(RuntimeError, match="injected"):
            interpret.explain(h, img, method, target=box, **dict(interpret.get_method(method).preview))
    finally:
        hk.remove()
    assert calls["n"] >= 1
    model_state.assert_unchanged(before, h.module)


@pytest.mark.parametrize("method", ["occlusion", "drise", "integrated_gradients"])
def test_yolo_no_hooks_left_after_cancel(yolo, method, model_state):
    if not interpret.get_method(method).progress:
        pytest.skip(f"{method} reports no progress")
    h = interpret.load_model(yolo.module, labels=yolo.labels, preprocessing=yolo.preprocessing,
                             task="detection")
    img = photo(2)
    box = targets.box(interpret.predict(h, img, threshold=0.0)[0])

    def stop(done, total):
        raise Cancelled()

    before = model_state.snapshot(h.module)
    with pytest.raises(Cancelled):
        interpret.explain(h, img, method, target=box, progress=stop, **dict(interpret.get_method(method).preview))
    model_state.assert_unchanged(before, h.module)


def test_the_shared_detection_model_is_never_fused(model, weights):
    h = interpret.load_model(ul.wrap(model), labels=NAMES, preprocessing=ul.preprocessing(SIDE))
    n = sum(1 for _ in model.modules())
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    interpret.predict(h, photo(), threshold=0.3)
    interpret.explain(h, photo(), "gradcam", target=targets.box(interpret.predict(h, photo(), threshold=0.0)[0]))
    assert sum(1 for _ in model.modules()) == n
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == bns > 0
    assert not model.training


# -- in the app -----------------------------------------------------------------------------

@pytest.mark.slow  # the app at Ultralytics' 640 x 640 on a CPU: about two minutes here
def test_a_yolo_in_the_model_folder_draws_its_boxes_and_explains_a_picked_box(model, tmp_path, monkeypatch):
    """The operator's models.toml names the YAML (the upload form's path is
    tests/test_yolo_upload.py); Outputs draws the boxes after NMS, Attributions explains
    the picked one with its outline."""
    pytest.importorskip("streamlit.testing.v1")
    from safetensors.torch import save_file
    from test_app import charts, no_errors, page

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "yolo.safetensors"),
              metadata={"names": json.dumps(["square", "<b>disc</b>", "star"])})
    (tmp_path / "models.toml").write_text(
        '[[model]]\nname = "YOLO"\nfile = "yolo.safetensors"\narch = "ultralytics:yolov8n.yaml"\n')
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(tmp_path))
    at = page("app.py", {"model": "team:YOLO", "img": "cat", "method": "gradcam"}).run(timeout=300)
    at.switch_page("pages/1_Outputs.py").run(timeout=300)
    no_errors(at)
    assert any("an object detector" in c.value for c in at.caption)
    at.slider(key="w_det_threshold").set_value(0.5).run(timeout=300)
    no_errors(at)
    spec = charts(at)["det_boxes"]
    assert len(spec["layout"].get("shapes", [])) >= 1
    assert "<b>disc</b>" not in str(spec["layout"].get("annotations"))
    at.session_state["w_det_box"] = 0
    at.switch_page("pages/4_Attributions.py").run(timeout=300)
    no_errors(at)
    assert "Explaining the detection of" in " ".join(c.value for c in at.caption)
    assert len(charts(at)["overlay"]["layout"].get("shapes", [])) == 1  # the box's outline


def test_importing_ultralytics_leaves_pillow_and_torch_save_as_they_were(yolo):
    """``import ultralytics`` replaces ``PIL.Image.open`` (on a file Pillow cannot read it
    runs ``check_requirements("pi-heif")``, a pip install on an online server, then raises
    ModuleNotFoundError) and ``torch.save``.  After a YOLO is loaded, a visitor's text file
    is still 'not an image' and both functions are the libraries' own again."""
    import io

    import ultralytics.utils.patches as patches
    from PIL import Image

    assert Image.open is patches._image_open and torch.save is patches._torch_save
    with pytest.raises(InputError, match="not an image"):
        interpret.load_image(b"name,score\ncat,0.9\n" * 10)
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(io.BytesIO(b"not a picture at all" * 8))
    Image.open, saved = patches.image_open, Image.open  # whoever imported it first: undone on use
    try:
        ul.unpatch()
        assert Image.open is saved
    finally:
        Image.open = saved
