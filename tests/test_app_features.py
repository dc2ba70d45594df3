"""The Features page with Streamlit's AppTest (no browser).

Optimized images are made small (48 px, 8 steps, through the page's link parameters
or session state) so that each test runs in seconds; what is checked is what a
person would see: the figures the page sent, decoded.
"""

from __future__ import annotations

import io
import zipfile
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("streamlit.testing.v1")

import interpret  # noqa: E402
from interpret import figures  # noqa: E402
from test_app import SAMPLES, by_label, charts, image_of, no_errors, page, values  # noqa: E402

FEATURES = "pages/5_Features.py"
SMALL = {"fsize": "48", "fsteps": "8"}
SMALL_STATE = {"size": 48, "steps": 8, "seed": 0}
N_SAMPLES = len(list(SAMPLES.glob("*.jpg")))


def features(query: dict | None = None):
    return page(FEATURES, {**SMALL, **(query or {})})


def sample_predictions() -> dict:
    """Top-1 label of each sample photo, by its title (as the page names them)."""
    from ui.samples import samples

    handle = interpret.load_model()
    return {s.title: interpret.predict(handle, interpret.load_image(s.path), top_k=1)[0].label
            for s in samples()}


def scatter_points(fig: dict) -> list:
    """(name, trace name, colour) of every image point of the embedding figure."""
    out = []
    for t in fig["data"]:
        if t.get("hoverinfo") == "skip":  # the ring around the selected point
            continue
        for cd in t["customdata"]:
            out.append((cd[1], t["name"], t["marker"]["color"]))
    return out


def source(at):
    """The "Photos to search" control."""
    return [g for g in at.get("button_group") if g.key == "w_fset_source"][0]


