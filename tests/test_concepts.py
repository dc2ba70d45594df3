"""interpret.concepts (Concept Relevance Propagation on our terms): the same conditional
heatmaps as zennit-crp's CondAttribution for the same conditions, relevance shares as
CRP's ChannelConcept computes them, the axioms (the channels' relevances add up to the
layer's, the layer's to the score, the concepts' heatmaps to the whole LRP map), and a
model left exactly as it was, also after a failure and under concurrent requests."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret import Cancelled, InputError, Preprocessing
from interpret.concepts import concept_sentence, significance_sentence

pytestmark = pytest.mark.usefixtures("single_thread")

X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def bias_free_cnn() -> nn.Module:
    """No biases anywhere (and a BatchNorm without shift): LRP's rules conserve."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1, bias=False)), ("bn", nn.BatchNorm2d(8)),
            ("relu1", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(8, 16, 3, padding=1, bias=False)), ("relu2", nn.ReLU()),
            ("conv3", nn.Conv2d(16, 16, 3, padding=1, bias=False)), ("relu3", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(16, 4, bias=False)),
        ]))
        with torch.no_grad():
            net.bn.weight.uniform_(0.5, 1.5)
            net.bn.running_var.uniform_(0.5, 2.0)
            net.fc.weight.abs_()
    return net.eval()


def resnet():
    from torchvision.models import resnet18

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return resnet18(num_classes=5).eval()


def crp_reference(model, x, layer, channels, target, canonizer):
    """zennit-crp's own CondAttribution, on its own copy (it switches requires_grad off)."""
    from crp.attribution import CondAttribution
    from crp.concepts import ChannelConcept
    from zennit.composites import EpsilonPlusFlat

    ref = copy.deepcopy(model)
    attribution = CondAttribution(ref)
    xx = x.clone().requires_grad_(True)
    conds = [{layer: [c], "y": [target]} for c in channels]
    out = attribution(xx, conds, EpsilonPlusFlat([canonizer()]))
    # the channels' shares from the unconditioned relevance at the layer (CRP's ranking)
    xx = x.clone().requires_grad_(True)
    whole = attribution(xx, [{"y": [target]}], EpsilonPlusFlat([canonizer()]), record_layer=[layer])
    share = ChannelConcept().attribute(whole.relevances[layer], abs_norm=True)[0]
    return out.heatmap, share


@pytest.mark.parametrize("layer", ["layer2", "layer3", "layer3.1.conv1"])
def test_concept_heatmaps_equal_zennit_crp_condattribution_on_a_resnet(layer, model_state, corr):
    from zennit.torchvision import ResNetCanonizer

    model = resnet()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    before = model_state.snapshot(model)
    cs = interpret.concepts(handle, X, layer=layer, k=5)  # the top class: a positive score
    model_state.assert_unchanged(before, model)
    with torch.no_grad():
        top = int(model(X).argmax())
    assert len(cs) == 5 and cs.layer == layer and cs.target.index == top and cs.score > 0
    heat, share = crp_reference(model, X, layer, cs.channels, top, ResNetCanonizer)
    for i, c in enumerate(cs):
        ours = torch.from_numpy(c.heatmap)
        assert ours.shape == heat[i].shape == (32, 32)
        assert corr(ours, heat[i]) > 0.999
        torch.testing.assert_close(ours, heat[i].float(), rtol=1e-3, atol=1e-5 * float(heat[i].abs().max()))
        assert c.relevance == pytest.approx(float(share[c.channel]), rel=1e-4, abs=1e-7)
    # the top channels are the most relevant ones, largest first
    rel = cs.channel_relevance
    assert cs.channels == [int(i) for i in np.argsort(-rel, kind="stable")[:5]]


def test_concept_heatmaps_equal_condattribution_with_batchnorm_merged(corr):
    from zennit.canonizers import SequentialMergeBatchNorm

    model = bias_free_cnn()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    cs = interpret.concepts(handle, X, layer="conv2", target=1, k=4)
    heat, _ = crp_reference(model, X, "conv2", cs.channels, 1, SequentialMergeBatchNorm)
    for i, c in enumerate(cs):
        assert corr(torch.from_numpy(c.heatmap), heat[i]) > 0.999


