"""End to end in a real headless Chromium: start ``streamlit run app.py``, upload a
photo through the file input, open Attributions, choose Grad-CAM, wait until Plotly has
drawn the result, and check that no page shows an exception.  Screenshots of every
page are saved to test-artifacts/ (gitignored) for a human to look at.

Needs Debian's chromium at /usr/bin/chromium and the Python playwright package;
skipped (with the reason) otherwise.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from serving import ARTIFACTS, ROOT, assert_no_exception, browser_api, chromium, settle, streamlit_server

PHOTO = ROOT / "assets" / "samples" / "espresso.jpg"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = browser_api()


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


def screenshot(page, name: str) -> Path:
    """A screenshot of the whole page (Streamlit scrolls inside its main section, so
    the viewport is stretched to the content's height first)."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " return m ? m.scrollHeight : document.body.scrollHeight }")
    page.set_viewport_size({"width": 1440, "height": max(900, min(int(height) + 40, 5000))})
    time.sleep(0.8)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1440, "height": 900})
    return path


def go_to(page, label: str) -> None:
    page.locator("[data-testid=stSidebar] [data-testid=stPageLink] a", has_text=label).first.click()
    page.wait_for_url(f"**/{label}**", timeout=30_000) if label != "Home" else None
    settle(page)


def test_upload_then_gradcam_in_a_real_browser(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    console_errors = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    page.goto(server)
    settle(page)
    assert page.get_by_text("The model says").count() >= 1
    assert_no_exception(page, "Home")
    screenshot(page, "1-home")

    # upload a photo through the sidebar's file input
    file_input = page.locator("[data-testid=stSidebar] [data-testid=stFileUploader] input[type=file]").first
    file_input.set_input_files(str(PHOTO))
    page.locator("h3", has_text="The model says").filter(has_text="espresso").first.wait_for(
        timeout=60_000)
    settle(page)
    assert "img=upload" in page.url
    assert_no_exception(page, "Home after the upload")

    for label in ("Outputs", "Input", "Activations"):
        go_to(page, label)
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        assert_no_exception(page, label)
        screenshot(page, f"{2 + ('Outputs', 'Input', 'Activations').index(label)}-{label.lower()}")

    go_to(page, "Attributions")
    # choose another method, then Grad-CAM, as a person would
    page.locator("[data-testid=stRadio] label", has_text="LayerCAM").first.click()
    settle(page)
    page.locator("[data-testid=stRadio] label", has_text="Grad-CAM").first.click()
    settle(page)
    page.wait_for_selector(".js-plotly-plot .gtitle >> text=/Grad-CAM: espresso/", timeout=60_000)
    page.wait_for_selector(".js-plotly-plot .layer-above image, .js-plotly-plot g.imagelayer image",
                           state="attached", timeout=60_000)
    # the comparison row: four overlays, drawn as pictures (no second Plotly chart)
    page.get_by_text("Eigen-CAM · class activation maps (gradient-free)").first.wait_for(timeout=60_000)
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')]"
                           ".filter(i => i.complete && i.naturalWidth === 224).length >= 4", timeout=60_000)
    assert page.get_by_text("made the model say").count() >= 1
    assert "method" not in page.url or "gradcam" in page.url
    assert "img=upload" in page.url
    assert_no_exception(page, "Attributions")
    screenshot(page, "5-attributions")

    # a second person on the same server sees neither the upload nor its choices
    other = browser.new_context().new_page()
    other.goto(server)
    settle(other)
    assert other.locator("h3", has_text="The model says").count() == 1
    assert other.locator("h3", has_text="espresso").count() == 0
    assert "img=upload" not in other.url
    other.close()

    assert not console_errors, console_errors
    page.close()


def test_link_opens_the_same_view(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/Attributions?img=cat_and_cup&method=layercam&cmap=viridis")
    settle(page)
    page.wait_for_selector(".js-plotly-plot .gtitle >> text=/LayerCAM/", timeout=60_000)
    assert_no_exception(page, "Attributions from a link")
    assert "img=cat_and_cup" in page.url and "method=layercam" in page.url
    screenshot(page, "6-attributions-from-link")
    page.close()


def test_features_page_draws_its_first_image(server, browser):
    # small optimization settings through the link, so the first image comes in seconds
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/Features?layer=_blocks.10&channel=7&fsize=48&fsteps=8")
    settle(page)
    page.get_by_text("Painted by gradient ascent").first.wait_for(timeout=120_000)
    page.wait_for_selector(".js-plotly-plot g.imagelayer image, .js-plotly-plot .layer-above image",
                           state="attached", timeout=60_000)
    assert page.get_by_text("Channel 7 of _blocks.10").count() >= 1
    assert page.locator(".js-plotly-plot").count() >= 4  # image, patches, photo, embedding
    assert "channel=7" in page.url and "fsize=48" in page.url
    assert_no_exception(page, "Features")
    screenshot(page, "7-features")
    page.close()
