"""Ultralytics YOLO through the upload form and by name (issue 20): the form's
Architecture list offers the detection YAMLs the installed package ships
(``ultralytics:yolov8n.yaml``...), so that an uploaded safetensors state dict of a YOLO
loads as a detector whose predictions are those of the module that was saved;
``load_model("ultralytics:<yaml>", weights=None)`` is a random init like a torchvision
name; and ``resize=`` on a detector changes only the size of the detector's own
preprocessing (before: the classifier defaults, 224 crop and ImageNet mean/std).
Random init, nothing downloaded."""

from __future__ import annotations

import copy
import importlib.util
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

if importlib.util.find_spec("ultralytics") is None:  # found, not imported: importing it patches
    pytest.skip("ultralytics is not installed", allow_module_level=True)  # Pillow (ul.unpatch)

import interpret  # noqa: E402
from interpret import InputError, Preprocessing  # noqa: E402
from interpret.sources import ultralytics as ul  # noqa: E402
from test_yolo import NAMES, SIDE, detection_model, photo, xyxy  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def model():
    return detection_model()


def _safetensors(model, names=NAMES) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()},
                metadata={"names": json.dumps(names)})


def _own_detections(model, x: torch.Tensor, threshold: float, photo_size) -> list:
    """The saved DetectionModel's own forward and Ultralytics' NMS (IoU 0.7, its
    predictor's), boxes scaled from the input's pixels to the photo's, best first."""
    from ultralytics.utils.nms import non_max_suppression

    with torch.no_grad():
        ref = non_max_suppression(copy.deepcopy(model)(x)[0], conf_thres=threshold, iou_thres=0.7)[0]
    ref = ref[torch.argsort(-ref[:, 4], stable=True)]
    (h, w), (W, H) = x.shape[-2:], photo_size
    out = []
    for r in ref.tolist():
        box = (r[0] * W / w, r[1] * H / h, r[2] * W / w, r[3] * H / h)
        out.append((tuple(min(max(v, 0.0), lim) for v, lim in zip(box, (W, H, W, H))), r[4], int(r[5])))
    return out


def _assert_predictions_equal_the_modules(handle, model, img, threshold):
    dets = interpret.predict(handle, img, threshold=threshold)
    want = _own_detections(model, handle.preprocess(img), threshold, img.size)
    assert len(dets) == len(want) > 0
    for d, (box, score, index) in zip(dets, want):
        assert d.box == pytest.approx(box, abs=1e-3)
        assert d.score == pytest.approx(score, abs=1e-5) and d.index == index
        assert d.label == handle.labels[index]
    return dets


# -- the upload form ------------------------------------------------------------------------

def test_upload_form_offers_the_packages_detection_yamls_and_nothing_else():
    from ui import upload

    archs = upload._architectures("torchvision")
    offered = [a for a in archs if a.startswith("ultralytics:")]
    assert offered == ["ultralytics:" + a for a in ul.architectures()]
    assert {"ultralytics:yolov8n.yaml", "ultralytics:yolov8s.yaml", "ultralytics:yolo11n.yaml",
            "ultralytics:yolo26n.yaml"} <= set(offered)
    for a in offered:  # each is a YAML file the package ships (no path), and a detection one
        name, path, _ = ul.resolve(a)
        assert "/" not in name and path.is_file() and path.is_relative_to(ul._cfg_dir())
        assert not any(s in name for s in ("-seg", "-pose", "-obb", "-cls"))
    assert upload.check_upload_arch("torchvision", "ultralytics:yolov8n.yaml") == "ultralytics:yolov8n.yaml"
    for bad in ("ultralytics:../../etc/passwd.yaml", "ultralytics:/tmp/a.yaml", "ultralytics:yolov8n-seg.yaml"):
        with pytest.raises(InputError, match="not one of the architectures"):
            upload.check_upload_arch("torchvision", bad)
    # the sidebar's named torchvision picker ("torchvision:<arch>") does not list them
    assert not any(a.startswith("ultralytics:") for a in upload.classifiers())


def test_upload_form_without_ultralytics_offers_no_yolo(monkeypatch):
    import importlib.util

    from ui import upload

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "ultralytics" else real(n, *a))
    assert upload.yolo_architectures() == []
    assert "pip install ultralytics" in upload.accepted_sources_markdown(interpret.settings.Settings())


