"""Feature visualization: activation maximization, dataset examples, embeddings and the
TensorBoard export, checked with numbers on the bundled EfficientNet-Lite0.

Sizes are kept small (64 px, 48 steps) where the property still holds with a wide
margin, so the file runs in well under two minutes on two cores.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
import threading
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import features as fx

LAYER = "_blocks.10"     # 112 channels, 14 x 14 at 224 px, stride 16
CHANNEL = 7
OTHER = 20
SIZE, STEPS = 64, 48     # measured: channel 7 reaches ~32 here, the photos average ~2.7

# One intra-op thread: an optimised image depends on float summation order, and the
# rankings below were measured with one thread (with two, the OTHER channel's tiled image
# overtook its image on grey: 37.1 against 34.7, instead of 36.0 against 37.4).
pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def gallery():
    from skimage import data

    return [Image.fromarray(getattr(data, n)()).convert("RGB")
            for n in ("chelsea", "coffee", "astronaut", "rocket")]


@pytest.fixture(scope="module")
def fv_main(lite0, single_thread):
    return interpret.visualize_channel(lite0, LAYER, CHANNEL, size=SIZE, steps=STEPS, seed=0)


@pytest.fixture(scope="module")
def fv_other(lite0, single_thread):
    return interpret.visualize_channel(lite0, LAYER, OTHER, size=SIZE, steps=STEPS, seed=0)


class Tiny(nn.Module):
    """A small convolutional classifier with seeded weights (cheap to optimise)."""

    def __init__(self):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                nn.Conv2d(8, 6, 3, stride=2, padding=1), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


@pytest.fixture
def tiny():
    m = Tiny().eval()
    return interpret.load_model(m, labels=[f"c{i}" for i in range(5)], resize=40, crop=32)


def tile(im: Image.Image, n: int = 4) -> Image.Image:
    out = Image.new("RGB", (im.width * n, im.height * n))
    for i in range(n):
        for j in range(n):
            out.paste(im, (i * im.width, j * im.height))
    return out


def on_grey(im: Image.Image, side: int = 256) -> Image.Image:
    """The image in the middle of a grey canvas, as it was optimised (grey padding)."""
    canvas = Image.new("RGB", (side, side), (128, 128, 128))
    canvas.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return canvas


def png_bytes(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


# ----------------------------------------------------------------------------------
# activation maximization


def test_optimized_image_excites_its_channel_five_times_more_than_photos(lite0, fv_main, gallery):
    own = fx.activation_means(lite0, [fv_main.image], LAYER, CHANNEL, native=True)[0]
    photos = fx.activation_means(lite0, gallery, LAYER, CHANNEL)
    assert photos.mean() > 1.0, "the comparison needs a channel the photos excite"
    assert own >= 5 * photos.mean(), (own, photos)
    assert own > photos.max() * 5
    # the optimisation climbed: the last steps are far above the random start
    assert np.mean(fv_main.trace[-5:]) > fv_main.trace[0] + 10
    assert fv_main.image.size == (SIZE, SIZE) and fv_main.image.mode == "RGB"
    assert fv_main.steps_done == STEPS
    assert (fv_main.layer, fv_main.channel) == (LAYER, CHANNEL)


def test_optimized_image_excites_its_channel_more_than_another_channels_image(lite0, fv_main, fv_other):
    a = fx.activation_means(lite0, [fv_main.image, fv_other.image], LAYER, native=True)
    assert a[0, CHANNEL] > 2 * a[1, CHANNEL]   # measured 32.3 against 5.8
    assert a[1, OTHER] > 2 * a[0, OTHER]       # measured 29.6 against 2.3
    # and each image's own channel is its strongest one of the 112
    assert int(np.argmax(a[0])) == CHANNEL and int(np.argmax(a[1])) == OTHER


def test_same_seed_same_image_different_seed_different_image(lite0):
    kw = dict(size=32, steps=4)
    a = interpret.visualize_channel(lite0, LAYER, CHANNEL, seed=0, **kw)
    b = interpret.visualize_channel(lite0, LAYER, CHANNEL, seed=0, **kw)
    c = interpret.visualize_channel(lite0, LAYER, CHANNEL, seed=1, **kw)
    assert torch.equal(a.tensor, b.tensor)
    assert a.trace == b.trace
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert (a.tensor - c.tensor).abs().mean() > 0.01
    # the global random state is neither used nor advanced
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    interpret.visualize_channel(lite0, LAYER, CHANNEL, seed=0, size=32, steps=2)
    assert torch.equal(torch.rand(3), expected)


def test_model_unchanged_after_visualize_channel(lite0, model_state):
    before = model_state.snapshot(lite0.module)
    fv = interpret.visualize_channel(lite0, LAYER, CHANNEL, size=48, steps=3, seed=0)
    assert fv.steps_done == 3
    model_state.assert_unchanged(before, lite0.module)


def test_model_unchanged_after_a_cancelled_run(lite0, model_state):
    before = model_state.snapshot(lite0.module)
    seen = []

    def stop_at_two(step, total):
        seen.append((step, total))
        if step == 2:
            raise interpret.Cancelled()

    with pytest.raises(interpret.Cancelled):
        interpret.visualize_channel(lite0, LAYER, CHANNEL, size=48, steps=50, progress=stop_at_two)
    assert seen == [(1, 50), (2, 50)]  # progress after every step; stopped at the second
    model_state.assert_unchanged(before, lite0.module)

    # an objective that fails during the first forward (position outside a 3x3 map)
    with pytest.raises(interpret.InputError, match="outside the 3x3 map"):
        fx.optimize(lite0, fx.unit(LAYER, 0, 10, 10), size=48, steps=3)
    model_state.assert_unchanged(before, lite0.module)


def test_existing_parameter_grads_and_flags_are_kept(tiny, model_state):
    for p in tiny.module.parameters():
        p.grad = torch.full_like(p, 0.5)
    tiny.module.features[0].weight.requires_grad_(False)
    before = model_state.snapshot(tiny.module)
    grads = [p.grad for p in tiny.module.parameters()]
    fv = fx.optimize(tiny, fx.channel("features.2", 1), size=32, steps=4, seed=0)
    assert fv.trace[-1] > fv.trace[0]
    model_state.assert_unchanged(before, tiny.module)
    assert all(p.grad is g for p, g in zip(tiny.module.parameters(), grads))


def test_refuses_a_model_in_training_mode(tiny):
    tiny.module.train()
    with pytest.raises(interpret.InputError, match="training mode"):
        interpret.visualize_channel(tiny, "features.2", 0, size=32, steps=2)
    assert tiny.module.training and all(m.training for m in tiny.module.modules())


def test_hooks_are_invisible_to_other_threads(tiny):
    """An optimisation in one thread stops its forwards early from a hook; another
    thread running the same module at the same time never sees that hook."""
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = tiny.module(x)
    errors = []

    def work():
        try:
            fx.optimize(tiny, fx.channel("features.0", 2), size=32, steps=150, seed=0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    outs = []
    while t.is_alive() and len(outs) < 400:
        with torch.no_grad():
            outs.append(tiny.module(x))
    t.join()
    assert not errors
    assert outs and all(torch.equal(o, expected) for o in outs)


def test_callback_runs_outside_the_model_lock(tiny):
    """The callback may use the model itself, even exclusively (a write lock), without
    deadlocking against the optimisation that calls it."""
    def takes_the_model(step, total):
        with tiny.rwlock.write():
            pass

    done = []
    t = threading.Thread(daemon=True, target=lambda: done.append(
        fx.optimize(tiny, fx.channel("features.2", 0), size=32, steps=3, progress=takes_the_model)))
    t.start()
    t.join(60)
    assert not t.is_alive() and done[0].steps_done == 3


def test_token_layers_and_fixed_size_models(model_state):
    """A vision transformer takes one input size only: the backend finds out and
    resizes to it; its token outputs are channels on the patch grid."""
    from torchvision.models.vision_transformer import VisionTransformer

    with torch.random.fork_rng():
        torch.manual_seed(0)
        vit = VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2,
                                hidden_dim=16, mlp_dim=32, num_classes=5).eval()
    h = interpret.load_model(vit, resize=32, crop=32, labels=list("abcde"))
    layer = "encoder.layers.encoder_layer_0"
    before = model_state.snapshot(vit)
    # the backend finds that this model runs at 32x32 only (one probe) and resizes the
    # transformed image to it before every forward; given explicitly, the same result
    fv = interpret.visualize_channel(h, layer, 3, size=32, steps=10)
    assert fv.trace[-1] > fv.trace[0]
    model_state.assert_unchanged(before, vit)
    assert fv.trace == interpret.visualize_channel(h, layer, 3, size=32, steps=10, resize_to=32).trace
    model_state.assert_unchanged(before, vit)
    with pytest.raises(interpret.InputError, match=r"16 channels \(0-15\)"):
        interpret.visualize_channel(h, layer, 16, size=32, steps=1, resize_to=32)
    assert fx.receptive_field(h, layer).stride == (8.0, 8.0)  # a 4 x 4 patch grid
    e = interpret.embed(h, [fv.image, fv.image.rotate(90), fv.image.transpose(0)])
    assert e.layer == "heads.head (input)" and e.features.shape == (3, 16)
    model_state.assert_unchanged(before, vit)


def test_input_validation_messages(lite0):
    with pytest.raises(interpret.InputError, match="no layer named '_blocks.99'.*Did you mean"):
        interpret.visualize_channel(lite0, "_blocks.99", 0, size=32, steps=1)
    with pytest.raises(interpret.InputError, match=r"Channel 112 is out of range.*112 channels \(0-111\)"):
        interpret.visualize_channel(lite0, LAYER, 112, size=32, steps=1)
    with pytest.raises(interpret.InputError, match="between 32 and 512"):
        interpret.visualize_channel(lite0, LAYER, 0, size=8, steps=1)
    with pytest.raises(interpret.InputError, match="between 1 and"):
        interpret.visualize_channel(lite0, LAYER, 0, size=32, steps=0)
    with pytest.raises(interpret.InputError, match="learning rate"):
        fx.optimize(lite0, fx.channel(LAYER, 0), size=32, steps=1, lr=-1)
    with pytest.raises(interpret.InputError, match=r"0-999"):
        fx.optimize(lite0, fx.class_logit(1000), size=32, steps=1)
    with pytest.raises(interpret.InputError, match="objective"):
        fx.optimize(lite0, "channel 3", size=32, steps=1)
    with pytest.raises(interpret.InputError, match="transforms"):
        fx.optimize(lite0, fx.channel(LAYER, 0), size=32, steps=1, transforms="fancy")
    with pytest.raises(interpret.InputError, match="Batch index 2"):
        fx.optimize(lite0, fx.channel(LAYER, 0, batch=2), size=32, steps=1, batch=2)
    with pytest.raises(interpret.InputError, match="whole number"):
        fx.channel(LAYER, 1.5)


# objectives read maps through a model's token layout; plain B x C x h x w maps pass as they are
HANDLE_4D = interpret.ModelHandle(torch.nn.Identity(), "identity")


def cancel(done, total):
    raise interpret.Cancelled("stop")


def test_objective_values_and_algebra_by_hand():
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)
    logits = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    acts = fx.Activations(HANDLE_4D, {"a": t}, logits)
    ch = fx.channel("a", 1)
    assert float(ch(acts)) == pytest.approx((4 + 5 + 6 + 7 + 16 + 17 + 18 + 19) / 8)  # 11.5
    assert float(fx.channel("a", 1, batch=1)(acts)) == pytest.approx(17.5)
    assert float(fx.unit("a", 2, 0, 1)(acts)) == pytest.approx((9 + 21) / 2)
    assert float(fx.unit("a", 0)(acts)) == pytest.approx((3 + 15) / 2)  # centre of 2x2: (1, 1)
    assert float(fx.layer_objective("a")(acts)) == pytest.approx(sum(k * k for k in range(24)) / 24)
    assert float(fx.class_logit(1)(acts)) == pytest.approx(3.5)
    combo = 2 * ch - fx.unit("a", 2, 0, 1) + 1.5
    assert float(combo(acts)) == pytest.approx(2 * 11.5 - 15 + 1.5)
    assert float(sum([ch, ch, fx.class_logit(0)])(acts)) == pytest.approx(23 + 2.5)
    assert float((-ch / 2)(acts)) == pytest.approx(-5.75)
    assert float((1 - ch)(acts)) == pytest.approx(-10.5)
    both = ch + fx.channel("b", 0) + fx.class_logit(0)
    assert both.layers == ("a", "b") and both.logits and not ch.logits
    assert "channel('a', 1)" in combo.name

    # diversity: identical images are as similar as possible: -(B - 1); images whose
    # Gram matrices are orthogonal: 0 (Olah et al. 2017; Lucent's formula, negated)
    same = torch.rand(1, 4, 3, 3).repeat(3, 1, 1, 1)
    assert float(fx.diversity("a")(fx.Activations(HANDLE_4D, {"a": same}, None))) == pytest.approx(-2.0, abs=1e-5)
    ortho = torch.zeros(2, 2, 3, 3)
    ortho[0, 0] = 1.0
    ortho[1, 1] = 1.0
    assert float(fx.diversity("a")(fx.Activations(HANDLE_4D, {"a": ortho}, None))) == pytest.approx(0.0, abs=1e-6)
    assert float(fx.diversity("a")(fx.Activations(HANDLE_4D, {"a": same[:1]}, None))) == 0.0


def test_diversity_batch_gives_different_images_of_one_channel(tiny):
    fv = interpret.visualize_channel(tiny, "features.2", 1, size=32, steps=30, seed=0,
                                     batch=3, diversity=1.0)
    assert len(fv.images) == 3 and fv.tensor.shape == (3, 3, 32, 32)
    assert "diversity('features.2')" in fv.objective
    a = fx.activation_means(tiny, list(fv.images), "features.2", 1, native=True)
    assert (a > 0).all()
    diffs = [(fv.tensor[i] - fv.tensor[j]).abs().mean() for i in range(3) for j in range(i)]
    assert min(diffs) > 0.01


def test_class_logit_objective_makes_the_model_see_that_class(lite0):
    fv = fx.optimize(lite0, fx.class_logit(1), size=64, steps=16, seed=0)  # 'goldfish'
    with torch.no_grad():
        probs = lite0.module(lite0.preprocessing.normalize(fv.tensor)).softmax(1)[0]
    assert int(probs.argmax()) == 1 and float(probs[1]) > 0.9  # measured 0.99999
    assert fv.trace[-1] > fv.trace[0] + 20


# ----------------------------------------------------------------------------------
# dataset examples


def test_dataset_examples_rank_the_built_image_first(lite0, fv_main, fv_other, gallery, model_state):
    images = gallery + [on_grey(fv_other.image), tile(fv_other.image),
                        on_grey(fv_main.image), tile(fv_main.image)]
    before = model_state.snapshot(lite0.module)
    progress = []
    # by the strongest position: the optimised image on grey (as it was optimised);
    # measured 39.3 against 32.7 for the best photo (chelsea) for channel 7
    top = interpret.top_activating(lite0, images, LAYER, CHANNEL, k=3,
                                   progress=lambda d, t: progress.append((d, t)))
    assert progress and progress[-1] == (8, 8)
    index, score, patch = top[0]
    assert index == 6
    assert [e.score for e in top] == sorted((e.score for e in top), reverse=True)
    # the patch surrounds the pasted image: pasted at 96-160 of 256, i.e. 80-144 after
    # the centre crop to 224
    left, t, right, b = top[0].box
    assert 64 <= (left + right) / 2 <= 160 and 64 <= (t + b) / 2 <= 160
    rf = fx.receptive_field(lite0, LAYER)
    assert patch.size == (rf.size, rf.size) and 16 < rf.size < 224
    assert top[0].image.size == (224, 224)
    # by the mean over the image: the tiled image (measured 20.8 against at most 5.8)
    assert interpret.top_activating(lite0, images, LAYER, CHANNEL, k=1, by="mean")[0].index == 7
    # the other channel: its own images lead (37.4 against 21.6 for the best photo)
    assert interpret.top_activating(lite0, images, LAYER, OTHER, k=1)[0].index == 4
    assert interpret.top_activating(lite0, images, LAYER, OTHER, k=1, by="mean")[0].index == 5
    model_state.assert_unchanged(before, lite0.module)


def test_layer_statistics_are_cached_and_cancellable(lite0, gallery, fresh_handle, model_state):
    h = fresh_handle(lite0)
    before = model_state.snapshot(h.module)
    with pytest.raises(interpret.Cancelled):
        fx.layer_statistics(h, gallery, LAYER, batch_size=2, progress=cancel)
    model_state.assert_unchanged(before, h.module)
    s1 = fx.layer_statistics(h, gallery, LAYER, batch_size=2)
    s2 = fx.layer_statistics(h, fx.load_images(gallery), LAYER)
    assert s1 is s2  # same model, layer and image contents: the cached result
    assert s1.max.shape == (4, 112) and s1.map_size == (14, 14)
    assert (s1.max >= s1.mean).all()
    with pytest.raises(interpret.InputError, match=r"0-111"):
        interpret.top_activating(h, gallery, LAYER, 500)


def test_receptive_field_grows_with_depth(lite0):
    early = fx.receptive_field(lite0, "_blocks.1")
    mid = fx.receptive_field(lite0, LAYER)
    assert early.stride == (4.0, 4.0) and mid.stride == (16.0, 16.0)
    assert early.size < mid.size <= mid.theoretical[0]
    # the centre unit looks at the centre of the image
    assert abs(mid.centre[0] - 112) < 16 and abs(mid.centre[1] - 112) < 16


# ----------------------------------------------------------------------------------
# image sets


def test_images_from_zip_reads_images_and_skips_the_rest():
    red = Image.new("RGB", (40, 30), (200, 20, 20))
    blue = Image.new("RGB", (20, 20), (20, 20, 200))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("b/blue.jpg", png_bytes(blue, "JPEG"))
        zf.writestr("a_red.png", png_bytes(red))
        zf.writestr("notes.txt", b"hello")
        zf.writestr("broken.png", b"\x89PNG not really")
        zf.writestr("__MACOSX/._a_red.png", b"junk")
        zf.writestr("empty_dir/", b"")
    data = buf.getvalue()
    s = interpret.images_from_zip(data)
    assert s.names == ("a_red.png", "b/blue.jpg")
    assert s.images[0].size == (40, 30) and s.images[0].getpixel((1, 1)) == (200, 20, 20)
    reasons = dict(s.skipped)
    assert set(reasons) == {"notes.txt", "broken.png", "__MACOSX/._a_red.png"}
    assert "not an image" in reasons["notes.txt"] and "hidden" in reasons["__MACOSX/._a_red.png"]
    assert "Pillow" in reasons["broken.png"] or "image" in reasons["broken.png"]
    assert fx.as_image_set(data).hashes == s.hashes
    with pytest.raises(interpret.InputError, match="limit is 3"):
        interpret.images_from_zip(data, max_images=3)
    with pytest.raises(interpret.InputError, match="MiB"):
        interpret.images_from_zip(data, max_total_bytes=100)
    with pytest.raises(interpret.InputError, match="not a readable zip"):
        interpret.images_from_zip(b"PK\x03\x04 truncated")
    only_text = io.BytesIO()
    with zipfile.ZipFile(only_text, "w") as zf:
        zf.writestr("a.txt", b"x")
    with pytest.raises(interpret.InputError, match="no usable image"):
        interpret.images_from_zip(only_text.getvalue())


def test_images_from_zip_counts_the_bytes_it_unpacks():
    """A highly compressible member: tiny archive, large content; the limit applies to
    what is unpacked, not to the archive's size."""
    big = Image.new("RGB", (2000, 2000), (10, 10, 10))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bmp", png_bytes(big, "BMP"))
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(interpret.InputError, match="MiB"):
        interpret.images_from_zip(buf.getvalue(), max_total_bytes=5 * 2**20)
    s = interpret.images_from_zip(buf.getvalue(), max_side=256)
    assert max(s.images[0].size) == 256


