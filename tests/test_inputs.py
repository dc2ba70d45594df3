"""What comes in: images in every common format and every broken one, model files
(hostile pickles, TorchScript, state dicts in their usual wrappings), names of layers,
classes, methods and parameters.  Bad input gives an InputError whose message says
what was wrong; good input gives the right pixels and the right numbers.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, features
from torch import nn

import interpret
from interpret import InputError, Preprocessing
from interpret.images import TRANSPARENT_BACKGROUND

pytestmark = pytest.mark.usefixtures("single_thread")

# ----------------------------------------------------------------------------------
# images: helpers

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(w: int = 32, h: int = 24) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2] = RED
    a[: h // 2, w // 2:] = GREEN
    a[h // 2:, : w // 2] = BLUE
    a[h // 2:, w // 2:] = WHITE
    return Image.fromarray(a)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def centres(img: Image.Image):
    """Colour at the centre of each quadrant: TL, TR, BL, BR."""
    a = np.asarray(img).astype(int)
    h, w = a.shape[:2]
    return [a[h // 4, w // 4], a[h // 4, 3 * w // 4], a[3 * h // 4, w // 4], a[3 * h // 4, 3 * w // 4]]


def assert_quadrants(img, tol=0):
    assert img.mode == "RGB" and img.size == (32, 24)
    for got, want in zip(centres(img), [RED, GREEN, BLUE, WHITE]):
        assert np.abs(got - np.array(want)).max() <= tol, (got, want)


def png_header_only(w: int, h: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims w x h RGB pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if Pillow starts decoding pixel data."""
    def load(self, *a, **k):
        raise AssertionError("pixel data was decoded")
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


# ----------------------------------------------------------------------------------
# images: refused


def test_empty_bytes_are_refused():
    with pytest.raises(InputError, match="empty"):
        interpret.load_image(b"")


def test_text_bytes_are_not_an_image():
    with pytest.raises(InputError, match="not an image"):
        interpret.load_image(b"name,score\ncat,0.9\n" * 10)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_refused_as_truncated(fmt):
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), fmt)
    with pytest.raises(InputError, match="truncated or corrupt"):
        interpret.load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_from_the_header(no_decoding):
    data = png_header_only(100_000, 100_000)  # 10 gigapixels in 120 bytes
    assert len(data) < 200
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="megapixels") as info:
        interpret.load_image(data)
    elapsed = time.perf_counter() - t0
    print(f"\nbomb refused in {elapsed * 1000:.2f} ms: {info.value}")
    assert elapsed < 0.5
    assert "bomb" in str(info.value)


def test_image_over_our_pixel_limit_but_under_pillows_is_refused_before_decoding(no_decoding):
    # 48 MP: Pillow itself only warns (its hard limit is 179 MP); our limit is 40 MP
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=r"8000x6000 pixels \(48 megapixels\)"):
        interpret.load_image(png_header_only(8000, 6000))
    assert time.perf_counter() - t0 < 0.5


def test_image_just_under_the_pixel_limit_passes_the_header_check(no_decoding):
    # 6000 x 6000 = 36 MP is allowed: the check goes on to decode (our spy fires)
    with pytest.raises(AssertionError, match="decoded"):
        interpret.load_image(png_header_only(6000, 6000))


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(interpret.images, "MAX_IMAGE_BYTES", 1000)
    p = tmp_path / "big.png"
    p.write_bytes(encode(quadrants(200, 200), "PNG", compress_level=0))
    with pytest.raises(InputError, match="MiB"):
        interpret.load_image(p)


@pytest.mark.parametrize("source,message", [
    ("/nonexistent/cat.jpg", "does not exist"),
    (12345, "Cannot read an image from a int"),
    (np.zeros((4, 4, 2), np.uint8), "HxW, HxWx3 or HxWx4"),
    (np.zeros((0, 4, 3), np.uint8), "no pixels"),
])
def test_bad_sources_are_refused_with_a_reason(source, message):
    with pytest.raises(InputError, match=message):
        interpret.load_image(source)


def test_folder_and_text_mode_file_are_refused(tmp_path):
    with pytest.raises(InputError, match="folder"):
        interpret.load_image(tmp_path)
    p = tmp_path / "a.png"
    p.write_bytes(encode(quadrants(), "PNG"))
    with open(p, "r", encoding="latin-1") as fh, pytest.raises(InputError, match="text mode"):
        interpret.load_image(fh)


