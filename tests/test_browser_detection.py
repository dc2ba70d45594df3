"""Detectors and image-text models in a real headless Chromium (issue 20).

1. A person's own detector: a torchvision Faster R-CNN (MobileNetV3-320 FPN, 3 classes,
   seeded random init: its 100 detections score about 34%, so the boxes shown depend on the
   threshold) uploaded as a state dict through the sidebar's form; on Outputs the score
   threshold slider, moved with the keyboard, changes the boxes drawn from none to the
   number computed here with ``interpret.predict``; on Attributions a real mouse click on
   the second box picks it, its Grad-CAM is drawn and the trust panel gives a verdict.
2. An open_clip ViT-B-32 (random init: the server has no weights, nothing is downloaded):
   two prompts typed in the sidebar; on Attributions each prompt picked in turn gets a map
   of its own, the caption naming it.

Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch
from serving import ARTIFACTS, ROOT, assert_no_exception, browser_api, chromium, settle, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = browser_api()

DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-detection-server.log", env={"INTERPRET_OFFLINE": "1"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    from torchvision.models import get_model

    torch.manual_seed(0)
    m = get_model(DETECTOR, weights=None, weights_backbone=None, num_classes=3).eval()
    path = tmp_path_factory.mktemp("det_upload") / "shapes_rcnn.pth"
    torch.save(m.state_dict(), path)
    return path


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the sidebar selectbox labelled ``label`` by typing into it."""
    box = page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(
        has=page.locator("label", has_text=re.compile(f"^{label}$"))).first
    box.locator("input").first.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).first.click()
    settle(page)


def _go(page, label: str) -> None:
    """Follow the sidebar's link to a page (the session, and so the upload, is kept)."""
    page.locator("[data-testid=stSidebar] a", has_text=label).first.click()
    settle(page)


def _boxes_drawn(page) -> int:
    """How many detections the Outputs figure draws (one label per box)."""
    plot = page.locator(".st-key-det_boxes .js-plotly-plot").first
    plot.wait_for(timeout=120_000)
    return plot.evaluate("el => (el.layout.annotations || []).length")


def _lonely_point(plot):
    """(i, x, y): the box (not the first, which is picked already) whose click point (its
    centre) lies farthest from every other box's, and that point in page coordinates (a
    click there can only mean that box)."""
    i, x, y = plot.evaluate(
        """el => { const tr = el._fullData.find(t => t.type === 'scatter');
                   const xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
                   const p = Array.from(tr.x, (v, k) => [xa._offset + xa.l2p(v), ya._offset + ya.l2p(tr.y[k])]);
                   let best = 1, far = -1;
                   for (let k = 1; k < p.length; k++) {
                     let near = Infinity;
                     for (let j = 0; j < p.length; j++) if (j !== k)
                       near = Math.min(near, Math.hypot(p[k][0] - p[j][0], p[k][1] - p[j][1]));
                     if (near > far) { far = near; best = k; }
                   }
                   return [best, p[best][0], p[best][1]]; }""")
    box = plot.bounding_box()
    return i, box["x"] + x, box["y"] + y


