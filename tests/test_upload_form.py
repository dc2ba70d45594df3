"""The sidebar's upload form (issue 17): it shows what is loaded after a page change,
its uploader takes every model file this server reads whatever the Library says (and
routes it by content), the sentence under it is true of the packages installed, and an
uploaded model's preprocessing can be set where the loader's note says."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

pytest.importorskip("streamlit.testing.v1")

import interpret  # noqa: E402
import tiny_models as tm  # noqa: E402
from test_app import by_label, charts, no_errors, page  # noqa: E402

from ui import upload  # noqa: E402


def _timm_state_dict() -> bytes:
    net = tm.timm_model("mobilenetv3_small_050")
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def _onnx_bytes(tmp_path) -> bytes:
    return tm.export_onnx(tm.small_cnn(), tmp_path / "cnn.onnx").read_bytes()


# ----------------------------------------------------------------------------------
# The form after a page change


def test_upload_form_shows_the_loaded_timm_model_after_a_page_change():
    """Defect: after loading a timm checkpoint on Home, Outputs showed Library
    "torchvision", Architecture "resnet50" and no file, while the caption named the
    loaded model (Streamlit drops the state of widgets a page does not draw)."""
    at = page("app.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    at.sidebar.selectbox(key="w_model_library").select("timm").run()
    at.sidebar.file_uploader(key="w_model_file").upload("tiny_mnv3.pth", _timm_state_dict())
    at.sidebar.selectbox(key="w_model_timm_arch").select("mobilenetv3_small_050")
    by_label(at.sidebar.button, "Load model").click().run()
    no_errors(at)
    assert any("tiny_mnv3" in c.value and "5 classes" in c.value for c in at.sidebar.caption)

    at.switch_page("pages/1_Outputs.py").run()
    no_errors(at)
    assert at.sidebar.selectbox(key="w_model_kind").value == "upload"
    assert at.sidebar.selectbox(key="w_model_library").value == "timm"
    assert at.sidebar.selectbox(key="w_model_timm_arch").value == "mobilenetv3_small_050"
    loaded = [c.value for c in at.sidebar.caption if "Loaded" in c.value]
    assert loaded and "tiny_mnv3.pth" in loaded[0] and "mobilenetv3_small_050" in loaded[0], \
        [c.value for c in at.sidebar.caption]
    assert len(charts(at)["top_bars"]["data"][0]["y"]) == 5  # still the uploaded 5-class model


# ----------------------------------------------------------------------------------
# Every file type, routed by content


def test_onnx_file_is_accepted_and_loaded_while_the_library_says_torchvision(tmp_path):
    """Defect: dropping an .onnx file while the Library said torchvision showed only
    Streamlit's "files are not allowed"."""
    at = page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    assert at.sidebar.selectbox(key="w_model_library").value == "torchvision"
    types = at.sidebar.file_uploader(key="w_model_file").allowed_type
    assert {".onnx", ".zip", ".pth", ".safetensors"} <= set(types)
    at.sidebar.file_uploader(key="w_model_file").upload("cnn.onnx", _onnx_bytes(tmp_path))
    by_label(at.sidebar.button, "Load model").click().run()
    no_errors(at)
    assert any("cnn" in c.value and "64×64" in c.value for c in at.sidebar.caption)
    assert len(charts(at)["top_bars"]["data"][0]["y"]) == 5


@pytest.mark.parametrize("kind,library,expected", [
    ("onnx", "torchvision", "onnx"), ("onnx-zip", "timm", "onnx"), ("hf-zip", "onnx", "hf"),
    ("torch", "torchvision", "torchvision"), ("safetensors", "timm", "timm"),
])
def test_files_are_routed_by_their_content(kind, library, expected):
    assert upload.route(kind, library, list(upload.LIBRARIES)) == expected


def test_a_state_dict_under_the_onnx_library_says_what_to_choose():
    with pytest.raises(interpret.InputError, match="choose torchvision or timm under Library"):
        upload.route("torch", "onnx", list(upload.LIBRARIES))
    with pytest.raises(interpret.InputError, match="not a model this server can read"):
        upload.route("unknown", "torchvision", list(upload.LIBRARIES))


def test_an_onnx_file_without_the_converter_names_the_pip_command():
    with pytest.raises(interpret.InputError, match="pip install onnx onnx2torch"):
        upload.route("onnx", "torchvision", ["torchvision", "timm", "hf"])


# ----------------------------------------------------------------------------------
# The caption is true of the server


def test_uploader_caption_equals_what_is_importable():
    """Defect: the caption said "(state dict, safetensors, ONNX)" whatever was installed."""
    import importlib.util

    at = page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    no_errors(at)
    importable = [lib for lib, mods in (("torchvision", ()), ("timm", ("timm",)), ("hf", ("transformers",)),
                                         ("onnx", ("onnx", "onnx2torch")))
                  if all(importlib.util.find_spec(m) is not None for m in mods)]
    assert upload.available_libraries() == importable
    want = upload.upload_caption(importable, False)
    assert want in [c.value for c in at.sidebar.caption]
    assert at.sidebar.selectbox(key="w_model_library").options == [upload.LIBRARIES[l] for l in importable]


def test_missing_onnx_support_is_said_with_its_pip_command(monkeypatch):
    monkeypatch.setattr(upload, "library_available", lambda lib: lib != "onnx")
    at = page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    no_errors(at)
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "ONNX graphs (`pip install onnx onnx2torch`" in captions
    assert "reads state dicts and safetensors (torchvision, timm) and zipped Hugging Face folders." in captions
    assert ".onnx" not in at.sidebar.file_uploader(key="w_model_file").allowed_type
    assert "ONNX graph" not in at.sidebar.selectbox(key="w_model_library").options
    home = upload.accepted_sources_markdown(interpret.settings.Settings())
    assert "not installed on this server: `pip install onnx onnx2torch`" in home


