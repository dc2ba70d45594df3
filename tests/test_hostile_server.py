"""Issue 18, the server's side: one hostile visitor can neither exhaust a shared server
nor pass its door.  The compute gate's time limit ends the work (not only the wait),
everything a visitor starts goes through the gate, the result cache counts what it
really holds, and the shared password is a perimeter: no upload before sign-in, no
open metrics, wrong passwords slowed down, a session's uploads dropped when it ends."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret.access import PasswordThrottle, SignedInSessions, throttle_message
from interpret.gate import ComputeGate, Deadline, TimeLimit, limit_message

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------
# The time limit ends the work


class Sleepy(nn.Module):
    """Counts its calls; each call takes ``seconds`` of sleep (or advances a fake clock)."""

    def __init__(self, counter: list, seconds: float = 0.0, clock: list | None = None):
        super().__init__()
        self.counter, self.seconds, self.clock = counter, seconds, clock

    def forward(self, x):
        self.counter.append(1)
        if self.clock is not None:
            self.clock[0] += 1.0
        elif self.seconds:
            time.sleep(self.seconds)
        return x


class SlowNet(nn.Module):
    """A conv (the CAM layer), five slow blocks, a classifier of 4 classes."""

    def __init__(self, counter: list, seconds: float = 0.0, clock: list | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.Sequential(*[Sleepy(counter, seconds, clock) for _ in range(5)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.pool(self.blocks(torch.relu(self.conv(x)))).flatten(1))


def _no_hooks(module: nn.Module) -> bool:
    return all(not m._forward_pre_hooks and not m._forward_hooks and not m._backward_hooks
               for m in module.modules())


def test_time_limit_stops_inside_a_forward_that_reports_no_progress():
    """With a fake clock that each block advances by 1 s and a 2.5 s limit, exactly three
    blocks run (the fourth is refused before it starts: t = 3 > 2.5), the job ends with
    the limit's sentence, the model keeps no hook, and the next request runs to the end."""
    counter, clock = [], [0.0]
    net = SlowNet(counter, clock=clock).eval()
    gate = ComputeGate(slots=1)
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(TimeLimit) as exc:
        gate.run(lambda _p: net(x), 2.5, module=net, clock=lambda: clock[0])
    assert len(counter) == 3
    assert str(exc.value) == limit_message(2.5)
    assert _no_hooks(net) and gate.running == 0
    counter.clear()
    out = gate.run(lambda _p: net(x), 100.0, module=net, clock=lambda: clock[0])
    assert len(counter) == 5 and out.shape == (1, 4)
    assert _no_hooks(net)


def test_time_limit_hooks_act_only_in_the_thread_that_runs_the_job():
    """Another thread's forward of the same shared model is not stopped by a job's
    deadline (the hooks are thread-filtered)."""
    counter, clock = [], [0.0]
    net = SlowNet(counter, clock=clock).eval()
    gate = ComputeGate(slots=1)
    x = torch.randn(1, 3, 8, 8)
    other = {}

    def job(_p):
        clock[0] = 10.0  # past the deadline from here on, for this thread's forwards
        t = threading.Thread(target=lambda: other.setdefault("out", net(x)))
        t.start()
        t.join()
        return net(x)

    with pytest.raises(TimeLimit):
        gate.run(job, 1.0, module=net, clock=lambda: clock[0])
    assert other["out"].shape == (1, 4)  # the other thread's forward ran all five blocks
    assert _no_hooks(net)


def test_a_deep_copy_made_during_a_job_is_not_stopped_by_its_old_deadline():
    """DeepLIFT and LRP keep a deep copy of the model made during a job (the copy takes
    the job's hooks with it); later, in the same thread, that copy runs normally."""
    import copy

    counter, clock = [], [0.0]
    net = SlowNet(counter, clock=clock).eval()
    gate = ComputeGate(slots=1)
    x = torch.randn(1, 3, 8, 8)
    kept = {}

    def job(_p):
        kept["twin"] = copy.deepcopy(net)
        return net(x)

    with pytest.raises(TimeLimit):
        gate.run(job, 2.5, module=net, clock=lambda: clock[0])
    assert _no_hooks(net)
    twin_counter = kept["twin"].blocks[0].counter  # the copy counts in its own list
    twin_counter.clear()
    assert kept["twin"](x).shape == (1, 4)  # same thread, deadline long past: not stopped
    assert len(twin_counter) == 5


