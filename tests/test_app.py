"""The dashboard, page by page, with Streamlit's AppTest (no browser).

Each test drives the real pages: it picks a model and a photo, uploads bytes through
the real file uploaders, chooses layers and methods, and then decodes the Plotly
figures the page sent (JSON spec, PNG/JPEG data URIs) to check what a person would
see.  Every test also checks that no exception reached the page.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

import interpret  # noqa: E402
from test_figures import decode_data_uri  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "assets" / "samples"
TIMEOUT = 180  # seconds per script run: the first one loads the model


def page(path: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    return at


def charts(at: AppTest) -> dict:
    """Plotly figures of the page by key, as decoded JSON specs."""
    out = {}
    for c in at.get("plotly_chart"):
        out[c.key] = json.loads(c.proto.spec)
    return out


def values(data) -> np.ndarray:
    """A Plotly array: a list, or a typed array {"dtype", "bdata"[, "shape"]} (base64)."""
    if isinstance(data, dict) and "bdata" in data:
        arr = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        if "shape" in data:
            arr = arr.reshape([int(n) for n in str(data["shape"]).split(",")])
        return arr
    return np.asarray(data, dtype=object)


def image_of(trace: dict) -> Image.Image:
    return decode_data_uri(trace["source"])


def pictures(at: AppTest) -> dict:
    """``st.image`` pictures sent inside the page (data URIs) by caption, decoded."""
    out = {}
    for el in at.get("image"):
        for im in el.proto.imgs:
            if im.url.startswith("data:image/") and im.caption:
                out[im.caption] = decode_data_uri(im.url)
    return out


def compared(at: AppTest) -> dict:
    """The comparison row: method label -> its overlay."""
    return {cap.split(" · ")[0]: im for cap, im in pictures(at).items() if " · " in cap}


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def by_label(elements, label: str):
    for e in elements:
        if e.label == label:
            return e
    raise AssertionError(f"no widget labelled {label!r}: {[e.label for e in elements]}")


def photo_bytes(name: str = "espresso.jpg", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.open(SAMPLES / name).convert("RGB").save(buf, fmt)
    return buf.getvalue()


# ----------------------------------------------------------------------------------
# Home


def test_home_shows_prediction_and_gallery_switches_photo():
    at = page("app.py").run()
    no_errors(at)
    assert any("The model says" in s.value for s in at.subheader)
    # sidebar: the model's description
    assert any("4.7 M parameters" in c.value and "224×224" in c.value for c in at.sidebar.caption)
    at.button(key="use_espresso").click().run()
    no_errors(at)
    assert at.sidebar.selectbox(key="w_image").value == "sample:espresso"
    assert any("espresso" in s.value for s in at.subheader)
    assert at.query_params.get("img") == "espresso"


def test_camera_snapshot_becomes_the_photo():
    at = page("app.py").run()
    assert len(at.camera_input) == 0, "the camera starts only when asked for"
    at.toggle(key="w_camera_on").set_value(True).run()
    assert len(at.camera_input) == 1
    at.camera_input(key="w_camera").set_value(("shot.jpg", photo_bytes(fmt="JPEG"), "image/jpeg"))
    at.run()
    no_errors(at)
    assert at.sidebar.selectbox(key="w_image").value == "camera"
    assert any("espresso" in s.value for s in at.subheader)


# ----------------------------------------------------------------------------------
# Outputs


def test_outputs_bar_chart_for_cat_sample():
    at = page("pages/1_Outputs.py").run()
    no_errors(at)
    figs = charts(at)
    bars = figs["top_bars"]["data"][0]
    assert bars["type"] == "bar" and bars["orientation"] == "h"
    assert "tiger cat" in bars["y"] and "Egyptian cat" in bars["y"]
    assert len(bars["y"]) == 10
    assert all(0 <= x <= 1 for x in values(bars["x"]))
    dist = figs["distribution"]["data"][0]
    assert len(values(dist["y"])) == 1000
    assert any(m.label == "Entropy" for m in at.metric)


def test_outputs_log_scale_and_top_k():
    at = page("pages/1_Outputs.py").run()
    at.toggle(key="w_log").set_value(True)
    at.slider(key="w_topk").set_value(5)
    at.run()
    no_errors(at)
    figs = charts(at)
    assert figs["distribution"]["layout"]["yaxis"]["type"] == "log"
    assert len(figs["top_bars"]["data"][0]["y"]) == 5
    assert at.query_params.get("log") == "1" and at.query_params.get("topk") == "5"


def test_class_picked_on_outputs_is_explained_on_attributions():
    at = page("app.py").run()
    at.switch_page("pages/1_Outputs.py").run()
    labels = interpret.load_model().labels
    tabby = labels.index("tabby")
    at.selectbox(key="w_target").select(tabby).run()
    no_errors(at)
    assert at.query_params.get("target") == str(tabby)
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    assert at.selectbox(key="w_target").value == tabby
    assert "tabby" in charts(at)["overlay"]["layout"]["title"]["text"]


# ----------------------------------------------------------------------------------
# Uploads


def test_upload_photo_through_the_sidebar_uploader():
    at = page("pages/1_Outputs.py").run()
    at.sidebar.file_uploader(key="w_image_file").upload("my_cup.png", photo_bytes(), "image/png")
    at.run()
    no_errors(at)
    assert at.sidebar.selectbox(key="w_image").value == "upload"
    assert charts(at)["top_bars"]["data"][0]["y"][-1] == "espresso"  # top bar is drawn last
    # the URL says "upload" but carries no pixels
    assert at.query_params.get("img") == "upload"


def test_bad_upload_shows_message_next_to_uploader_and_keeps_photo():
    at = page("pages/1_Outputs.py").run()
    at.sidebar.file_uploader(key="w_image_file").upload("notes.png", b"this is not a picture", "image/png")
    at.run()
    assert not at.exception
    msgs = [e.value for e in at.sidebar.error]
    assert any("not an image" in m for m in msgs), msgs
    assert at.sidebar.selectbox(key="w_image").value == "sample:cat"
    assert "tiger cat" in charts(at)["top_bars"]["data"][0]["y"]


def test_uploads_stay_in_their_session():
    a = page("pages/1_Outputs.py").run()
    a.sidebar.file_uploader(key="w_image_file").upload("mine.png", photo_bytes(), "image/png")
    a.run()
    b = page("pages/1_Outputs.py").run()
    options = b.sidebar.selectbox(key="w_image").options
    assert not any("mine.png" in o for o in options)
    assert any("mine.png" in o for o in a.sidebar.selectbox(key="w_image").options)


# ----------------------------------------------------------------------------------
# Input


def test_input_page_shows_exactly_what_the_model_receives():
    at = page("pages/2_Input.py").run()
    no_errors(at)
    figs = charts(at)
    original = image_of(figs["original"]["data"][0])
    assert original.size == Image.open(SAMPLES / "cat.jpg").size
    assert figs["original"]["layout"]["shapes"], "the crop box is drawn"
    seen = np.asarray(image_of(figs["model_view"]["data"][0]).convert("RGB"), np.int16)
    assert seen.shape == (224, 224, 3)
    # exactly the model's input, de-normalised: the tensor the model gets, back in pixels
    handle = interpret.load_model()
    x = handle.preprocess(Image.open(SAMPLES / "cat.jpg").convert("RGB"))[0]
    expected = (handle.preprocessing.unnormalize(x).clamp(0, 1).permute(1, 2, 0).numpy() * 255)
    assert np.abs(seen - expected).mean() < 3  # JPEG
    # the three colour channels: one image, each panel one channel of the model's view
    (strip,) = figs["channels"]["data"]
    panels = np.asarray(image_of(strip).convert("RGB"), np.int16)
    assert panels.shape[0] == 224 and panels.shape[1] > 3 * 224
    red = panels[:, :224]
    assert np.abs(red[..., 0] - expected[..., 0]).max() <= 1 and red[..., 1:].max() == 0
    assert [a["text"] for a in figs["channels"]["layout"]["annotations"]] == ["<b>Red</b>", "<b>Green</b>", "<b>Blue</b>"]
    assert len(figs["histograms"]["data"]) == 3
    assert any("Normalize(mean=[0.4980" in c.value for c in at.code)


# ----------------------------------------------------------------------------------
# Activations


def test_activations_default_layer_grid_and_channel():
    at = page("pages/3_Activations.py").run()
    no_errors(at)
    layer = at.selectbox(key="w_layer")
    assert layer.value == interpret.default_layer(interpret.load_model())
    figs = charts(at)
    grid = figs["channel_grid"]["data"]
    assert [t["type"] for t in grid] == ["image", "heatmap"]
    w, h = image_of(grid[0]).size
    assert w > 200 and h > 200
    # one hover cell per tile, not one number per pixel
    assert values(grid[1]["z"]).size <= 320 + 20
    enlarged = figs["channel_overlay"]["data"]
    assert enlarged[1]["type"] == "heatmap" and values(enlarged[1]["z"]).shape == (7, 7)
    assert figs["layer_means"]["data"][0]["type"] == "scatter"
    assert any(m.label == "Zeros" for m in at.metric)


def test_activations_pick_layer_rank_and_channel():
    at = page("pages/3_Activations.py").run()
    at.selectbox(key="w_layer").select("_blocks.1").run()
    no_errors(at)
    assert any("_blocks.1" in s.value and "24" in s.value for s in at.subheader)
    at.get("button_group")[0].set_value("max").run()  # rank by max
    at.selectbox(key="w_channel").select(3).run()
    no_errors(at)
    figs = charts(at)
    assert values(figs["channel_overlay"]["data"][1]["z"]).shape == (56, 56)  # _blocks.1: 56x56
    assert figs["channel_alone"]["layout"]["title"]["text"].startswith("Channel 3 ")
    assert at.query_params.get("channel") == "3"
    assert at.query_params.get("layer") == "_blocks.1"
    assert at.query_params.get("rank") == "max"


def test_wide_layer_is_paged_and_small():
    at = page("pages/3_Activations.py").run()
    at.selectbox(key="w_layer").select("_conv_head").run()  # 1280 channels
    at.selectbox(key="w_per_page").select(512).run()
    no_errors(at)
    assert len(at.get("pagination")) == 1
    spec = charts(at)["channel_grid"]
    size = len(json.dumps(spec))
    assert size < 600_000, size  # a PNG, not 512 subplots of numbers
    hover = spec["data"][1]["customdata"]
    assert sum(1 for row in hover for cell in row if cell) == 512, "one hover cell per tile shown"


def noise_photo(seed: int) -> bytes:
    """A photo no other test uses, so nothing about it is cached yet."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (180, 240, 3), dtype="uint8")).save(buf, "PNG")
    return buf.getvalue()