def test_uploaded_yolo_safetensors_loads_as_a_detector_with_the_saved_modules_predictions(model):
    """Defect: the form's Architecture list had no YOLO, so a YOLO state dict could not
    be uploaded at all (only an operator's models.toml could name its YAML).  Uploaded
    here, it is a detector whose every anchor's row equals the saved module's output at
    Ultralytics' 640 x 640, and, with the sidebar's Preprocessing set to the 64 pixels
    this test's model was calibrated at, whose detections are the module's own + NMS."""
    pytest.importorskip("streamlit.testing.v1")
    from test_app import by_label, no_errors, page

    at = page("app.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    assert at.sidebar.selectbox(key="w_model_library").value == "torchvision"
    assert "ultralytics:yolov8n.yaml" in at.sidebar.selectbox(key="w_model_arch").options
    at.sidebar.file_uploader(key="w_model_file").upload("my_yolo.safetensors", _safetensors(model))
    at.sidebar.selectbox(key="w_model_arch").select("ultralytics:yolov8n.yaml")
    by_label(at.sidebar.button, "Load model").click().run(timeout=300)
    no_errors(at)
    assert any("my_yolo" in s.value for s in at.sidebar.success)
    assert at.session_state["upload_loaded"]["arch"] == "ultralytics:yolov8n.yaml"
    handle = at.session_state["uploaded_model"]
    assert handle.task == "detection" and handle.labels == NAMES and handle.num_classes == 3
    assert handle.preprocessing == ul.preprocessing(640)  # Ultralytics' imgsz, 0..1, no normalisation
    assert list(handle.module.state_dict()) == list(model.state_dict())  # the "model." prefix kept
    x = torch.rand(1, 3, 640, 640, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(handle.module(x), xyxy(copy.deepcopy(model)(x)[0]), atol=1e-4, rtol=1e-5)

    k = at.session_state["upload_token"]
    at.sidebar.number_input(key=f"w_pre_resize_{k}").set_value(0)
    at.sidebar.number_input(key=f"w_pre_crop_{k}").set_value(SIDE)
    by_label(at.sidebar.button, "Apply preprocessing").click().run(timeout=300)
    no_errors(at)
    handle = at.session_state["uploaded_model"]
    assert handle.preprocessing == ul.preprocessing(SIDE)  # its 0..1 scaling kept by the panel
    dets = _assert_predictions_equal_the_modules(handle, model, photo(1), 0.3)
    assert len({d.index for d in dets}) > 1  # not one class everywhere: the scores are told apart


def test_the_forms_load_path_with_a_smaller_yolo_input_equals_the_saved_module(model):
    """The form's load (ui.compute.load_uploaded_model, as the button calls it) at the
    test's 64-pixel input: every anchor's row equals the saved module's own output."""
    pytest.importorskip("streamlit")
    from ui import compute, upload

    arch = upload.check_upload_arch("torchvision", "ultralytics:yolov8n.yaml")
    handle = compute.load_uploaded_model(_safetensors(model), "w.safetensors", arch, None, task="detection")
    h = interpret.load_model(handle.module, labels=handle.labels, preprocessing=ul.preprocessing(SIDE),
                             task="detection")
    x = torch.rand(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(h.module(x), xyxy(copy.deepcopy(model)(x)[0]), atol=1e-4, rtol=1e-5)
    _assert_predictions_equal_the_modules(h, model, photo(1), 0.3)


@pytest.mark.parametrize("arch", ["yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml", "yolov10n.yaml"])
def test_the_meta_skeleton_has_the_detection_models_keys_and_shapes(arch):
    with torch.device("meta"):
        probe = ul.skeleton(arch, 3)
    assert all(p.is_meta for p in probe.parameters())
    real = ul.build_detection_model(arch, 3)
    assert {k: v.shape for k, v in probe.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}


def test_a_file_naming_a_bigger_yaml_is_refused_before_that_yamls_weights_are_allocated(model, monkeypatch):
    """A visitor picks the architecture: naming YOLOv6x (173 million parameters, about
    700 MB, 2.3 s to build here) for a 3-million-parameter file is refused from shapes on
    the meta device; the real build never runs."""
    calls = []
    real = ul.build_detection_model
    monkeypatch.setattr(ul, "build_detection_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    with pytest.raises(InputError, match="does not match the architecture 'ultralytics:yolov6x.yaml'"):
        interpret.load_model(_safetensors(model), arch="ultralytics:yolov6x.yaml")
    assert calls == []
    interpret.load_model(_safetensors(model), arch="ultralytics:yolov8n.yaml")
    assert calls == [("yolov8n.yaml", 3)]  # a file that fits: built once, for real


# -- by name --------------------------------------------------------------------------------

def test_yolo_by_name_with_weights_none_is_a_random_init_of_the_packages_yaml(model):
    h = interpret.load_model("ultralytics:yolov8n.yaml", weights=None)
    assert h.task == "detection" and h.num_classes == 80 and h.labels == list(ul.coco_names())
    assert h.preprocessing == ul.preprocessing(640) and h.info.suggested_layer == "neck"
    assert any("random initialisation" in n for n in h.info.notes)
    ref = ul.build_detection_model("yolov8n.yaml")  # the same architecture, key for key and shape for shape
    assert {k: v.shape for k, v in h.module.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    # with trained weights in it, the named module computes what the DetectionModel does
    trained = detection_model(nc=80)
    h.module.load_state_dict(trained.state_dict())
    x = torch.rand(1, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(h.module(x), xyxy(copy.deepcopy(trained)(x)[0]), atol=1e-4, rtol=1e-5)
    h11 = interpret.load_model("ultralytics:yolo11n.yaml", weights=None, name="mine")
    assert h11.name == "mine" and type(h11.module.model[-1]).__name__ == "Detect"


def test_yolo_by_name_never_downloads_and_refuses_what_is_not_the_packages_yaml():
    with pytest.raises(InputError, match=r"weights=None for a random init"):
        interpret.load_model("ultralytics:yolov8n.yaml")  # weights="DEFAULT": pickles from GitHub
    for bad in ("ultralytics:../../x.yaml", "ultralytics:nosuch.yaml", "ultralytics:yolov8n"):
        with pytest.raises(InputError, match="YAML"):
            interpret.load_model(bad, weights=None)
    with pytest.raises(InputError, match="not a detection head"):
        interpret.load_model("ultralytics:yolov8n-seg.yaml", weights=None)


# -- resize= on a detector ------------------------------------------------------------------

def test_resize_on_a_yolo_keeps_its_0_to_1_scaling_and_changes_only_the_size(model):
    """Defect: ``resize=`` started from the classifier defaults: a 224 centre crop of a
    photo normalised with ImageNet's mean and std, which a YOLO was never given."""
    data = _safetensors(model)
    own = interpret.load_model(data, arch="ultralytics:yolov8n.yaml").preprocessing
    h = interpret.load_model(data, arch="ultralytics:yolov8n.yaml", resize=SIDE)
    assert h.preprocessing == Preprocessing((SIDE, SIDE), None, own.mean, own.std, own.interpolation)
    assert h.preprocessing.mean == (0.0, 0.0, 0.0) and h.preprocessing.std == (1.0, 1.0, 1.0)
    img = photo(1)
    x = h.preprocess(img)  # RGB in [0, 1], the whole photo resized to 64 x 64
    want = np.asarray(img.resize((SIDE, SIDE), Image.BILINEAR), np.float32) / 255
    assert np.abs(x[0].permute(1, 2, 0).numpy() - want).max() < 0.02
    _assert_predictions_equal_the_modules(h, model, img, 0.3)
    wide = interpret.load_model(data, arch="ultralytics:yolov8n.yaml", resize=(SIDE, 96))
    assert wide.preprocessing.input_size == (SIDE, 96) and wide.preprocessing.crop is None
    named = interpret.load_model("ultralytics:yolov8n.yaml", weights=None, resize=320)
    assert named.preprocessing == ul.preprocessing(320)


def test_resize_on_a_torchvision_detector_keeps_its_own_preprocessing_but_the_size():
    name = "torchvision:fasterrcnn_mobilenet_v3_large_320_fpn"
    own = interpret.load_model(name, weights=None).preprocessing
    assert own == Preprocessing((320, 320), None, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "bilinear")
    h = interpret.load_model(name, weights=None, resize=256)
    assert h.preprocessing == Preprocessing((256, 256), None, own.mean, own.std, own.interpolation)
    assert h.input_size == (256, 256) and h.task == "detection"
    img = photo(3)
    want = np.asarray(img.resize((256, 256), Image.BILINEAR), np.float32) / 255
    assert np.abs(h.preprocess(img)[0].permute(1, 2, 0).numpy() - want).max() < 0.02
    # the same through a module (the notebook's way), and another field keeps the size
    g = interpret.load_model(h.module, resize=288)
    assert g.preprocessing == Preprocessing((288, 288), None, own.mean, own.std)
    m = interpret.load_model(name, weights=None, mean=(0.5, 0.5, 0.5))
    assert m.preprocessing == Preprocessing((320, 320), None, (0.5, 0.5, 0.5), own.std)


def test_resize_on_a_classifier_still_puts_fields_over_its_own_preprocessing():
    """A classifier's shorter-side resize and centre crop stay as they were: resize= is
    the shorter side, the crop is the model's own."""
    h = interpret.load_model("torchvision:resnet18", weights=None, resize=300)
    assert h.preprocessing == Preprocessing(300, 224)
    h = interpret.load_model(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1),
                                                 torch.nn.Flatten()), resize=40, crop=32)
    assert h.preprocessing == Preprocessing(40, 32)
