"""LRP (``explain(..., "lrp")``): the same numbers as zennit with the same composite and
canonizers, relevance that sums to the explained score where the rules conserve it, and
a model left exactly as it was (zennit's hooks and BatchNorm merges happen on a private
copy), also when the forward fails midway."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
from torch import nn

import interpret
from interpret import Preprocessing

pytestmark = pytest.mark.usefixtures("single_thread")


def bias_free_cnn() -> nn.Module:
    """conv-bn-relu-pool-conv-relu-gap-fc with no biases and a BatchNorm of zero shift:
    the rules then lose nothing to biases, so LRP conserves the score up to epsilon."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1, bias=False)), ("bn", nn.BatchNorm2d(8)),
            ("relu1", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(8, 16, 3, padding=1, bias=False)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(16, 4, bias=False)),
        ]))
        with torch.no_grad():
            net.bn.weight.uniform_(0.5, 1.5)
            net.bn.running_var.uniform_(0.5, 2.0)
            # zero shift after the merge: bias - mean * scale = 0
            net.bn.running_mean.zero_()
            net.bn.bias.zero_()
            net.fc.weight.abs_()  # a positive score to explain
    return net.eval()


def resnet():
    from torchvision.models import resnet18

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return resnet18(num_classes=5).eval()


X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def zennit_reference(model, x, target, composite_name):
    """zennit's own Gradient attributor on a separate copy, output relevance = the
    target's logit at the target (zennit-crp's convention)."""
    from zennit.attribution import Gradient
    from zennit.composites import EpsilonAlpha2Beta1, EpsilonPlusFlat
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer
    from torchvision.models.resnet import ResNet

    ref = copy.deepcopy(model)
    canon = [ResNetCanonizer()] if isinstance(ref, ResNet) else [SequentialMergeBatchNorm()]
    comp = {"epsilon_plus_flat": EpsilonPlusFlat, "epsilon_alpha2_beta1": EpsilonAlpha2Beta1}[composite_name](
        canonizers=canon)
    with torch.no_grad():
        logits = ref(x)
    init = torch.zeros_like(logits)
    init[0, target] = logits[0, target]
    with Gradient(model=ref, composite=comp) as attributor:
        _, rel = attributor(x.clone(), init)
    return rel


@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_alpha2_beta1"])
@pytest.mark.parametrize("build", [bias_free_cnn, resnet], ids=["cnn", "resnet18"])
def test_lrp_equals_zennit_with_the_same_composite_and_canonizers(build, composite, model_state):
    model = build()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    before = model_state.snapshot(model)
    e = interpret.explain(handle, X, "lrp", target=1, composite=composite)
    model_state.assert_unchanged(before, model)
    ref = zennit_reference(model, X, 1, composite)
    torch.testing.assert_close(e.attribution.float(), ref.float(), rtol=1e-4, atol=1e-6 * float(ref.abs().max()))
    assert float(ref.abs().max()) > 0


def test_lrp_relevance_sums_to_the_score_where_the_rules_conserve_it():
    """Conservation (Bach et al. 2015, eq. 2; Montavon et al. 2019, Sec. 10.2.1): with no
    biases to absorb relevance, the input relevance of EpsilonPlusFlat sums to the
    explained logit, within 1e-4 relative (the epsilon stabiliser, 1e-6 per neuron, and
    float32 sums), also for "A rather than B" (the logit difference)."""
    model = bias_free_cnn()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    with torch.no_grad():
        logits = model(X)[0]
    for target, contrast in ((1, None), (2, None), (1, 3)):
        e = interpret.explain(handle, X, "lrp", target=target, contrast=contrast)
        want = float(logits[target] - (logits[contrast] if contrast is not None else 0.0))
        got = float(e.attribution.double().sum())
        assert abs(want) > 1e-2
        assert got == pytest.approx(want, rel=1e-4)
        assert e.score == pytest.approx(want, rel=1e-5)
        assert e.extras["conservation_error"] < 1e-4


