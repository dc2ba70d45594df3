"""The lifecycle matrix of tests/test_lifecycle.py on the two new tasks: every method
that applies to an image-text model (a text prompt) or an embedding model (a reference
photo) leaves the whole model untouched (text tower included: hooks, gradients,
flags, weights, buffers), after success and after a refused target; the methods that
cannot run say why."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret import InputError, Preprocessing, targets

from imagetext_models import tiny_clip

pytestmark = pytest.mark.usefixtures("single_thread")

CLIP = tiny_clip(seed=1, image_size=32, patch=8)


def embedder() -> nn.Module:
    """conv-bn-relu-pool-conv-relu-gap: an embedding of 16 numbers per photo."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("bn1", nn.BatchNorm2d(8)), ("relu1", nn.ReLU()),
            ("pool", nn.MaxPool2d(2)), ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten())])).eval()


EMBEDDER = embedder()
REF = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(9))


def handles():
    return {
        "image-text": interpret.load_model(CLIP, prompts=["a red square", "a blue circle"]),
        "embedding": interpret.load_model(EMBEDDER, preprocessing=Preprocessing((32, 32), None),
                                          task="embedding"),
    }


ROOT = {"image-text": CLIP, "embedding": EMBEDDER}  # what must stay unchanged: the whole model


def _target(task, method=None):
    contrastive = method is None or interpret.get_method(method).contrastive
    return {"image-text": targets.text("a dog", contrast="a red square" if contrastive else None),
            "embedding": targets.similar_to(REF, "ref.png")}[task]


CASES = [(task, m.name) for task, h in handles().items() for m in interpret.methods(h)]


@pytest.fixture(scope="module")
def x32():
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def test_the_matrix_covers_the_cams_gradients_and_occlusion_and_the_rest_say_why():
    per_task = {}
    for task, name in CASES:
        per_task.setdefault(task, set()).add(name)
    must = {"gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "saliency",
            "integrated_gradients", "occlusion"}
    vit = {"attention_rollout", "transformer_attribution", "legrad"}  # open_clip's ViT blocks
    assert vit <= per_task["image-text"]
    for task, h in handles().items():
        assert must <= per_task[task], f"{task}: {sorted(must - per_task[task])} cannot run"
        for spec in interpret.methods():
            if spec.name not in per_task[task]:
                why = spec.unavailable(h)
                assert isinstance(why, str) and len(why) > 10, spec.name


@pytest.mark.parametrize("task,method", CASES)
def test_model_unchanged_after_each_method_on_each_new_task(task, method, x32, model_state):
    h = handles()[task]
    before = model_state.snapshot(ROOT[task])
    params = dict(interpret.get_method(method).preview)
    e = interpret.explain(h, x32, method, target=_target(task, method), **params)
    model_state.assert_unchanged(before, ROOT[task])
    assert e.heatmap.shape == (32, 32) and np.isfinite(e.heatmap).all()
    if interpret.get_method(method).contrastive:
        with torch.no_grad():
            out = h.module(x32)
        assert e.score == pytest.approx(float(e.explained.score(out)[0]), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("task", ["image-text", "embedding"])
@pytest.mark.parametrize("method", ["gradcam", "saliency", "integrated_gradients", "occlusion"])
def test_model_unchanged_after_a_refused_target(task, method, x32, model_state):
    h = handles()[task]
    before = model_state.snapshot(ROOT[task])
    bad = {"image-text": targets.text(7), "embedding": targets.classes(0)}[task]
    with pytest.raises(InputError):
        interpret.explain(h, x32, method, target=bad, **interpret.get_method(method).preview)
    model_state.assert_unchanged(before, ROOT[task])
