"""A segmentation model end to end in a real headless Chromium (issue 19): the Outputs
page draws the predicted mask with each class's share; on Attributions a real mouse
click on a segment of the mask becomes the target, and the map's caption names that
segment's region.  torchvision's LR-ASPP MobileNetV3 by name, random weights (the
server has none: nothing is downloaded).  Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from serving import ARTIFACTS, assert_no_exception, browser_api, chromium, settle, streamlit_server

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