def test_nested_gated_work_runs_at_once_under_the_outer_deadline():
    """A heavy job that asks for a prediction inside its slot does not queue for a
    second slot (with one slot it would wait for itself) and obeys the outer deadline."""
    counter, clock = [], [0.0]
    net = SlowNet(counter, clock=clock).eval()
    gate = ComputeGate(slots=1, light_slots=1)
    x = torch.randn(1, 3, 8, 8)

    def outer(_p):
        inner = gate.run(lambda _q: net(x), 100.0, module=net, clock=lambda: clock[0])
        assert inner.shape == (1, 4)
        return net(x)

    with pytest.raises(TimeLimit):
        gate.run(outer, 7.5, module=net, clock=lambda: clock[0])
    assert len(counter) == 5 + 3  # the inner forward whole, the outer one cut after 3 blocks
    assert _no_hooks(net) and gate.running == 0


@pytest.mark.parametrize("seconds, text", [
    (3, "stopped after 3 s: this server's time limit for one computation"),
    (0.5, "stopped after 0.5 s:"),
    (90, "stopped after 1.5 min:"),
    (300, "stopped after 5 min:"),
])
def test_limit_message_states_the_limit(seconds, text):
    assert limit_message(seconds).startswith(text)
    assert "heavy_timeout_s" in limit_message(seconds)


def test_deadline_cancelled_wins_over_time():
    d = Deadline(100.0, cancelled=lambda: True)
    with pytest.raises(interpret.Cancelled, match="cancelled"):
        d.check()


@pytest.fixture()
def slow_compute(monkeypatch):
    """ui.compute with a one-slot gate, an empty result cache and a 1 s time limit."""
    pytest.importorskip("streamlit")
    from ui import compute

    gate = ComputeGate(slots=1)
    monkeypatch.setattr(compute, "heavy_gate", lambda: gate)
    monkeypatch.setattr(compute, "results", lambda: compute.ResultCache())
    monkeypatch.setenv("INTERPRET_HEAVY_TIMEOUT_S", "1")
    return compute, gate


@pytest.mark.parametrize("what", ["predictions", "gradcam", "occlusion", "integrated_gradients",
                                  "layer_maps"])
def test_every_visitor_computation_is_stopped_by_the_time_limit(slow_compute, what, monkeypatch):
    """heavy_timeout_s = 1 s and a forward of five 0.4 s blocks (2 s): predictions,
    instant CAMs, layer maps and the heavy methods all end inside their first forward
    (at most 3 of its 5 blocks ran: 0.4 + 0.4 + 0.4 > 1), with the limit's sentence; the model
    keeps no hook and no gradient; with the limit raised, the same request works."""
    compute, gate = slow_compute
    counter = []
    handle = interpret.ModelHandle(SlowNet(counter, seconds=0.4).eval(), name="slow",
                                   labels=["a", "b", "c", "d"])
    pic = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    img = compute.ImageChoice(pic, compute.image_hash(pic), "noise", "sample:noise")

    def call(h=handle):
        if what == "predictions":
            return compute.predictions(h, img)
        if what == "layer_maps":
            return compute.layer_maps(h, img, "blocks.4")
        layer = "conv" if what == "gradcam" else None
        return compute.explain(h, img, what, layer, 0, None, {}, progress=lambda d, t: None)

    def block_seconds(s):
        handle.module.blocks.apply(lambda m: setattr(m, "seconds", s) if isinstance(m, Sleepy) else None)

    # once on a fast twin with a long limit: imports and lazy set-up out of the way
    monkeypatch.setenv("INTERPRET_HEAVY_TIMEOUT_S", "300")
    assert call(interpret.ModelHandle(SlowNet([]).eval(), name="fast", labels=["a", "b", "c", "d"])) is not None
    monkeypatch.setenv("INTERPRET_HEAVY_TIMEOUT_S", "1")
    counter.clear()
    with pytest.raises(TimeLimit, match="stopped after 1 s"):
        call()
    assert len(counter) <= 3, f"{len(counter)} blocks ran: the forward was not stopped"
    assert _no_hooks(handle.module)
    assert all(p.grad is None for p in handle.module.parameters())
    assert gate.running == 0 and gate.light_running == 0
    # the next request works (a fast model, the same gate, a longer limit)
    block_seconds(0.0)
    monkeypatch.setenv("INTERPRET_HEAVY_TIMEOUT_S", "300")
    assert call() is not None
    assert _no_hooks(handle.module)


