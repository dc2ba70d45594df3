"""What the Features page's embedding says of each photo follows the model's task: a
one-logit model never shows a softmax probability (which is 100% for any photo), a
multi-label model's labels are independent sigmoids, a regressor has a value and no
probability (issue 19: no silent wrong answers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret.features.embedding import predicted_points


def _handle(n_out: int, task: str) -> interpret.ModelHandle:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, n_out)).eval()
    return interpret.load_model(net, task=task, labels=[f"l{i}" for i in range(n_out)],
                                preprocessing=interpret.Preprocessing(32, 32))


LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-3.0, -0.5, -2.0]])


def test_a_classifiers_points_are_its_softmax():
    pred, labels, conf = predicted_points(_handle(3, "classification"), LOGITS)
    soft = torch.softmax(LOGITS, 1)
    assert list(pred) == [0, 1] and labels == ("l0", "l1")
    np.testing.assert_allclose(conf, [float(soft[0, 0]), float(soft[1, 1])], rtol=1e-6)


def test_a_multilabel_models_points_are_its_own_sigmoids_not_a_softmax():
    pred, labels, conf = predicted_points(_handle(3, "multilabel"), LOGITS)
    assert list(pred) == [0, 1] and labels == ("l0", "l1")
    np.testing.assert_allclose(conf, [1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(0.5))], rtol=1e-6)


def test_a_one_logit_model_never_shows_the_softmax_of_one_number():
    logits = torch.tensor([[1.5], [-0.2], [0.0]])
    pred, labels, conf = predicted_points(_handle(1, "binary"), logits)
    p = [1 / (1 + math.exp(-1.5)), 1 / (1 + math.exp(0.2)), 0.5]
    assert labels == ("l0", "not l0", "l0")
    np.testing.assert_allclose(conf, [p[0], 1 - p[1], 0.5], rtol=1e-6)
    assert not np.allclose(conf, 1.0)  # the softmax of one number is 1 for every photo


def test_a_regressor_has_a_value_and_no_probability():
    logits = torch.tensor([[3.25], [-0.125]])
    pred, labels, conf = predicted_points(_handle(1, "regression"), logits)
    assert labels == ("3.25", "-0.125") and np.isnan(conf).all()


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_embed_on_a_one_output_model_goes_through_its_task(task):
    from PIL import Image

    h = _handle(1, task)
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)) for _ in range(3)]
    em = interpret.embed(h, photos)
    with torch.no_grad():
        out = torch.cat([h.module(h.preprocessing.to_tensor(p)) for p in photos])[:, 0]
    if task == "binary":
        p = torch.sigmoid(out).numpy()
        np.testing.assert_allclose(em.probabilities, np.maximum(p, 1 - p), rtol=1e-4)
    else:
        assert np.isnan(em.probabilities).all()
        assert list(em.predicted_labels) == [f"{v:.4g}" for v in out.numpy()]

