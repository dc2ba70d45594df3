"""The Trust panel end to end in a real headless Chromium: open Attributions, wait until
the trust badge is drawn (asking for the check when it does not run by itself),
download the HTML report, open the downloaded file in Chromium with the network cut
off, and check that every image in it loads.

It relies on the visible texts of :mod:`ui.trust` (``TITLE``, ``CHECK_BUTTON``, the
badge words, ``HTML_BUTTON``) and of the report ("How far to trust these heatmaps").
By default it drives the real app (``app.py`` -> Attributions); with
``INTERPRET_TRUST_PAGE=tests/apps/trust_page.py`` it drives the stand-alone page that
calls the same functions.  Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re

import pytest
from serving import ARTIFACTS, browser_api, chromium, settle, streamlit_server

SCRIPT = os.environ.get("INTERPRET_TRUST_PAGE", "app.py")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = browser_api()

from ui import trust  # noqa: E402  (the visible texts)


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-trust-server.log", script=SCRIPT) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


def test_trust_badge_then_report_download_opens_offline_with_its_images(server, browser, tmp_path):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    target = f"{server}/Attributions" if SCRIPT == "app.py" else f"{server}/?steps=8&seeds=2"
    page.goto(target)
    settle(page)
    page.get_by_text(trust.TITLE).first.wait_for(timeout=120_000)
    settle(page)
    assert page.locator("[data-testid=stException]").count() == 0

    check = page.get_by_role("button", name=trust.CHECK_BUTTON)
    if check.count():
        check.first.click()
        settle(page)
    # the badge: one of the verdict words, and the sentence under it
    page.get_by_text("Showing the photo back in the map's order").first.wait_for(timeout=240_000)
    settle(page)
    # a badge is span.stMarkdownBadge: its icon's name, then the word
    badge = page.locator("span.stMarkdownBadge")
    words = [w for w in trust.BADGE.values()
             if badge.filter(has_text=re.compile(rf"(^|\s){re.escape(w)}$")).count()]
    assert words, "no faithfulness badge drawn"
    assert badge.filter(has_text=trust.SANITY_BADGE[None]).count() >= 1
    page.screenshot(path=str(ARTIFACTS / "trust-1-panel.png"), full_page=True)

    with page.expect_download(timeout=240_000) as info:
        page.get_by_role("button", name=trust.HTML_BUTTON).first.click()
    report = tmp_path / "report.html"
    info.value.save_as(str(report))
    assert report.stat().st_size > 20_000
    assert not errors, errors

    # the downloaded file in Chromium, with every request that is not the file refused
    offline = browser.new_context(viewport={"width": 1100, "height": 1400})
    requests = []

    def refuse(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            requests.append(url)
            route.abort()

    offline.route("**/*", refuse)
    view = offline.new_page()
    view.goto(report.as_uri())
    view.wait_for_load_state("load")
    assert view.get_by_text("How far to trust these heatmaps").count() == 1
    images = view.evaluate("() => Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= 2  # the photo and at least one map
    assert all(done and width > 0 for done, width in images), images
    assert view.locator("svg polyline").count() >= 4  # the curves
    assert not requests, requests
    view.screenshot(path=str(ARTIFACTS / "trust-2-report.png"), full_page=True)
    offline.close()
    context.close()
