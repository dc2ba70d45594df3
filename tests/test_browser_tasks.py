"""A segmentation model end to end in a real headless Chromium (issue 19): the Outputs
page draws the predicted mask with each class's share; on Attributions a real mouse
click on a segment of the mask becomes the target, and the map's caption names that
segment's region.  torchvision's LR-ASPP MobileNetV3 by name, random weights (the
server has none: nothing is downloaded).  Then the same journey for a person's own
files, through the sidebar's upload form: a segmentation state dict with its
architecture (mask, click, Grad-CAM, trust panel), and a classifier state dict
declared multi-label (its Outputs page: independent sigmoids against a threshold).
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image
from serving import ARTIFACTS, ROOT, assert_no_exception, browser_api, chromium, settle, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = browser_api()

MODEL = "torchvision:lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-tasks-server.log", env={"INTERPRET_OFFLINE": "1"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


def test_click_a_segment_of_the_mask_and_get_its_gradcam(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/Outputs?model={MODEL}&img=cat", timeout=240_000)
    settle(page, 400)
    assert_no_exception(page, "Outputs")
    page.get_by_text("a segmentation model").first.wait_for(timeout=240_000)
    mask = page.locator(".st-key-seg_mask [data-testid=stPlotlyChart], [data-testid=stPlotlyChart]").first
    mask.locator(".main-svg").first.wait_for(timeout=120_000)
    legend = page.locator(".legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert legend and all("%" in t for t in legend), legend
    page.screenshot(path=str(ARTIFACTS / "tasks-1-outputs-mask.png"))

    page.goto(f"{server}/Attributions?model={MODEL}&img=cat&method=gradcam", timeout=240_000)
    settle(page, 400)
    assert_no_exception(page, "Attributions")
    page.locator("[data-testid=stRadio] label", has_text="a segment I click").first.click()
    settle(page, 400)
    chart = page.locator(".st-key-w_seg_click .js-plotly-plot").first
    chart.wait_for(timeout=120_000)
    # a real mouse click in the middle of the mask (Plotly takes it on its drag layer and
    # selects the nearest of the figure's click points)
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Explaining the class").first.wait_for(timeout=240_000)
    settle(page, 400)
    assert_no_exception(page, "Attributions after a click on the mask")
    page.get_by_text("over the chosen region").first.wait_for(timeout=240_000)
    page.screenshot(path=str(ARTIFACTS / "tasks-2-attributions-segment.png"))
    assert not errors, errors
    page.close()


# ----------------------------------------------------------------------------------
# a person's own checkpoints, through the sidebar's upload form


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two state dicts from random init (seeded): torchvision's LR-ASPP MobileNetV3
    segmenter (21 classes) and a ResNet-18 with 5 outputs, to be declared multi-label."""
    root = tmp_path_factory.mktemp("task_uploads")
    torch.manual_seed(0)
    seg = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)
    seg_file = root / "street_lraspp.pth"
    torch.save(seg.state_dict(), seg_file)
    torch.manual_seed(1)
    tags = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    tags_file = root / "tags_resnet18.pth"
    torch.save(tags.state_dict(), tags_file)
    return {"segmentation": seg_file, "multilabel": tags_file, "tags_model": tags}


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar selectbox labelled ``label`` by typing into it."""
    box = page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(
        has=page.locator("label", has_text=re.compile(f"^{label}$"))).first
    box.locator("input").first.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).first.click()
    settle(page)


def _upload(page, path: Path, arch: str, task: str = "read from the model") -> None:
    sidebar = page.locator("[data-testid=stSidebar]")
    _choose(page, "Library", "torchvision (or the bundled EfficientNet-Lite0)")
    sidebar.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(path))
    time.sleep(0.5)
    _choose(page, "Architecture", arch)
    _choose(page, "Task", task)
    sidebar.locator("button", has_text="Load model").first.click()
    settle(page)
    sidebar.get_by_text(f"Loaded {path.stem}").first.wait_for(timeout=120_000)
    assert_no_exception(page, f"the sidebar after uploading {path.name}")


def _go(page, label: str) -> None:
    """Follow the sidebar's link to a page (the session, and so the upload, is kept)."""
    page.locator("[data-testid=stSidebar] a", has_text=label).first.click()
    settle(page)


