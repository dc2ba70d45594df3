"""The dashboard as a team server: the access gate, the model folder, broken settings."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 180


def page(path: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    return at


def titles(at):
    return [t.value for t in at.title]


def test_password_gate_refuses_wrong_admits_right_and_url_cannot_bypass():
    at = page("pages/1_Outputs.py")
    at.secrets["interpret"] = {"password": "sha256:" + hashlib.sha256(b"s3cret team").hexdigest()}
    at.run()
    assert not at.exception
    assert "Outputs" not in titles(at) and len(at.get("plotly_chart")) == 0
    at.text_input(key="w_access_password").input("s3cret")
    at.button[0].click().run()
    assert any("not right" in e.value for e in at.error)
    assert "Outputs" not in titles(at) and len(at.get("plotly_chart")) == 0
    at.text_input(key="w_access_password").input("s3cret team")
    at.button[0].click().run()
    assert not at.exception
    assert "Outputs" in titles(at) and len(at.get("plotly_chart")) > 0
    # the password never lands in the URL
    assert not any("s3cret" in str(v) for v in at.query_params.values())

    # a fresh session with every plausible URL parameter is still at the door
    bypass = page("pages/4_Attributions.py", {"access_ok": "1", "password": "s3cret team",
                                              "present": "1", "auth": "1"})
    bypass.secrets["interpret"] = {"password": "s3cret team"}
    bypass.run()
    assert "Attributions" not in titles(bypass) and len(bypass.get("plotly_chart")) == 0
    assert len(bypass.text_input) == 1


def test_open_server_says_so():
    at = page("app.py").run()
    assert not at.exception
    assert any("open to anyone" in c.value for c in at.sidebar.caption)


def test_oidc_configured_shows_sign_in_not_the_app():
    at = page("pages/1_Outputs.py")
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "id", "client_secret": "secret",
                          "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert "Outputs" not in titles(at) and len(at.get("plotly_chart")) == 0
    assert any(b.label == "Sign in" for b in at.button)


def _team_folder(tmp_path):
    from safetensors.torch import save_file
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3)
    save_file(net.state_dict(), tmp_path / "leaf.safetensors")
    (tmp_path / "labels.txt").write_text("healthy leaf\nleaf rust\napple scab\n")
    (tmp_path / "models.toml").write_text(
        '[[model]]\nname = "Leaf disease"\nfile = "leaf.safetensors"\narch = "resnet18"\n'
        'labels = "labels.txt"\ndescription = "ResNet-18 fine-tuned on leaves"\n')
    return net


def test_a_model_from_the_model_folder_appears_in_the_picker_and_works(tmp_path, monkeypatch):
    _team_folder(tmp_path)
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(tmp_path))
    at = page("pages/1_Outputs.py").run()
    kinds = at.sidebar.selectbox(key="w_model_kind")
    assert "team" in kinds.options or any("Team" in o for o in kinds.options)
    kinds.select("team").run()
    assert not at.exception
    assert at.sidebar.selectbox(key="w_team_model").value == "Leaf disease"
    bars = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    ys = [y for f in bars for d in f["data"] for y in (d.get("y") or []) if isinstance(y, str)]
    assert {"healthy leaf", "leaf rust", "apple scab"} <= set(ys)
    assert at.query_params.get("model") in ("team:Leaf disease", ["team:Leaf disease"])


def test_broken_settings_stop_the_app_with_the_reason(tmp_path, monkeypatch):
    bad = tmp_path / "interpret.toml"
    bad.write_text("allow_uploads = maybe\n")
    monkeypatch.setenv("INTERPRET_SETTINGS", str(bad))
    at = page("app.py").run()
    assert not at.exception
    assert any("settings are invalid" in e.value for e in at.error)
    assert len(at.file_uploader) == 0 and len(at.get("plotly_chart")) == 0


def test_warm_start_builds_what_the_first_visitor_sees(monkeypatch):
    """After the server's warm start, the first visitor's Home and Attributions run no
    model and build no figure: everything they show was made at startup."""
    import interpret
    from interpret import figures
    from ui import compute, warmup

    compute.results.clear()  # as after a server start: nothing computed yet
    times = warmup.warm_up()
    assert set(times) == {"model", "predictions", "attributions", "activations and input"}
    calls = []
    for name in ("explain", "predict", "layer_maps", "model_input", "overlay"):
        real = getattr(interpret, name)
        monkeypatch.setattr(interpret, name, lambda *a, _n=name, _f=real, **k: (calls.append(_n), _f(*a, **k))[1])
    for name in ("heatmap_overlay_figure", "predictions_bar", "distribution_figure", "image_figure",
                 "jpeg_data_uri", "channel_overlay_figure"):
        real = getattr(figures, name)
        monkeypatch.setattr(figures, name, lambda *a, _n=name, _f=real, **k: (calls.append(_n), _f(*a, **k))[1])
    home = page("app.py").run()
    assert not home.exception and not home.error
    assert any("The model says" in s.value for s in home.subheader)
    at = page("pages/4_Attributions.py").run()
    assert not at.exception and not at.error
    assert [c for c in at.get("plotly_chart") if c.key == "overlay"], "the heatmap is drawn"
    assert calls == [], f"computed on the first visit: {calls}"