def test_activations_maps_come_from_a_forward_with_no_backward(monkeypatch):
    from ui import compute

    at = page("pages/3_Activations.py").run()
    handle = compute._load_named("efficientnet_lite0", True)  # the shared, cached model
    layer = interpret.default_layer(handle)
    module = dict(handle.module.named_modules())[layer]
    outputs, grads = [], []
    real_grad, real_backward = torch.autograd.grad, torch.Tensor.backward
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: (grads.append("grad"), real_grad(*a, **k))[1])
    monkeypatch.setattr(torch.Tensor, "backward",
                        lambda self, *a, **k: (grads.append("backward"), real_backward(self, *a, **k))[1])
    hook = module.register_forward_hook(
        lambda m, i, o: outputs.append((o.requires_grad, o.detach().clone())))
    try:
        at.sidebar.file_uploader(key="w_image_file").upload("noise.png", noise_photo(4711), "image/png")
        at.run()
    finally:
        hook.remove()
    no_errors(at)
    assert at.sidebar.selectbox(key="w_image").value == "upload"
    assert grads == [], "no backward pass for the feature maps"
    assert len(outputs) >= 2, "the predictions' forward and the maps' own forward"
    assert not any(rg for rg, _ in outputs), "no autograd graph was built"
    # what the page shows is that layer's output for the photo
    channel = at.selectbox(key="w_channel").value
    shown = values(charts(at)["channel_overlay"]["data"][1]["z"]).astype(np.float64)
    assert np.allclose(shown, outputs[-1][1][0, channel].double().numpy(), atol=1e-5)