def test_lrp_conservation_on_a_resnet_is_reported_and_close():
    """On a torchvision ResNet (biases from the merged BatchNorms absorb some
    relevance), the canonised LRP still sums to within 10 % of the score here, and the
    extras say by how much exactly."""
    model = resnet()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    e = interpret.explain(handle, X, "lrp", target=2)
    total = float(e.attribution.double().sum())
    assert e.extras["canonizers"] == ["ResNetCanonizer"]
    assert e.extras["relevance_sum"] == pytest.approx(total)
    # (the score on the merged copy differs from the original's in the last float digits)
    assert e.extras["conservation_error"] == pytest.approx(abs(total - e.score) / abs(e.score), rel=1e-2)
    assert e.extras["conservation_error"] < 0.1


def test_lrp_copy_is_private_and_the_model_is_unchanged_after_a_failure(model_state):
    """zennit merges BatchNorm into the convolutions and hooks every layer: on the
    private copy only.  A failure inside the forward (injected in zennit's context)
    leaves the caller's model untouched, and the next run gives the same map."""
    from interpret.methods import lrp as lrp_mod

    model = resnet()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    before = model_state.snapshot(model)
    first = interpret.explain(handle, X, "lrp", target=0)
    twin, _ = lrp_mod.lrp_copy(handle)
    assert twin is not model and all(p is not q for p, q in zip(twin.parameters(), model.parameters()))
    assert all(p.requires_grad for p in model.parameters())  # not switched off on the caller's model

    real = lrp_mod.initial_relevance

    def boom(*a, **k):
        raise RuntimeError("boom: injected failure after the forward")

    lrp_mod.initial_relevance = boom
    try:
        with pytest.raises(RuntimeError, match="boom"):
            interpret.explain(handle, X, "lrp", target=0)
    finally:
        lrp_mod.initial_relevance = real
    model_state.assert_unchanged(before, model)
    # the copy's hooks and BatchNorm merges were undone too: same map again
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in twin.modules())
    again = interpret.explain(handle, X, "lrp", target=0)
    torch.testing.assert_close(again.attribution, first.attribution)


def test_lrp_refuses_models_its_rules_do_not_cover():
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    net = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=3).eval()
    handle = interpret.load_model(net, preprocessing=Preprocessing(32, 32))
    assert "lrp" not in [m.name for m in interpret.methods(handle)]
    with pytest.raises(interpret.InputError, match="no LRP rule"):
        interpret.explain(handle, X, "lrp", target=0)


# ---------------------------------------------------------------------------------------
# EfficientNets: squeeze-excitation gates, residual sums, BatchNorms zennit did not merge


def _unbiased(model: nn.Module) -> nn.Module:
    """A copy with no bias on the relevance path (BatchNorm shifts and means, the
    classifier's bias: LRP gives relevance to biases by design, Montavon et al. 2019,
    Sec. 10.2.1), so that the rules alone decide whether the input relevance sums to
    the score.  (The squeeze-excitation convolutions keep theirs: the gate's branch
    gets no relevance.)"""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.bias.zero_()
                mod.running_mean.zero_()
            if isinstance(mod, nn.Linear) and mod.bias is not None:
                mod.bias.zero_()
    return m.eval()


