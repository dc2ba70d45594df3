"""The one recording path (interpret.hooks.record) and what is built on it: the capture
(layer-only backward, input gradient on demand), the forward-only layer maps, the
cached logits.  Numbers on tiny fixed-weight nets, and what each mode does (not) put in
the autograd graph."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret import Preprocessing
from interpret.capture import capture, layer_maps, logits
from interpret.hooks import Tap, record
from interpret.layers import resolve_layer

pytestmark = pytest.mark.usefixtures("single_thread")


def chain(inplace: bool = False) -> nn.Module:
    """conv(3->2, 1x1) - relu - gap - fc(2->2), fixed weights."""
    net = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(3, 2, 1, bias=False)),
        ("relu", nn.ReLU(inplace=inplace)),
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flat", nn.Flatten()),
        ("fc", nn.Linear(2, 2, bias=False)),
    ]))
    with torch.no_grad():
        net.conv.weight.copy_(torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, 1.0]]).view(2, 3, 1, 1))
        net.fc.weight.copy_(torch.tensor([[2.0, -1.0], [-1.0, 1.0]]))
    return net.eval()


def handle_of(net) -> interpret.ModelHandle:
    return interpret.load_model(net, preprocessing=Preprocessing(resize=None, crop=2),
                                labels=["zero", "one"])


# 2 x 2 input; channel 0 of the conv is x0 - x1, channel 1 is x1 + x2
X = torch.tensor([[[[1.0, 0.0], [2.0, -1.0]],
                   [[0.0, 1.0], [3.0, 0.0]],
                   [[1.0, 1.0], [0.0, 2.0]]]])
CONV = np.array([[[1, -1], [-1, -1]], [[1, 2], [3, 2]]], dtype=np.float32)


def test_taps_mode_builds_no_graph_before_the_layer():
    net = chain()
    h = handle_of(net)
    rec = record(h, X, [Tap("relu", net.relu)], grad="taps")
    leaf = rec.values["relu"]
    assert leaf.is_leaf and leaf.requires_grad
    score = rec.logits[0, 0]
    # the layer's output and everything after it are in the graph ...
    (g_leaf, g_fc) = torch.autograd.grad(score, [leaf, net.fc.weight], retain_graph=True)
    assert g_leaf is not None and g_fc is not None
    # ... nothing before it is: the conv's weight does not reach the score
    (g_conv,) = torch.autograd.grad(score, [net.conv.weight], allow_unused=True)
    assert g_conv is None
    # the hook switched gradients on for the rest of that forward only: the caller's
    # grad mode is as it was, with or without an enclosing no_grad
    assert torch.is_grad_enabled()
    with torch.no_grad():
        record(h, X, [Tap("relu", net.relu)], grad="taps")
        assert not torch.is_grad_enabled()


def test_input_mode_differentiates_to_the_input_and_the_layer():
    net = chain()
    h = handle_of(net)
    rec = record(h, X, [Tap("relu", net.relu)], grad="input")
    score = rec.logits[0, 0]
    g_in, g_act = torch.autograd.grad(score, [rec.input, rec.values["relu"]])
    # score = mean over 4 positions of 2*relu(c0) - relu(c1): d/d relu = (2, -1) / 4
    np.testing.assert_allclose(g_act[0, 0].numpy(), np.full((2, 2), 0.5))
    np.testing.assert_allclose(g_act[0, 1].numpy(), np.full((2, 2), -0.25))
    # by hand through the ReLU (c0 > 0 only at (0,0); c1 > 0 everywhere):
    # d/dx0 = 0.5 [c0>0], d/dx1 = -0.5 [c0>0] - 0.25, d/dx2 = -0.25
    mask0 = (CONV[0] > 0).astype(np.float32)
    np.testing.assert_allclose(g_in[0, 0].numpy(), 0.5 * mask0)
    np.testing.assert_allclose(g_in[0, 1].numpy(), -0.5 * mask0 - 0.25)
    np.testing.assert_allclose(g_in[0, 2].numpy(), np.full((2, 2), -0.25))


def test_the_recorded_output_is_what_the_module_produced_even_if_changed_in_place_later():
    net = chain(inplace=True)  # ReLU(inplace=True) overwrites the conv's output
    h = handle_of(net)
    for mode in ("taps", "input"):
        rec = record(h, X, [Tap("conv", net.conv)], grad=mode)
        np.testing.assert_allclose(rec.values["conv"][0].detach().numpy(), CONV)
        (g,) = torch.autograd.grad(rec.logits[0, 0], [rec.values["conv"]])
        # through the in-place ReLU: (2, -1)/4 where the conv output was positive
        expected = np.stack([0.5 * (CONV[0] > 0), -0.25 * (CONV[1] > 0)])
        np.testing.assert_allclose(g[0].numpy(), expected)
    # and the model's own output is unchanged by the recording
    with torch.no_grad():
        plain = net(X)
    torch.testing.assert_close(record(h, X, [Tap("conv", net.conv)], grad="taps").logits.detach(), plain)


class DictBlock(nn.Module):
    """A module whose output is a dict: the taps mode cannot splice a leaf into it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1, bias=False)

    def forward(self, x):
        return {"out": self.conv(x)}


class DictNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = DictBlock()
        self.fc = nn.Linear(2, 2, bias=False)

    def forward(self, x):
        return self.fc(self.block(x)["out"].mean(dim=(2, 3)))


def test_taps_mode_falls_back_to_a_full_pass_when_it_cannot_splice():
    torch.manual_seed(0)
    net = DictNet().eval()
    h = interpret.load_model(net, preprocessing=Preprocessing(resize=None, crop=2), labels=["a", "b"])
    rec = record(h, X, [Tap("block", net.block)], grad="taps")
    # the fallback recorded with gradients from the input: the score reaches the conv
    (g,) = torch.autograd.grad(rec.logits[0, 1], [net.block.conv.weight], allow_unused=True)
    assert g is not None
    assert rec.input.requires_grad


def test_a_layer_only_capture_and_a_full_one_agree_and_the_full_one_replaces_it(lite0, fresh_handle, chelsea):
    h = fresh_handle(lite0)
    x = h.preprocess(chelsea)
    cam_only = capture(h, x, "_blocks.15", 282)
    assert cam_only.input_grad is None
    full = capture(h, x, "_blocks.15", 282, input_grad=True)
    assert full.input_grad is not None and float(full.input_grad.abs().sum()) > 0
    torch.testing.assert_close(cam_only.activation, full.activation)
    torch.testing.assert_close(cam_only.gradient, full.gradient, rtol=1e-4, atol=1e-7)
    assert cam_only.score == pytest.approx(full.score, rel=1e-6)
    # later layer-only requests are served by the full capture
    assert capture(h, x, "_blocks.15", 282) is full
    # target=None resolves the top class from the capture's own forward
    top = capture(h, x, "_blocks.15", None)
    assert top.target == int(logits(h, x)[0].argmax())


def test_layer_maps_stop_at_the_layer_and_never_differentiate(lite0, fresh_handle, chelsea, monkeypatch):
    h = fresh_handle(lite0)
    x = h.preprocess(chelsea)
    interpret.list_layers(h)  # the layer table's dry forward, once per handle
    ran = []
    hd = resolve_layer(h, "_blocks.12").register_forward_pre_hook(lambda m, i: ran.append("12"))
    grads = []
    real_grad = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: grads.append(1) or real_grad(*a, **k))
    try:
        maps = layer_maps(h, x, "_blocks.10")
    finally:
        hd.remove()
    assert ran == [] and grads == []  # the forward stopped after block 10; no backward
    assert maps.shape == (112, 14, 14)
    # the same values as the layer's output in a plain forward
    out = {}
    hd = resolve_layer(h, "_blocks.10").register_forward_hook(lambda m, i, o: out.setdefault("t", o))
    try:
        with torch.no_grad():
            h.module(x)
    finally:
        hd.remove()
    np.testing.assert_allclose(maps.maps, out["t"][0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps.channel_means, out["t"][0].mean(dim=(1, 2)).numpy(), rtol=1e-5, atol=1e-6)
    assert layer_maps(h, x, "_blocks.10") is maps  # cached


def test_a_capture_fills_the_layer_maps_cache(lite0, fresh_handle, chelsea, monkeypatch):
    h = fresh_handle(lite0)
    x = h.preprocess(chelsea)
    cap = capture(h, x, "_blocks.15", 281)
    calls = []
    real = h.module.forward
    monkeypatch.setattr(h.module, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    maps = layer_maps(h, x, "_blocks.15")
    assert calls == []  # no forward: the capture's activation is reused
    torch.testing.assert_close(maps.activation, cap.activation)


def test_record_hooks_only_act_in_their_own_thread():
    """A recording that stops its forward early never stops another thread's forward
    on the same module."""
    net = chain()
    h = handle_of(net)
    with torch.no_grad():
        expected = net(X)
    stop = threading.Event()
    errors, outs = [], []

    def recorder():
        try:
            while not stop.is_set():
                record(h, X, [Tap("conv", net.conv)], logits=False)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=recorder)
    t.start()
    try:
        for _ in range(300):
            with torch.no_grad():
                outs.append(net(X))
    finally:
        stop.set()
        t.join()
    assert not errors
    assert all(torch.equal(o, expected) for o in outs)
    assert not net.conv._forward_hooks  # nothing left behind
