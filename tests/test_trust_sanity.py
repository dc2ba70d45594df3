"""The sanity check (Adebayo et al. 2018): on the bundled model guided backpropagation
fails and Grad-CAM passes; the shared model is never touched (parameter hash, hooks,
grads, flags); the randomisation is Quantus's MPRT weight for weight, and so are the
per-layer correlations."""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import interpret
from interpret import Cancelled, InputError, Preprocessing
from interpret.trust.sanity import parameter_hash, randomisation_units, randomise

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def x96(lite0, coffee):
    return F.interpolate(lite0.preprocess(coffee), size=(96, 96), mode="bilinear", align_corners=False)


def test_guided_backprop_fails_and_gradcam_passes_on_the_bundled_model(lite0, x96, model_state):
    before = model_state.snapshot(lite0.module)
    h0 = parameter_hash(lite0.module)
    gb = interpret.sanity_check(lite0, x96, "guided_backprop")
    gc = interpret.sanity_check(lite0, x96, "gradcam")
    model_state.assert_unchanged(before, lite0.module)
    assert parameter_hash(lite0.module) == h0 == gb.model_hash == gc.model_hash
    assert gb.steps[:3] == ("_fc", "_bn1", "_conv_head") and len(gb.steps) == 21
    # the paper's result: with the classifier random, guided backprop's map is unchanged
    assert gb.spearman[0] > 0.95
    assert gc.spearman[0] < 0.5
    assert not gb.passed and gb.status == "failed" and gb.mean_correlation > 0.6
    assert gc.passed and gc.status == "passed" and gc.mean_correlation < 0.4
    assert gb.correlation == gb.spearman[-1] and len(gb.ssim) == len(gb.steps)
    assert "failed" in gb.sentence and "passed" in gc.sentence


def test_top_layers_only_and_explicit_layers(lite0, x96):
    top = interpret.sanity_check(lite0, x96, "gradcam", layers=2)
    assert top.steps == ("_fc", "_bn1")
    named = interpret.sanity_check(lite0, x96, "gradcam", layers=["_fc"])
    assert named.steps == ("_fc",) and named.spearman[0] == pytest.approx(top.spearman[0])
    e = interpret.explain(lite0, x96, "gradcam")
    from_explanation = interpret.sanity_check(lite0, x96, e, layers=2)
    np.testing.assert_allclose(from_explanation.spearman, top.spearman)
    with pytest.raises(InputError, match="no module named"):
        interpret.sanity_check(lite0, x96, "gradcam", layers=["_nope"])
    with pytest.raises(InputError, match="blocks to randomise"):
        interpret.sanity_check(lite0, x96, "gradcam", layers=99)
    with pytest.raises(InputError, match="its own layer"):
        interpret.sanity_check(lite0, x96, e, layer="_blocks.10")


def test_different_seeds_randomise_differently_and_one_seed_repeats(lite0, x96):
    a = interpret.sanity_check(lite0, x96, "saliency", layers=3, seed=0)
    b = interpret.sanity_check(lite0, x96, "saliency", layers=3, seed=0)
    c = interpret.sanity_check(lite0, x96, "saliency", layers=3, seed=5)
    assert a.spearman == b.spearman
    assert a.spearman != c.spearman


def test_a_cancelled_sanity_check_leaves_the_model_untouched(lite0, x96, model_state):
    before = model_state.snapshot(lite0.module)
    seen = []

    def stop(done, total):
        seen.append((done, total))
        if done == 2:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        interpret.sanity_check(lite0, x96, "gradcam", progress=stop)
    assert seen == [(1, 21), (2, 21)]
    model_state.assert_unchanged(before, lite0.module)


def _tiny_cnn():
    with torch.random.fork_rng():
        torch.manual_seed(3)
        net = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(8, 12, 3, padding=1)), ("bn", nn.BatchNorm2d(12)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(12, 5))]))
    with torch.no_grad():  # non-trivial batch-norm statistics, so that resetting them matters
        net.bn.running_mean.uniform_(-0.2, 0.2, generator=torch.Generator().manual_seed(0))
        net.bn.running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(1))
    return net.eval()


def test_the_randomised_model_is_quantus_mprts_weight_for_weight(lite0):
    from quantus.helpers.model.pytorch_model import PyTorchModel

    net = _tiny_cnn()
    qm = PyTorchModel(copy.deepcopy(net), channel_first=True, softmax=False, device="cpu")
    last = None
    for _, last in qm.get_random_layer_generator(order="top_down", seed=42):
        pass
    ours = randomise(copy.deepcopy(net), randomisation_units(net, "blocks")[::-1], seed=42)
    theirs = last.state_dict()
    for k, v in ours.state_dict().items():
        assert torch.equal(v, theirs[k]), k
    assert not torch.equal(ours.conv1.weight, net.conv1.weight)
    # the bundled model: the same 99 modules as Quantus's MPRT walks through
    assert randomisation_units(lite0.module, "modules") == [
        n for n, m in lite0.module.named_modules() if hasattr(m, "reset_parameters")]


@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_per_layer_correlations_agree_with_quantus_mprt(method):
    import quantus

    net = _tiny_cnn()
    pre = Preprocessing(32, 32)
    handle = interpret.load_model(net, preprocessing=pre, labels=[f"c{i}" for i in range(5)])
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    target = interpret.predict(handle, x, 1)[0].index
    layer = "conv2" if method == "gradcam" else None

    def explain_func(model, inputs, targets, **kwargs):
        h = interpret.load_model(model, preprocessing=pre, labels=[f"c{i}" for i in range(5)])
        maps = [interpret.explain(h, torch.from_numpy(np.asarray(xi))[None], method, layer=layer,
                                  target=int(t)).heatmap for xi, t in zip(inputs, targets)]
        return np.stack(maps)[:, None]

    ours = interpret.sanity_check(handle, x, method, layer=layer, layers="modules", seed=42)
    original = interpret.explain(handle, x, method, layer=layer, target=target).heatmap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = quantus.MPRT(seed=42, layer_order="top_down", disable_warnings=True)(
            model=copy.deepcopy(net), x_batch=x.numpy(), y_batch=np.array([target]),
            a_batch=original[None, None], explain_func=explain_func, channel_first=True, device="cpu")
    theirs = {k: v[0] for k, v in scores.items() if k != "original"}
    assert list(theirs) == list(ours.steps) == ["fc", "bn", "conv2", "conv1"]
    for name, rho in zip(ours.steps, ours.spearman):
        ref = theirs[name]
        # NaN in Quantus (a constant randomised map) is 0 here: nothing of the original left
        assert rho == pytest.approx(0.0 if np.isnan(ref) else ref, abs=1e-6), name