def test_images_from_folder(tmp_path):
    Image.new("RGB", (30, 20), (0, 255, 0)).save(tmp_path / "b.png")
    Image.new("RGB", (10, 10), (255, 0, 0)).save(tmp_path / "a.jpg")
    (tmp_path / "readme.md").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(png_bytes(Image.new("RGB", (5, 5))))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    sub = tmp_path / "sub"
    sub.mkdir()
    Image.new("RGB", (8, 8)).save(sub / "c.png")
    os.symlink("/etc/passwd", tmp_path / "link.png")
    s = interpret.images_from_folder(tmp_path)
    assert s.names == ("a.jpg", "b.png")
    reasons = dict(s.skipped)
    assert reasons["link.png"] == "symbolic link"
    assert "not an image" in reasons["readme.md"]
    assert "bad.png" in reasons
    assert interpret.images_from_folder(tmp_path, recursive=True).names == ("a.jpg", "b.png", "sub/c.png")
    with pytest.raises(interpret.InputError, match="more than 1 images"):
        interpret.images_from_folder(tmp_path, max_images=1)
    with pytest.raises(interpret.InputError, match="does not exist"):
        interpret.images_from_folder(tmp_path / "nope")
    assert fx.as_image_set(str(tmp_path)).names == s.names
    seen = []
    interpret.images_from_folder(tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]  # a.jpg, b.png, bad.png
    with pytest.raises(interpret.Cancelled):
        interpret.images_from_folder(tmp_path, progress=cancel)