def test_an_uploaded_model_is_loaded_in_a_heavy_slot(slow_compute):
    """Loading an upload (the 10^6-tensor state dict of the review cost 103 s of CPU
    outside the gate) waits for a heavy slot like any heavy computation."""
    compute, gate = slow_compute
    from safetensors.torch import save

    net = SlowNet([]).eval()
    data = save({k: v.contiguous() for k, v in net.state_dict().items()})
    hold, release = threading.Event(), threading.Event()
    loaded = {}

    def busy():
        with gate.slot():
            hold.set()
            release.wait(60)

    t = threading.Thread(target=busy)
    t.start()
    assert hold.wait(10)
    loader = threading.Thread(target=lambda: loaded.setdefault("handle", _load(compute, data)))
    try:
        loader.start()
        for _ in range(600):  # until the loader is queued (it cannot have run: the slot is held)
            if gate.waiting == 1:
                break
            time.sleep(0.05)
        assert gate.waiting == 1 and "handle" not in loaded
    finally:
        release.set()
        t.join()
        loader.join(60)
    assert gate.waiting == 0 and gate.running == 0


def test_a_model_picked_for_the_first_time_is_loaded_in_a_heavy_slot(slow_compute, monkeypatch):
    """The first load of a named model waits for a heavy slot; once loaded (a cache hit)
    it is served at once, even while every slot is taken."""
    compute, gate = slow_compute
    monkeypatch.setattr(compute, "_LOADED", set())
    loads = []

    def use():
        return compute._gated_load(("torchvision:resnet18", False),
                                   lambda: loads.append("resnet18") or "handle")

    hold, release = threading.Event(), threading.Event()

    def busy():
        with gate.slot():
            hold.set()
            release.wait(60)

    t = threading.Thread(target=busy)
    t.start()
    assert hold.wait(10)
    first = threading.Thread(target=use)
    try:
        first.start()
        for _ in range(600):
            if gate.waiting == 1:
                break
            time.sleep(0.05)
        assert gate.waiting == 1 and loads == []  # queued behind the busy slot
    finally:
        release.set()
        t.join()
        first.join(60)
    assert loads == ["resnet18"]
    hold.clear(), release.clear()
    t = threading.Thread(target=busy)  # every slot taken again, by another thread
    t.start()
    try:
        assert hold.wait(10)
        assert use() == "handle" and loads == ["resnet18", "resnet18"]
        assert t.is_alive() and gate.running == 1  # served while the slot was still held
    finally:
        release.set()
        t.join()


def _load(compute, data):
    try:
        return compute.load_uploaded_model(data, "x.safetensors", "", None)
    except interpret.InputError as exc:  # no architecture given: refused, after the slot
        return exc


# ----------------------------------------------------------------------------------
# The result cache counts what it holds


