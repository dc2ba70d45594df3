"""Every change to the model is temporary: after any method, successful or failed
(cancelled, bad target, a forward that raises midway), the model has exactly the hooks,
gradients, flags, weights, buffers and submodules it had before.  A model in training
mode is refused, not flipped.  Concurrent explanations on one shared handle give
exactly the sequential results.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import interpret
from interpret import Cancelled, InputError, Preprocessing

pytestmark = pytest.mark.usefixtures("single_thread")

class Boom(RuntimeError):
    """Raised by ExplodingNet's middle module when armed."""


class Tripwire(nn.Module):
    def __init__(self):
        super().__init__()
        self.armed = False

    def forward(self, x):
        if self.armed:
            raise Boom("boom: injected failure in the middle of the forward pass")
        return x


def small_cnn(seed: int = 0, tripwire: bool = False) -> nn.Module:
    """conv-relu-pool-conv-relu(-tripwire)-gap-fc; every activation module used once,
    so Captum's DeepLIFT can run on it."""
    layers = [
        ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
    ]
    if tripwire:
        layers.append(("trip", Tripwire()))
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(16, 10))]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(OrderedDict(layers))
    return net.eval()


def small_handle(module) -> interpret.ModelHandle:
    return interpret.load_model(module, preprocessing=Preprocessing(64, 64),
                                labels=[f"c{i}" for i in range(10)])


# every method that can run on a CNN (the ViT methods are checked on their models in
# test_every_method_every_family.py); the registry's own quick settings
# (MethodSpec.preview) make each run in well under a second, and the methods that
# report progress say so in the registry
ALL_METHODS = [m.name for m in interpret.methods(small_handle(small_cnn()))]
LAYER_METHODS = {m.name for m in interpret.methods() if m.needs_layer}
PROGRESS_METHODS = [m for m in ALL_METHODS if interpret.get_method(m).progress]


@pytest.fixture(scope="module")
def x_lite(lite0, chelsea):
    """The cat photo at 96x96 for lite0 (any size works; smaller is faster)."""
    return F.interpolate(lite0.preprocess(chelsea), size=(96, 96), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def x_small():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, 64, 64, generator=g)


def run(handle, x, method, **kw):
    params = dict(interpret.get_method(method).preview)
    params.update(kw.pop("params", {}))
    return interpret.explain(handle, x, method, **kw, **params)


# ----------------------------------------------------------------------------------
# success


@pytest.mark.parametrize("method", ALL_METHODS)
def test_model_unchanged_after_each_method(lite0, fresh_handle, x_lite, method, model_state):
    handle = fresh_handle(lite0)  # empty cache: the method really runs the model
    before = model_state.snapshot(handle.module)
    e = run(handle, x_lite, method, target=285)
    assert e.heatmap.shape == (96, 96)
    assert np.isfinite(e.heatmap).all() and e.heatmap.max() > 0
    model_state.assert_unchanged(before, handle.module)


def test_deeplift_leaves_the_model_unchanged_and_is_complete(x_small, model_state):
    handle = small_handle(small_cnn())
    before = model_state.snapshot(handle.module)
    e = interpret.explain(handle, x_small, "deeplift", target=3, baseline="mean")
    model_state.assert_unchanged(before, handle.module)
    with torch.no_grad():
        diff = float(handle.module(x_small)[0, 3] - handle.module(torch.zeros_like(x_small))[0, 3])
    total = float(e.attribution.double().sum())
    print(f"\nDeepLIFT: sum = {total:.6f}, f(x) - f(0) = {diff:.6f}")
    # Rescale rule: contributions sum exactly to the difference from the reference
    assert total == pytest.approx(diff, rel=1e-4, abs=1e-5)
    assert abs(diff) > 1e-3
    assert e.extras["convergence_delta"] < 1e-4


def test_existing_user_hooks_and_grads_are_kept(x_small):
    net = small_cnn()
    handle = small_handle(net)
    seen = []
    h = net.relu2.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    net.fc.weight.grad = torch.full_like(net.fc.weight, 7.0)
    grad = net.fc.weight.grad
    try:
        for method in ("gradcam", "saliency", "guided_backprop", "integrated_gradients", "deeplift"):
            run(handle, x_small, method, target=1)
        assert net.fc.weight.grad is grad and bool((grad == 7.0).all())
        assert net.conv1.weight.grad is None
        assert len(seen) > 0 and len(net.relu2._forward_hooks) == 1
    finally:
        h.remove()


# ----------------------------------------------------------------------------------
# injected failures


@pytest.mark.parametrize("method", PROGRESS_METHODS)
def test_no_hooks_left_after_cancel_from_progress(lite0, fresh_handle, x_lite, method, model_state):
    handle = fresh_handle(lite0)
    before = model_state.snapshot(handle.module)
    calls = []

    def progress(done, total):
        calls.append((done, total))
        if done > 0:  # let it start, then cancel in the middle
            raise Cancelled()

    with pytest.raises(Cancelled):
        run(handle, x_lite, method, target=285, progress=progress)
    assert calls and calls[-1][0] < calls[-1][1], "cancelled only after the work was done"
    model_state.assert_unchanged(before, handle.module)