# ----------------------------------------------------------------------------------
# Attributions


@pytest.mark.parametrize("family, method", [
    ("cam", "gradcam"),
    ("cam_free", "eigencam"),
    ("gradient", "saliency"),
    ("activation", "activation"),
])
def test_attributions_each_family(family, method):
    at = page("pages/4_Attributions.py").run()
    at.get("button_group")[0].set_value(family).run()
    radio = at.radio(key="w_method")
    assert radio.value == method
    no_errors(at)
    figs = charts(at)
    overlay = figs["overlay"]["data"]
    assert overlay[0]["type"] == "image"
    assert image_of(overlay[0]).size == (224, 224)
    assert overlay[1]["marker"]["showscale"] is True  # the colour bar
    assert at.query_params.get("method", "gradcam") == method
    labels = [b.label for b in at.download_button]
    assert "Heatmap (PNG)" in labels and "Overlay (PNG)" in labels
    # the trust report covers the map shown (and the comparison's)
    assert "Download report (HTML)" in labels and "Download report (PDF)" in labels


def test_attributions_slow_method_shows_cost_then_runs_with_progress():
    at = page("pages/4_Attributions.py").run()
    at.get("button_group")[0].set_value("path").run()
    at.radio(key="w_method").set_value("occlusion").run()
    no_errors(at)
    assert "overlay" not in charts(at)
    assert any("passes" in i.value for i in at.info), "the cost is shown before running"
    at.number_input(key="w_p_occlusion_window").set_value(112)
    at.number_input(key="w_p_occlusion_stride").set_value(56)
    by_label(at.button, "Run Occlusion").click().run()
    no_errors(at)
    overlay = charts(at)["overlay"]["data"]
    assert image_of(overlay[0]).size == (224, 224)
    assert at.query_params.get("p.window") == "112"


