"""Your own model, end to end in a real headless Chromium: upload a timm state dict
(choosing its architecture in the form's searchable list), then a zipped Hugging Face
folder, then an ONNX file, through the sidebar's upload form; each reaches a drawn
Grad-CAM on the Attributions page (the Hugging Face ViT also a transformer method),
with no exception on the page.  Screenshots go to test-artifacts/.

Needs Debian's chromium at /usr/bin/chromium and the Python playwright package;
skipped (with the reason) otherwise.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from serving import ARTIFACTS, assert_no_exception, browser_api, chromium, settle, streamlit_server

import tiny_models as tm


pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

sync_api = browser_api()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The three uploads: a timm MobileNetV3 state dict with 4 classes, a zipped HF ViT
    folder, an ONNX CNN (torch's constant-folded export)."""
    root = tmp_path_factory.mktemp("uploads")
    timm_sd = root / "leaf_mobilenet.pth"
    torch.save(tm.timm_model("mobilenetv3_small_050", num_classes=4).state_dict(), timm_sd)
    folder = tm.save_hf_folder(tm.hf_vit(), root / "shapes_vit")
    hf_zip = root / "shapes_vit.zip"
    hf_zip.write_bytes(tm.zip_folder(folder))
    onnx_file = tm.export_onnx(tm.small_cnn(), root / "tiny_cnn.onnx")
    return {"timm": timm_sd, "hf": hf_zip, "onnx": onnx_file}


@pytest.fixture(scope="module")
def server():
    with streamlit_server("streamlit-server-models.log", env={"INTERPRET_OFFLINE": "1"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(sync_api) as b:
        yield b


def choose(page, selectbox, option: str) -> None:
    """Pick ``option`` in a Streamlit selectbox by typing into its search box, as a
    person would in a long list."""
    selectbox.locator("input").first.click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).first.click()
    settle(page)


def sidebar_selectbox(page, label: str):
    return page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").filter(
        has=page.locator("label", has_text=label)).first


def upload(page, library: str, path: Path, arch: str = None) -> None:
    sidebar = page.locator("[data-testid=stSidebar]")
    choose(page, sidebar_selectbox(page, "Library"), library)
    sidebar.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(str(path))
    time.sleep(0.5)
    if arch:
        choose(page, sidebar_selectbox(page, "timm architecture"), arch)
    sidebar.locator("button", has_text="Load model").first.click()
    settle(page)
    sidebar.get_by_text(f"Loaded {path.stem}").first.wait_for(timeout=120_000)
    assert_no_exception(page, f"the sidebar after uploading {path.name}")


def wait_for_heatmap(page, title: str) -> None:
    page.wait_for_selector(f".js-plotly-plot .gtitle >> text=/{title}/", timeout=120_000)
    page.wait_for_selector(".js-plotly-plot .layer-above image, .js-plotly-plot g.imagelayer image",
                           state="attached", timeout=60_000)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"models-{name}.png"), full_page=True)


def test_timm_hf_and_onnx_uploads_reach_a_drawn_heatmap(server, browser, files):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/Attributions")
    settle(page)
    wait_for_heatmap(page, "Grad-CAM")  # the bundled model first
    choose(page, page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first,
           "Upload a checkpoint")

    # 1. a timm state dict, its architecture picked in the searchable list
    upload(page, "timm (PyTorch Image Models)", files["timm"], arch="mobilenetv3_small_050")
    page.locator("[data-testid=stSidebar]").get_by_text("leaf_mobilenet").first.wait_for()
    wait_for_heatmap(page, "Grad-CAM: class")
    assert_no_exception(page, "Attributions with the timm upload")
    shot(page, "1-timm")

    # 2. a zipped Hugging Face folder: Grad-CAM, then a transformer method
    upload(page, "Hugging Face transformers (zipped folder)", files["hf"])
    wait_for_heatmap(page, "Grad-CAM: shape")
    assert_no_exception(page, "Attributions with the Hugging Face upload")
    page.locator("[data-testid=stButtonGroup] button", has_text="ransformer").first.click()
    settle(page)
    page.locator("[data-testid=stRadio] label", has_text="Transformer attribution").first.click()
    settle(page)
    wait_for_heatmap(page, "Transformer attribution")
    assert_no_exception(page, "transformer attribution on the Hugging Face ViT")
    shot(page, "2-hf")

    # 3. an ONNX graph (the method list still has a transformer method selected: the
    #    page falls back to what applies, so pick Grad-CAM's family again)
    upload(page, "ONNX graph", files["onnx"])
    page.locator("[data-testid=stButtonGroup] button", has_text="CAMs").first.click()
    settle(page)
    page.locator("[data-testid=stRadio] label", has_text="Grad-CAM").first.click()
    settle(page)
    wait_for_heatmap(page, "Grad-CAM: class")
    assert page.locator("[data-testid=stSidebar]").get_by_text("tiny_cnn").count() >= 1
    assert_no_exception(page, "Attributions with the ONNX upload")
    shot(page, "3-onnx")
    assert not errors, errors
    page.close()