def test_result_cache_counts_pil_images_by_their_pixels():
    pytest.importorskip("streamlit")
    from ui.compute import ResultCache, _nbytes

    assert _nbytes(Image.new("RGB", (6000, 4000))) >= 6000 * 4000 * 3
    assert _nbytes(Image.new("RGBA", (100, 10))) >= 4000
    assert _nbytes(Image.new("F", (100, 10))) >= 4000
    assert _nbytes(np.zeros((1000, 1000), np.float32)) >= 4_000_000
    assert _nbytes(torch.zeros(1000, 1000)) >= 4_000_000
    big = torch.zeros(1000, 1000)
    assert _nbytes(big[:1]) >= 4_000_000  # a view holds its whole storage
    nested = {"overlays": [(Image.new("RGB", (1000, 1000)), "x")], "maps": [np.zeros(250_000, np.float32)]}
    assert _nbytes(nested) >= 3_000_000 + 1_000_000

    cache = ResultCache(max_bytes=50 * 2**20, max_items=512)
    images = []
    for i in range(21):  # 21 "whole photo" overlays of 12 MB each: 252 MB
        im = Image.new("RGB", (2000, 2000), (i, 0, 0))
        images.append(im)
        cache.put(("overlay", i), {"image": im, "caption": f"overlay {i}"})
    held = [k for k in (("overlay", i) for i in range(21)) if k in cache]
    assert len(held) == 4  # 4 x 12 MB = 48 MB <= 50 MiB; a fifth would not fit
    assert cache.bytes <= cache.max_bytes
    assert held == [("overlay", i) for i in range(17, 21)]  # the newest are kept


def test_result_cache_counts_figures_with_their_images():
    pytest.importorskip("streamlit")
    import plotly.graph_objects as go

    from ui.compute import _nbytes

    z = np.zeros((500, 500, 3), np.uint8)
    assert _nbytes(go.Figure(go.Image(z=z))) >= z.nbytes
    noise = np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8)
    fig = go.Figure()
    fig.add_layout_image(source=Image.fromarray(noise), x=0, y=0, sizex=1, sizey=1)
    uri = fig.layout.images[0].source  # Plotly keeps the image as a PNG data URI
    assert len(uri) > 800 * 600 and _nbytes(fig) >= len(uri)


# ----------------------------------------------------------------------------------
# Wrong passwords are slowed down; the signed-in registry


def test_wrong_passwords_wait_exponentially_per_address_and_globally():
    now = [1000.0]
    t = PasswordThrottle(free=3, base_s=2.0, cap_s=600.0, global_free=10, global_cap_s=60.0,
                         clock=lambda: now[0])
    waits = []
    for _ in range(7):
        assert t.retry_after("10.0.0.1") == 0.0
        waits.append(t.failed("10.0.0.1"))
        now[0] += waits[-1]  # the client waits as told, then tries again
    assert waits == [0.0, 0.0, 0.0, 2.0, 4.0, 8.0, 16.0]
    # told to wait: an attempt before then is refused without being counted
    t.failed("10.0.0.1")
    assert t.retry_after("10.0.0.1") == 32.0
    now[0] += 10
    assert t.retry_after("10.0.0.1") == 22.0
    # another address is not punished for these (the global count: 8 < 10)...
    assert t.retry_after("10.0.0.2") == 0.0
    # ...until the whole server has seen too many failures
    for i in range(3):
        t.failed(f"10.0.1.{i}")
    assert t.retry_after("10.0.0.9") == 2.0
    # a right password clears the address's count, not the global one
    t.succeeded("10.0.0.2")
    assert t.retry_after("10.0.0.2") == 2.0
    # forgotten after a quiet hour
    now[0] += 3601
    assert t.retry_after("10.0.0.1") == 0.0 and t.retry_after("x") == 0.0


def test_wrong_password_record_is_bounded():
    t = PasswordThrottle(max_clients=100, clock=lambda: 0.0)
    for i in range(1000):
        t.failed(f"client-{i}")
    assert len(t) <= 100


@pytest.mark.parametrize("seconds, text", [
    (0, ""),
    (1, "Too many wrong passwords. Try again in 1 second."),
    (1.2, "Too many wrong passwords. Try again in 2 seconds."),
    (45, "Too many wrong passwords. Try again in 45 seconds."),
    (90, "Too many wrong passwords. Try again in 2 minutes."),
    (3600, "Too many wrong passwords. Try again in 60 minutes."),
])
def test_throttle_message_says_when_to_try_again(seconds, text):
    assert throttle_message(seconds) == text


def test_signed_in_sessions_registry():
    s = SignedInSessions()
    assert not s.allowed("abc")
    s.add("abc")
    assert s.allowed("abc") and not s.allowed("abd")
    s.discard("abc")
    assert not s.allowed("abc")
    s.add("a"), s.add("b")
    assert s.keep_only({"b", "c"}) == 1 and s.allowed("b") and not s.allowed("a")


