"""The Dataset page in a real headless Chromium: start on the sample set, wait for the
confusion matrix, click its fullest cell, see that cell's images with their maps, then
click one image and land on Attributions with it.  Screenshots go to test-artifacts/.

Needs Debian's chromium at /usr/bin/chromium and the playwright package (skipped
otherwise), like tests/test_browser.py.
"""

from __future__ import annotations

import time

import pytest
from serving import ARTIFACTS, assert_no_exception, browser_api, chromium, settle, streamlit_server


pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = browser_api()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("dataset-runs")
    with streamlit_server("streamlit-server-dataset.log",
                          env={"INTERPRET_DATASET_RUNS": str(runs), "RAY_ADDRESS": None}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


def screenshot(page, name: str) -> None:
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " return m ? m.scrollHeight : document.body.scrollHeight }")
    page.set_viewport_size({"width": 1440, "height": max(900, min(int(height) + 40, 5000))})
    time.sleep(0.8)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 900})


def chart(page, index: int):
    return page.locator("[data-testid=stPlotlyChart]").nth(index)


def click_point(page, point) -> None:
    """A real mouse click on a Plotly marker (Plotly listens on its drag layer, above
    the markers, so the click goes to the marker's position, scrolled into view)."""
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_dataset_page_sample_set_confusion_cell_images(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/Dataset")
    settle(page)
    assert_no_exception(page, "Dataset")
    page.get_by_role("button", name="Analyse").click()
    page.get_by_text("Rows: the true class").first.wait_for(timeout=240_000)
    settle(page)
    assert_no_exception(page, "Dataset after the analysis")
    confusion = chart(page, 0)
    confusion.locator(".main-svg").first.wait_for(timeout=60_000)
    # the fullest cell, from the figure's own data: [true, predicted, count] per point
    cells = confusion.locator(".js-plotly-plot").evaluate("el => el.data[1].customdata")
    assert sum(c[2] for c in cells) == 40
    k = max(range(len(cells)), key=lambda i: cells[i][2])
    count = cells[k][2]
    screenshot(page, "dataset-1-confusion")

    click_point(page, confusion.locator(".scatterlayer .trace path.point").nth(k))
    heading = page.locator("h5", has_text="predicted").filter(has_text=f": {count} image(s)")
    heading.first.wait_for(timeout=60_000)
    settle(page)
    gallery = chart(page, 1)
    gallery.locator("g.imagelayer image, .layer-above image").first.wait_for(state="attached", timeout=60_000)
    shown = gallery.locator("g.imagelayer image").count()
    assert shown == min(count, 24), (shown, count)
    assert_no_exception(page, "Dataset, a confusion cell")
    screenshot(page, "dataset-2-cell-images")

    # one click from an image to its single-image view
    click_point(page, gallery.locator(".scatterlayer .trace path.point").first)
    page.wait_for_url("**/Attributions**", timeout=60_000)
    settle(page)
    assert "img=upload" in page.url
    assert_no_exception(page, "Attributions from the Dataset page")
    screenshot(page, "dataset-3-attributions")
    assert not errors, errors
    page.close()