def test_a_bad_image_in_a_list_is_named():
    with pytest.raises(interpret.InputError, match=r"Image 1 \(image 1\)"):
        fx.load_images([Image.new("RGB", (4, 4)), b"nope"])
    s = fx.load_images([Image.new("RGB", (4, 4)), b"nope"], skip_bad=True)
    assert len(s) == 1 and s.skipped[0][0] == "image 1"


# ----------------------------------------------------------------------------------
# embeddings


@pytest.fixture(scope="module")
def photos_and_noisy_copies(gallery):
    rng = np.random.default_rng(0)
    noisy = []
    for g in gallery:
        a = np.asarray(g, dtype=np.float32)
        noisy.append(Image.fromarray(np.clip(a + rng.normal(0, 6, a.shape), 0, 255).astype(np.uint8)))
    return gallery + noisy


def test_embedding_pca_matches_numpy_and_groups_noisy_copies(lite0, photos_and_noisy_copies, model_state):
    before = model_state.snapshot(lite0.module)
    e = interpret.embed(lite0, photos_and_noisy_copies)
    feats, coords = e
    model_state.assert_unchanged(before, lite0.module)
    assert feats.shape == (8, 1280) and coords.shape == (8, 2)
    assert e.layer == "_fc (input)" and e.method == "pca"
    # the penultimate features are what the classifier sees: its logits follow from them
    fc = lite0.module._fc
    with torch.no_grad():
        logits = fc(torch.from_numpy(feats))
    assert [int(i) for i in logits.argmax(1)] == [int(i) for i in e.predicted]
    assert e.predicted_labels[1] == "espresso" and "cat" in e.predicted_labels[0]
    assert e.predicted_labels[1] == e.predicted_labels[5]
    # PCA: the numpy reference projection, up to the sign of each axis
    x = feats.astype(np.float64)
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:2].T
    for j in range(2):
        sign = np.sign(ref[:, j] @ coords[:, j])
        np.testing.assert_allclose(coords[:, j], sign * ref[:, j], rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_allclose(e.explained_variance, s[:2] ** 2 / (s ** 2).sum(), rtol=1e-6)
    # a photo and its noisy copy are nearer each other than any two different photos,
    # in the features and in the 2-D projection (measured 3.3-4.9 against >= 17.8
    # in the features)
    for space in (feats, coords):
        d = np.linalg.norm(space[:, None] - space[None], axis=-1)
        for i in range(4):
            others = [d[i, j] for j in range(8) if j not in (i, i + 4)]
            assert d[i, i + 4] < min(others), (i, d[i])
    # cached: the second call does not run the model again
    assert interpret.embed(lite0, photos_and_noisy_copies).features is feats


def test_embedding_of_a_chosen_layer_and_other_methods(lite0, gallery):
    e = interpret.embed(lite0, gallery, layer=LAYER)
    assert e.features.shape == (4, 112) and e.layer == LAYER
    stats = fx.layer_statistics(lite0, gallery, LAYER)
    np.testing.assert_allclose(e.features, stats.mean, rtol=1e-5, atol=1e-5)  # maps averaged
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(interpret.InputError, match="scikit-learn"):
            interpret.embed(lite0, gallery, method="tsne")
    else:
        t = interpret.embed(lite0, gallery, method="tsne", perplexity=2.0)
        assert t.coords.shape == (4, 2) and np.isfinite(t.coords).all() and t.method == "tsne"
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(interpret.InputError, match="pip install umap-learn"):
            interpret.embed(lite0, gallery, method="umap")
    else:
        u = interpret.embed(lite0, gallery, method="umap")
        assert u.coords.shape == (4, 2) and np.isfinite(u.coords).all()
    with pytest.raises(interpret.InputError, match="Unknown projection"):
        interpret.embed(lite0, gallery, method="lda")
    with pytest.raises(interpret.InputError, match="at least two"):
        interpret.embed(lite0, gallery[:1])


# ----------------------------------------------------------------------------------
# TensorBoard


def _parse_pbtxt(text: str) -> dict:
    """The fields of our projector config (a minimal reader: key: value lines)."""
    out: dict = {}
    for key, value in re.findall(r"(\w+):\s*(\"[^\"]*\"|\S+)", text):
        out.setdefault(key, []).append(value.strip('"'))
    return out


def _check_projector(logdir, n: int, d: int):
    cfg = (logdir / "projector_config.pbtxt").read_text()
    fields = _parse_pbtxt(cfg)
    assert [int(v) for v in fields["tensor_shape"]] == [n, d]
    assert fields["tensor_path"] == ["tensors.tsv"] and fields["metadata_path"] == ["metadata.tsv"]
    assert fields["image_path"] == ["sprite.png"]
    dim = [int(v) for v in fields["single_image_dim"]]
    assert dim[0] == dim[1] and dim[0] >= 8
    per_row = math.ceil(math.sqrt(n))
    with Image.open(logdir / "sprite.png") as sprite:
        assert sprite.size == (per_row * dim[0], per_row * dim[1])
        assert sprite.size[0] <= 8192
    tensors = np.loadtxt(logdir / "tensors.tsv", delimiter="\t", ndmin=2)
    assert tensors.shape == (n, d)
    rows = (logdir / "metadata.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["name", "predicted", "probability", "index"]
    assert len(rows) == n + 1
    return cfg, tensors, rows, dim[0]


def test_tensorboard_export_is_readable_back(lite0, gallery, tmp_path, model_state):
    explanation = interpret.explain(lite0, gallery[1], "gradcam")
    before = model_state.snapshot(lite0.module)
    try:
        exp = interpret.export_tensorboard(tmp_path, lite0, gallery,
                                           explanations=[(gallery[1], explanation), explanation])
    except interpret.InputError as exc:  # tensorboard not installed: projector only
        assert "pip install interpret-dashboard[tensorboard]" in str(exc)
        exp = interpret.export_tensorboard(tmp_path, lite0, gallery, summaries=False)
    model_state.assert_unchanged(before, lite0.module)
    cfg, tensors, rows, dim = _check_projector(tmp_path, 4, 1280)
    feats = interpret.embed(lite0, gallery).features
    np.testing.assert_allclose(tensors, feats, rtol=1e-5, atol=1e-5)
    assert rows[2].split("\t")[:2] == ["image 1", "espresso"]
    assert exp.shape == (4, 1280) and exp.sprite_size == (2 * dim, 2 * dim)
    # the sprite holds the images as the model saw them, row-major
    with Image.open(tmp_path / "sprite.png") as sprite:
        cell = np.asarray(sprite.crop((dim, 0, 2 * dim, dim)), dtype=np.float32)
    view = np.asarray(lite0.preprocessing.model_view(gallery[1]).resize((dim, dim), Image.Resampling.BILINEAR),
                      dtype=np.float32)
    assert np.abs(cell - view).mean() < 2.0

    try:
        from google.protobuf import text_format
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig as PC
    except ImportError:
        return  # the summaries part needs tensorboard; the projector was checked above

    config = text_format.Parse(cfg, PC())
    assert list(config.embeddings[0].tensor_shape) == [4, 1280]
    assert list(config.embeddings[0].sprite.single_image_dim) == [dim, dim]
    acc = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    acc.Reload()
    tags = set(acc.Tags()["images"])
    assert tags == set(exp.image_tags) and len(tags) == 4 * 2 + 2
    first = acc.Images("image_000_image_0/input")[0]
    assert (first.width, first.height) == (224, 224)
    decoded = Image.open(io.BytesIO(first.encoded_image_string)).convert("RGB")
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(lite0.preprocessing.model_view(gallery[0])))
    act = acc.Images("image_001_image_1/activations_blocks.15")[0]
    assert act.width == act.height == 4 * 64 + 3 * 2  # 16 channels on a 4 x 4 grid
    assert any(t.startswith("explanation_00/gradcam_") for t in tags)
    assert acc.Images(next(t for t in tags if t.startswith("explanation_01/")))[0].width == 224


def test_tensorboard_missing_gives_an_install_hint(lite0, gallery, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(interpret.InputError, match=r"pip install interpret-dashboard\[tensorboard\]"):
        interpret.export_tensorboard(tmp_path / "a", lite0, gallery[:2])
    assert not (tmp_path / "a").exists()  # refused before writing anything
    exp = interpret.export_tensorboard(tmp_path / "b", lite0, gallery[:2], layer=LAYER, summaries=False)
    _check_projector(tmp_path / "b", 2, 112)
    assert exp.image_tags == () and exp.command == f"tensorboard --logdir {tmp_path / 'b'}"