def test_password_form_reports_a_growing_wait_after_wrong_passwords(monkeypatch):
    """The form refuses an attempt while the address must wait, and says how long; the
    wait doubles with each further wrong password (a fake clock: no sleeping)."""
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    from ui import access

    now = [5000.0]
    monkeypatch.setattr(access, "THROTTLE", PasswordThrottle(free=2, base_s=4.0, clock=lambda: now[0]))
    at = AppTest.from_file(str(ROOT / "pages/1_Outputs.py"), default_timeout=180)
    at.secrets["interpret"] = {"password": "sha256:" + hashlib.sha256(b"right one").hexdigest()}
    at.run()

    def attempt(pw):
        at.text_input(key="w_access_password").input(pw)
        at.button[0].click().run()
        return [e.value for e in at.error]

    assert any("not right" in e for e in attempt("wrong 1"))
    assert any("not right" in e for e in attempt("wrong 2"))
    assert "Try again in 4 seconds" in " ".join(attempt("wrong 3"))
    # the right password during the wait is not even checked
    assert "Try again in 4 seconds" in " ".join(attempt("right one"))
    assert "Outputs" not in [t.value for t in at.title]
    now[0] += 4
    assert "Try again in 8 seconds" in " ".join(attempt("wrong 4"))
    now[0] += 8
    attempt("right one")
    assert not at.exception and "Outputs" in [t.value for t in at.title]


# ----------------------------------------------------------------------------------
# The perimeter, against a live server


