"""Shared fixtures for the numerical tests of :mod:`interpret`.

* ``lite0``: the bundled, pretrained EfficientNet-Lite0 (loaded once per session).
* ``resnet18``: a random-initialised torchvision ResNet-18 (seeded, no download).
* ``chelsea`` / ``coffee``: scikit-image's cat and espresso photos as RGB PIL images.
* ``cat_cup_composite``: a 448x448 grey canvas with the cat in the top-left corner and
  the cup in the bottom-right one, plus both regions as boolean masks in model-input
  coordinates (mapped through the model's own resize and crop).
* ``model_state``: ``snapshot(module)`` / ``assert_unchanged(before, module)``: every
  hook dictionary of every submodule (and the global ones), every parameter's
  ``.grad``, training and ``requires_grad`` flags, weights, buffers, the module tree and
  each module's attribute names.
* ``fresh_handle(handle)``: a new ModelHandle on the same module with an empty cache,
  so that a test really runs the model instead of reusing another test's capture.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
import pytest
import torch
import torch.nn.modules.module as torch_module
from PIL import Image

import interpret


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for a module's tests (``pytestmark = usefixtures(...)``).

    On a busy 2-core machine torch's thread pool oversubscribes the cores and the
    numerical tests ran 5-40x slower than with one thread (measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------------
# models


@pytest.fixture(scope="session")
def lite0() -> interpret.ModelHandle:
    return interpret.load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def resnet18() -> interpret.ModelHandle:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return interpret.load_model("torchvision:resnet18", weights=None)


def _fresh_handle(handle: interpret.ModelHandle) -> interpret.ModelHandle:
    return interpret.ModelHandle(handle.module, handle.name, labels=handle.labels,
                                 preprocessing=handle.preprocessing, source=handle.source)


@pytest.fixture
def fresh_handle():
    return _fresh_handle


# ----------------------------------------------------------------------------------
# photos


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea()).convert("RGB")


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.coffee()).convert("RGB")


# Geometry of the composite: a 448x448 neutral grey canvas, the cat's face (from
# chelsea()) pasted as a PATCH x PATCH square in the top-left corner and the cup on its
# saucer (from coffee()) in the bottom-right corner.  With lite0's preprocessing
# (resize 256, centre-crop 224) each region covers 22.8% of the model input.
COMPOSITE_SIZE = 448
PATCH = 216
CAT_CROP = (20, 0, 420, 300)   # chelsea() is 451x300: the face, both eyes and the nose
CUP_CROP = (70, 10, 490, 390)  # coffee() is 600x400: cup, saucer and spoon
GREY = (128, 128, 128)


@dataclass(frozen=True)
class Composite:
    image: Image.Image
    cat_box: Tuple[int, int, int, int]   # in composite pixels (left, top, right, bottom)
    cup_box: Tuple[int, int, int, int]
    cat_mask: np.ndarray                 # bool, model-input (H x W) coordinates
    cup_mask: np.ndarray


def region_mask(model: interpret.ModelHandle, size: Tuple[int, int], box) -> np.ndarray:
    """A box of an image of ``size`` (w, h) as a boolean mask in model-input coordinates."""
    m = Image.new("L", size, 0)
    m.paste(255, box)
    view = np.asarray(model.preprocessing.model_view(m.convert("RGB")))[..., 0]
    return view > 127


@pytest.fixture(scope="session")
def cat_cup_composite(lite0, chelsea, coffee) -> Composite:
    S, P = COMPOSITE_SIZE, PATCH
    canvas = Image.new("RGB", (S, S), GREY)
    cat = chelsea.crop(CAT_CROP).resize((P, P), Image.Resampling.BILINEAR)
    cup = coffee.crop(CUP_CROP).resize((P, P), Image.Resampling.BILINEAR)
    cat_box, cup_box = (0, 0, P, P), (S - P, S - P, S, S)
    canvas.paste(cat, cat_box[:2])
    canvas.paste(cup, cup_box[:2])
    return Composite(canvas, cat_box, cup_box,
                     region_mask(lite0, canvas.size, cat_box),
                     region_mask(lite0, canvas.size, cup_box))


# ----------------------------------------------------------------------------------
# model state snapshots

_GLOBAL_HOOK_DICTS = [n for n in dir(torch_module) if n.startswith("_global_") and n.endswith("hooks")]


@dataclass
class ModelState:
    module_hooks: Dict[str, Dict[str, int]]
    global_hooks: Dict[str, int]
    tensor_hooks: Dict[str, Tuple[int, int]]
    grads: Dict[str, object]
    training: Dict[str, bool]
    requires_grad: Dict[str, bool]
    params: Dict[str, torch.Tensor]
    buffers: Dict[str, torch.Tensor]
    modules: Dict[str, Tuple[int, str]]
    attrs: Dict[str, Tuple[str, ...]]


def _hook_dicts(m: torch.nn.Module) -> Dict[str, int]:
    return {k: len(v) for k, v in vars(m).items() if "hooks" in k and isinstance(v, dict)}


def snapshot(module: torch.nn.Module) -> ModelState:
    named = dict(module.named_modules())
    params = dict(module.named_parameters())
    return ModelState(
        module_hooks={n: _hook_dicts(m) for n, m in named.items()},
        global_hooks={n: len(getattr(torch_module, n)) for n in _GLOBAL_HOOK_DICTS
                      if isinstance(getattr(torch_module, n), dict)},
        tensor_hooks={n: (len(p._backward_hooks or {}), len(p._post_accumulate_grad_hooks or {}))
                      for n, p in params.items()},
        grads={n: (None if p.grad is None else p.grad.detach().clone()) for n, p in params.items()},
        training={n: m.training for n, m in named.items()},
        requires_grad={n: p.requires_grad for n, p in params.items()},
        params={n: p.detach().clone() for n, p in params.items()},
        buffers={n: b.detach().clone() for n, b in module.named_buffers()},
        modules={n: (id(m), type(m).__name__) for n, m in named.items()},
        attrs={n: tuple(sorted(vars(m))) for n, m in named.items()},
    )


def assert_unchanged(before: ModelState, module: torch.nn.Module) -> None:
    after = snapshot(module)
    assert after.modules == before.modules, "submodules were added, removed or replaced"
    for n, counts in before.module_hooks.items():
        assert after.module_hooks[n] == counts, f"hooks left on module '{n}': {after.module_hooks[n]} != {counts}"
    assert after.global_hooks == before.global_hooks, "global module hooks were left behind"
    assert after.tensor_hooks == before.tensor_hooks, "tensor hooks left on parameters"
    for n, g in before.grads.items():
        ga = after.grads[n]
        if g is None:
            assert ga is None, f"parameter '{n}' got a .grad"
        else:
            assert ga is not None and torch.equal(ga, g), f"parameter '{n}'.grad changed"
    assert after.training == before.training, "training flags changed"
    assert after.requires_grad == before.requires_grad, "requires_grad flags changed"
    for n, p in before.params.items():
        assert torch.equal(after.params[n], p), f"weights of '{n}' changed"
    for n, b in before.buffers.items():
        assert torch.equal(after.buffers[n], b), f"buffer '{n}' changed"
    assert after.attrs == before.attrs, "attributes were added to or removed from modules"


@pytest.fixture
def model_state():
    """``model_state.snapshot(module)`` and ``model_state.assert_unchanged(before, module)``."""
    return types.SimpleNamespace(snapshot=snapshot, assert_unchanged=assert_unchanged)


def pearson(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    assert den > 0, "a constant map has no correlation"
    return float((a * b).sum() / den)


@pytest.fixture
def corr():
    return pearson