def test_upload_a_detector_move_the_threshold_click_a_box_and_get_its_gradcam_and_trust(
        server, browser, detector_file):
    import interpret

    h = interpret.load_model(str(detector_file), arch=DETECTOR)
    found = interpret.predict(h, interpret.load_image(ROOT / "assets" / "samples" / "cat.jpg"), threshold=0.0)
    scores = [d.score for d in found]
    at_half = sum(s >= 0.5 for s in scores)
    at_030 = sum(s >= 0.3 - 1e-9 for s in scores)
    assert at_half != at_030, scores[:5]  # the slider's move must change what is drawn

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/Outputs?img=cat", timeout=240_000)
    settle(page)
    _choose(page, "Model", "Upload a checkpoint")
    sidebar = page.locator("[data-testid=stSidebar]")
    _choose(page, "Library", "torchvision (or the bundled EfficientNet-Lite0)")
    sidebar.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(detector_file))
    time.sleep(0.5)
    _choose(page, "Architecture", DETECTOR)
    _choose(page, "Task", "detection")
    sidebar.locator("button", has_text="Load model").first.click()
    settle(page)
    sidebar.get_by_text(f"Loaded {detector_file.stem}").first.wait_for(timeout=120_000)
    assert_no_exception(page, "the sidebar after uploading the detector")

    # Outputs: the threshold slider (0.5 at first), moved 4 steps of 0.05 down to 0.30
    slider = page.locator("[data-testid=stSlider]").filter(
        has=page.locator("label", has_text="Score threshold")).first
    slider.wait_for(timeout=120_000)
    assert _boxes_drawn(page) == at_half
    thumb = slider.locator("input[type=range]").first  # react-aria's thumb: keyboard steps
    thumb.focus()
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
        time.sleep(0.3)
    settle(page)
    assert float(thumb.get_attribute("aria-valuenow") or thumb.input_value()) == pytest.approx(0.3)
    page.wait_for_function(
        "n => { const el = document.querySelector('.st-key-det_boxes .js-plotly-plot');"
        " return el && (el.layout.annotations || []).length === n; }", arg=at_030, timeout=120_000)
    assert _boxes_drawn(page) == at_030
    assert_no_exception(page, "Outputs of the uploaded detector")
    page.screenshot(path=str(ARTIFACTS / "detection-1-outputs-threshold.png"))

    # Attributions: a real mouse click on the second box picks it
    _go(page, "Attributions")
    assert_no_exception(page, "Attributions of the uploaded detector")
    plot = page.locator(".st-key-w_det_click .js-plotly-plot").first
    plot.wait_for(timeout=120_000)
    plot.scroll_into_view_if_needed()
    i, x, y = _lonely_point(plot)
    page.mouse.click(x, y)
    settle(page)
    picker = page.locator("[data-testid=stSelectbox]").filter(
        has=page.locator("label", has_text=re.compile("^Box$"))).first
    shown = ""
    for _ in range(120):  # the click reruns the page, which then shows the picked box
        shown = picker.evaluate("b => b.textContent + ' ' + [...b.querySelectorAll('input')]"
                                ".map(i => i.value).join(' ')")
        if f"{i + 1}. " in shown:
            break
        time.sleep(0.5)
    page.screenshot(path=str(ARTIFACTS / "detection-2-attributions-click.png"))
    assert f"{i + 1}. " in shown, (i, shown)
    page.wait_for_selector(".js-plotly-plot .gtitle >> text=/Grad-CAM/", timeout=240_000)
    assert_no_exception(page, "Attributions after a click on a box")

    # the trust panel: its check runs by itself for a CAM when cheap, else on the button
    page.get_by_text("How far to trust this map").first.wait_for(timeout=120_000)
    curves = page.locator("[class*=st-key-trust_curves_] .js-plotly-plot")
    if curves.count() == 0:
        page.locator("button", has_text="Check faithfulness").first.click()
        settle(page)
    curves.first.wait_for(timeout=240_000)
    settle(page)
    panel = page.locator("[data-testid=stMain]").inner_text().split("How far to trust this map", 1)[1]
    assert "not checked yet" not in panel[:600], panel[:600]  # a verdict, not a promise of one
    assert_no_exception(page, "the trust panel of a clicked box")
    page.screenshot(path=str(ARTIFACTS / "detection-2-attributions-box.png"), full_page=True)
    assert not errors, errors
    page.close()


def _overlay_source(page) -> str:
    """The drawn map (the overlay figure's image, as Plotly holds it)."""
    plot = page.locator(".st-key-overlay .js-plotly-plot").first
    plot.wait_for(timeout=240_000)
    return plot.evaluate("el => el._fullData.filter(t => t.type === 'image').map(t => t.source).join('|')")


def test_two_prompts_typed_in_the_sidebar_get_a_map_each(server, browser):
    pytest.importorskip("open_clip")
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/Attributions?model=open_clip:ViT-B-32&img=cat&method=gradcam", timeout=240_000)
    settle(page, 400)
    assert_no_exception(page, "Attributions of open_clip ViT-B-32")
    box = page.locator("[data-testid=stSidebar] textarea").first
    box.wait_for(timeout=120_000)
    box.fill("red square\nblue circle")
    page.locator("[data-testid=stSidebar] h3, [data-testid=stSidebar] label").first.click()  # blur: commit
    settle(page, 400)
    maps = {}
    for i, prompt in enumerate(("a photo of a red square", "a photo of a blue circle")):
        picker = page.locator("[data-testid=stSelectbox]").filter(
            has=page.locator("label", has_text="Class to explain")).first
        picker.locator("input").first.click()
        page.get_by_role("option").filter(has_text=prompt).first.click()
        settle(page, 400)
        page.get_by_text(f"the prompt “{prompt}”").first.wait_for(timeout=240_000)
        page.locator(".st-key-overlay .gtitle").filter(has_text=f"Grad-CAM: {prompt}").first.wait_for(
            timeout=240_000)  # the map's title names its prompt
        maps[prompt] = _overlay_source(page)
        assert maps[prompt], prompt
        assert_no_exception(page, f"the map of {prompt}")
        page.screenshot(path=str(ARTIFACTS / f"imagetext-{i + 1}-map.png"))
    a, b = maps.values()
    assert a != b  # each prompt its own map
    assert not errors, errors
    page.close()
