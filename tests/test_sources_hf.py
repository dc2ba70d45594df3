"""Hugging Face folders: a saved ViT (config.json + model.safetensors +
preprocessor_config.json) loads from its folder, a zip of it, or the zip's bytes, with
its labels, its preprocessing and its logits; remote code and pickled weights are
refused unless untrusted formats are allowed, and nothing from the folder runs."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

import interpret
from interpret import InputError, Preprocessing
from interpret.sources.hf import preprocessing_from

import tiny_models as tm

pytestmark = pytest.mark.usefixtures("single_thread")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    model = tm.hf_vit()
    return model, tm.save_hf_folder(model, tmp_path_factory.mktemp("hf") / "shapes-vit")


@pytest.fixture(scope="module")
def x32():
    return torch.randn(1, 3, tm.VIT_SIZE, tm.VIT_SIZE, generator=torch.Generator().manual_seed(0))


def _check(handle, model, x):
    assert handle.labels == [f"shape {i}" for i in range(5)]
    assert handle.preprocessing == Preprocessing((32, 32), None, (0.5,) * 3, (0.5,) * 3, "bilinear")
    assert handle.tokens.prefix_tokens == 1 and handle.tokens.grid == (4, 4)
    assert interpret.default_layer(handle) == "vit.layers.1.layernorm_before"
    with torch.no_grad():
        want = model(x).logits
    got = torch.tensor([p.logit for p in sorted(interpret.predict(handle, x, top_k=None),
                                                key=lambda p: p.index)])
    torch.testing.assert_close(got, want[0], rtol=1e-5, atol=1e-6)


def test_folder_loads_with_labels_preprocessing_and_logits(vit_folder, x32):
    model, folder = vit_folder
    h = interpret.load_model(folder)
    assert h.name == "shapes-vit" and "ViTForImageClassification" in h.source
    _check(h, model, x32)


@pytest.mark.parametrize("top", ["", "shapes-vit"], ids=["flat", "nested"])
def test_zip_and_its_bytes_load_the_same(vit_folder, x32, tmp_path, top):
    model, folder = vit_folder
    data = tm.zip_folder(folder, top)
    path = tmp_path / "upload.zip"
    path.write_bytes(data)
    _check(interpret.load_model(path), model, x32)
    h = interpret.load_model(data)  # what the upload form passes: bytes, no file name
    _check(h, model, x32)
    e = interpret.explain(h, x32, "transformer_attribution", target=2)
    assert e.attribution.shape == (1, 1, 4, 4) and float(e.attribution.abs().max()) > 0


def test_remote_code_is_refused_and_never_runs(vit_folder, tmp_path):
    _, folder = vit_folder
    evil = tmp_path / "evil"
    evil.mkdir()
    for f in folder.iterdir():
        (evil / f.name).write_bytes(f.read_bytes())
    marker = tmp_path / "pwned"
    (evil / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    cfg = json.loads((evil / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForImageClassification": "modeling_evil.EvilModel"}
    (evil / "config.json").write_text(json.dumps(cfg))
    for source in (evil, tm.zip_folder(evil)):
        with pytest.raises(InputError, match="Refused to load .*own Python code \\(auto_map\\).*"
                                             "allow_untrusted=True"):
            interpret.load_model(source)
    assert not marker.exists()


def test_pickled_weights_are_refused_unless_allowed(tmp_path, x32):
    """A folder with pytorch_model.bin (what older transformers wrote) instead of
    model.safetensors."""
    model = tm.hf_vit()
    folder = tmp_path / "bin"
    model.config.save_pretrained(str(folder))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(InputError, match="Refused to load .*pytorch_model.bin, a pickle.*"
                                         "allow_untrusted=True"):
        interpret.load_model(folder)
    h = interpret.load_model(folder, allow_untrusted=True)
    with torch.no_grad():
        torch.testing.assert_close(h.module(x32).logits, model(x32).logits)


def test_unsafe_zips_are_refused(tmp_path, vit_folder):
    _, folder = vit_folder
    buf = tmp_path / "escape.zip"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(folder / "config.json", "config.json")
        zf.writestr("../../outside.txt", "x")
    with pytest.raises(InputError, match="outside its folder"):
        interpret.load_model(buf)
    with zipfile.ZipFile(tmp_path / "nocfg.zip", "w") as zf:
        zf.writestr("config.json", "{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        interpret.load_model(tmp_path / "nocfg.zip")
    nocfg = tmp_path / "noweights"
    nocfg.mkdir()
    (nocfg / "config.json").write_text((folder / "config.json").read_text())
    with pytest.raises(InputError, match="has no model.safetensors"):
        interpret.load_model(nocfg)


def test_processor_configs_map_to_preprocessing():
    # ViT: exact resize
    assert preprocessing_from({"size": {"height": 384, "width": 384}, "image_mean": [0.5] * 3,
                               "image_std": [0.5] * 3, "resample": 2}) == \
        Preprocessing((384, 384), None, (0.5,) * 3, (0.5,) * 3, "bilinear")
    # ConvNeXt below 384: shortest edge / crop_pct, then a centre crop of the edge
    assert preprocessing_from({"size": {"shortest_edge": 224}, "crop_pct": 0.875, "resample": 3,
                               "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}) == \
        Preprocessing(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bicubic")
    # ResNet/BEiT style: shortest edge, explicit centre crop
    got = preprocessing_from({"size": {"shortest_edge": 256}, "do_center_crop": True,
                              "crop_size": {"height": 224, "width": 224}, "image_mean": [0.5] * 3,
                              "image_std": [0.5] * 3})
    assert got == Preprocessing(256, (224, 224), (0.5,) * 3, (0.5,) * 3, "bilinear")
    # no normalisation, a rescale to [0, 255] folded into mean/std
    got = preprocessing_from({"size": {"height": 32, "width": 32}, "do_normalize": False,
                              "rescale_factor": 1.0})
    assert got.mean == (0.0, 0.0, 0.0) and got.std == pytest.approx((1 / 255,) * 3)


def test_hf_labels_placeholders_become_class_numbers(tmp_path):
    from transformers import ViTForImageClassification

    cfg = tm.hf_vit_config()
    cfg.id2label = {i: f"LABEL_{i}" for i in range(5)}
    cfg.label2id = {v: k for k, v in cfg.id2label.items()}
    folder = tm.save_hf_folder(ViTForImageClassification(cfg).eval(), tmp_path / "nolabels", processor=False)
    h = interpret.load_model(folder)
    assert h.labels == [f"class {i}" for i in range(5)]
    assert any("preprocessor_config.json" in n for n in h.notes)
    assert h.input_size == (32, 32)
