"""Stale badges and cramped panels (issue 17), in a real headless Chromium.

* The comparison's badge after a check: "Check faithfulness" is a click inside the
  trust panel's fragment, and a fragment rerun does not redraw the rest of the page,
  so the Compare panel kept saying "faithfulness not checked yet" for the method just
  checked.  (AppTest reruns the whole script on a click, so only a browser shows it.)
* The trust panel at 1280 and 1920 pixels: the heatmap had 226 pixels beside a
  400-pixel colour bar, the curves' legend and axis title were cut, and so was the
  "Mark the object on the photo" toggle.  Nothing of the panel may be cut
  (scripts/screenshots.py's check), the map gets the room, and its colour bar is no
  taller than the map.
* The sidebar covered 75% of a 390-pixel phone on first load: it starts collapsed on
  narrow screens and open on wide ones.

Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import sys

import pytest
from serving import ARTIFACTS, ROOT, assert_no_exception, browser_api, chromium, settle, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = browser_api()

sys.path.insert(0, str(ROOT / "scripts"))
from screenshots import cut_texts, open_attributions  # noqa: E402

from ui import trust  # noqa: E402  (the visible texts)


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-layout-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


def _compare_entry(page, label: str, next_label: str) -> str:
    """The text of one method's entry beside the agreement matrix (its label, then its
    badges), up to the next method's label."""
    text = page.locator("[data-testid=stMain]").inner_text()
    tail = text.split(trust.COMPARE_TITLE, 1)[1]
    entry = tail.rsplit(f"\n{label}\n", 1)[1]  # the last: the matrix's axes name it first
    return entry.split(f"\n{next_label}\n", 1)[0]


def test_the_compare_badge_follows_a_check_made_in_the_trust_panel(server, browser):
    # saliency is not checked by itself (only CAMs are), so its badge waits for the click
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/Attributions?method=saliency&compare=saliency,gradcam")
    settle(page)
    page.get_by_text(trust.COMPARE_TITLE).first.wait_for(timeout=180_000)
    settle(page)
    assert trust.NOT_CHECKED in _compare_entry(page, "Saliency (gradient)", "Grad-CAM")
    page.locator(".st-key-trust_check_saliency").get_by_role("button", name=trust.CHECK_BUTTON).click()
    page.locator(".st-key-trust_curves_saliency").wait_for(timeout=240_000)  # the check is done
    settle(page)
    entry = _compare_entry(page, "Saliency (gradient)", "Grad-CAM")
    page.screenshot(path=str(ARTIFACTS / "layout-compare-after-check.png"), full_page=True)
    assert trust.NOT_CHECKED not in entry, entry
    assert any(w in entry for w in trust.BADGE.values()), entry
    assert_no_exception(page, "Attributions")
    page.close()


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_trust_panel_is_not_cut_and_the_heatmap_gets_the_room(server, browser, width):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    open_attributions(page, server)
    assert_no_exception(page, "Attributions")
    page.screenshot(path=str(ARTIFACTS / f"layout-attributions-{width}.png"), full_page=True)
    assert cut_texts(page) == []
    image = page.evaluate("() => document.querySelector('.st-key-overlay .js-plotly-plot image')"
                          ".getBoundingClientRect().toJSON()")
    bar = page.evaluate("() => document.querySelector('.st-key-overlay .js-plotly-plot .colorbar')"
                        ".getBoundingClientRect().toJSON()")
    assert image["width"] >= 350, image  # it was 226 px beside the trust panel
    assert bar["height"] <= image["height"] + 1, (bar, image)
    page.close()


def test_the_sidebar_starts_collapsed_on_a_phone_and_open_on_a_laptop(server, browser):
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(f"{server}/Attributions")
    settle(phone)
    box = phone.locator("[data-testid=stSidebar]").bounding_box()
    phone.screenshot(path=str(ARTIFACTS / "layout-phone-first-load.png"))
    assert box is None or box["width"] == 0 or box["x"] + box["width"] <= 0, box
    phone.close()
    laptop = browser.new_page(viewport={"width": 1440, "height": 900})
    laptop.goto(f"{server}/Attributions")
    settle(laptop)
    box = laptop.locator("[data-testid=stSidebar]").bounding_box()
    assert box is not None and box["x"] >= 0 and box["width"] >= 200, box
    laptop.close()
