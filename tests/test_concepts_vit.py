"""Concepts (``interpret.concepts``) on vision transformers, by AttnLRP
(:mod:`interpret.concepts.vit`), on tiny random-init timm, torchvision and Hugging Face
ViTs with every parameter random (``test_attnlrp.randomised``):

* (a) axiom: each channel's relevance is the sum over every token (class token
  included) of activation x AttnLRP gradient at the block's output, computed here
  independently on a copy; the channels add up to the layer's total;
* (b) each concept's heatmap equals a plain loop: one AttnLRP backward per channel
  with the layer's gradient masked by hand (a tensor hook on a copy), to 1e-5;
* (c) linearity: the conditional heatmaps of all channels add up to the unconditional
  AttnLRP input relevance (``explain(..., "attnlrp")``);
* (d) lifecycle: the shared model untouched after a cancel and after failures
  injected inside the rules and after the backward to the layer;
* bad input, each with its message; the set-level entries take a ViT (AttnLRP).
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

import interpret
from interpret import Cancelled, InputError, Preprocessing
from interpret.concepts import vit as V
from interpret.methods import attnlrp as A

import tiny_models as tm
from test_attnlrp import X, hf_vit, randomised, timm_vit, tv_vit

pytestmark = pytest.mark.usefixtures("single_thread")

TARGET = 1


def load(build):
    return interpret.load_model(build(), preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))


FAMILIES = pytest.mark.parametrize("build", [timm_vit, tv_vit, hf_vit], ids=["timm", "torchvision", "hf"])


def reference_pass(handle, layer, channel=None):
    """(activation x gradient at ``layer``'s output tokens, 1 x N x C; the input
    relevance summed over colour, H x W) by AttnLRP on a deep copy of the rules' copy,
    the gradient arriving at the layer masked to ``channel`` by a tensor hook (None:
    unmasked)."""
    twin = copy.deepcopy(A.attnlrp_copy(handle))
    seen = {}

    def tap(mod, inp, out):
        t = out[0] if isinstance(out, tuple) else out
        seen["a"] = t
        if channel is not None:
            mask = torch.zeros(t.shape[-1], dtype=t.dtype)
            mask[channel] = 1
            t.register_hook(lambda g: g * mask)

    twin.get_submodule(layer).register_forward_hook(tap)
    x = X.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = twin(x)
        out = getattr(out, "logits", out)
        a = seen["a"]
        a.retain_grad()
        out[0, TARGET].backward()
    return (a.detach() * a.grad).double(), (x.detach() * x.grad).double()[0].sum(0)


@FAMILIES
def test_vit_concept_relevances_are_activation_times_gradient_over_all_tokens_and_sum_to_the_layer_total(build):
    handle = load(build)
    cs = interpret.concepts(handle, X, target=TARGET, k=64)
    assert cs.layer == V.default_layer(handle) and cs.composite == "attnlrp"
    ref, _ = reference_pass(handle, cs.layer)
    per_channel = ref[0].sum(0).numpy()  # every token: class token and patch tokens
    assert len(cs.channel_relevance) == ref.shape[2] == 32
    np.testing.assert_allclose(cs.channel_relevance, per_channel, rtol=1e-6, atol=1e-9 * np.abs(per_channel).max())
    assert cs.total == pytest.approx(float(ref.sum()), rel=1e-6)
    assert sum(c.value for c in interpret.concepts(handle, X, target=TARGET, channels=range(32))) \
        == pytest.approx(cs.total, rel=1e-9, abs=1e-12)
    # the class token is counted: without it the channels would not add up to the total
    assert abs(float(ref[0, 0].sum())) > 1e-3 * abs(cs.total)
    assert sum(abs(c.relevance) for c in interpret.concepts(handle, X, target=TARGET, channels=range(32))) \
        == pytest.approx(1.0, rel=1e-9)
    # the top k are the k largest, in order
    top = interpret.concepts(handle, X, target=TARGET, k=5)
    assert top.channels == [int(c) for c in np.argsort(-per_channel, kind="stable")[:5]]
    with torch.no_grad():
        logit = float(getattr(handle.module(X), "logits", handle.module(X))[0, TARGET])
    assert cs.score == pytest.approx(logit, rel=1e-4)  # the copy's explicit attention vs the fused one


@pytest.mark.parametrize("build", [timm_vit, hf_vit], ids=["timm", "hf"])
def test_vit_concept_heatmaps_equal_a_loop_masking_the_layer_gradient_by_hand(build):
    handle = load(build)
    layer = A.attention.layout(handle).blocks[-1].name  # the last block, not the default
    cs = interpret.concepts(handle, X, layer=layer, target=TARGET, k=10)
    assert cs.layer == layer and len(cs) == 10
    for c in cs:
        _, heat = reference_pass(handle, layer, c.channel)
        assert c.heatmap.shape == (tm.VIT_SIZE, tm.VIT_SIZE)
        np.testing.assert_allclose(c.heatmap, heat.numpy(), rtol=1e-5, atol=1e-5 * float(heat.abs().max()))
        assert float(heat.abs().max()) > 0


def timm_vit_registers():
    """A timm ViT with 4 register tokens (5 prefix tokens before the patch grid)."""
    return randomised(tm.timm_vit_registers())


@pytest.mark.parametrize("build", [timm_vit, tv_vit, hf_vit, timm_vit_registers],
                         ids=["timm", "torchvision", "hf", "timm-registers"])
def test_vit_conditional_heatmaps_of_all_channels_add_up_to_the_attnlrp_map(build):
    handle = load(build)
    cs = interpret.concepts(handle, X, target=TARGET, channels=range(32))
    whole = interpret.explain(handle, X, "attnlrp", target=TARGET).attribution[0].double().sum(0).numpy()
    total = sum(c.heatmap.astype(np.float64) for c in cs)
    np.testing.assert_allclose(total, whole, rtol=1e-5, atol=1e-5 * float(np.abs(whole).max()))
    # and no single channel is the whole map (the condition does something)
    assert max(float(np.abs(c.heatmap - whole).max()) for c in cs) > 1e-3 * float(np.abs(whole).max())


def test_vit_concepts_leave_the_model_unchanged_after_cancel_and_failures(model_state, monkeypatch):
    model = timm_vit()
    handle = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    before = model_state.snapshot(model)
    fused = [getattr(m, "fused_attn", None) for m in model.modules()]
    first = interpret.concepts(handle, X, target=TARGET, k=4)
    model_state.assert_unchanged(before, model)

    def cancel(done, total):
        raise Cancelled()

    with pytest.raises(Cancelled):
        interpret.concepts(handle, X, target=0, k=4, progress=cancel)
    model_state.assert_unchanged(before, model)

    def boom(*a, **k):
        raise RuntimeError("boom: injected failure")

    # inside the rules' forward (the layer's hook is on) and after the backward to the layer
    for where, name in ((A, "attention_softmax"), (V, "report")):
        with monkeypatch.context() as mp:
            mp.setattr(where, name, boom)
            with pytest.raises(RuntimeError, match="boom"):
                interpret.concepts(handle, X, target=3, k=4)
        model_state.assert_unchanged(before, model)
    assert [getattr(m, "fused_attn", None) for m in model.modules()] == fused
    assert not any("forward" in vars(m) for m in model.modules())
    twin = A.attnlrp_copy(handle)
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in twin.modules())
    assert all(p.grad is None for p in twin.parameters())
    handle.runtime.cache.clear()
    again = interpret.concepts(handle, X, target=TARGET, k=4)
    assert again.channels == first.channels
    for a, b in zip(again, first):
        np.testing.assert_array_equal(a.heatmap, b.heatmap)


def test_vit_concepts_refuse_bad_input_and_the_set_entries_take_a_vit():
    handle = load(timm_vit)
    with pytest.raises(InputError, match="k must be"):
        interpret.concepts(handle, X, k=0)
    with pytest.raises(InputError, match="out of range: layer 'blocks.0' has 32 channels"):
        interpret.concepts(handle, X, channels=[32])
    with pytest.raises(InputError, match="Unknown LRP composite 'nope'"):
        interpret.concepts(handle, X, composite="nope")
    with pytest.raises(InputError, match="tokens x C output"):
        interpret.concepts(handle, X, layer="patch_embed.proj")
    with pytest.raises(InputError):
        interpret.concepts(handle, X, layer="no.such.layer")
    from PIL import Image

    from interpret.concepts import dataset_concepts

    photos = [Image.fromarray(np.zeros((32, 32, 3), np.uint8))]
    # the set-level entries take a ViT by AttnLRP (issue 21; numbers in test_concepts_vit_refs.py)
    assert interpret.reference_patches(handle, photos).composite == V.COMPOSITE
    assert dataset_concepts(handle, photos, [0]).table.composite == V.COMPOSITE


def test_discover_concepts_refuses_a_vit_rather_than_clip_its_negative_tokens():
    """NMF holds only non-negative parts: a block's tokens are not (here a large share
    is below zero), so clipping them would factorise a different layer. Refused, with the
    sentence the Concepts page shows."""
    from PIL import Image

    from interpret.concepts.discover import NO_NMF_FOR_VIT

    handle = load(timm_vit)
    layer = V.default_layer(handle)
    twin, seen = copy.deepcopy(handle.module), {}
    twin.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.setdefault("a", o))
    with torch.no_grad():
        twin(X)
    assert float((seen["a"] < 0).float().mean()) > 0.2  # the premise: many tokens' values are negative
    photos = [Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)) for i in range(3)]
    with pytest.raises(InputError) as err:
        interpret.discover_concepts(handle, photos, layer=layer, k=2)
    assert str(err.value) == NO_NMF_FOR_VIT


def test_vit_concepts_take_a_target_with_a_contrast():
    """"class 1 rather than class 3": the relevance starts at the logit difference, so
    the layer's total is the difference of the two classes' totals (the backward is
    linear in the score)."""
    handle = load(timm_vit)
    both = interpret.concepts(handle, X, target=interpret.targets.classes(1, contrast=3), k=4)
    one = interpret.concepts(handle, X, target=1, k=4)
    three = interpret.concepts(handle, X, target=3, k=4)
    assert both.target.index == 1 and both.target.contrast == 3
    assert both.score == pytest.approx(one.score - three.score, rel=1e-5)
    np.testing.assert_allclose(both.channel_relevance, one.channel_relevance - three.channel_relevance,
                               rtol=1e-5, atol=1e-9)


def test_concurrent_vit_concept_requests_on_one_model_do_not_see_each_other(model_state):
    model = timm_vit()
    jobs = [(t, layer) for t in range(3) for layer in ("blocks.0", "blocks.1")]
    seq = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    expected = [interpret.concepts(seq, X, layer=l, target=t, k=3) for t, l in jobs]
    before = model_state.snapshot(model)
    shared = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    got = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(len(jobs))

    def work(i, t, l):
        try:
            barrier.wait(timeout=30)
            got[i] = interpret.concepts(shared, X, layer=l, target=t, k=3)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, t, l)) for i, (t, l) in enumerate(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    for e, g in zip(expected, got):
        assert g.layer == e.layer and g.channels == e.channels
        for a, b in zip(g, e):
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-5, atol=1e-9)
    model_state.assert_unchanged(before, model)
