"""Issue 18: nothing a visitor supplies reaches a page as HTML or Markdown.

One journey through every page with Streamlit's AppTest: a crafted link (its values
echoed in the notes), an uploaded model whose every class name is a hostile label, a
hostile model file name and a hostile photo file name; each page is drawn in the normal
mode and in presentation mode.  Every element Streamlit renders as Markdown or HTML
(Markdown, captions, alerts, titles, widget labels, radio options, expander and tab
labels, image captions, metric labels, badges) is checked for a raw tag, link or image
of the attacker's.  (Select-box options and Plotly's data are plain text: Plotly's few
HTML tags are escaped by interpret.words.plotly_text, so no raw "<img" may appear there
either.)

On the code before the fix, the labels went through ``unsafe_allow_html`` in the plain
captions, and the link's ``cmap`` value was echoed as Markdown in the link note."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

import interpret  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "assets" / "samples"

EVIL = "<img src=x onerror=alert(1)> ![](http://evil/b) [Sign in](http://evil)"
LINK = {"cmap": "x` [Sign in](http://evil) ![](http://evil/b) `",
        "layer": "![](http://evil/c)", "p.[x](http://evil/d)": "1", "target": "<img src=x>"}
# (a file name keeps no "/": what follows the last one is the name)
MODEL_FILE = "<img src=x onerror=alert(2)>[Sign in](javascript:alert(1)).pth"
PHOTO_FILE = "[Sign in](javascript:alert(3)) <img src=x>.png"
#: what must never appear in anything rendered as Markdown / HTML (the page's own links,
#: e.g. to papers, are not the attacker's)
RAW = ("<img", "](http://evil", "](javascript", "![](", "<div")

PAGES = ["app.py", "pages/1_Outputs.py", "pages/2_Input.py", "pages/3_Activations.py",
         "pages/4_Attributions.py", "pages/5_Features.py", "pages/6_Dataset.py", "pages/7_Concepts.py"]


def rendered_texts(at: AppTest):
    """(what, text) of every element Streamlit renders as Markdown or HTML."""
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader",
                 "header", "toast", "exception", "latex", "code"):
        for el in getattr(at, kind, []):
            out.append((kind, str(getattr(el, "value", ""))))
    for kind in ("button", "toggle", "checkbox", "slider", "selectbox", "multiselect", "radio",
                 "number_input", "text_input", "expander", "tabs", "metric", "select_slider",
                 "text_area", "color_picker", "date_input", "time_input"):
        try:
            els = at.get(kind)
        except Exception:  # noqa: BLE001 - an element type this Streamlit lacks
            continue
        for el in els:
            label = getattr(el.proto, "label", "")
            out.append((f"{kind} label", str(label)))
            if kind == "radio":
                out += [("radio option", str(o)) for o in el.proto.options]
                out += [("radio caption", str(c)) for c in el.proto.captions]
            if kind == "metric":
                out.append(("metric help", str(el.proto.help)))
    for kind in ("download_button", "page_link", "file_uploader", "camera_input"):
        for el in at.get(kind):
            out.append((f"{kind} label", str(getattr(el.proto, "label", ""))))
    for el in at.get("image"):
        out += [("image caption", im.caption) for im in el.proto.imgs]
    for el in at.get("plotly_chart"):  # plain text for Plotly, except its few HTML tags
        spec = el.proto.spec
        out.append(("plotly", "" if "<img" not in spec else spec))
    return out


def assert_no_raw_markup(at: AppTest, where: str) -> None:
    bad = [(kind, text) for kind, text in rendered_texts(at) if any(r in text for r in RAW)]
    assert not bad, f"{where}: raw visitor markup rendered: {bad[:5]}"


def labels_file() -> bytes:
    n = len(interpret.load_model().labels)
    return json.dumps([f"{EVIL} {i}" for i in range(n)]).encode()


def photo_bytes() -> bytes:
    buf = io.BytesIO()
    Image.open(SAMPLES / "espresso.jpg").convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def test_hostile_labels_file_names_and_links_reach_no_page_as_markup():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(LINK)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    notes = " ".join(i.value for i in at.info)
    assert "cmap" in notes and "Sign in" in notes  # the link's values are echoed, as text
    assert_no_raw_markup(at, "the link's notes")

    # a model whose every class name is hostile, from a hostile file name
    handle = interpret.load_model()
    buf = io.BytesIO()
    torch.save(handle.module.state_dict(), buf)
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    at.sidebar.file_uploader(key="w_model_file").upload(MODEL_FILE, buf.getvalue())
    at.sidebar.file_uploader(key="w_model_labels").upload("labels.json", labels_file(),
                                                          "application/json")
    at.sidebar.selectbox(key="w_model_arch").select("efficientnet_lite0")
    next(b for b in at.sidebar.button if b.label == "Load model").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Sign in" in c.value for c in at.sidebar.caption), (
        "the model was not loaded", [c.value for c in at.sidebar.caption],
        [e.value for e in at.sidebar.error])
    # and a photo with a hostile file name
    at.sidebar.file_uploader(key="w_image_file").upload(PHOTO_FILE, photo_bytes(), "image/png")
    at.run()
    assert at.sidebar.selectbox(key="w_image").value == "upload"
    assert_no_raw_markup(at, "Home after the uploads")

    seen_label = False
    for present in (False, True):
        if present:
            at.sidebar.toggle(key="w_present").set_value(True).run()
        for path in PAGES:
            at.switch_page(path).run()
            assert not at.exception, (path, [e.value for e in at.exception])
            assert_no_raw_markup(at, f"{path}{' (presentation mode)' if present else ''}")
            seen_label |= any("Sign in" in text and "evil" in text for _, text in rendered_texts(at)
                              if not text.startswith("{"))
    assert seen_label, "the hostile labels were never drawn: the test would prove nothing"
