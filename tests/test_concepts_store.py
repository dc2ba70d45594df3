"""Reference patches are computed once per model and layer and stored on disk: a second
computation (a fresh handle, an empty result cache: another process or a restart) reads
the stored table without running the model, with the same numbers; a changed model or
image set, or a damaged file, is computed again."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import Preprocessing

pytestmark = pytest.mark.usefixtures("single_thread")

LAYER = "net.conv2"


class Counting(nn.Module):
    """Counts its forwards (the class attribute is shared by the LRP method's private
    copies, which are deep copies of this module)."""

    calls = 0

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        type(self).calls += 1
        return self.net(x)


def model(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(8, 8, 3, padding=1)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(8, 3)),
        ]))
    return Counting(net).eval()


def photos(n: int = 5, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(n)]


def handle_of(module):
    """A new handle (its own empty result cache), with its one-time probes done (the
    output shape, the list of layers: each runs the model once on a blank input), so
    that what is counted afterwards is the model run on the photos."""
    from interpret.layers import check_layer

    h = interpret.load_model(module, preprocessing=Preprocessing(32, 32), name="counting")
    h.check_ready()
    h.output_shape
    check_layer(h, LAYER)
    return h


def test_a_second_computation_reads_the_stored_patches_without_running_the_model(tmp_path):
    images = photos()
    module = model()
    Counting.calls = 0
    first = interpret.reference_patches(handle_of(module), images, layer=LAYER, store=tmp_path)
    assert Counting.calls > 0
    stored = list(tmp_path.glob("refs-*.npz"))
    assert len(stored) == 1
    assert not list(tmp_path.glob(".*tmp*"))  # written to a temporary name, then renamed

    done = []
    fresh = handle_of(module)  # a new handle: its result cache is empty
    fresh.cache.clear()
    Counting.calls = 0
    second = interpret.reference_patches(fresh, images, layer=LAYER, store=tmp_path,
                                         progress=lambda d, t: done.append((d, t)))
    assert Counting.calls == 0
    assert done[-1] == (5, 5)
    np.testing.assert_array_equal(second.share, first.share)
    np.testing.assert_array_equal(second.argmax, first.argmax)
    np.testing.assert_array_equal(second.classes, first.classes)
    assert second.map_size == first.map_size == (32, 32)
    top = int(np.argmax(first.share.sum(0)))
    a, b = first.patches(top, 3), second.patches(top, 3)
    assert [(r.index, r.box, r.relevance) for r in a] == [(r.index, r.box, r.relevance) for r in b]
    assert len(a) > 0
    assert [np.asarray(r.patch).tolist() for r in a] == [np.asarray(r.patch).tolist() for r in b]


def test_a_changed_model_set_or_layer_is_computed_again_and_stored_beside(tmp_path):
    images = photos()
    interpret.reference_patches(handle_of(model(0)), images, layer=LAYER, store=tmp_path)
    for seed, ims, layer in ((7, images, LAYER),             # other weights
                             (0, photos(seed=2), LAYER),     # other photos
                             (0, images, "net.conv1")):      # another layer
        h = handle_of(model(seed))
        Counting.calls = 0
        interpret.reference_patches(h, ims, layer=layer, store=tmp_path)
        assert Counting.calls > 0
    assert len(list(tmp_path.glob("refs-*.npz"))) == 4


def test_a_damaged_stored_file_is_ignored_and_computed_again(tmp_path):
    images = photos()
    module = model()
    first = interpret.reference_patches(handle_of(module), images, layer=LAYER, store=tmp_path)
    (path,) = tmp_path.glob("refs-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # cut short
    h = handle_of(module)
    Counting.calls = 0
    again = interpret.reference_patches(h, images, layer=LAYER, store=tmp_path)
    assert Counting.calls > 0
    np.testing.assert_allclose(again.share, first.share, rtol=1e-6, atol=1e-9)
    # and rewritten whole: the next one reads it
    h = handle_of(module)
    Counting.calls = 0
    interpret.reference_patches(h, images, layer=LAYER, store=tmp_path)
    assert Counting.calls == 0


def test_a_stored_file_that_does_not_match_its_key_is_not_read(tmp_path):
    from interpret.concepts.store import load_references, reference_key, reference_path

    images = photos()
    h = handle_of(model())
    interpret.reference_patches(h, images, layer=LAYER, store=tmp_path)
    key = reference_key(h.fingerprint(), LAYER, interpret.features.imagesets.as_image_set(images).key,
                        None, "epsilon_plus_flat")
    path = reference_path(tmp_path, key)
    assert load_references(path, key, 5) is not None
    assert load_references(path, key, 6) is None  # another number of photos
    other = dict(key, layer="net.conv1")
    path.rename(reference_path(tmp_path, other))  # a file under another key's name
    assert load_references(reference_path(tmp_path, other), other, 5) is None


def test_an_unwritable_store_still_gives_the_result(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    table = interpret.reference_patches(handle_of(model()), photos(), layer=LAYER, store=blocker / "refs")
    assert table.share.shape == (5, 8)
