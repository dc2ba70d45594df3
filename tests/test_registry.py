"""The method registry says everything about a method, and says it truthfully: what it
reads from the recorded pass, how many images it puts through the model, whether it
reports progress, where it is documented.  Every check here runs over every registered
method, so a new method file is checked without being listed anywhere."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import interpret
from interpret import Preprocessing
from interpret.methods import FAMILIES, SPEEDS
from interpret.methods.registry import USES
from interpret.scaling import HEATMAP_RULES

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parent.parent
SPECS = interpret.methods()
NAMES = [s.name for s in SPECS]


def small_cnn() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(16, 5)),
        ]))
    return net.eval()


def handle() -> interpret.ModelHandle:
    return interpret.load_model(small_cnn(), preprocessing=Preprocessing(resize=None, crop=32),
                                labels=list("abcde"))


X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))


class Images:
    """Counts the images (batch rows) and the forward calls that reach a module."""

    def __init__(self, module):
        self.module, self.images, self.calls = module, 0, 0

    def __enter__(self):
        def pre(mod, inp):
            self.calls += 1
            self.images += int(inp[0].shape[0])

        self.hd = self.module.register_forward_pre_hook(pre)
        return self

    def __exit__(self, *exc):
        self.hd.remove()


def test_every_method_module_is_discovered_and_every_spec_is_complete():
    pkg = importlib.import_module("interpret.methods")
    modules = {i.name for i in pkgutil.iter_modules(pkg.__path__)} - {"registry", "common"}
    defining = {s.fn.__module__.rsplit(".", 1)[1] for s in SPECS}
    assert modules == defining, "a module of interpret/methods/ registers no method, or one is not imported"
    for s in SPECS:
        assert s.family in FAMILIES and s.speed in SPEEDS and s.uses in USES and s.heatmap in HEATMAP_RULES
        assert s.label and s.description and s.paper.startswith("https://")
        assert s.family_short == FAMILIES[s.family].short
        s.resolve_params(dict(s.preview))  # valid preview settings


def test_the_readme_table_lists_every_method_once():
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## Methods", 1)[1].split("\n## ", 1)[0]
    table = re.findall(r"^\| `([a-z_0-9]+)` \|", section, flags=re.M)
    assert sorted(table) == sorted(NAMES)


@pytest.mark.parametrize("name", [s.name for s in SPECS if s.uses == "maps"])
def test_maps_methods_never_differentiate(name, monkeypatch):
    h = handle()
    interpret.list_layers(h)
    calls = []
    real = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or real(*a, **k))
    e = interpret.explain(h, X, name, layer="relu2", target=1, **interpret.get_method(name).preview)
    assert calls == [] and e.heatmap.max() > 0


@pytest.mark.parametrize("name", [s.name for s in SPECS if s.uses in ("layer", "input", "maps")])
def test_methods_that_share_the_recorded_pass_run_no_forward_of_their_own(name):
    h = handle()
    layer = "relu2"
    interpret.list_layers(h)
    interpret.explain(h, X, "saliency", layer=layer, target=1)  # the full pass: layer + input
    spec = interpret.get_method(name)
    with Images(h.module) as count:
        interpret.explain(h, X, name, layer=layer if (spec.needs_layer or spec.accepts_layer) else None,
                          target=1, **spec.preview)
    assert count.calls == 0


def test_layer_methods_back_propagate_to_the_layer_only():
    h = handle()
    interpret.explain(h, X, "gradcam", layer="relu2", target=1)
    caps = [v for k, v in h.cache.items() if k[0] == "capture"]
    assert len(caps) == 1 and caps[0].input_grad is None


@pytest.mark.parametrize("name", [s.name for s in interpret.methods(handle()) if s.uses == "own"])
def test_the_cost_estimate_counts_the_images_the_method_really_runs(name):
    """``Cost.forwards`` is the number of images the method puts through the model,
    before it runs (what the page shows), for every method with passes of its own."""
    h = handle()
    spec = interpret.get_method(name)
    layer = "relu2" if spec.needs_layer else None
    params = dict(spec.preview)
    if name == "integrated_gradients":
        params["adaptive"] = True  # the worst case the estimate promises
        params["tolerance"] = 0.0001
    interpret.list_layers(h)
    if spec.needs_layer:  # the layer's maps, which Score-CAM and guided Grad-CAM read
        interpret.explain(h, X, "gradcam", layer=layer, target=1)
    interpret.predict(h, X)  # as on every page: the logits (and the explained score) are cached
    est = interpret.estimate_cost(h, name, layer, **params)
    with Images(h.module) as count:
        interpret.explain(h, X, name, layer=layer, target=1, **params)
    assert count.images == est["forwards"], f"{name}: estimated {est['forwards']} images, ran {count.images}"


@pytest.mark.parametrize("name", [s.name for s in interpret.methods(handle()) if not s.progress])
def test_methods_that_do_not_say_they_report_progress_do_not(name):
    h = handle()
    spec = interpret.get_method(name)
    layer = "relu2" if (spec.needs_layer or spec.accepts_layer) else None
    seen = []
    interpret.explain(h, X, name, layer=layer, target=1, progress=lambda d, t: seen.append(d),
                      **spec.preview)
    assert seen == []


def test_methods_can_be_listed_for_one_model():
    h = handle()
    listed = interpret.methods(h)
    assert [s.name for s in listed] == [s.name for s in SPECS if s.unavailable(h) is None]
    assert all(s.unavailable(h) is None for s in listed)
