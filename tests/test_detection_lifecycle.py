"""Every method that runs on an object detector leaves it untouched (hooks,
gradients, flags, weights, buffers, module tree), after success, after a refused box
and after a cancel: the lifecycle matrix of tests/test_lifecycle.py on a detection
model; the methods that cannot run say why."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interpret
from interpret import Cancelled, InputError, targets
from interpret.tensors import task_output

from detectors import handle, photo

pytestmark = pytest.mark.usefixtures("single_thread")

H = handle()
IMG = photo(2)
METHODS = [m.name for m in interpret.methods(H)]


def _box():
    return targets.box(interpret.predict(H, IMG, threshold=0.0)[0])


def test_every_method_runs_on_a_detector_or_says_why():
    offered = set(METHODS)
    for spec in interpret.methods():
        if spec.name not in offered:
            why = spec.unavailable(H)
            assert why and isinstance(why, str), spec.name
    # the list: the five gradient CAMs, Eigen-CAM, saliency, IG, occlusion, D-RISE
    assert {"gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "eigencam", "saliency",
            "integrated_gradients", "occlusion", "drise"} <= offered


@pytest.mark.parametrize("method", METHODS)
def test_model_unchanged_after_each_method_on_a_detector(method, model_state):
    h = interpret.load_model(H.module, labels=H.labels, preprocessing=H.preprocessing)  # fresh cache
    before = model_state.snapshot(h.module)
    e = interpret.explain(h, IMG, method, target=_box(), **dict(interpret.get_method(method).preview))
    model_state.assert_unchanged(before, h.module)
    assert e.heatmap.shape == (64, 64) and np.isfinite(e.heatmap).all()
    if interpret.get_method(method).contrastive and method != "drise":
        with torch.no_grad():
            out = task_output(h.module(h.preprocess(IMG)), (64, 64))
        # the score explained is the box target's own, on the model's output
        assert e.score == pytest.approx(float(e.explained.score(out)[0]), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("method", ["gradcam", "eigencam", "saliency", "integrated_gradients",
                                    "occlusion", "drise"])
def test_model_unchanged_after_a_refused_box(method, model_state):
    before = model_state.snapshot(H.module)
    with pytest.raises(InputError, match="No detection of"):
        interpret.explain(H, IMG, method, target=targets.box((0, 0, 1, 1), label=1),
                          **interpret.get_method(method).preview)
    model_state.assert_unchanged(before, H.module)


@pytest.mark.parametrize("method", [m for m in METHODS if interpret.get_method(m).progress])
def test_no_hooks_left_after_cancel_on_a_detector(method, model_state):
    h = interpret.load_model(H.module, labels=H.labels, preprocessing=H.preprocessing)

    def stop(done, total):
        raise Cancelled()

    before = model_state.snapshot(h.module)
    with pytest.raises(Cancelled):
        interpret.explain(h, IMG, method, target=_box(), progress=stop, **interpret.get_method(method).preview)
    model_state.assert_unchanged(before, h.module)


def test_dataset_mode_refuses_a_detector_with_a_sentence(tmp_path):
    with pytest.raises(InputError, match="is an object detector"):
        interpret.analyze_dataset(H, tmp_path, out=tmp_path / "out")