def test_concept_relevances_sum_to_the_layers_total_and_the_layers_to_the_score():
    """With no biases the rules conserve: the channels' relevances add up to the layer's
    total, which equals the explained logit (1e-4 relative: the epsilon stabiliser);
    each concept's heatmap adds up to its own relevance; and the concepts' heatmaps of
    all channels add up to the whole LRP map (the backward is linear in the relevance)."""
    model = bias_free_cnn()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    with torch.no_grad():
        logit = float(model(X)[0, 1])
    cs = interpret.concepts(handle, X, layer="conv3", target=1, channels=range(16))
    assert cs.total == pytest.approx(float(cs.channel_relevance.sum()), rel=1e-9)
    assert cs.total == pytest.approx(logit, rel=1e-4)
    assert cs.score == pytest.approx(logit, rel=1e-5)
    assert sum(c.value for c in cs) == pytest.approx(cs.total, rel=1e-9)
    assert sum(abs(c.relevance) for c in cs) == pytest.approx(1.0, rel=1e-6)
    for c in cs:
        assert float(c.heatmap.astype(np.float64).sum()) == pytest.approx(c.value, rel=1e-3, abs=1e-6 * abs(logit))
    whole = interpret.explain(handle, X, "lrp", target=1).attribution[0].double().sum(0).numpy()
    np.testing.assert_allclose(sum(c.heatmap.astype(np.float64) for c in cs), whole,
                               rtol=1e-3, atol=1e-5 * float(np.abs(whole).max()))


def test_concepts_leave_the_model_unchanged_after_cancel_and_failure(model_state, monkeypatch):
    model = resnet()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    before = model_state.snapshot(model)
    first = interpret.concepts(handle, X, layer="layer3", target=1, k=4)

    def cancel(done, total):
        if done > 0 or total > 0:
            raise Cancelled()

    with pytest.raises(Cancelled):
        interpret.concepts(handle, X, layer="layer3", target=0, k=4, progress=cancel)
    model_state.assert_unchanged(before, model)
    from interpret.concepts import crp

    def boom(*a, **k):
        raise RuntimeError("boom: injected failure after the forward")

    monkeypatch.setattr(crp, "initial_relevance", boom)
    with pytest.raises(RuntimeError, match="boom"):
        interpret.concepts(handle, X, layer="layer3", target=3, k=4)
    monkeypatch.undo()
    model_state.assert_unchanged(before, model)
    from interpret.methods.lrp import lrp_copy

    # (``interpret.methods`` is a function: the check was skipped by a hasattr before)
    twin, _ = lrp_copy(handle)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in twin.modules())
    handle.runtime.cache.clear()
    again = interpret.concepts(handle, X, layer="layer3", target=1, k=4)
    assert again.channels == first.channels
    for a, b in zip(again, first):
        np.testing.assert_array_equal(a.heatmap, b.heatmap)


def test_concurrent_concept_requests_on_one_model_do_not_see_each_other(model_state):
    model = resnet()
    jobs = [(t, layer) for t in range(4) for layer in ("layer2", "layer3")]
    seq = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    expected = [interpret.concepts(seq, X, layer=l, target=t, k=3) for t, l in jobs]
    before = model_state.snapshot(model)
    shared = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
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
        assert g.channels == e.channels
        for a, b in zip(g, e):
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-5, atol=1e-9)
    model_state.assert_unchanged(before, model)


def test_a_private_copy_made_during_another_requests_dry_forward_never_stops_its_later_forwards(model_state):
    """The race behind the concurrent test's rare failure, forced with events: request A
    runs the layer table's dry forward (record() without a lock, its taps on every module,
    stopping early once all have run) while request B deep-copies the shared model for
    LRP.  The copy used to keep A's hooks; A's next forward on the (cached) copy, in A's
    thread, then hit A's stale early stop, and record()'s internal _StopForward escaped
    from interpret.concepts.  Now a hook acts only on the module it was put on, the copy
    is made without our hooks, and a record() swallows only its own early stop."""
    from interpret import layers
    from interpret.handle import session
    from interpret.methods.lrp import lrp_copy

    model = resnet()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    before = model_state.snapshot(model)
    for name in ("layers", "layers_by_name"):  # A's request is the one that builds the table
        handle.runtime.memos.pop(name, None)
    inside, copied = threading.Event(), threading.Event()
    shape = layers._shape

    def slow_shape(t):  # the first tap A's dry forward reaches waits for B's copy
        if not inside.is_set():
            inside.set()
            copied.wait(30)
        return shape(t)

    got, errors = [], []

    def request_a():
        try:
            got.append(interpret.concepts(handle, X, layer="layer3", target=1, k=3))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    layers._shape = slow_shape
    try:
        th = threading.Thread(target=request_a)
        th.start()
        assert inside.wait(30), "request A's dry forward never started"
        with session(handle, exclusive=True):  # request B's private copy, made meanwhile
            twin, _ = lrp_copy(handle)
        copied.set()
        th.join(120)
    finally:
        layers._shape = shape
        copied.set()
    assert not errors, errors
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in twin.modules())
    model_state.assert_unchanged(before, model)
    alone = interpret.concepts(interpret.load_model(resnet(), preprocessing=Preprocessing(32, 32)),
                               X, layer="layer3", target=1, k=3)
    assert got[0].channels == alone.channels
    for a, b in zip(got[0], alone):
        np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-5, atol=1e-9)