@pytest.mark.parametrize("available,untrusted,says,not_says", [
    (["torchvision", "timm", "hf", "onnx"], False,
     "This server reads state dicts and safetensors (torchvision, timm), ONNX graphs and zipped "
     "Hugging Face folders. Files that would run code when loaded are refused.", "Not installed"),
    (["torchvision"], False, "This server reads state dicts and safetensors (torchvision). Files that "
     "would run code when loaded are refused. Not installed here: timm state dicts (`pip install timm`",
     "ONNX graphs and"),
    (["torchvision", "onnx"], True, "reads state dicts and safetensors (torchvision) and ONNX graphs. "
     "It also accepts formats that run code", "refused"),
])
def test_upload_caption_table(available, untrusted, says, not_says):
    s = upload.upload_caption(available, untrusted)
    assert says in s and not_says not in s


# ----------------------------------------------------------------------------------
# Editable preprocessing (the ONNX note points to it)


@pytest.mark.parametrize("resize,crop,mean,std,error", [
    (0, 224, "0.5 0.5", "0.5, 0.5, 0.5", "three numbers"),
    (0, 224, "0.5, 0.5, x", "0.5, 0.5, 0.5", "three numbers"),
    (0, 224, "0.5, 0.5, 1.5", "0.5, 0.5, 0.5", "between 0 and 1"),
    (0, 224, "0.5, 0.5, 0.5", "0.5, 0, 0.5", "more than 0"),
    (100, 224, "0.5, 0.5, 0.5", "0.5, 0.5, 0.5", "smaller than the crop"),
    (0, 100000, "0.5, 0.5, 0.5", "0.5, 0.5, 0.5", "max_input_pixels"),
])
def test_bad_preprocessing_gets_a_specific_message(resize, crop, mean, std, error):
    with pytest.raises(interpret.InputError, match=error):
        upload.edited_preprocessing(resize, crop, mean, std, "bilinear")


def test_onnx_preprocessing_is_set_in_the_preprocessing_panel_the_note_names(tmp_path):
    """Defect: the ONNX note said "give mean=, std=, resize=, crop=", options the
    read-only Preprocessing panel did not have."""
    at = page("app.py").run()
    at.switch_page("pages/1_Outputs.py").run()
    at.sidebar.selectbox(key="w_model_kind").select("upload").run()
    at.sidebar.file_uploader(key="w_model_file").upload("cnn.onnx", _onnx_bytes(tmp_path))
    by_label(at.sidebar.button, "Load model").click().run()
    no_errors(at)
    note = " ".join(w.value for w in at.sidebar.warning)
    assert "set its own under Preprocessing" in note
    assert "Preprocessing" in [e.label for e in at.sidebar.expander]
    before = at.session_state["uploaded_model"]
    probs_before = charts(at)["top_bars"]["data"][0]["x"]
    k = at.session_state["upload_token"]
    at.sidebar.number_input(key=f"w_pre_resize_{k}").set_value(0)
    at.sidebar.number_input(key=f"w_pre_crop_{k}").set_value(48)
    at.sidebar.text_input(key=f"w_pre_mean_{k}").input("0.5, 0.5, 0.5")
    at.sidebar.text_input(key=f"w_pre_std_{k}").input("0.25, 0.25, 0.25")
    by_label(at.sidebar.button, "Apply preprocessing").click().run()
    no_errors(at)
    after = at.session_state["uploaded_model"]
    pre = after.preprocessing
    assert pre.resize == (48, 48) and pre.crop is None and pre.input_size == (48, 48)
    assert pre.mean == (0.5, 0.5, 0.5) and pre.std == (0.25, 0.25, 0.25)
    assert after.module is before.module                       # the same model, never reloaded
    assert after.fingerprint() != before.fingerprint()         # cached figures are keyed apart
    assert not any("assumed" in n for n in after.notes)
    assert not any("set its own under Preprocessing" in w.value for w in at.sidebar.warning)
    assert any("48×48" in c.value for c in at.sidebar.caption)
    # the numbers the page shows are the model's on the new input
    from ui.samples import sample
    from ui.state import DEFAULT_SAMPLE

    probs_after = np.asarray(charts(at)["top_bars"]["data"][0]["x"], float)
    assert not np.allclose(np.asarray(probs_before, float), probs_after)
    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    want = sorted((p.probability for p in interpret.predict(after, photo, top_k=5)), reverse=True)
    got = sorted(probs_after, reverse=True)
    scale = 100.0 if max(got) > 1.5 else 1.0  # the chart may draw percentages
    np.testing.assert_allclose(np.asarray(got) / scale, want, atol=1e-3)
    # and they survive a page change
    at.switch_page("pages/2_Input.py").run()
    no_errors(at)
    assert at.session_state["uploaded_model"].preprocessing == pre


@pytest.mark.parametrize("resize,crop,want", [
    (256, 224, dict(resize=256, crop=224, input_size=(224, 224))),
    (0, 224, dict(resize=(224, 224), crop=None, input_size=(224, 224))),
    (0, (32, 48), dict(resize=(32, 48), crop=None, input_size=(32, 48))),   # a fixed non-square graph
    (64, (32, 48), dict(resize=64, crop=(32, 48), input_size=(32, 48))),
])
def test_edited_preprocessing_sizes(resize, crop, want):
    pre = upload.edited_preprocessing(resize, crop, "0.5, 0.4, 0.3", "0.2 0.2 0.2", "bicubic")
    assert {k: getattr(pre, k) for k in want} == want
    assert pre.mean == (0.5, 0.4, 0.3) and pre.std == (0.2, 0.2, 0.2) and pre.interpolation == "bicubic"