# ----------------------------------------------------------------------------------
# images: accepted, with the right pixels


@pytest.mark.parametrize("fmt,kw,tol", [
    ("PNG", {}, 0),
    ("BMP", {}, 0),
    ("TIFF", {}, 0),
    ("JPEG", {"quality": 95}, 12),
    pytest.param("WEBP", {"lossless": True}, 0, marks=pytest.mark.skipif(
        not features.check("webp"), reason="Pillow built without WebP")),
])
def test_common_formats_decode_to_the_right_pixels(fmt, kw, tol):
    assert_quadrants(interpret.load_image(encode(quadrants(), fmt, **kw)), tol)


def test_all_source_kinds_give_the_same_pixels(tmp_path):
    img = quadrants()
    p = tmp_path / "q.png"
    img.save(p)
    ref = np.asarray(img)
    with open(p, "rb") as fh:
        from_file = interpret.load_image(fh)
    for got in (interpret.load_image(str(p)), interpret.load_image(p), interpret.load_image(p.read_bytes()),
                from_file, interpret.load_image(img), interpret.load_image(ref),
                interpret.load_image(ref.astype(np.float32) / 255.0)):
        np.testing.assert_array_equal(np.asarray(got), ref)


def test_gif_animation_gives_its_first_frame():
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 2
    a = np.asarray(interpret.load_image(data))
    np.testing.assert_array_equal(a[8, 8], RED)


def test_greyscale_becomes_grey_rgb():
    g = Image.fromarray(np.array([[0, 64], [128, 255]], np.uint8), "L")
    a = np.asarray(interpret.load_image(encode(g, "PNG")))
    assert a.shape == (2, 2, 3)
    np.testing.assert_array_equal(a[..., 0], [[0, 64], [128, 255]])
    np.testing.assert_array_equal(a[..., 0], a[..., 2])