def _expected_sigmoids(model, photo: Path) -> list:
    """The model's own answer, computed here: resize the shorter side to 256, centre
    crop 224, ImageNet normalisation, then a sigmoid of each logit on its own."""
    from torchvision import transforms as T

    pre = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                     T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    x = pre(Image.open(photo).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        return torch.sigmoid(model(x))[0].tolist()


def test_uploaded_segmenter_gives_mask_segment_gradcam_and_trust_and_a_multilabel_upload_gives_sigmoids(
        server, browser, checkpoints):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/Outputs?img=cat", timeout=240_000)
    settle(page)
    _choose(page, "Model", "Upload a checkpoint")

    # 1. a segmentation state dict with its architecture: the task is read from the output
    _upload(page, checkpoints["segmentation"], "lraspp_mobilenet_v3_large")
    page.get_by_text("a segmentation model").first.wait_for(timeout=240_000)
    page.locator(".st-key-seg_mask .main-svg").first.wait_for(timeout=120_000)
    legend = page.locator(".st-key-seg_mask .legendtext").evaluate_all("els => els.map(e => e.textContent)")
    assert legend and all("%" in t for t in legend), legend
    assert_no_exception(page, "Outputs of the uploaded segmenter")
    page.screenshot(path=str(ARTIFACTS / "tasks-3-upload-outputs-mask.png"))

    _go(page, "Attributions")
    assert_no_exception(page, "Attributions of the uploaded segmenter")
    page.locator("[data-testid=stRadio] label", has_text="a segment I click").first.click()
    settle(page)
    chart = page.locator(".st-key-w_seg_click .js-plotly-plot").first
    chart.wait_for(timeout=120_000)
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("Explaining the class").first.wait_for(timeout=240_000)
    settle(page)
    assert_no_exception(page, "Attributions after a click on the uploaded segmenter's mask")
    page.wait_for_selector(".js-plotly-plot .gtitle >> text=/Grad-CAM/", timeout=120_000)
    page.get_by_text("over the chosen region").first.wait_for(timeout=240_000)

    # the trust panel: its check runs by itself for a CAM when cheap, else on the button
    page.get_by_text("How far to trust this map").first.wait_for(timeout=120_000)
    curves = page.locator("[class*=st-key-trust_curves_] .js-plotly-plot")
    if curves.count() == 0:
        page.locator("button", has_text="Check faithfulness").first.click()
        settle(page)
    curves.first.wait_for(timeout=240_000)
    settle(page)
    panel = page.locator("[data-testid=stMain]").inner_text().split("How far to trust this map", 1)[1]
    head = panel[:600]
    # a verdict badge (not "not checked yet") and the verdict sentence naming the segment
    assert "faithfulness not checked yet" not in head, head
    assert re.search(r"\b(faithful|weak|no better than random)\b", head), head
    assert re.search(r"Explained: the class .+ over the chosen region", head), head
    assert_no_exception(page, "the trust panel of a clicked segment")
    page.screenshot(path=str(ARTIFACTS / "tasks-4-upload-segment-trust.png"), full_page=True)

    # 2. a classifier state dict declared multi-label: its Outputs page
    _go(page, "Outputs")
    _upload(page, checkpoints["multilabel"], "resnet18", task="multilabel")
    page.get_by_text("a multi-label").first.wait_for(timeout=120_000)
    slider = page.locator("[data-testid=stSlider]").filter(has=page.locator("label", has_text="Threshold"))
    assert slider.count() == 1, "no threshold control on the multi-label Outputs page"
    bars = page.locator(".st-key-labels_bars .js-plotly-plot").first
    bars.locator("text.bartext").first.wait_for(timeout=120_000)
    names = bars.locator(".ytick text").evaluate_all("els => els.map(e => e.textContent)")
    assert sorted(names) == [f"class {i}" for i in range(5)], names
    shown = sorted(float(t.strip("%")) / 100 for t in
                   bars.locator("text.bartext").evaluate_all("els => els.map(e => e.textContent)"))
    expected = sorted(_expected_sigmoids(checkpoints["tags_model"], ROOT / "assets" / "samples" / "cat.jpg"))
    assert len(shown) == 5
    assert max(abs(a - b) for a, b in zip(shown, expected)) < 0.01, (shown, expected)
    # independent sigmoids, not a softmax: these five add up to far more than 1
    assert abs(sum(shown) - 1.0) > 0.5, shown
    assert_no_exception(page, "Outputs of the multi-label upload")
    assert page.locator("[data-testid=stAlert]").filter(has_text=re.compile("error|could not", re.I)).count() == 0
    page.screenshot(path=str(ARTIFACTS / "tasks-5-upload-multilabel-outputs.png"), full_page=True)
    assert not errors, errors
    page.close()