def test_a_hook_copied_with_its_module_never_acts_and_an_early_stop_ends_only_its_own_record():
    """By construction: a copy of a module made while our hook is on it carries an
    inert hook (and ``private_copy`` none of ours, but the model's own), and record()
    lets another context's early stop through instead of ending its own forward."""
    from interpret.hooks import Tap, _StopForward, hooks, private_copy, record

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    own = net[2].register_forward_hook(lambda m, i, o: o * 2)  # the model's own hook: kept
    fired = []
    with hooks() as hs:
        hs.forward(net[0], lambda m, i, o: fired.append(m))
        hs.forward_pre(net[2], lambda m, i: fired.append(m))
        plain = copy.deepcopy(net)
        clean = private_copy(net)
    with torch.no_grad():
        want = net(X)
        assert torch.equal(plain(X), want) and torch.equal(clean(X), want)
    assert fired == []  # the copied hooks did not act on the copies, in this very thread
    assert len(clean[2]._forward_hooks) == 1 and not clean[0]._forward_hooks
    assert not clean[2]._forward_pre_hooks
    own.remove()

    handle = interpret.load_model(net, preprocessing=Preprocessing(32, 32))

    def foreign_stop(mod, inputs, output):
        raise _StopForward(object())

    with hooks() as hs:  # someone else's early stop, raised inside our forward
        hs.forward(net[1], foreign_stop)
        with pytest.raises(_StopForward):
            record(handle, X, [Tap("2", net[2])], logits=False)
    rec = record(handle, X, [Tap("0", net[0])], logits=False)  # its own: the forward ends there
    assert rec.logits is None and rec.calls == {"0": 1}


def test_private_copy_survives_a_hook_registered_on_the_model_while_it_copies():
    """The other half of the race: another thread registers or removes its hook on the
    shared model while a request deep-copies it.  Forced here by a hook of the model's
    own whose deep copy registers one more on the module at that instant: a plain
    ``deepcopy`` fails ("OrderedDict mutated during iteration"); ``private_copy`` copies
    the hooks as they were when it started and the copy computes the model's function."""
    from interpret.hooks import private_copy

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())

    class Meddler:
        """Registers another hook on the module when deep-copied (once per copy)."""

        def __call__(self, mod, inputs, output):
            return None

        def __deepcopy__(self, memo):
            net[0].register_forward_hook(lambda m, i, o: None)
            return Meddler()

    net[0].register_forward_hook(Meddler())
    net[0].register_forward_hook(lambda m, i, o: None)
    with pytest.raises(RuntimeError, match="mutated during iteration"):
        copy.deepcopy(net)
    had = len(net[0]._forward_hooks)
    twin = private_copy(net)
    assert len(twin[0]._forward_hooks) == had and len(net[0]._forward_hooks) == had + 1
    assert twin[0] is not net[0] and twin[0].weight is not net[0].weight
    with torch.no_grad():
        assert torch.equal(twin(X), net(X))


def test_concepts_refuse_bad_input_with_a_clear_message():
    handle = interpret.load_model(resnet(), preprocessing=Preprocessing(32, 32))
    with pytest.raises(InputError, match="k must be"):
        interpret.concepts(handle, X, layer="layer3", k=0)
    with pytest.raises(InputError, match="composite"):
        interpret.concepts(handle, X, layer="layer3", composite="nope")
    with pytest.raises(InputError, match="out of range"):
        interpret.concepts(handle, X, layer="layer3", channels=[10_000])
    with pytest.raises(InputError):
        interpret.concepts(handle, X, layer="no.such.layer")


@pytest.mark.parametrize("shares, want", [
    ([("stripes", 0.41), ("eye", 0.18)], "tabby here rests mostly on stripes (41%) and eye (18%)."),
    ([("stripes", 0.2), ("eye", 0.1)], "tabby here rests partly on stripes (20%) and eye (10%)."),
    ([("stripes", 0.41), ("eye", 0.18), ("ear", 0.05), ("x", 0.01)],
     "tabby here rests mostly on stripes (41%), eye (18%) and ear (5%)."),
    ([("stripes", 0.08), ("eye", 0.04)], "tabby here is spread over many concepts; the largest are stripes (8%) and eye (4%)."),
    ([("a", -0.2), ("b", 0.0)], "No single concept of this layer speaks for tabby: every concept's relevance is zero or against it."),
    ([("a", -0.3), ("b", 0.6)], "tabby here rests mostly on b (60%)."),
])
def test_concept_sentence_says_what_the_shares_say(shares, want):
    assert concept_sentence("tabby", shares) == want