BACKEND = ("explain", "predict", "layer_maps", "layer_summary", "list_layers", "model_input",
           "estimate_cost")


def test_colour_map_and_opacity_redraw_without_rerunning_the_heavy_part(monkeypatch):
    import ui
    from ui import compute

    at = page("pages/4_Attributions.py").run()
    before = image_of(charts(at)["overlay"]["data"][0])
    compared_before = compared(at)["Grad-CAM"]
    setups = []
    real_setup = ui.setup
    monkeypatch.setattr(ui, "setup", lambda *a, **k: (setups.append(1), real_setup(*a, **k))[1])
    calls, overlays = [], []
    for name in BACKEND:
        real = getattr(interpret, name)
        monkeypatch.setattr(interpret, name, lambda *a, _n=name, _f=real, **k: (calls.append(_n), _f(*a, **k))[1])
    real_overlay = interpret.overlay
    monkeypatch.setattr(interpret, "overlay",
                        lambda *a, **k: (overlays.append(k.get("colormap")), real_overlay(*a, **k))[1])
    from ui import trust as trust_ui

    built = []  # the trust panel's figures and measures do not depend on the colours
    for name in ("faithfulness_figure", "agreement_figure", "region_figure"):
        real = getattr(trust_ui, name)
        monkeypatch.setattr(trust_ui, name, lambda *a, _n=name, _f=real, **k: (built.append(_n), _f(*a, **k))[1])
    for name in ("agreement", "faithfulness", "localization"):
        real = getattr(interpret, name)
        monkeypatch.setattr(interpret, name, lambda *a, _n=name, _f=real, **k: (calls.append(_n), _f(*a, **k))[1])
    handle = compute._load_named("efficientnet_lite0", True)  # the shared, cached model
    forwards = []
    hook = handle.module.register_forward_hook(lambda *a: forwards.append(1))
    try:
        at.selectbox(key="w_cmap").select("inferno").run()
        after_cmap = image_of(charts(at)["overlay"]["data"][0])
        compared_after = compared(at)["Grad-CAM"]
        at.slider(key="w_opacity").set_value(0.8).run()
    finally:
        hook.remove()
    no_errors(at)
    assert calls == [] and forwards == [], "no backend call, no forward: the result is reused"
    assert built == [], "the trust curves and the agreement are drawn from the cache"
    assert setups == [], "only the heatmap and the comparison reran, not the page (sidebar, model)"
    assert np.abs(np.asarray(compared_after, np.int16) - np.asarray(compared_before, np.int16)).mean() > 10, \
        "the comparison follows the colour map"
    assert "inferno" in overlays, "the overlay was redrawn in the new colours"
    assert at.query_params.get("cmap") == "inferno" and at.query_params.get("opacity") == "0.8"
    diff = np.abs(np.asarray(after_cmap, np.int16) - np.asarray(before, np.int16)).mean()
    assert diff > 10, "the picture changed with the colour map"
    assert "yellow" in "".join(m.value for m in at.markdown)