def test_every_slow_method_reports_progress():
    # over every registered method (D-RISE runs on detectors only, so it is not in
    # PROGRESS_METHODS, which are the CNN's)
    slow = {m.name for m in interpret.methods() if m.speed == "slow"}
    assert slow and slow <= {m.name for m in interpret.methods() if m.progress}
    assert slow - {"drise"} <= set(PROGRESS_METHODS)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_no_hooks_left_after_bad_target(lite0, fresh_handle, x_lite, method, model_state):
    handle = fresh_handle(lite0)
    before = model_state.snapshot(handle.module)
    with pytest.raises(InputError):
        run(handle, x_lite, method, target=100_000)
    model_state.assert_unchanged(before, handle.module)


@pytest.fixture(scope="module")
def exploding():
    return small_cnn(tripwire=True)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_no_hooks_left_after_exception_in_forward(exploding, x_small, method, model_state):
    handle = small_handle(exploding)
    interpret.list_layers(handle)  # the dry forward, before arming the tripwire
    layer = "relu2" if method in LAYER_METHODS else None
    before = model_state.snapshot(exploding)
    exploding.trip.armed = True
    try:
        if interpret.get_method(method).uses == "maps":
            # a forward alone stops once the layer has run: the tripwire after it is
            # never reached, and the result is there
            assert np.isfinite(run(handle, x_small, method, target=2, layer=layer).heatmap).all()
        else:
            with pytest.raises((Boom, InputError)) as info:
                run(handle, x_small, method, target=2, layer=layer)
            assert "boom" in str(info.value)
    finally:
        exploding.trip.armed = False
    model_state.assert_unchanged(before, exploding)
    # and the model still works normally afterwards, with this very handle
    e = run(handle, x_small, method, target=2, layer=layer)
    assert np.isfinite(e.heatmap).all()
    model_state.assert_unchanged(before, exploding)


# ----------------------------------------------------------------------------------
# training mode


def bn_net() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(3, 4, 3, padding=1)), ("bn", nn.BatchNorm2d(4)), ("relu", nn.ReLU()),
            ("drop", nn.Dropout(0.5)), ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()),
            ("fc", nn.Linear(4, 3)),
        ]))


@pytest.mark.parametrize("method", ALL_METHODS)
def test_training_mode_is_refused_and_not_flipped(x_small, method, model_state):
    net = bn_net().train()
    handle = interpret.load_model(net, preprocessing=Preprocessing(64, 64))
    before = model_state.snapshot(net)
    with pytest.raises(InputError, match="training mode"):
        run(handle, x_small, method, target=0, layer="relu" if method in LAYER_METHODS else None)
    with pytest.raises(InputError, match="training mode"):
        interpret.predict(handle, x_small)
    assert net.training and net.bn.training and net.drop.training
    model_state.assert_unchanged(before, net)  # BN running statistics untouched too


# ----------------------------------------------------------------------------------
# concurrency

THREAD_JOBS = [  # (method, target, params)
    ("gradcam", 281, {}),
    ("saliency", 285, {}),
    ("guided_backprop", 967, {}),
    ("smoothgrad", 282, {"samples": 2, "batch_size": 2}),
    ("integrated_gradients", 1, {"n_steps": 4, "adaptive": False, "internal_batch_size": 4}),
    ("gradcam", 967, {}),
    ("saliency", 10, {}),
    ("guided_backprop", 500, {}),
]


def _concurrently(fn, jobs):
    barrier = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def worker(i, job):
        try:
            barrier.wait(timeout=30)
            results[i] = fn(*job)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors
    return results


def test_concurrent_explanations_equal_sequential_ones(lite0, fresh_handle, x_lite, model_state):
    before = model_state.snapshot(lite0.module)
    sequential = fresh_handle(lite0)
    expected = [interpret.explain(sequential, x_lite, m, target=t, **p) for m, t, p in THREAD_JOBS]
    shared = fresh_handle(lite0)  # a new cache: the threads really run the model
    got = _concurrently(lambda m, t, p: interpret.explain(shared, x_lite, m, target=t, **p), THREAD_JOBS)
    for (m, t, _), e, g in zip(THREAD_JOBS, expected, got):
        assert (g.method, g.target) == (m, t)
        torch.testing.assert_close(g.attribution, e.attribution, rtol=1e-4, atol=1e-6,
                                   msg=lambda s: f"{m} / {t}: {s}")
        np.testing.assert_allclose(g.heatmap, e.heatmap, rtol=1e-4, atol=1e-5)
    # the same method for different targets gives different maps: not one result shared
    assert not torch.allclose(got[0].attribution, got[5].attribution)
    assert not torch.allclose(got[2].attribution, got[7].attribution)
    model_state.assert_unchanged(before, lite0.module)


def test_deeplift_runs_alone_while_other_threads_explain(x_small, model_state):
    """DeepLIFT's Captum hooks are seen by every thread; the handle's writer lock must
    keep saliency in other threads from running through them."""
    net = small_cnn(seed=3)
    jobs = [("deeplift" if i % 2 == 0 else "saliency", i) for i in range(8)]
    seq = small_handle(net)
    expected = [interpret.explain(seq, x_small, m, target=t).attribution for m, t in jobs]
    before = model_state.snapshot(net)
    shared = small_handle(net)
    got = _concurrently(lambda m, t: interpret.explain(shared, x_small, m, target=t).attribution, jobs)
    for (m, t), e, g in zip(jobs, expected, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6, msg=lambda s: f"{m} / {t}: {s}")
    model_state.assert_unchanged(before, net)
