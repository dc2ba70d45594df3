"""Server building blocks: settings precedence, the bounded compute queue, the model folder."""

from __future__ import annotations

import threading
import time

import pytest
import torch

import interpret
from interpret.gate import ComputeGate, deadline
from interpret.model_folder import read_model_folder
from interpret.settings import cpu_quota, default_threads, load_settings


def test_settings_precedence_defaults_file_env_overrides(tmp_path):
    f = tmp_path / "interpret.toml"
    f.write_text('max_concurrent_heavy = 3\nallow_uploads = false\ndevice = "cpu"\nheavy_timeout_s = 60\n')
    s = load_settings(f, env={})
    assert (s.max_concurrent_heavy, s.allow_uploads, s.heavy_timeout_s) == (3, False, 60)
    assert s.allow_untrusted is False  # default kept
    env = {"INTERPRET_MAX_CONCURRENT_HEAVY": "5", "INTERPRET_ALLOW_UPLOADS": "yes"}
    s = load_settings(f, env=env)
    assert (s.max_concurrent_heavy, s.allow_uploads, s.heavy_timeout_s) == (5, True, 60)
    s = load_settings(f, env=env, max_concurrent_heavy=1)
    assert s.max_concurrent_heavy == 1
    s = load_settings(None, env={})
    assert s == interpret.settings.DEFAULTS