def _calibrated(model: nn.Module, size: int = 64) -> nn.Module:
    """Random weights with BatchNorm variances measured on random images: logits of order
    10^3 instead of the 10^-13 a fresh torchvision EfficientNet gives."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.reset_running_stats()
                mod.momentum = None
        model.train()
        model(torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(1)))
    return model.eval()


def timm_b0():
    import timm

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return timm.create_model("efficientnet_b0", pretrained=False, num_classes=5)


def torchvision_b0():
    from torchvision.models import efficientnet_b0

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return efficientnet_b0(num_classes=5)


X64 = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("build", [timm_b0, torchvision_b0], ids=["timm", "torchvision"])
def test_lrp_conserves_on_efficientnets_with_squeeze_excitation(build, model_state):
    """Each squeeze-excitation gate is a constant multiplier (the relevance passes to the
    gated features whole), each residual sum goes through zennit's Sum/Norm rule, timm's
    BatchNormAct2d is merged: with no biases on the path, the input relevance sums to
    the explained logit within 2 % (measured 0.8 % timm, 0.9 % torchvision; before:
    5 x 10^6 and 7 x 10^20 times the logit off, the gate's product and the duplicated
    residual relevance compounding over the blocks).  The model is left as it was."""
    model = _unbiased(_calibrated(build()))
    handle = interpret.load_model(model, preprocessing=Preprocessing(64, 64))
    before = model_state.snapshot(model)
    for target in (0, 1, 2):
        e = interpret.explain(handle, X64, "lrp", target=target)
        assert abs(e.extras["score"]) > 1.0  # the copy's logit (this random net amplifies rounding)
        assert float(e.attribution.double().sum()) == pytest.approx(e.extras["score"], rel=0.02)
        assert e.extras["conservation_error"] < 0.02
    assert {"SqueezeExcitationGate", "ResidualSum", "SequentialMergeBatchNorm"} <= set(e.extras["canonizers"])
    model_state.assert_unchanged(before, model)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("build", [timm_b0, torchvision_b0], ids=["timm", "torchvision"])
def test_lrp_copy_of_an_efficientnet_computes_the_models_function(build):
    """The canonised copy (merged BatchNorms, gates and sums rerouted) gives the model's
    logits, to float rounding."""
    from interpret.methods.lrp import lrp_copy

    model = build().eval()
    twin, _ = lrp_copy(interpret.load_model(model, preprocessing=Preprocessing(64, 64)))
    with torch.no_grad():
        want, got = model(X64), twin(X64)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()))


def test_lrp_on_the_bundled_model_merges_its_batchnorms_and_conserves_without_biases(lite0, model_state):
    """The bundled EfficientNet-Lite0 (ImageNet weights) keeps each convolution's padding
    as a child module, so zennit merged none of its BatchNorms, and its residual sums
    duplicated relevance: 330 summed relevance for a logit of 9.3 on chelsea, measured.
    Now, with its biases taken off (a copy), the input relevance sums to the logit within
    3 % (1.6 % measured; 10^5 times off before).  With its biases, they absorb the
    relevance instead (Montavon et al. 2019): the sum is between 0 and the logit, and
    the canonised copy computes the model's logits."""
    import skimage.data
    from PIL import Image

    from interpret.methods.lrp import lrp_copy

    x = lite0.preprocess(Image.fromarray(skimage.data.chelsea()))
    bare = interpret.load_model(_unbiased(lite0.module), preprocessing=lite0.preprocessing)
    for target in (None, 281):
        e = interpret.explain(bare, x, "lrp", target=target)
        assert abs(e.score) > 0.05
        assert e.extras["conservation_error"] < 0.03
    before = model_state.snapshot(lite0.module)
    e = interpret.explain(lite0, x, "lrp")
    model_state.assert_unchanged(before, lite0.module)
    assert e.extras["canonizers"] == ["SequentialMergeBatchNorm", "ResidualSum"]
    assert 0 <= e.extras["relevance_sum"] <= e.score
    twin, _ = lrp_copy(lite0)
    with torch.no_grad():
        want, got = lite0.module(x), twin(x)
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()))


@pytest.mark.parametrize("shift", [0.0, -0.5], ids=["inputs >= 0 (half skipped)", "mixed signs (zennit's own)"])
def test_fast_zplus_gives_zennits_zplus_relevance_to_the_bit(shift):
    """The z+ rule with its negative-input half skipped where the input has no negative
    entry (that half is exactly zero there): bit-identical to zennit's ``ZPlus``, with
    the skip (inputs after a ReLU) and without it (mixed signs fall back to zennit)."""
    from zennit.composites import LayerMapComposite
    from zennit.rules import ZPlus

    from interpret.methods.lrp import _zplus_fast

    with torch.random.fork_rng():
        torch.manual_seed(5)
        conv = nn.Conv2d(4, 6, 3, padding=1).eval().requires_grad_(False)
        x = (torch.rand(2, 4, 9, 9) + shift)
        grad = torch.randn(2, 6, 9, 9)
    got = []
    for rule in (ZPlus(), _zplus_fast()):
        net = copy.deepcopy(conv)
        with LayerMapComposite([(nn.Conv2d, rule)]).context(net) as m:
            xx = x.clone().requires_grad_(True)
            (r,) = torch.autograd.grad(m(xx), [xx], grad_outputs=[grad])
        got.append(r)
    assert (x >= 0).all() == (shift == 0.0)
    assert float(got[0].abs().max()) > 0
    assert torch.equal(got[0], got[1])