def test_the_region_picker_is_built_only_when_asked_for():
    """The photo to draw a box on (a ~100 kB figure) is not built and sent on every run:
    only once the toggle is on."""
    at = page("pages/4_Attributions.py").run()
    assert "overlay" in charts(at) and "w_trust_region" not in charts(at)
    at.toggle(key="w_mark_region").set_value(True).run()
    no_errors(at)
    fig = charts(at)["w_trust_region"]
    assert fig["layout"]["dragmode"] == "select" and fig["data"][0]["type"] == "image"


def test_switching_cam_method_does_not_rerun_the_model():
    from ui import compute

    at = page("pages/4_Attributions.py").run()
    handle = compute._load_named("efficientnet_lite0", True)  # the shared, cached model
    forwards = []
    hook = handle.module.register_forward_hook(lambda *a: forwards.append(1))
    try:
        at.radio(key="w_method").set_value("xgradcam").run()
        at.radio(key="w_method").set_value("hirescam").run()
    finally:
        hook.remove()
    no_errors(at)
    assert "HiResCAM" in charts(at)["overlay"]["layout"]["title"]["text"]
    assert forwards == [], "the captured forward/backward pass is reused"


def test_attributions_contrast_and_comparison():
    at = page("pages/4_Attributions.py", {"img": "cat_and_cup"}).run()
    labels = interpret.load_model().labels
    espresso = labels.index("espresso")
    at.selectbox(key="w_target").select(espresso).run()
    at.selectbox(key="w_contrast").select(labels.index("Egyptian cat")).run()
    no_errors(at)
    figs = charts(at)
    assert "espresso rather than Egyptian cat" in figs["overlay"]["layout"]["title"]["text"]
    row = compared(at)
    assert list(row) == ["Grad-CAM", "Grad-CAM++", "LayerCAM", "Eigen-CAM"]
    assert {im.size for im in row.values()} == {(224, 224)}
    # each panel is that method's overlay, for the class and contrast chosen above
    handle = interpret.load_model()
    photo = interpret.load_image(SAMPLES / "cat_and_cup.jpg")
    layer = interpret.default_layer(handle)
    e = interpret.explain(handle, photo, "gradcam", layer=layer, target=espresso,
                          contrast=labels.index("Egyptian cat"))
    expected = np.asarray(interpret.overlay(photo, e.heatmap, handle, colormap="jet", opacity=0.5), np.int16)
    assert np.abs(np.asarray(row["Grad-CAM"], np.int16) - expected).mean() < 3  # JPEG
    at.multiselect(key="w_compare").unselect("eigencam").unselect("layercam").run()
    assert list(compared(at)) == ["Grad-CAM", "Grad-CAM++"]


@pytest.fixture
def method_for_other_models():
    """A method registered for this test only, that declines every model with a reason
    (as the transformer methods decline CNNs)."""
    from interpret.methods import registry
    from interpret.methods.common import Result

    name = "only_for_other_models"
    registry.register(registry.MethodSpec(
        name=name, label="Other-models-CAM", family="cam", needs_layer=True, params=(),
        speed="instant", paper="https://arxiv.org/abs/0000.00000", uses="layer",
        applies=lambda handle: "it needs a model with attention layers.",
        fn=lambda ctx: Result(attribution=ctx.capture().activation.sum(1, keepdim=True))))
    try:
        yield name
    finally:
        registry._REGISTRY.pop(name, None)