def test_settings_section_and_errors(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("[interpret]\nallow_untrusted = true\n")
    assert load_settings(f, env={}).allow_untrusted is True
    f.write_text("allow_untrusetd = true\n")
    with pytest.raises(interpret.InputError, match="unknown key.*allow_untrusetd"):
        load_settings(f, env={})
    with pytest.raises(interpret.InputError, match="INTERPRET_MAX_CONCURRENT_HEAVY"):
        load_settings(None, env={"INTERPRET_MAX_CONCURRENT_HEAVY": "lots"})
    f.write_text("max_concurrent_heavy = [")
    with pytest.raises(interpret.InputError, match="not valid TOML"):
        load_settings(f, env={})


def test_threads_follow_the_cgroup_quota_not_the_host(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_quota(str(tmp_path)) == 1.5
    assert default_threads(str(tmp_path)) == min(2, len(__import__("os").sched_getaffinity(0)))
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cpu_quota(str(v1)) == 1.0 and default_threads(str(v1)) == 1
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(str(tmp_path / "none")) is None


def test_gate_never_runs_more_than_its_slots_and_serves_in_order():
    gate = ComputeGate(slots=2)
    active, peak, order = [0], [0], []
    lock = threading.Lock()
    positions = {}

    def work(i):
        with gate.slot(on_wait=lambda pos: positions.setdefault(i, pos), poll_s=0.01):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                order.append(i)
            time.sleep(0.05)
            with lock:
                active[0] -= 1

    threads = []
    for i in range(8):
        t = threading.Thread(target=work, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.005)  # arrive in order
    for t in threads:
        t.join()
    assert peak[0] == 2 and gate.max_running_seen == 2
    assert sorted(order) == list(range(8))
    assert order[:2] == [0, 1] or set(order[:2]) == {0, 1}
    assert max(positions.values()) >= 3  # later arrivals saw a queue position
    assert gate.running == 0 and gate.waiting == 0


def test_gate_cancel_while_waiting_leaves_the_queue():
    gate = ComputeGate(slots=1)
    release = threading.Event()

    def hold():
        with gate.slot():
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    time.sleep(0.05)
    flag = {"stop": False}
    seen = []

    def on_wait(pos):
        seen.append(pos)
        flag["stop"] = len(seen) >= 3

    with pytest.raises(interpret.Cancelled):
        with gate.slot(on_wait=on_wait, cancelled=lambda: flag["stop"], poll_s=0.01):
            pytest.fail("must not run")
    assert gate.waiting == 0 and seen[0] == 1
    release.set()
    t.join()
    assert gate.running == 0


def test_deadline_stops_a_heavy_method_and_leaves_the_model_clean():
    model = interpret.load_model("efficientnet_lite0")
    from skimage import data

    img = interpret.load_image(data.chelsea())
    cb = deadline(0.0)
    with pytest.raises(interpret.Cancelled, match="time limit"):
        interpret.explain(model, img, "occlusion", progress=cb)
    assert all(not m._forward_hooks for m in model.module.modules())
    assert all(p.grad is None for p in model.module.parameters())


def _folder(tmp_path, manifest, num_classes=3):
    from safetensors.torch import save_file
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=num_classes)
    save_file(net.state_dict(), tmp_path / "tiny.safetensors")
    (tmp_path / "labels.txt").write_text("healthy\nrust\nscab\n")
    (tmp_path / "models.toml").write_text(manifest)
    return net


def test_a_model_from_the_model_folder_appears_and_works(tmp_path):
    net = _folder(tmp_path, '[[model]]\nname = "Leaf disease"\nfile = "tiny.safetensors"\n'
                            'arch = "resnet18"\nlabels = "labels.txt"\ndescription = "demo"\n')
    entries = read_model_folder(str(tmp_path))
    assert [e.name for e in entries] == ["Leaf disease"]
    h = entries[0].load()
    assert h.name == "Leaf disease" and h.labels == ["healthy", "rust", "scab"]
    x = torch.randn(1, 3, 224, 224)
    net.eval()
    with torch.no_grad():
        expected = net(x).softmax(-1)[0]
    preds = interpret.predict(h, x, top_k=3)
    assert abs(preds[0].probability - float(expected.max())) < 1e-5
    e = interpret.explain(h, x, "gradcam", target="scab")
    assert e.target == 2 and e.heatmap.max() > 0.99


def test_model_folder_refuses_paths_outside_and_bad_manifests(tmp_path):
    _folder(tmp_path, '[[model]]\nname = "x"\nfile = "../etc/passwd"\narch = "resnet18"\n')
    with pytest.raises(interpret.InputError, match="outside the model folder"):
        read_model_folder(str(tmp_path))
    (tmp_path / "models.toml").write_text('[[model]]\nname = "x"\nfile = "tiny.safetensors"\nfrob = 1\n')
    with pytest.raises(interpret.InputError, match="unknown key"):
        read_model_folder(str(tmp_path))
    with pytest.raises(interpret.InputError, match="does not exist"):
        read_model_folder(str(tmp_path / "missing"))
    assert read_model_folder(None) == []


def test_password_gate_logic_is_exact_and_hash_aware():
    from interpret.access import auth_mode, email_allowed, password_ok

    assert password_ok("hunter2", "hunter2")
    assert not password_ok("hunter3", "hunter2")
    assert not password_ok("", "hunter2") and not password_ok(None, "hunter2")
    assert not password_ok("hunter2", None)
    digest = "sha256:" + __import__("hashlib").sha256(b"correct horse").hexdigest()
    assert password_ok("correct horse", digest) and not password_ok("correct  horse", digest)
    assert not password_ok(digest, digest)  # the stored hash itself is not the password
    assert auth_mode({}) == "open"
    assert auth_mode({"interpret": {"password": "x"}}) == "password"
    oidc = {"auth": {"client_id": "a", "client_secret": "b", "redirect_uri": "https://h/oauth2callback",
                     "cookie_secret": "c", "server_metadata_url": "https://idp/.well-known/openid-configuration"}}
    assert auth_mode(oidc) == "oidc"
    assert auth_mode({"auth": {"client_id": "a"}}) == "open"  # incomplete: not silently "secured"
    assert email_allowed("ana@example.com", ["example.com"])
    assert not email_allowed("eve@evil.com", ["example.com"])
    assert email_allowed("x@y.z", None)


def test_light_views_do_not_wait_while_the_heavy_slots_are_full(monkeypatch):
    """With every heavy slot taken, Grad-CAM (instant) is still served at once, while
    occlusion (heavy) waits in the queue with its position shown, and leaves the queue
    when the person cancels (here: the waiting callback raises)."""
    pytest.importorskip("streamlit")
    from skimage import data

    from ui import compute

    gate = ComputeGate(slots=1)
    monkeypatch.setattr(compute, "heavy_gate", lambda: gate)
    monkeypatch.setattr(compute, "results", lambda: compute.ResultCache())
    handle = interpret.load_model("efficientnet_lite0")
    pic = interpret.load_image(data.chelsea())
    img = compute.ImageChoice(pic, compute.image_hash(pic), "cat", "sample:cat")

    hold, release = threading.Event(), threading.Event()

    def busy():
        with gate.slot():
            hold.set()
            release.wait(30)

    t = threading.Thread(target=busy)
    t.start()
    try:
        assert hold.wait(5) and gate.running == 1
        exp = compute.explain(handle, img, "gradcam", "_blocks.15", 285, None, {})
        assert exp.heatmap.shape == (224, 224) and float(exp.heatmap.max()) > 0
        assert gate.running == 1 and gate.waiting == 0  # served without touching the gate

        positions = []

        def on_wait(pos):
            positions.append(pos)
            if len(positions) >= 3:
                raise interpret.Cancelled("cancelled by the person")

        with pytest.raises(interpret.Cancelled):
            compute.explain(handle, img, "occlusion", None, 285, None, {}, on_wait=on_wait)
        assert positions[:3] == [1, 1, 1]
        assert gate.waiting == 0 and gate.running == 1
    finally:
        release.set()
        t.join()
    assert gate.running == 0
