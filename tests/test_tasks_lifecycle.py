"""Every method that runs on a segmentation, multi-label, binary or regression model
leaves it untouched (hooks, gradients, flags, weights, buffers), after success and
after a refused target: the lifecycle matrix of tests/test_lifecycle.py, per task."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret import InputError, Preprocessing, targets

pytestmark = pytest.mark.usefixtures("single_thread")


def _seeded(build):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build().eval()


def segmenter() -> nn.Module:
    """conv-bn-relu-pool-conv-relu-upsample-head: a small fully convolutional net with
    a batch norm (buffers) and a downsampling (a CAM layer coarser than the input)."""
    return _seeded(lambda: nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("bn1", nn.BatchNorm2d(8)), ("relu1", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
        ("up", nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)),
        ("head", nn.Conv2d(16, 3, 1))])))


def head_cnn(outputs: int) -> nn.Module:
    return _seeded(lambda: nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(16, outputs))])))


PRE = Preprocessing((32, 32), None)


def handles():
    return {
        "segmentation": interpret.load_model(segmenter(), preprocessing=PRE),
        "multilabel": interpret.load_model(head_cnn(4), preprocessing=PRE, task="multilabel"),
        "binary": interpret.load_model(head_cnn(1), preprocessing=PRE),
        "regression": interpret.load_model(head_cnn(1), preprocessing=PRE, task="regression"),
    }


@pytest.fixture(scope="module")
def x32():
    return torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def _target(task):
    mask = np.zeros((32, 32), bool)
    mask[4:20, 8:28] = True
    return {"segmentation": targets.region(1, mask=mask), "multilabel": targets.label(2),
            "binary": targets.output(0, sign=-1), "regression": targets.output(0)}[task]


CASES = [(task, m.name) for task, h in handles().items() for m in interpret.methods(h)]


def test_the_matrix_covers_every_cnn_method_on_every_task():
    per_task = {}
    for task, name in CASES:
        per_task.setdefault(task, set()).add(name)
    cnn = {m.name for m in interpret.methods(interpret.load_model(head_cnn(3), preprocessing=PRE))}
    for task, names in per_task.items():
        assert names == cnn, f"{task}: {sorted(cnn - names)} cannot run"


@pytest.mark.parametrize("task,method", CASES)
def test_model_unchanged_after_each_method_on_each_task(task, method, x32, model_state):
    h = handles()[task]
    before = model_state.snapshot(h.module)
    params = dict(interpret.get_method(method).preview)
    e = interpret.explain(h, x32, method, target=_target(task), **params)
    model_state.assert_unchanged(before, h.module)
    assert e.heatmap.shape == (32, 32) and np.isfinite(e.heatmap).all()
    assert e.explained.key == targets.resolve(h, _target(task), x32).key
    if interpret.get_method(method).contrastive:
        # the score explained is the target's own, on the model's output
        with torch.no_grad():
            out = interpret.tensors.task_output(h.module(x32), (32, 32))
        assert e.score == pytest.approx(float(e.explained.score(out)[0]), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("task", ["segmentation", "multilabel", "binary", "regression"])
@pytest.mark.parametrize("method", ["gradcam", "saliency", "integrated_gradients", "occlusion", "deeplift"])
def test_model_unchanged_after_a_refused_target(task, method, x32, model_state):
    h = handles()[task]
    before = model_state.snapshot(h.module)
    bad = {"segmentation": targets.region(7), "multilabel": targets.label(40),
           "binary": targets.output(3), "regression": targets.classes(0)}[task]
    with pytest.raises(InputError):
        interpret.explain(h, x32, method, target=bad, **interpret.get_method(method).preview)
    model_state.assert_unchanged(before, h.module)


@pytest.mark.parametrize("task", ["segmentation", "regression"])
def test_dataset_mode_refuses_a_task_it_does_not_support_with_a_sentence(task, tmp_path):
    """(Multi-label and binary sets are analysed: tests/test_dataset_labels.py.)"""
    with pytest.raises(InputError, match=f"analyses classifiers .* for now; .* is a {task} model"):
        interpret.analyze_dataset(handles()[task], tmp_path, out=tmp_path / "out")