def _put_upload(url: str, session_id: str, data: bytes, xsrf: tuple | None):
    boundary = "----interpret-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if xsrf:
        headers["X-Xsrftoken"], headers["Cookie"] = xsrf[0], f"_streamlit_xsrf={xsrf[1]}"
    req = urllib.request.Request(f"{url}/_stcore/upload_file/{session_id}/file-1", data=body,
                                 method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


class Tab:
    """A browser tab without a browser: Streamlit's websocket protocol, enough to run
    the page and submit the password form."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.url = url
        self.ws = connect(url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"])
        self.session_id = None
        self.elements = self.run()

    def run(self, states=()):
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        b = BackMsg()
        b.rerun_script.query_string = ""
        b.rerun_script.page_script_hash = ""
        for wid, kind, value in states:
            w = b.rerun_script.widget_states.widgets.add()
            w.id = wid
            setattr(w, kind, value)
        self.ws.send(b.SerializeToString())
        out = []
        while True:
            m = ForwardMsg()
            m.ParseFromString(self.ws.recv(timeout=180))
            kind = m.WhichOneof("type")
            if kind == "new_session":
                self.session_id = m.new_session.initialize.session_id
            elif kind == "delta" and m.delta.WhichOneof("type") == "new_element":
                el = m.delta.new_element
                inner = getattr(el, el.WhichOneof("type"))
                out.append((el.WhichOneof("type"), getattr(inner, "id", None),
                            getattr(inner, "body", None) or getattr(inner, "label", None)))
            elif kind == "script_finished":
                return out

    def sign_in(self, password: str) -> list:
        """Submit the password form; returns the alerts' texts of the run."""
        form = self.elements
        text = next(w for k, w, _ in form if k == "text_input")
        button = next(w for k, w, _ in form if k == "button")
        self.elements = self.run([(text, "string_value", password), (button, "trigger_value", True)])
        return [t for k, _, t in self.elements if k == "alert"]

    def upload(self, data: bytes):
        from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

        token = generate_xsrf_token_string()  # the browser's token: header and cookie agree
        return _put_upload(self.url, self.session_id, data, (token, token))

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def password_server(tmp_path_factory):
    from serving import streamlit_server

    pytest.importorskip("websockets")
    secrets = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    secrets.write_text('[interpret]\npassword = "team password"\n')
    env = {"INTERPRET_WARM_START": "0", "STREAMLIT_SECRETS_FILES": str(secrets),
           "INTERPRET_MAX_MODEL_MB": "1"}
    with streamlit_server("streamlit-hostile-server.log", env=env) as url:
        yield url


def test_live_server_refuses_uploads_before_sign_in(password_server):
    """A real session at the password form cannot upload (the review's 5 x 100 MB were
    accepted): 403 with the reason, before the body is read.  After sign-in the same
    session uploads; a file over max_model_mb is refused (413) from its Content-Length;
    once the tab is closed, its session may no longer upload."""
    tab = Tab(password_server)
    try:
        assert any(k == "text_input" for k, _, _ in tab.elements)  # at the door
        status, text = tab.upload(b"x" * 1000)
        assert status == 403 and "sign in first" in text.lower()
        status, _ = _put_upload(password_server, "not-a-session", b"x" * 1000, None)
        assert status == 403
        assert tab.sign_in("team password") == []
        assert not any(k == "text_input" for k, _, _ in tab.elements)  # past the door
        status, text = tab.upload(b"x" * 1000)
        assert status == 204, text
        status, text = tab.upload(b"x" * (2 * 2**20))
        assert status == 413 and "at most 1 MiB" in text
    finally:
        tab.close()
    for _ in range(100):  # the server notices the closed connection
        status, text = tab.upload(b"x" * 1000)
        if status == 403:
            break
        time.sleep(0.1)
    assert status == 403 and "sign in first" in text.lower()
    log = (ROOT / "test-artifacts" / "streamlit-hostile-server.log").read_text()
    assert "dropped the uploads of 1 ended session(s) (1000 bytes)" in log  # the 1000-byte file


def test_live_server_closes_metrics_unless_opened(password_server):
    status, text = _get(f"{password_server}/_stcore/metrics")
    assert status == 404 and "session" not in text.lower()
    status, _ = _get(f"{password_server}/_stcore/health")
    assert status == 200


def test_live_server_wrong_passwords_wait_longer_each_time(password_server):
    """The server's own words: after three free wrong passwords it tells this client to
    wait 2 s, refuses every attempt (even the right password) until then, and after the
    next wrong one says 4 s."""
    import re

    tab = Tab(password_server)
    try:
        said = [" ".join(tab.sign_in(f"wrong {i}")) for i in range(4)]
        assert all("not right" in s for s in said)
        waits = [int(re.search(r"Try again in (\d+) second", s).group(1)) if "Try again" in s else 0
                 for s in said]
        assert waits == [0, 0, 0, 2]
        refused = " ".join(tab.sign_in("team password"))
        assert "Try again in" in refused and "not right" not in refused
        assert any(k == "text_input" for k, _, _ in tab.elements)
        time.sleep(2.1)  # wait as told (the assertion is on the server's words, not the time)
        again = " ".join(tab.sign_in("wrong 5"))
        assert "Try again in 4 seconds" in again
    finally:
        tab.close()


def test_sweep_drops_the_uploads_of_ended_sessions():
    """Streamlit keeps a closed tab's uploads until its session is shut down (the review
    found them held 10 minutes later); the sweep drops every ended session's files and
    forgets it as signed in."""
    from types import SimpleNamespace

    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    from ui.perimeter import sweep

    mgr = MemoryUploadedFileManager("/_stcore/upload_file")
    mgr.add_file("live", UploadedFileRec("f1", "a.png", "image/png", b"1" * 100))
    mgr.add_file("gone", UploadedFileRec("f2", "b.pt", "application/octet-stream", b"2" * 5000))
    runtime = SimpleNamespace(uploaded_file_mgr=mgr, is_active_session=lambda sid: sid == "live")
    reg = SignedInSessions()
    reg.add("live"), reg.add("gone")
    assert sweep(runtime, reg) == 1
    assert set(mgr.file_storage) == {"live"} and mgr._total_bytes == 100
    assert reg.allowed("live") and not reg.allowed("gone")


def _asgi(app, method, path, chunks, headers=()):
    """Run one HTTP request through an ASGI app; returns (status, body)."""
    import asyncio

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    pending = list(chunks)
    sent = []

    async def receive():
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_perimeter_bounds_an_upload_without_content_length_while_streaming():
    """A chunked upload (no Content-Length) from a signed-in session is cut off once it
    passes max_model_mb, with 413, however the downstream app reads it."""
    from interpret.settings import Settings
    from ui.perimeter import Perimeter

    read = []

    async def downstream(scope, receive, send):
        while True:
            m = await receive()
            read.append(len(m.get("body", b"")))
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    reg = SignedInSessions()
    reg.add("s1")
    gate = Perimeter(downstream, settings=lambda: Settings(max_model_mb=1), mode=lambda: "password",
                     signed_in=reg, runtime=lambda: None)
    chunk = b"x" * 2**18
    status, body = _asgi(gate, "PUT", "/_stcore/upload_file/s1/f1", [chunk] * 8)
    assert status == 413 and b"at most 1 MiB" in body
    assert sum(read) <= 2**20 + 2**18  # stopped at the first chunk past the bound
    read.clear()
    status, _ = _asgi(gate, "PUT", "/_stcore/upload_file/s1/f1", [chunk] * 2)
    assert status == 204 and sum(read) == 2 * 2**18
    status, body = _asgi(gate, "PUT", "/_stcore/upload_file/s2/f1", [chunk])
    assert status == 403
    # open server: anyone may upload, the size bound stays
    gate_open = Perimeter(downstream, settings=lambda: Settings(max_model_mb=1), mode=lambda: "open",
                          signed_in=reg, runtime=lambda: None)
    assert _asgi(gate_open, "PUT", "/_stcore/upload_file/s2/f1", [chunk])[0] == 204
    assert _asgi(gate_open, "PUT", "/_stcore/upload_file/s2/f1", [chunk] * 8)[0] == 413
    # metrics: closed by default, open when the operator says so
    assert _asgi(gate, "GET", "/_stcore/metrics", [])[0] == 404
    opened = Perimeter(downstream, settings=lambda: Settings(open_metrics=True), mode=lambda: "password",
                       signed_in=reg, runtime=lambda: None)
    assert _asgi(opened, "GET", "/_stcore/metrics", [])[0] == 204


# ----------------------------------------------------------------------------------
# The Dataset page says who will see a stored run, and who started it


@pytest.mark.parametrize("shared, mode, parts", [
    (True, "password", ["kept in the server's shared runs folder", "everyone who has this server's team password"]),
    (True, "oidc", ["shared runs folder", "everyone who can sign in to this server"]),
    (False, "open", ["kept on this server until it restarts", "everyone who can reach this server (it has no sign-in)"]),
    (False, "password", ["until it restarts", "team password"]),
])
def test_dataset_uploader_says_who_will_see_a_stored_run(shared, mode, parts):
    pytest.importorskip("streamlit")
    from ui.dataset import sharing_note

    note = sharing_note(shared, mode)
    assert all(p in note for p in parts), note
    assert "Stored runs" in note and "a visitor" in note


def test_a_run_started_without_sign_in_is_by_a_visitor_not_the_os_user():
    pytest.importorskip("streamlit")
    import getpass

    from ui.dataset import VISITOR, who

    assert who() == VISITOR == "a visitor"
    assert who() != getpass.getuser()


def test_dataset_page_shows_the_sharing_note_at_the_uploader():
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages/6_Dataset.py"), default_timeout=180).run()
    at.segmented_control(key="w_ds_source").set_value("upload").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "listed under **Stored runs** for everyone who can reach this server" in captions


@pytest.mark.parametrize("remote, forwarded, key", [
    (None, None, "local"),                                 # loopback, no proxy
    ("93.184.216.34", None, "93.184.216.34"),              # a visitor straight to the server
    ("93.184.216.34", "10.0.0.1", "93.184.216.34"),        # a public client cannot choose its key
    (None, "198.51.100.2", "198.51.100.2"),                # nginx on this host
    ("127.0.0.1", "6.6.6.6, 198.51.100.2", "198.51.100.2"),  # the client's own entry comes first
    ("172.18.0.5", "198.51.100.9", "198.51.100.9"),        # a proxy container on a Docker network
    ("172.18.0.5", "", "172.18.0.5"),
    ("not an address", "1.2.3.4", "not an address"),
])
def test_wrong_passwords_are_counted_per_visitor_behind_a_proxy(remote, forwarded, key):
    from interpret.access import client_key

    assert client_key(remote, forwarded) == key
