"""Every registered method on every family of model the dashboard loads: torchvision and
timm ResNet, ConvNeXt, EfficientNet, ViT, Swin; timm ViT with register tokens and DeiT;
a Hugging Face ViT loaded from a saved folder; an ONNX CNN converted by onnx2torch; the
bundled EfficientNet-Lite0.  "Runs" means it returns a finite, non-zero attribution, not
a polite refusal; where the registry says a method cannot apply, it must be a
transformer method on a model without global self-attention.  After every run the
model has the hooks, gradients, flags, weights and submodules it had before.

Tiny seeded models (no downloads) and each method's ``MethodSpec.preview`` settings
keep the whole matrix to about a minute on two cores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interpret
from interpret import Preprocessing

import tiny_models as tm

pytestmark = pytest.mark.usefixtures("single_thread")

METHODS = [m.name for m in interpret.methods()]
TRANSFORMER_METHODS = {m.name for m in interpret.methods() if m.family == "transformer"}
#: the families with global self-attention and a class token (or pooled tokens)
VITS = {"torchvision-vit", "timm-vit", "timm-vit-registers", "timm-deit", "hf-vit"}
FAMILIES = list(tm.families()) + ["hf-vit", "onnx-cnn", "bundled-lite0"]
#: the convolutional families without LayerNorm, where LRP must run
CNN_FAMILIES = {"torchvision-resnet", "torchvision-efficientnet", "timm-resnet", "timm-efficientnet",
                "onnx-cnn", "bundled-lite0"}

_handles = {}


@pytest.fixture(scope="module")
def handles(tmp_path_factory, lite0):
    """One handle per family, built on first use."""
    root = tmp_path_factory.mktemp("families")

    def get(family: str) -> interpret.ModelHandle:
        if family in _handles:
            return _handles[family]
        if family == "hf-vit":
            folder = tm.save_hf_folder(tm.hf_vit(), root / "hf-vit")
            h = interpret.load_model(folder)
        elif family == "onnx-cnn":
            path = tm.export_onnx(tm.small_cnn(), root / "cnn.onnx")
            h = interpret.load_model(path, preprocessing=Preprocessing(tm.SIZE, tm.SIZE))
        elif family == "bundled-lite0":
            h = interpret.ModelHandle(lite0.module, info=lite0.info)
        else:
            module = tm.families()[family]()
            vit = any(k in family for k in ("vit", "deit", "swin"))
            size = tm.VIT_SIZE if vit else tm.SIZE
            h = interpret.load_model(module, preprocessing=Preprocessing(size, size))
        _handles[family] = h
        return h

    yield get
    _handles.clear()


def _input(handle) -> torch.Tensor:
    h, w = handle.input_size
    if handle.name == "efficientnet_lite0":
        h = w = 96  # any size works for the CNN; smaller is faster
    g = torch.Generator().manual_seed(3)
    return torch.randn(1, 3, h, w, generator=g)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", FAMILIES)
def test_method_runs_on_family_and_leaves_the_model_unchanged(handles, family, method, model_state):
    handle = handles(family)
    spec = interpret.get_method(method)
    why = spec.unavailable(handle)
    if why is not None:
        # the registry may only rule out transformer methods on models without global
        # self-attention (CNNs, Swin's windows), and LRP (zennit's CNN rules) on models
        # with LayerNorm or attention (issue 21); anything else must run
        if method == "lrp":
            assert family not in CNN_FAMILIES and "no LRP rule" in why, f"lrp refused on {family}: {why}"
        elif method == "drise":  # made for detectors (issue 20); none of these families is one
            assert "object detector" in why, f"drise refused on {family}: {why}"
        else:
            assert method in TRANSFORMER_METHODS and family not in VITS, (
                f"{method} refused on {family}: {why}")
            assert "vision transformer" in why or "windows" in why
        assert method not in [m.name for m in interpret.methods(handle)]
        with pytest.raises(interpret.InputError, match="cannot run"):
            interpret.explain(handle, _input(handle), method)
        return
    x = _input(handle)
    before = model_state.snapshot(handle.module)
    e = interpret.explain(handle, x, method, **dict(spec.preview))
    model_state.assert_unchanged(before, handle.module)
    a = e.attribution.detach().float()
    assert torch.isfinite(a).all(), f"{method} on {family}: non-finite attribution"
    # LRP's relevance sums to the explained score: where the score itself is zero (the
    # random torchvision EfficientNet's logits are ~1e-13, its activations shrinking 100x
    # a stage), a zero map is the right answer, not a failure
    degenerate = method == "lrp" and abs(e.score) < 1e-9
    assert float(a.abs().max()) > 0 or degenerate, f"{method} on {family}: an all-zero attribution"
    assert np.isfinite(e.heatmap).all() and e.heatmap.shape == tuple(x.shape[-2:])


@pytest.mark.parametrize("family", FAMILIES)
def test_the_suggested_layer_runs_and_has_maps(handles, family):
    """Every family has a suggested layer whose maps are larger than 1 x 1 (so the CAMs
    are maps, not one number)."""
    handle = handles(family)
    layer = interpret.default_layer(handle)
    x = _input(handle)
    maps = interpret.layer_maps(handle, x, layer)
    C, h, w = maps.shape
    print(f"\n{family}: {layer} -> {C} x {h} x {w}")
    assert h * w > 1


def test_transformer_methods_are_offered_exactly_on_vits(handles):
    offered = {f: {m.name for m in interpret.methods(handles(f))} & TRANSFORMER_METHODS
               for f in FAMILIES}
    for f, got in offered.items():
        assert got == (TRANSFORMER_METHODS if f in VITS else set()), f


@pytest.mark.parametrize("family", ["torchvision-resnet", "timm-resnet", "bundled-lite0", "onnx-cnn"])
def test_deeplift_is_complete_where_activations_are_reused(handles, family, model_state):
    """DeepLIFT's summation-to-delta (Shrikumar et al. 2017, eq. 1): the attributions
    add up to f(x) - f(baseline).  torchvision's ResNets call one ReLU module twice per
    block and Lite0 one ReLU6 per block: split on the private copy (Lite0's ReLU6 also
    needs the Rescale rule Captum lacks).  (Models with LayerNorm, ConvNeXt and the ViTs,
    or with squeeze-excitation products, run but are not complete: the Rescale rule has
    nothing for them; ``extras["convergence_delta"]`` says by how much.)"""
    handle = handles(family)
    x = _input(handle)
    before = model_state.snapshot(handle.module)
    e = interpret.explain(handle, x, "deeplift", target=1, baseline="mean")
    model_state.assert_unchanged(before, handle.module)
    with torch.no_grad():
        diff = float(handle.module(x)[0, 1] - handle.module(torch.zeros_like(x))[0, 1])
    total = float(e.attribution.double().sum())
    print(f"\n{family}: sum of attributions {total:.6f}, f(x) - f(0) {diff:.6f}, "
          f"split {len(e.extras['split_modules'])} modules")
    assert abs(diff) > 1e-3
    assert total == pytest.approx(diff, rel=1e-3, abs=1e-5)
    if family in ("torchvision-resnet", "bundled-lite0"):
        assert e.extras["split_modules"], "the reused activation modules should have been split"


def test_deeplift_copy_is_private_cached_and_follows_the_weights(handles):
    from interpret.methods.deeplift import SplitCalls, splittable_copy

    handle = interpret.load_model(tm.tv_resnet(), preprocessing=Preprocessing(tm.SIZE, tm.SIZE))
    twin, split = splittable_copy(handle)
    assert twin is not handle.module and "layer1.0.relu" in split
    assert isinstance(twin.layer1[0].relu, SplitCalls) and isinstance(handle.module.layer1[0].relu, torch.nn.ReLU)
    assert all(p is not q for p, q in zip(twin.parameters(), handle.module.parameters()))
    assert splittable_copy(handle)[0] is twin  # cached on the handle's runtime
    x = _input(handle)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), handle.module(x))
        handle.module.fc.bias.add_(1.0)  # an optimiser step in a notebook
    twin2, _ = splittable_copy(handle)
    assert twin2 is not twin
    with torch.no_grad():
        torch.testing.assert_close(twin2(x), handle.module(x))
    # a flag the weights do not show (here the caller's own inplace switch) rebuilds it too
    handle.module.relu.inplace = not handle.module.relu.inplace
    try:
        assert splittable_copy(handle)[0] is not twin2
    finally:
        handle.module.relu.inplace = not handle.module.relu.inplace


def test_deeplift_uses_torchs_rule_for_a_library_activation(model_state):
    """timm's own GELU module and transformers' GELUActivation compute torch's GELU: the
    private copy uses nn.GELU instead (Captum keys its rules by type), and DeepLIFT is
    then complete; with the library module left in place it would not be."""
    import timm.layers.activations as timm_act
    from transformers.activations import GELUActivation

    from interpret.methods.deeplift import _torch_equivalent

    assert type(_torch_equivalent(timm_act.GELU())) is torch.nn.GELU
    assert type(_torch_equivalent(GELUActivation())) is torch.nn.GELU
    assert _torch_equivalent(timm_act.Sigmoid()) is None  # a gate, not an activation
    net = tm.seeded(lambda: torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1), timm_act.GELU(), torch.nn.Conv2d(6, 6, 3, padding=1),
        GELUActivation(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(6, 3)))
    handle = interpret.load_model(net, preprocessing=Preprocessing(16, 16))
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    before = model_state.snapshot(net)
    e = interpret.explain(handle, x, "deeplift", target=2, baseline="mean")
    model_state.assert_unchanged(before, net)
    with torch.no_grad():
        diff = float(net(x)[0, 2] - net(torch.zeros_like(x))[0, 2])
    assert abs(diff) > 1e-3
    assert float(e.attribution.double().sum()) == pytest.approx(diff, rel=1e-4, abs=1e-6)