def test_method_the_model_cannot_run_is_explained_and_replaced(method_for_other_models):
    name = method_for_other_models
    handle = interpret.load_model()
    assert name not in [s.name for s in interpret.methods(handle)]
    at = page("pages/4_Attributions.py", {"method": name}).run()
    no_errors(at)
    notes = " ".join(w.value for w in at.warning)
    assert "Other-models-CAM cannot run on" in notes and "attention layers" in notes
    assert name not in at.radio(key="w_method").options
    assert charts(at)["overlay"]["layout"]["title"]["text"].startswith("Grad-CAM: ")
    assert at.query_params.get("method", "gradcam") == "gradcam"
    assert compared(at), "the rest of the page still works"


def test_unexpected_error_is_logged_and_the_page_keeps_working(monkeypatch, caplog):
    from ui import views

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(views, "distribution", broken)
    at = page("pages/1_Outputs.py").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Something went wrong" in errors[0]
    assert "simulated bug" not in errors[0] and "Traceback" not in errors[0]
    assert "top_bars" in charts(at), "the rest of the page is drawn"
    assert any("simulated bug" in (r.exc_text or str(r.exc_info)) for r in caplog.records
               if r.name == "interpret.app")


# ----------------------------------------------------------------------------------
# Links, presentation mode, models


def test_link_reproduces_view():
    q = {"img": "espresso", "method": "layercam", "layer": "_blocks.14", "cmap": "viridis",
         "opacity": "0.7"}
    at = page("pages/4_Attributions.py", q).run()
    no_errors(at)
    assert at.radio(key="w_method").value == "layercam"
    assert at.selectbox(key="w_layer").value == "_blocks.14"
    assert at.selectbox(key="w_cmap").value == "viridis"
    assert at.slider(key="w_opacity").value == pytest.approx(0.7)
    assert "espresso" in charts(at)["overlay"]["layout"]["title"]["text"]
    for k, v in q.items():
        assert at.query_params[k] == v


def test_link_carries_method_settings():
    at = page("pages/4_Attributions.py", {"method": "smoothgrad", "p.samples": "4",
                                          "p.noise": "0.3", "p.bogus": "1"}).run()
    no_errors(at)
    assert at.number_input(key="w_p_smoothgrad_samples").value == 4
    assert at.number_input(key="w_p_smoothgrad_noise").value == pytest.approx(0.3)
    assert any("p.bogus" in i.value for i in at.info)
    assert at.query_params.get("p.samples") == "4" and "p.bogus" not in at.query_params
    assert "SmoothGrad" in charts(at)["overlay"]["layout"]["title"]["text"]


def test_bad_link_values_are_explained_not_fatal():
    at = page("pages/3_Activations.py", {"img": "upload", "layer": "nope", "target": "x",
                                         "method": "magic", "cmap": "rainbow"}).run()
    assert not at.exception
    notes = " ".join(i.value for i in at.info) + " ".join(w.value for w in at.warning)
    assert "uploaded" in notes and "nope" in notes and "target=x" in notes
    assert "method=magic" in notes and "cmap=rainbow" in notes
    assert "method" not in at.query_params and "cmap" not in at.query_params
    assert "channel_grid" in charts(at)


def test_presentation_mode_hides_technical_controls():
    at = page("app.py").run()
    at.switch_page("pages/4_Attributions.py").run()
    assert len(at.selectbox(key="w_layer").label) > 0
    at.sidebar.toggle(key="w_present").set_value(True).run()
    no_errors(at)
    keys = {s.key for s in at.selectbox}
    assert "w_layer" not in keys and "w_contrast" not in keys
    assert any("made the model say" in m.value for m in at.markdown)
    at.switch_page("pages/3_Activations.py").run()
    assert "w_layer" not in {s.key for s in at.selectbox}
    assert any("feature detector" in m.value for m in at.markdown)


def test_torchvision_model_without_weights_shows_note(monkeypatch):
    from ui import compute

    monkeypatch.setattr(compute, "pretrained_available", lambda arch: False)
    at = page("app.py", {"model": "torchvision:resnet18"}).run()
    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "random weights" in warnings
    assert any("resnet18" in c.value and "11.7 M parameters" in c.value for c in at.sidebar.caption)
    at.switch_page("pages/4_Attributions.py").run()
    no_errors(at)
    assert at.selectbox(key="w_layer").value == "layer4"


