"""The Concepts page end to end in a real headless Chromium: the bundled model on the
default sample photo, its top concepts drawn with their heatmaps, then the team's own
concept tested: a photo set of the class, photos of a concept and unrelated photos
uploaded as three zips, and the TCAV sentence with its p-value drawn.  Screenshots go to
test-artifacts/."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from serving import ARTIFACTS, browser_api, chromium, settle, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sync_api = browser_api()


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-concepts-server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


def zip_of(images, path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, im in enumerate(images):
            b = io.BytesIO()
            im.save(b, "JPEG", quality=90)
            zf.writestr(f"p{i}.jpg", b.getvalue())
    path.write_bytes(buf.getvalue())
    return str(path)


def uploader(page, label):
    return page.locator("[data-testid=stFileUploader]").filter(has_text=label).locator("input[type=file]")


def test_concepts_page_draws_concepts_and_tests_an_uploaded_concept(server, browser, tmp_path, chelsea):
    import numpy as np

    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/Concepts")
    settle(page)
    page.get_by_text("of the layer's relevance").first.wait_for(timeout=240_000)
    settle(page)
    assert page.locator("[data-testid=stException]").count() == 0
    assert page.get_by_text("of the layer's relevance").count() == 6
    page.screenshot(path=str(ARTIFACTS / "concepts-1-top.png"), full_page=True)

    # the photo set: crops of the cat (all predicted as the cat's class)
    w, h = chelsea.size
    cats = [chelsea.crop((dx, dy, w - 40 + dx, h - 40 + dy)) for dx, dy in ((0, 0), (40, 0), (0, 40), (40, 40))]
    rng = np.random.default_rng(0)
    stripes = [Image.fromarray(np.repeat(np.repeat(((np.arange(224) // (4 + i)) % 2 * 255).astype(np.uint8)
                                                   [None, :, None], 224, 0), 3, 2)) for i in range(6)]
    randoms = [Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)) for _ in range(10)]
    page.get_by_role("radio", name="Upload").first.click() if page.get_by_role("radio", name="Upload").count() \
        else page.get_by_text("Upload", exact=True).first.click()
    settle(page)
    uploader(page, "Photos to search").set_input_files(zip_of(cats, tmp_path / "cats.zip"))
    settle(page)
    uploader(page, "Photos of the concept").set_input_files(zip_of(stripes, tmp_path / "stripes.zip"))
    settle(page)
    uploader(page, "Unrelated photos").set_input_files(zip_of(randoms, tmp_path / "random.zip"))
    settle(page)
    page.get_by_role("button", name="Test the concept").click()
    page.get_by_text("random sets:").first.wait_for(timeout=400_000)
    settle(page)
    text = page.get_by_text("random sets:").first.inner_text()
    assert "p = " in text and "runs)" in text
    assert page.locator("[data-testid=stException]").count() == 0
    page.screenshot(path=str(ARTIFACTS / "concepts-2-tcav.png"), full_page=True)
    assert not errors, errors