def test_16_bit_png_is_rescaled_not_clipped():
    a16 = np.array([[0, 65535], [32768, 16384]], np.uint16)
    im = Image.fromarray(a16)
    assert im.mode == "I;16"
    data = encode(im, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    a = np.asarray(interpret.load_image(data))[..., 0].astype(int)
    # v / 65535 * 255: 0, 255, 127.5, 63.75 (clipping would give 255 for all non-zero)
    assert a[0, 0] == 0 and a[0, 1] == 255
    assert abs(a[1, 0] - 127.5) <= 1 and abs(a[1, 1] - 63.75) <= 1


def test_palette_image_keeps_its_colours():
    p = quadrants().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert p.mode == "P"
    assert_quadrants(interpret.load_image(encode(p, "PNG")))


def test_transparency_is_composited_on_neutral_grey():
    a = np.zeros((2, 3, 4), np.uint8)
    a[:, 0] = (255, 0, 0, 255)   # opaque red
    a[:, 1] = (255, 0, 0, 0)     # fully transparent
    a[:, 2] = (255, 255, 255, 128)  # half-transparent white
    rgb = np.asarray(interpret.load_image(encode(Image.fromarray(a, "RGBA"), "PNG"))).astype(int)
    np.testing.assert_array_equal(rgb[0, 0], RED)
    np.testing.assert_array_equal(rgb[0, 1], TRANSPARENT_BACKGROUND)
    expected = [round(c + (255 - c) * 128 / 255) for c in TRANSPARENT_BACKGROUND]
    assert np.abs(rgb[0, 2] - expected).max() <= 1


def test_cmyk_jpeg_converts_to_the_right_rgb():
    data = encode(quadrants().convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert_quadrants(interpret.load_image(data), tol=16)


def test_exif_orientation_6_rotates_the_image():
    # stored 40 wide x 20 high with a red block top-left; orientation 6 means "rotate
    # 90 degrees clockwise to display": shown 20 wide x 40 high, red block top-RIGHT
    a = np.zeros((20, 40, 3), np.uint8)
    a[:] = BLUE
    a[:10, :10] = RED
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6
    out = interpret.load_image(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.size == (20, 40)
    arr = np.asarray(out).astype(int)
    assert np.abs(arr[3, 16] - RED).max() < 20     # top-right
    assert np.abs(arr[3, 3] - BLUE).max() < 20     # top-left is blue
    assert np.abs(arr[36, 16] - BLUE).max() < 20   # bottom-right is blue


# ----------------------------------------------------------------------------------
# model files: never execute code unless explicitly allowed


class Payload:
    """Unpickling this creates a file: the stand-in for arbitrary code execution."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("kw", [{"arch": "resnet18"}, {"arch": "resnet18", "allow_untrusted": False}, {}],
                         ids=["arch", "explicit-false", "no-arch"])
def test_hostile_pickle_is_refused_and_never_executed(tmp_path, kw, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": Payload(marker)}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(InputError, match="Refused to load model.pth: it holds pickled Python objects"):
        interpret.load_model(str(path), **kw)
    with pytest.raises(InputError):
        interpret.load_model(path.read_bytes(), **kw)
    assert not marker.exists(), "the pickle's code ran"


def test_hostile_pickle_payload_is_live_when_untrusted_is_allowed(tmp_path):
    """The control for the test above: the payload does run when loading is allowed."""
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pth"
    torch.save({"evil": Payload(marker)}, path)
    with pytest.raises(InputError):
        interpret.load_model(str(path), arch="resnet18", allow_untrusted=True)
    assert marker.exists()


def scripted_net():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(3, 4, 3, padding=1)), ("relu", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(4, 3)),
        ])).eval()
    return net


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_needs_allow_untrusted_and_then_takes_no_hooks(tmp_path):
    net = scripted_net()
    path = tmp_path / "net.pt"
    torch.jit.script(net).save(str(path))
    with pytest.raises(InputError, match="TorchScript"):
        interpret.load_model(str(path))
    handle = interpret.load_model(str(path), allow_untrusted=True,
                                  preprocessing=Preprocessing(32, 32))
    assert handle.scripted and len(handle.labels) == 3
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    # layer methods, and the methods that work through hooks on activation modules
    # (guided backprop and DeepLIFT would otherwise silently return a plain gradient)
    for method in ("gradcam", "eigencam", "guided_backprop", "guided_gradcam", "deeplift"):
        with pytest.raises(InputError, match="TorchScript"):
            interpret.explain(handle, x, method, target=1)
    got = interpret.explain(handle, x, "saliency", target=1).attribution
    eager = interpret.explain(interpret.load_model(net, preprocessing=Preprocessing(32, 32)), x,
                              "saliency", target=1).attribution
    torch.testing.assert_close(got, eager, rtol=1e-5, atol=1e-7)
    assert float(got.abs().max()) > 0


class FunctionalReLUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", ["guided_backprop", "deeplift"])
def test_hook_based_methods_refuse_models_without_activation_modules(method):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        handle = interpret.load_model(FunctionalReLUNet().eval(), preprocessing=Preprocessing(32, 32))
    with pytest.raises(InputError, match="activations called as functions"):
        interpret.explain(handle, torch.randn(1, 3, 32, 32), method, target=0)


# ----------------------------------------------------------------------------------
# model files: state dicts


@pytest.fixture(scope="module")
def resnet7():
    """A 'fine-tuned' ResNet-18 with 7 classes (random weights, seeded)."""
    from torchvision.models import resnet18

    with torch.random.fork_rng():
        torch.manual_seed(7)
        net = resnet18(num_classes=7)
        # non-trivial batch-norm statistics, so that a lost buffer would show
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def x32():
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _save(obj, path):
    if str(path).endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(obj, str(path))
    else:
        torch.save(obj, path)


@pytest.mark.parametrize("variant", ["plain.pth", "plain.safetensors", "state_dict.pth", "model.pth",
                                     "module-prefix.pth", "module-prefix.safetensors"])
def test_state_dict_round_trip_infers_num_classes(tmp_path, resnet7, x32, variant):
    sd = {k: v.clone() for k, v in resnet7.state_dict().items()}
    kind, ext = variant.split(".")
    if kind == "state_dict":
        obj = {"state_dict": sd, "epoch": 3}
    elif kind == "model":
        obj = {"model": sd, "optimizer": {"lr": 0.1}}
    elif kind == "module-prefix":
        obj = {f"module.{k}": v for k, v in sd.items()}
    else:
        obj = sd
    path = tmp_path / f"finetuned.{ext}"
    _save(obj, path)
    handle = interpret.load_model(str(path), arch="resnet18")
    assert handle.num_classes == 7 and len(handle.labels) == 7
    assert handle.name == "finetuned"
    with torch.no_grad():
        expected = resnet7(x32)[0]
    got = torch.tensor([p.logit for p in sorted(interpret.predict(handle, x32, top_k=None), key=lambda p: p.index)])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_state_dict_needs_an_architecture(tmp_path, resnet7):
    path = tmp_path / "w.pth"
    torch.save(resnet7.state_dict(), path)
    with pytest.raises(InputError, match="arch="):
        interpret.load_model(str(path))


def test_wrong_architecture_is_refused(tmp_path, resnet7):
    path = tmp_path / "w.pth"
    torch.save(resnet7.state_dict(), path)
    with pytest.raises(InputError, match="does not match the architecture 'resnet34'"):
        interpret.load_model(str(path), arch="resnet34")
    with pytest.raises(InputError, match="Did you mean resnet18"):
        interpret.load_model(str(path), arch="resnet19")


def test_unknown_model_name_and_non_checkpoint_file_are_refused(tmp_path):
    with pytest.raises(InputError, match="Unknown model 'resnet'"):
        interpret.load_model("resnet")
    p = tmp_path / "notes.pth"
    p.write_text("these are not weights")
    with pytest.raises(InputError, match="not a PyTorch checkpoint"):
        interpret.load_model(str(p), arch="resnet18")


SEVEN = ["apple", "banana", "cherry", "date", "elderberry", "fig", "grape"]


@pytest.mark.parametrize("fmt", ["txt", "json-list", "json-dict"])
def test_labels_from_a_file(tmp_path, resnet7, fmt):
    w = tmp_path / "w.pth"
    torch.save(resnet7.state_dict(), w)
    lab = tmp_path / ("labels.txt" if fmt == "txt" else "labels.json")
    if fmt == "txt":
        lab.write_text("\n".join(SEVEN) + "\n\n")
    elif fmt == "json-list":
        lab.write_text(json.dumps(SEVEN))
    else:  # index -> label, keys as strings and out of order
        lab.write_text(json.dumps({str(i): s for i, s in reversed(list(enumerate(SEVEN)))}))
    handle = interpret.load_model(str(w), arch="resnet18", labels=str(lab))
    assert handle.labels == SEVEN
    e = interpret.predict(handle, torch.zeros(1, 3, 64, 64), top_k=1)[0]
    assert e.label == SEVEN[e.index]


def test_labels_of_the_wrong_length_are_refused(tmp_path, resnet7):
    w = tmp_path / "w.pth"
    torch.save(resnet7.state_dict(), w)
    with pytest.raises(InputError, match="labels list has 6 entries but the model has 7 classes"):
        interpret.load_model(str(w), arch="resnet18", labels=SEVEN[:6])


# ----------------------------------------------------------------------------------
# names: layers, classes, methods, parameters


@pytest.fixture(scope="module")
def x_r18():
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_unknown_layer_suggests_a_name(resnet18, x_r18):
    with pytest.raises(InputError, match="no layer named 'layer44'.*Did you mean 'layer4'"):
        interpret.explain(resnet18, x_r18, "gradcam", layer="layer44", target=1)


def test_layer_without_spatial_output_is_refused(resnet18, x_r18):
    with pytest.raises(InputError, match="no spatial"):
        interpret.explain(resnet18, x_r18, "gradcam", layer="fc", target=1)


@pytest.mark.parametrize("target,message", [
    (1000, r"Class index 1000 is out of range: this model has 1000 classes \(0-999\)"),
    (-1, "out of range"),
    ("not a class at all", "No class is labelled 'not a class at all'"),
    ("cat", "matches several classes"),
    (2.5, "must be a class index or a label"),
])
def test_bad_targets_are_refused(resnet18, x_r18, target, message):
    with pytest.raises(InputError, match=message):
        interpret.explain(resnet18, x_r18, "saliency", target=target)


def test_targets_by_label_resolve_to_the_index(resnet18, x_r18):
    assert interpret.explain(resnet18, x_r18, "saliency", target="espresso").target == 967
    assert interpret.explain(resnet18, x_r18, "saliency", target="Tabby").target == 281
    assert interpret.explain(resnet18, x_r18, "saliency", target="281").target == 281


def test_contrast_errors(resnet18, x_r18):
    with pytest.raises(InputError, match="must differ"):
        interpret.explain(resnet18, x_r18, "gradcam", target=3, contrast=3)
    with pytest.raises(InputError, match="contrast class has no effect"):
        interpret.explain(resnet18, x_r18, "eigencam", target=3, contrast=4)


def test_unknown_method_suggests_a_name(resnet18, x_r18):
    with pytest.raises(InputError, match="Unknown method 'gradcamm'. Did you mean gradcam"):
        interpret.explain(resnet18, x_r18, "gradcamm")


@pytest.mark.parametrize("method,params,message", [
    ("integrated_gradients", {"n_steps": 1}, r"'n_steps' = 1 is out of range \[2, 1024\]"),
    ("smoothgrad", {"noise": 1.5}, "out of range"),
    ("smoothgrad", {"samples": 2.5}, "must be an integer"),
    ("occlusion", {"baseline": "purple"}, "must be one of black, mean, blur"),
    ("integrated_gradients", {"adaptive": "maybe"}, "true or false"),
    ("gradcam", {"alpha": 1}, "has no parameter 'alpha'"),
])
def test_bad_parameters_are_refused(resnet18, x_r18, method, params, message):
    with pytest.raises(InputError, match=message):
        interpret.explain(resnet18, x_r18, method, target=1, **params)


def test_occlusion_window_larger_than_input_is_refused(resnet18, x_r18):
    with pytest.raises(InputError, match="larger than the input"):
        interpret.explain(resnet18, x_r18, "occlusion", target=1, window=96)


def test_input_tensor_of_wrong_shape_is_refused(resnet18):
    with pytest.raises(InputError, match="1x3xHxW"):
        interpret.explain(resnet18, torch.zeros(2, 3, 32, 32), "saliency", target=1)


# ----------------------------------------------------------------------------------
# torchvision weights, offline


@pytest.mark.parametrize("how", ["download=False", "INTERPRET_OFFLINE=1"])
def test_missing_pretrained_weights_offline_name_the_cache_path(tmp_path, monkeypatch, how):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    kw = {}
    if how == "download=False":
        kw["download"] = False
    else:
        monkeypatch.setenv("INTERPRET_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        interpret.load_model("torchvision:resnet18", weights="DEFAULT", **kw)
    assert time.perf_counter() - t0 < 2.0
    msg = str(info.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "weights=None" in msg


def test_unknown_weights_name_lists_the_available_ones():
    with pytest.raises(InputError, match="available: DEFAULT, IMAGENET1K_V1"):
        interpret.load_model("torchvision:resnet18", weights="IMAGENET22K")


# ----------------------------------------------------------------------------------
# token models: ViT and Swin layers are reshaped to their patch grids


@pytest.mark.parametrize("arch,grid", [("vit_b_16", (768, 14, 14)), ("swin_t", (768, 7, 7))])
def test_transformer_gradcam_maps_tokens_onto_the_image(arch, grid):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        handle = interpret.load_model(f"torchvision:{arch}", weights=None)
        if arch.startswith("vit"):
            # torchvision initialises the ViT head to zeros: every logit would be 0
            nn.init.normal_(handle.module.heads.head.weight, std=0.02)
    img = quadrants(224, 224)
    e = interpret.explain(handle, img, "gradcam", target=1)
    print(f"\n{arch}: layer {e.layer}, layer grid {e.extras['layer_shape']}, "
          f"heatmap std {e.heatmap.std():.3f}")
    assert e.extras["layer_shape"] == grid
    assert e.heatmap.shape == (224, 224)
    assert e.heatmap.std() > 0.05 and e.heatmap.max() > 0.9
    # not constant within the grid either: many distinct cell values
    h, w = grid[1:]
    cells = e.attribution[0, 0].numpy()
    assert cells.shape == (h, w) and len(np.unique(np.round(cells, 6))) > h * w // 2
