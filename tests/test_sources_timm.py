"""timm models: by name (random init; pretrained from the local cache only, never a
download in tests), state dicts with ``arch="timm:<name>"`` (class count and a ViT's
input size inferred), preprocessing equal to timm's own evaluation transform, suggested
layers per family from timm's ``feature_info``, token layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import interpret
from interpret import InputError
from interpret.sources import timm as timm_src

import tiny_models as tm

pytestmark = pytest.mark.usefixtures("single_thread")
timm = pytest.importorskip("timm")


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """TORCH_HOME and the Hugging Face cache point at empty folders; downloads off."""
    import huggingface_hub.constants as hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("INTERPRET_OFFLINE", "1")
    return tmp_path


def test_random_init_by_name_reads_timm_metadata():
    h = interpret.load_model("timm:resnet18", weights=None)
    assert h.name == "timm:resnet18" and h.source == "timm"
    assert any("random" in n for n in h.notes)
    # resnet18's default cfg (a1_in1k): 224 px, crop_pct 0.95, bicubic, ImageNet stats
    pre = h.preprocessing
    assert (pre.resize, pre.crop, pre.interpolation) == (235, 224, "bicubic")
    assert pre.mean == (0.485, 0.456, 0.406)
    assert len(h.labels) == 1000 and h.labels[281] == "tabby"
    assert interpret.default_layer(h) == "layer4"


def test_offline_never_downloads_and_says_where_to_put_the_file(empty_caches):
    with pytest.raises(InputError) as info:
        interpret.load_model("timm:resnet18")
    msg = str(info.value)
    where = timm_src.weights_file("resnet18")
    print("\n" + msg)
    assert str(where) in msg and str(empty_caches) in str(where)
    assert "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors" in msg
    assert "downloads are off" in msg and "weights=None" in msg
    assert not where.exists()


def test_pretrained_from_the_local_cache(empty_caches):
    """Weights put where the message says are loaded (through timm's own pretrained
    loader) without any download."""
    from safetensors.torch import save_file

    src = tm.timm_model("resnet18", num_classes=1000)
    where = timm_src.weights_file("resnet18")
    where.parent.mkdir(parents=True)
    save_file(src.state_dict(), str(where))
    h = interpret.load_model("timm:resnet18")
    assert h.weights and "resnet18" in h.weights and not h.notes
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(h.module(x), src(x))


def test_unknown_timm_name_suggests_close_ones():
    with pytest.raises(InputError, match="not a timm architecture. Did you mean convnext_tiny"):
        interpret.load_model("timm:convnext_tinny", weights=None)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_state_dict_with_timm_arch_infers_the_class_count(tmp_path, fmt):
    src = tm.timm_convnext()  # 5 classes, custom dims
    path = tmp_path / f"convnext.{fmt}"
    if fmt == "pth":
        torch.save({"state_dict": src.state_dict()}, path)
    else:
        from safetensors.torch import save_file

        save_file(src.state_dict(), str(path))
    with pytest.raises(InputError, match="does not match the architecture 'timm:convnext_atto'"):
        interpret.load_model(path, arch="timm:convnext_atto")  # the dims are not atto's
    src = tm.timm_model("convnext_atto", num_classes=7)
    torch.save(src.state_dict(), tmp_path / "atto.pth")
    h = interpret.load_model(tmp_path / "atto.pth", arch="timm:convnext_atto")
    assert h.num_classes == 7 and h.labels == [f"class {i}" for i in range(7)]
    assert h.info.suggested_layer == "stages.3"
    assert h.preprocessing.crop == 224 and h.preprocessing.resize == 256  # crop_pct 0.875
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(h.module(x), src(x))


def test_vit_state_dict_at_another_resolution_infers_its_input_size(tmp_path):
    """A ViT-Ti/16 fine-tuned at 48 px (a 3 x 3 grid) with 4 classes: the position
    embedding fixes img_size, the token layout and the preprocessing follow."""
    src = tm.timm_model("vit_tiny_patch16_224", img_size=48, num_classes=4)
    torch.save(src.state_dict(), tmp_path / "vit.pth")
    h = interpret.load_model(tmp_path / "vit.pth", arch="timm:vit_tiny_patch16_224")
    assert h.input_size == (48, 48) and h.num_classes == 4
    assert h.tokens.prefix_tokens == 1 and h.tokens.grid == (3, 3)
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(h.module(x), src(x))
    e = interpret.explain(h, x, "transformer_attribution", target=1)
    assert e.attribution.shape == (1, 1, 3, 3) and float(e.attribution.abs().max()) > 0


@pytest.mark.parametrize("name, overlay", [
    ("resnet18", {}),                                            # crop_pct 0.95, bicubic
    ("vit_tiny_patch16_224", {}),                                # mean/std 0.5, crop_pct 0.9
    ("deit_tiny_patch16_224", {"crop_mode": "squash", "crop_pct": 0.9}),
    ("resnet18", {"interpolation": "bilinear", "crop_pct": 1.0, "input_size": (3, 160, 160)}),
])
def test_preprocessing_equals_timms_own_eval_transform(name, overlay, chelsea):
    from timm.data import create_transform, resolve_model_data_config

    with torch.device("meta"):
        m = timm.create_model(name, pretrained=False, pretrained_cfg_overlay=overlay or None)
    ours = timm_src.preprocessing(m)
    theirs = create_transform(**resolve_model_data_config(m), is_training=False)
    img = chelsea.crop((0, 0, 400, 290))  # not square, so the resize rule matters
    want = theirs(img)[None]
    got = ours.to_tensor(img)
    print(f"\n{name} {overlay}: {ours.describe()}")
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 1e-5


@pytest.mark.parametrize("name, kw, layer", [
    ("resnet18", {}, "layer4"),
    ("convnext_atto", {}, "stages.3"),
    ("efficientnet_b0", {}, "blocks.6"),
    ("regnetx_002", {}, "s4"),
    ("mobilenetv3_small_050", {}, "blocks.5"),
    ("vit_tiny_patch16_224", {}, "blocks.11.norm1"),
    ("deit_tiny_distilled_patch16_224", {}, "blocks.11.norm1"),
    ("swin_tiny_patch4_window7_224", {}, "layers.3"),
])
def test_suggested_layer_per_family_is_the_last_feature_stage(name, kw, layer):
    """The last stage of timm's feature_info (for ViT/DeiT the first norm of the last
    block, where attention still mixes the patches), and its maps have a grid larger
    than 1 x 1 at the model's input size."""
    m = timm.create_model(name, pretrained=False, **kw).eval()
    h = interpret.load_model(m)
    assert interpret.default_layer(h) == layer
    info = {i.name: i for i in interpret.list_layers(h)}[layer]
    c, hh, ww = h.tokens.map_shape(info.output_shape)
    print(f"\n{name}: {layer} {info.output_shape} -> maps {c} x {hh} x {ww}")
    assert hh == ww == 7 if "vit" not in name and "deit" not in name else hh == ww == 14


def test_swin_maps_are_channels_last_and_permuted():
    h = interpret.load_model(tm.timm_swin(), preprocessing=interpret.Preprocessing(32, 32))
    assert h.tokens.channels_last
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    maps = interpret.layer_maps(h, x, "layers.1")
    with torch.no_grad():
        raw = h.module.layers[1](h.module.layers[0](h.module.patch_embed(x)))
    assert tuple(raw.shape) == (1, 4, 4, 32)
    np.testing.assert_allclose(maps.maps, raw[0].permute(2, 0, 1).numpy(), rtol=1e-5, atol=1e-6)
