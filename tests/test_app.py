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
from interpret.figures import decode_data_uri  # noqa: E402

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
    assert image_of(figs["model_view"]["data"][0]).size == (224, 224)
    assert [t["type"] for t in figs["channels"]["data"]] == ["image"] * 3
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


def test_wide_layer_is_paged_and_fast():
    import time

    at = page("pages/3_Activations.py").run()
    at.selectbox(key="w_layer").select("_conv_head").run()  # 1280 channels
    at.selectbox(key="w_per_page").select(512)
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    no_errors(at)
    assert len(at.get("pagination")) == 1
    spec = charts(at)["channel_grid"]
    size = len(json.dumps(spec))
    assert size < 600_000, size  # a PNG, not 512 subplots of numbers
    assert elapsed < 10, elapsed


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
    assert len(at.download_button) == 2


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


def test_attributions_changing_colormap_reuses_the_result(monkeypatch):
    at = page("pages/4_Attributions.py").run()
    calls = []
    real = interpret.explain

    def counting(*a, **k):
        calls.append(a[2] if len(a) > 2 else k.get("method"))
        return real(*a, **k)

    monkeypatch.setattr(interpret, "explain", counting)
    at.selectbox(key="w_cmap").select("inferno").run()
    at.slider(key="w_opacity").set_value(0.8).run()
    no_errors(at)
    assert calls == []
    assert "yellow" in "".join(m.value for m in at.markdown)


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
    comp = figs["comparison"]["data"]
    assert [t["type"] for t in comp] == ["image"] * 4
    at.multiselect(key="w_compare").unselect("eigencam").unselect("layercam").run()
    assert len(charts(at)["comparison"]["data"]) == 2


def test_method_error_is_shown_in_place():
    # DeepLIFT refuses EfficientNet-Lite0 (one ReLU6 module used twice): an InputError
    at = page("pages/4_Attributions.py", {"method": "deeplift"}).run()
    assert not at.exception
    assert any("DeepLIFT" in e.value for e in at.error)
    assert charts(at).get("comparison"), "the rest of the page still works"


def test_unexpected_error_is_logged_and_the_page_keeps_working(monkeypatch, caplog):
    from interpret import figures

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(figures, "distribution_figure", broken)
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
# The pieces under the pages: figure builders and the layer summary


def test_tile_grid_layout_and_hover_cells_line_up():
    from interpret import figures

    maps = np.stack([np.full((3, 4), float(i)) for i in range(5)])
    maps[:, 0, 0] = -1.0  # give every map a range
    img, grid = figures.tile_grid(maps, order=[4, 0, 2], cols=2, min_tile=6, gap=2)
    assert grid.rows == 2 and grid.cols == 2 and grid.channels == (4, 0, 2)
    assert grid.scale == 2 and grid.tile == (6, 8)
    assert img.shape == (2 * 6 + 2, 2 * 8 + 2, 3)
    assert (img[:, 8:10] == 255).all(), "white gap between the columns"
    fig = figures.channel_grid_figure(maps, order=[4, 0, 2], cols=2)
    hover = fig.data[1]
    th, tw = figures.tile_grid(maps, order=[4, 0, 2], cols=2)[1].tile
    assert hover.dx == tw + 2 and hover.dy == th + 2
    assert "channel <b>4</b>" in hover.customdata[0][0] and hover.customdata[1][1] == ""


def test_large_maps_are_averaged_down_to_keep_the_png_small():
    from interpret import figures

    maps = np.random.default_rng(0).random((256, 56, 56), dtype=np.float32)
    img, grid = figures.tile_grid(maps, max_pixels=300_000)
    assert grid.scale < 0 and grid.tile == (28, 28)
    assert img.shape[0] * img.shape[1] < 600_000


def test_histogram_payload_does_not_grow_with_the_data():
    from interpret import figures

    rng = np.random.default_rng(0)
    small = len(figures.histogram_figure(rng.normal(size=1_000), bins=50).to_json())
    large = len(figures.histogram_figure(rng.normal(size=1_000_000), bins=50).to_json())
    assert large < 1.5 * small


def test_prediction_summary_numbers():
    from interpret import figures

    uniform = figures.prediction_summary(np.full(1000, 1 / 1000))
    assert uniform["entropy"] == pytest.approx(np.log2(1000))
    assert uniform["effective_classes"] == pytest.approx(1000)
    certain = figures.prediction_summary([1.0] + [0.0] * 9)
    assert certain["entropy"] == 0 and certain["confidence"] == 1 and certain["head_mass"] == 1


def test_layer_summary_is_one_forward_with_exact_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 3)).eval()
    handle = interpret.load_model(net, labels=["a", "b", "c"])
    img = Image.open(SAMPLES / "cat.jpg").convert("RGB")
    interpret.list_layers(handle)  # its dry forward (for output shapes) is cached on the handle
    calls = []
    counter = net.register_forward_hook(lambda *a: calls.append(1))
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
