"""A state dict whose architecture's own top submodule is called ``model`` loads
(issue 20: every Ultralytics DetectionModel state dict failed with "355 of 355 weights
missing" because a ``model.`` prefix on every key was always dropped), while a
wrapper's prefix on a plain architecture is still dropped."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import interpret
from interpret.sources.files import strip_prefixes


class Wrapped(nn.Module):
    """Like Ultralytics' DetectionModel: every weight lives under ``self.model``."""

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

    def forward(self, x):
        return self.model(x)


@pytest.fixture
def factory(monkeypatch):
    mod = types.ModuleType("detfactory")
    mod.build = lambda: Wrapped()
    monkeypatch.setitem(sys.modules, "detfactory", mod)
    return "detfactory:build"


def test_a_model_prefix_the_architecture_has_itself_is_kept(tmp_path, factory):
    torch.manual_seed(0)
    m = Wrapped().eval()
    save_file(m.state_dict(), str(tmp_path / "w.safetensors"))
    assert all(k.startswith("model.") for k in m.state_dict())
    h = interpret.load_model(str(tmp_path / "w.safetensors"), arch=factory)
    for k, v in m.state_dict().items():
        assert torch.equal(h.module.state_dict()[k], v)


def test_a_wrappers_prefix_on_a_plain_architecture_is_still_dropped(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    m = resnet18(num_classes=3).eval()
    torch.save({f"model.{k}": v for k, v in m.state_dict().items()}, tmp_path / "w.pth")
    h = interpret.load_model(str(tmp_path / "w.pth"), arch="resnet18")
    assert torch.equal(h.module.fc.weight, m.fc.weight)


def test_strip_prefixes_by_hand():
    t = {"model.a": 1, "model.b": 2}
    assert strip_prefixes(t) == {"a": 1, "b": 2}
    assert strip_prefixes(t, ["model.a", "model.b"]) == t
    assert strip_prefixes(t, ["a", "b"]) == {"a": 1, "b": 2}
    assert strip_prefixes({"module.model.a": 1}, ["model.a"]) == {"model.a": 1}