@pytest.mark.parametrize("args, want", [
    ((0.9, 0.5, 0.001, 10), "90% of the photos of the class score higher when their activations move towards "
     "the concept (random sets: 50% on average, 10 runs). The difference from random sets is significant "
     "(p = 0.001): the model uses the concept for the class."),
    ((0.2, 0.5, 0.01, 10), "20% of the photos of the class score higher when their activations move towards "
     "the concept (random sets: 50% on average, 10 runs). The difference from random sets is significant "
     "(p = 0.01): the model is pushed away from the concept for the class."),
    ((0.6, 0.5, 0.3, 10), "60% of the photos of the class score higher when their activations move towards "
     "the concept (random sets: 50% on average, 10 runs). The difference from random sets is not significant "
     "(p = 0.3): no evidence that the model uses the concept for the class."),
    ((0.6, 0.5, float("nan"), 1), "Not enough runs to test the concept: a TCAV score needs several random sets "
     "to be compared with (got 1)."),
])
def test_tcav_sentence_says_what_the_numbers_say(args, want):
    assert significance_sentence(*args) == want


def test_the_report_has_the_concepts_section_in_words_with_labels_escaped():
    from PIL import Image

    from interpret.report import report_html

    model = resnet()
    labels = ["<img src=x onerror=alert(1)>"] * 5
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32), labels=labels)
    photo = Image.fromarray((np.random.default_rng(0).uniform(0, 1, (32, 32, 3)) * 255).astype(np.uint8))
    cs = interpret.concepts(handle, photo, layer="layer3", k=3)
    e = interpret.explain(handle, photo, "gradcam", layer="layer3")
    html = report_html(handle, photo, [e], steps=4, concepts=cs)
    section = html.split("<h2>What the decision rests on</h2>", 1)[1].split("<h2>", 1)[0]
    want = concept_sentence(cs.target_label, [(f"channel {c.channel}", c.relevance) for c in cs])
    import html as _html

    assert _html.escape(want, quote=False) in section or _html.escape(want) in section
    assert section.count('<img class="photo"') == 3 and "<img src=x" not in section
    for c in cs:
        assert f"channel {c.channel}: {c.relevance:.0%} of the layer" in section


def test_concepts_take_a_target_object_with_a_contrast():
    """An interpret.targets target ("class 1 rather than class 3"): the relevance starts
    at the logit difference, and on a bias-free CNN the layer's total equals it."""
    model = bias_free_cnn()
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    with torch.no_grad():
        logits = model(X)[0]
    want = float(logits[1] - logits[3])
    cs = interpret.concepts(handle, X, layer="conv3", target=interpret.targets.classes(1, contrast=3), k=4)
    assert cs.target.index == 1 and cs.target.contrast == 3
    assert cs.score == pytest.approx(want, rel=1e-5)
    assert cs.total == pytest.approx(want, rel=1e-4, abs=1e-6)
    plain = interpret.concepts(handle, X, layer="conv3", target=1, k=4)
    assert plain.score == pytest.approx(float(logits[1]), rel=1e-5)


def test_every_concepts_entry_refuses_an_uncovered_model_or_composite_with_its_own_message():
    """concepts(), reference_patches() and dataset_concepts() share one check
    (``crp.checked``): a model LRP's rules do not cover and an unknown composite are
    refused before anything runs, each entry naming itself as before."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    from interpret.concepts import dataset_concepts
    from interpret.methods.lrp import unsupported

    net = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=3).eval()
    handle = interpret.load_model(net, preprocessing=Preprocessing(32, 32), name="convnext")
    why = unsupported(handle)
    assert why and "no LRP rule" in why
    photos = [np.zeros((32, 32, 3), np.uint8)]
    from PIL import Image

    photos = [Image.fromarray(p) for p in photos]
    for call, what in ((lambda c: interpret.concepts(handle, X, composite=c), "Concepts"),
                       (lambda c: interpret.reference_patches(handle, photos, composite=c), "Reference patches"),
                       (lambda c: dataset_concepts(handle, photos, [0], composite=c), "Concepts")):
        with pytest.raises(InputError) as err:
            call("epsilon_plus_flat")
        assert str(err.value) == f"{what} cannot be computed for 'convnext': {why}."
    good = interpret.load_model(resnet(), preprocessing=Preprocessing(32, 32))
    want = "Unknown LRP composite 'nope'; one of epsilon_plus_flat, epsilon_gamma_box, epsilon_alpha2_beta1."
    for call in (lambda: interpret.concepts(good, X, layer="layer3", composite="nope"),
                 lambda: interpret.reference_patches(good, photos, layer="layer3", composite="nope"),
                 lambda: dataset_concepts(good, photos, [0], layer="layer3", composite="nope")):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == want
