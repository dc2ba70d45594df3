"""An embedding model uploaded through the sidebar's form (issue 20): the Task choice
"embedding" loads a backbone state dict (torchvision ResNet-18 saved with
``fc = nn.Identity()``, or a whole classifier whose head is then left out; a timm model
saved with ``num_classes=0``) as task "embedding"; Outputs gives its embedding's size and
length, Attributions explains the similarity to an uploaded reference photo, and the
score it explains is the cosine similarity computed here."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn

pytest.importorskip("streamlit.testing.v1")

import interpret  # noqa: E402
from interpret import InputError  # noqa: E402
from test_app import by_label, charts, no_errors, page, photo_bytes  # noqa: E402

from ui import upload  # noqa: E402


def _backbone(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = torchvision.models.resnet18(weights=None)
    m.fc = nn.Identity()
    return m.eval()


def _bytes(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _model_input(photo: bytes) -> torch.Tensor:
    """torchvision's ResNet preprocessing, written here: shorter side 256, centre 224,
    ImageNet mean and std."""
    from torchvision import transforms as T

    pre = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                     T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    return pre(Image.open(io.BytesIO(photo)).convert("RGB"))[None]


# ----------------------------------------------------------------------------------
# the backend: task="embedding" on a state dict


def test_a_headless_backbone_state_dict_loads_as_an_embedding_model_with_the_backbones_output():
    m = _backbone()
    h = interpret.load_model(_bytes(m.state_dict()), arch="resnet18", task="embedding")
    assert h.task == "embedding" and h.info.labels is None
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(h.module(x), m(x), atol=1e-5)


def test_a_whole_classifier_loaded_as_embedding_gives_what_its_head_reads():
    with torch.random.fork_rng():
        torch.manual_seed(2)
        full = torchvision.models.resnet18(weights=None, num_classes=7).eval()
    h = interpret.load_model(_bytes(full.state_dict()), arch="resnet18", task="embedding")
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        feats = torch.flatten(full.avgpool(full.layer4(full.layer3(full.layer2(full.layer1(
            full.maxpool(full.relu(full.bn1(full.conv1(x))))))))), 1)
        assert torch.allclose(h.module(x), feats, atol=1e-5)
        assert torch.allclose(full.fc(h.module(x)), full(x), atol=1e-4)  # the head read exactly that


def test_a_timm_state_dict_saved_with_num_classes_0_loads_as_embedding():
    timm = pytest.importorskip("timm")
    with torch.random.fork_rng():
        torch.manual_seed(4)
        t = timm.create_model("resnet10t", pretrained=False, num_classes=0).eval()
    h = interpret.load_model(_bytes(t.state_dict()), arch="timm:resnet10t", task="embedding")
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert h.task == "embedding" and torch.allclose(h.module(x), t(x), atol=1e-5)


def test_a_headless_state_dict_without_the_task_says_to_choose_embedding():
    """Before: "2 of the architecture's 122 weights are missing" and nothing about why."""
    with pytest.raises(InputError, match="Only the classifier is missing: if this is an embedding model"):
        interpret.load_model(_bytes(_backbone().state_dict()), arch="resnet18")


def test_a_detector_is_not_loaded_as_an_embedding_model():
    from torchvision.models import get_model

    det = get_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None, num_classes=3)
    with pytest.raises(InputError, match="is an object detector, not an embedding model"):
        interpret.load_model(_bytes(det.state_dict()), arch="fasterrcnn_mobilenet_v3_large_320_fpn",
                             task="embedding")


# ----------------------------------------------------------------------------------
# the app


def test_upload_form_offers_the_embedding_and_detection_tasks_and_torchvisions_detectors():
    """Before: no "embedding" task, and a detector state dict could not be uploaded at all
    (the Architecture list had classifiers and segmenters only)."""
    assert {"embedding", "detection"} <= set(upload.TASK_CHOICES)
    archs = upload._architectures("torchvision")
    assert {"fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn",
            "ssdlite320_mobilenet_v3_large", "maskrcnn_resnet50_fpn"} <= set(archs)
    assert upload.check_upload_arch("torchvision", "fasterrcnn_mobilenet_v3_large_320_fpn") == \
        "fasterrcnn_mobilenet_v3_large_320_fpn"


def test_uploaded_backbone_as_embedding_gives_its_size_and_a_similarity_map_of_the_cosine():
    m = _backbone()
    at = page("app.py", {"img": "cat"}).run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    at.sidebar.selectbox(key="w_model_library").select("torchvision").run()
    at.sidebar.file_uploader(key="w_model_file").upload("shoe_embedder.pth", _bytes(m.state_dict()))
    at.sidebar.selectbox(key="w_model_arch").select("resnet18")
    at.sidebar.selectbox(key="w_model_task").select("embedding")
    by_label(at.sidebar.button, "Load model").click().run()
    no_errors(at)
    handle = at.session_state["uploaded_model"]
    assert handle.task == "embedding"

    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    cat = (interpret.images.load_image(str(__import__("pathlib").Path(__file__).parent.parent
                                            / "assets" / "samples" / "cat.jpg")))
    buf = io.BytesIO()
    cat.save(buf, "PNG")
    with torch.no_grad():
        emb = m(_model_input(buf.getvalue()))[0]
    said = " ".join(x.value for x in at.markdown)
    assert "an embedding of **512** numbers" in said
    assert f"(length {float(emb.norm()):.3g})" in said  # the length of the backbone's own output

    at.switch_page("pages/4_Attributions.py").run()
    asked = [e.value for e in list(at.error) + list(at.warning) + list(at.info)]
    assert any("Upload a reference photo above" in v for v in asked), asked  # no map until then
    ref = photo_bytes("espresso.jpg")
    at.file_uploader(key="w_it_reference").upload("espresso.png", ref).run()
    no_errors(at)
    assert "overlay" in charts(at)
    said = " ".join(x.value for x in at.markdown) + " ".join(c.value for c in at.caption)
    assert "look like the reference photo espresso.png" in said
    # the comparison below explains the same reference (before: "no classes" error)
    assert any(c.value.startswith("All explaining what makes this photo look like the reference photo "
                                  "espresso.png") for c in at.caption), [c.value for c in at.caption]
    # the score the page explains is the cosine similarity of the two embeddings
    with torch.no_grad():
        want = float(F.cosine_similarity(m(_model_input(buf.getvalue())), m(_model_input(ref)))[0])
    e = interpret.explain(handle, cat, "gradcam",
                          target=interpret.targets.similar_to(Image.open(io.BytesIO(ref)), "espresso.png"))
    assert e.score == pytest.approx(want, abs=1e-4)
    assert np.isfinite(e.heatmap).all() and float(np.ptp(e.heatmap)) > 0