def test_upload_checkpoint_state_dict(tmp_path):
    handle = interpret.load_model()
    buf = io.BytesIO()
    torch.save(handle.module.state_dict(), buf)
    at = page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    at.sidebar.file_uploader(key="w_model_file").upload("my_lite0.pth", buf.getvalue())
    at.sidebar.selectbox(key="w_model_arch").select("efficientnet_lite0")
    by_label(at.sidebar.button, "Load model").click().run()
    no_errors(at)
    assert any("my_lite0" in c.value for c in at.sidebar.caption)
    assert "tiger cat" in charts(at)["top_bars"]["data"][0]["y"]


def test_untrusted_checkpoint_is_refused_next_to_the_form():
    buf = io.BytesIO()
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), buf)  # a whole pickled module
    at = page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    assert ".pt2" not in at.sidebar.file_uploader(key="w_model_file").allowed_type
    at.sidebar.file_uploader(key="w_model_file").upload("whole.pt", buf.getvalue())
    at.sidebar.selectbox(key="w_model_arch").select("resnet18")
    by_label(at.sidebar.button, "Load model").click().run()
    assert not at.exception
    assert any("Refused" in e.value for e in at.sidebar.error)
    assert "tiger cat" in charts(at)["top_bars"]["data"][0]["y"], "previous model still in use"


def test_uploads_can_be_switched_off_by_the_operator(monkeypatch):
    monkeypatch.setenv("INTERPRET_ALLOW_UPLOADS", "0")
    at = page("app.py").run()
    no_errors(at)
    assert len(at.file_uploader) == 0 and len(at.camera_input) == 0
    assert "w_camera_on" not in {t.key for t in at.toggle}
    assert "upload" not in [o for o in at.sidebar.selectbox(key="w_model_kind").options
                            if "Upload" in o]
    assert not any("Upload" in o for o in at.sidebar.selectbox(key="w_model_kind").options)


def test_result_cache_is_bounded_in_memory():
    from ui.compute import ResultCache

    cache = ResultCache(max_bytes=10_000)
    for i in range(5):
        cache.put(i, np.zeros(1_000, np.float32))  # 4 kB each
    assert cache.bytes <= 10_000
    assert cache.get(0) is None and cache.get(4) is not None
    cache.put("big", np.zeros(100_000, np.float32))  # larger than the bound: kept alone
    assert cache.get("big") is not None and cache.get(4) is None


def test_untrusted_formats_appear_only_when_enabled(monkeypatch):
    monkeypatch.setenv("INTERPRET_ALLOW_UNTRUSTED", "1")
    at = page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    assert ".pt2" in at.sidebar.file_uploader(key="w_model_file").allowed_type


# ----------------------------------------------------------------------------------
# The layer summary under the Activations page (the figure builders: test_figures.py)


def test_layer_summary_is_one_forward_with_exact_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 3)).eval()
    handle = interpret.load_model(net, labels=["a", "b", "c"])
    img = Image.open(SAMPLES / "cat.jpg").convert("RGB")
    interpret.list_layers(handle)  # its dry forward (for output shapes) is cached on the handle
    calls = []
    # the first module: the recording may stop the forward once the last module it
    # observes has run, so the top module's own hook is not a reliable counter
    counter = net[0].register_forward_hook(lambda *a: calls.append(1))
    try:
        rows = {r.name: r for r in interpret.layer_summary(handle, img)}
        interpret.layer_summary(handle, img)  # cached
    finally:
        counter.remove()
    assert len(calls) == 1
    x = handle.preprocess(img)
    with torch.no_grad():
        relu = net[1](net[0](x))
    assert rows["1"].zero_fraction == pytest.approx(float((relu == 0).float().mean()))
    assert rows["1"].mean == pytest.approx(float(relu.mean()), rel=1e-5)
    assert rows["0"].shape == (1, 4, 224, 224) and rows["4"].shape == (1, 3)
    assert all(not m._forward_hooks for m in net.modules()), "no hook left behind"