def zip_of(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def jpeg(name: str) -> bytes:
    buf = io.BytesIO()
    Image.open(SAMPLES / name).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------


def test_first_visit_shows_image_patches_photo_and_embedding(monkeypatch):
    at = features().run()
    no_errors(at)
    figs = charts(at)
    # the optimized image, at the size the link asked for
    assert image_of(figs["fv_image"]["data"][0]).size == (48, 48)
    # the default channel is the one most active on the current photo (the cat)
    layer = interpret.default_layer(interpret.load_model())
    assert at.selectbox(key="w_layer").value == layer
    channel = at.selectbox(key="w_channel").value
    assert any(f"Channel {channel} of {layer}" in s.value for s in at.subheader)
    # the channel's map over the current photo
    assert figs["fv_photo"]["data"][1]["type"] == "heatmap"
    assert values(figs["fv_photo"]["data"][1]["z"]).shape == (7, 7)
    # dataset examples: every sample photo, one patch each, strongest first
    patches = figs["top_patches"]["data"]
    assert [t["type"] for t in patches] == ["image"] * N_SAMPLES
    sides = {image_of(t).size for t in patches}
    assert len(sides) == 1 and next(iter(sides))[0] == next(iter(sides))[1]
    top = interpret.top_activating(interpret.load_model(), [interpret.load_image(p) for p in sorted(SAMPLES.glob("*.jpg"))],
                                   layer, channel, k=1)[0]
    assert f"{top.score:.3g}" in figs["top_patches"]["layout"]["annotations"][0]["text"]
    # the embedding: one point per photo, each coloured by its predicted class
    points = scatter_points(figs["embedding"])
    assert len(points) == N_SAMPLES
    expected = sample_predictions()
    assert {name: label for name, label, _ in points} == expected
    palette = figures.class_colors([expected[n] for n, _, _ in points])
    assert all(color == palette[label] for _, label, color in points)
    assert len({c for _, _, c in points}) == len(set(expected.values()))
    # the link keeps the page's settings, the view keeps layer and channel
    assert at.query_params.get("fsize") == "48" and at.query_params.get("fsteps") == "8"

    # revisiting is instant: nothing is computed again
    def boom(*args, **kwargs):
        raise AssertionError("recomputed")

    for name in ("visualize_channel", "top_activating", "embed"):
        monkeypatch.setattr(interpret, name, boom)
    at.run()
    no_errors(at)
    assert image_of(charts(at)["fv_image"]["data"][0]).size == (48, 48)


def test_settings_form_and_channel_in_the_url():
    at = features({"layer": "_blocks.10", "channel": "7"}).run()
    no_errors(at)
    assert at.selectbox(key="w_layer").value == "_blocks.10"
    assert at.selectbox(key="w_channel").value == 7
    at.number_input(key="w_fv_size").set_value(64)
    at.number_input(key="w_fv_steps").set_value(4)
    by_label(at.button, "Apply").click().run()
    no_errors(at)
    assert image_of(charts(at)["fv_image"]["data"][0]).size == (64, 64)
    assert at.query_params.get("layer") == "_blocks.10" and at.query_params.get("channel") == "7"
    assert at.query_params.get("fsize") == "64" and at.query_params.get("fsteps") == "4"
    at.selectbox(key="w_channel").select(3).run()
    no_errors(at)
    assert at.query_params.get("channel") == "3"


def test_bad_link_values_are_explained():
    at = page(FEATURES, {"fsize": "9999", "fsteps": "lots", "layer": "_blocks.10",
                         "channel": "5000"})
    at.session_state["fv_settings"] = dict(SMALL_STATE)
    at.run()
    assert not at.exception
    notes = " ".join(i.value for i in at.info)
    assert "fsize=9999" in notes and "fsteps=lots" in notes
    assert any("Channel 5000 does not exist" in w.value for w in at.warning)
    assert image_of(charts(at)["fv_image"]["data"][0]).size == (48, 48)


def test_one_click_from_activations():
    at = page("app.py")
    at.session_state["fv_settings"] = dict(SMALL_STATE)
    at.run()
    at.switch_page("pages/3_Activations.py").run()
    at.selectbox(key="w_layer").select("_blocks.10").run()
    at.selectbox(key="w_channel").select(12).run()
    by_label(at.button, "See what this channel looks for →").click().run()
    no_errors(at)
    assert at.selectbox(key="w_layer").value == "_blocks.10"
    assert at.selectbox(key="w_channel").value == 12
    assert any("Channel 12 of _blocks.10" in s.value for s in at.subheader)
    assert "fv_image" in charts(at)


def test_gallery_is_generated_on_demand_and_paged():
    at = features({"layer": "_blocks.1"}).run()  # 24 channels: 3 pages of 8
    no_errors(at)
    channel = at.selectbox(key="w_channel").value
    # the tile of the channel shown above gets its image as soon as that is made
    captions = [i.caption for im in at.get("image") for i in im.proto.imgs]
    assert f"channel {channel}" in captions
    at.run()
    opened = [b.key for b in at.button if b.key and b.key.startswith("fv_open_")]
    assert opened == [f"fv_open_{channel}"], "only the channel shown above exists yet"
    assert len(at.get("pagination")) == 1
    [b for b in at.button if b.label.startswith("Generate these 7")][0].click().run()
    no_errors(at)
    opened = [b.key for b in at.button if b.key and b.key.startswith("fv_open_")]
    assert len(opened) == 8
    # the next page on one click
    next_button = [b for b in at.button if b.label.startswith("Generate the next 8")]
    assert next_button
    next_button[0].click().run()
    no_errors(at)
    opened2 = [b.key for b in at.button if b.key and b.key.startswith("fv_open_")]
    assert len(opened2) == 8 and not set(opened2) & set(opened)
    # a tile opens its channel above
    pick = int(opened2[0].rsplit("_", 1)[1])
    at.button(key=opened2[0]).click().run()
    no_errors(at)
    assert at.selectbox(key="w_channel").value == pick
    assert at.query_params.get("channel") == str(pick)


def test_bad_zip_upload_is_explained_next_to_the_uploader():
    at = features().run()
    source(at).set_value("upload").run()
    no_errors(at)
    at.file_uploader(key="w_fset_files").upload("photos.zip", b"PK\x03\x04 this is not a zip", "application/zip")
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "not a readable zip archive" in errors[0], errors
    assert "Traceback" not in errors[0]
    assert "fv_image" in charts(at), "the rest of the page still works"


def test_zip_of_photos_is_searched_and_embedded():
    data = zip_of({"set/espresso.jpg": jpeg("espresso.jpg"), "set/rocket.jpg": jpeg("rocket.jpg"),
                   "set/cat.jpg": jpeg("cat.jpg"), "set/notes.txt": b"hello",
                   "__MACOSX/._cat.jpg": b"junk"})
    at = features().run()
    source(at).set_value("upload").run()
    at.file_uploader(key="w_fset_files").upload("photos.zip", data, "application/zip")
    at.run()
    no_errors(at)
    assert any("Using **3 images**" in c.value for c in at.caption)
    figs = charts(at)
    assert len(figs["top_patches"]["data"]) == 3
    points = scatter_points(figs["embedding"])
    assert sorted(n for n, _, _ in points) == ["set/cat.jpg", "set/espresso.jpg", "set/rocket.jpg"]
    assert dict((n, lab) for n, lab, _ in points)["set/espresso.jpg"] == "espresso"


def test_presentation_mode_plain_words_no_technical_controls():
    at = features({"present": "1"}).run()
    no_errors(at)
    keys = {s.key for s in at.selectbox}
    assert "w_layer" not in keys and "w_channel" in keys
    assert not [n for n in at.number_input if n.key == "w_fv_size"]
    text = " ".join(m.value for m in at.markdown)
    assert "pattern detector" in text and "looks for" in text
    assert "fv_image" in charts(at) and "embedding" in charts(at)


def test_export_to_tensorboard_gives_a_zip_and_the_command(monkeypatch):
    pytest.importorskip("tensorboard")
    at = features().run()
    by_label(at.button, "Export").click().run()
    no_errors(at)
    data = at.session_state["fv_export"]["zip"]
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "interpret-tensorboard/projector_config.pbtxt" in names
    assert any("events.out.tfevents" in n for n in names)
    assert any("tensorboard --logdir interpret-tensorboard" in c.value for c in at.code)

    from ui import features as fx

    monkeypatch.setattr(fx, "tensorboard_available", lambda: False)
    at.run()
    assert any("TensorBoard is not installed" in w.value for w in at.warning)
    by_label(at.button, "Export").click().run()
    no_errors(at)
    names = zipfile.ZipFile(io.BytesIO(at.session_state["fv_export"]["zip"])).namelist()
    assert "interpret-tensorboard/projector_config.pbtxt" in names
    assert not any("events.out.tfevents" in n for n in names)


def test_server_folder_is_offered_only_when_configured(monkeypatch, tmp_path):
    at = features().run()
    assert list(source(at).options) == [f"Samples ({N_SAMPLES})", "Upload"]
    for name in ("espresso.jpg", "rocket.jpg"):
        (tmp_path / name).write_bytes(jpeg(name))
    (tmp_path / "readme.txt").write_text("not a photo")
    monkeypatch.setenv("INTERPRET_IMAGE_FOLDER", str(tmp_path))
    at = features().run()
    assert list(source(at).options)[-1] == "Server folder"
    source(at).set_value("folder").run()
    no_errors(at)
    figs = charts(at)
    assert len(figs["top_patches"]["data"]) == 2
    assert sorted(n for n, _, _ in scatter_points(figs["embedding"])) == ["espresso.jpg", "rocket.jpg"]


def test_slow_work_goes_through_the_compute_gate_and_only_once(monkeypatch):
    from interpret.gate import ComputeGate
    from ui import compute

    class CountingGate(ComputeGate):
        calls = 0

        @contextmanager
        def slot(self, *args, **kwargs):
            CountingGate.calls += 1
            with super().slot(*args, **kwargs):
                yield

    gate = CountingGate(1)
    monkeypatch.setattr(compute, "heavy_gate", lambda: gate)
    at = features({"fseed": "4242"}).run()  # a seed no other test uses: not cached yet
    no_errors(at)
    assert CountingGate.calls >= 1 and gate.running == 0
    before = CountingGate.calls
    at.run()
    no_errors(at)
    assert CountingGate.calls == before, "a cached result must not queue for the gate"


def test_time_limit_stops_an_optimization_in_place(monkeypatch):
    monkeypatch.setenv("INTERPRET_HEAVY_TIMEOUT_S", "0")
    at = features({"fseed": "777"}).run()
    assert not at.exception
    assert any("time limit" in i.value for i in at.info), [i.value for i in at.info]
    figs = charts(at)
    assert "fv_image" not in figs and "fv_photo" in figs, "the rest of the page is drawn"


def test_large_sets_are_scanned_only_on_request(monkeypatch):
    from ui import features as fx

    monkeypatch.setattr(fx, "AUTO_SCAN_IMAGES", 2)
    rng = np.random.default_rng(11)
    files = {}
    for i in range(3):  # noise images no other test uses: nothing cached for them yet
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype="uint8")).save(buf, "PNG")
        files[f"noise{i}.png"] = buf.getvalue()
    at = features().run()
    source(at).set_value("upload").run()
    at.file_uploader(key="w_fset_files").set_value(
        [(n, d, "image/png") for n, d in files.items()]).run()
    no_errors(at)
    figs = charts(at)
    assert "top_patches" not in figs and "embedding" not in figs
    by_label(at.button, "Search the 3 photos").click().run()
    no_errors(at)
    assert len(charts(at)["top_patches"]["data"]) == 3
    by_label(at.button, "Place the 3 photos (one pass of the model over them)").click().run()
    no_errors(at)
    assert len(scatter_points(charts(at)["embedding"])) == 3
    # another channel of the same layer needs no click: the set was scanned
    current = at.selectbox(key="w_channel").value
    at.selectbox(key="w_channel").select(0 if current != 0 else 1).run()
    no_errors(at)
    assert "top_patches" in charts(at)


def test_a_broken_server_folder_is_explained_without_its_path(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPRET_IMAGE_FOLDER", str(tmp_path / "missing"))
    at = features().run()
    source(at).set_value("folder").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "image folder cannot be used" in errors[0]
    assert str(tmp_path) not in errors[0]
    assert "fv_image" in charts(at) and "top_patches" not in charts(at)
