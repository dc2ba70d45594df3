"""Loading models: the bundled model's normalisation claim re-measured, torchvision
architecture names with and without their prefix, weight-mismatch messages a person can
act on, and the team's own architecture code (a factory from Python or from a model
folder's ``models.toml``), which is never imported for a visitor's upload."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

import interpret
from interpret import InputError, Preprocessing
from interpret.model_folder import read_model_folder
from interpret.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from interpret.sources import bundled

pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------------
# the bundled model


def test_lite0_normalisation(lite0, chelsea, coffee):
    """interpret/sources/bundled.py says EfficientNet-Lite0 wants inputs in [-1, 1]
    (mean 127/255, std 128/255), not ImageNet's mean/std, because its top-1 confidence
    is higher: cat 0.379 against 0.355, espresso 0.957 against 0.843, the five cat
    classes together 0.92 against 0.86.  Re-measured here (resize 256, crop 224)."""
    ours = bundled.preprocessing()
    imagenet = Preprocessing(256, 224, IMAGENET_MEAN, IMAGENET_STD, "bilinear")
    got = {}
    for name, img in (("chelsea", chelsea), ("coffee", coffee)):
        for tag, pre in (("lite", ours), ("imagenet", imagenet)):
            with torch.no_grad():
                p = lite0.module(pre.to_tensor(img)).softmax(-1)[0]
            got[name, tag] = (float(p.max()), float(p[281:286].sum()), lite0.label(int(p.argmax())))
    print("\n" + "\n".join(f"{k}: top-1 {v[0]:.3f} ({v[2]}), cat classes {v[1]:.3f}" for k, v in got.items()))
    assert ours.mean == (127 / 255,) * 3 and ours.std == (128 / 255,) * 3
    assert got["chelsea", "lite"][0] == pytest.approx(0.379, abs=0.005)
    assert got["chelsea", "imagenet"][0] == pytest.approx(0.355, abs=0.005)
    assert got["coffee", "lite"][0] == pytest.approx(0.957, abs=0.005)
    assert got["coffee", "imagenet"][0] == pytest.approx(0.843, abs=0.005)
    assert got["chelsea", "lite"][1] == pytest.approx(0.92, abs=0.01)
    assert got["chelsea", "imagenet"][1] == pytest.approx(0.86, abs=0.01)
    assert got["coffee", "lite"][2] == got["coffee", "imagenet"][2] == "espresso"
    for photo in ("chelsea", "coffee"):
        assert got[photo, "lite"][0] > got[photo, "imagenet"][0]


# ----------------------------------------------------------------------------------
# torchvision names


@pytest.fixture(scope="module")
def resnet3():
    from torchvision.models import resnet18

    with torch.random.fork_rng():
        torch.manual_seed(3)
        return resnet18(num_classes=3).eval()


@pytest.fixture(scope="module")
def x64():
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch", ["resnet18", "torchvision:resnet18", " torchvision:resnet18 "])
def test_torchvision_arch_with_or_without_its_prefix(tmp_path, resnet3, x64, arch):
    path = tmp_path / "w.pth"
    torch.save(resnet3.state_dict(), path)
    handle = interpret.load_model(str(path), arch=arch)
    assert handle.num_classes == 3 and "arch=resnet18" in handle.source
    with torch.no_grad():
        torch.testing.assert_close(handle.module(x64), resnet3(x64))


# ----------------------------------------------------------------------------------
# weights that do not fit


def test_mismatch_names_counts_keys_and_the_first_shape(tmp_path, resnet3):
    state = dict(resnet3.state_dict())
    del state["layer4.1.bn2.running_var"], state["layer4.1.bn2.weight"]
    state["extra.weight"] = torch.zeros(2)
    state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(InputError) as info:
        interpret.load_model(str(path), arch="resnet18")
    msg = str(info.value)
    print("\n" + msg)
    assert "does not match the architecture 'resnet18'" in msg
    assert "2 of the architecture's" in msg and "'layer4.1.bn2.weight'" in msg
    assert "1 of the file's" in msg and "'extra.weight'" in msg
    assert "'conv1.weight': [64, 1, 7, 7] in the file, [64, 3, 7, 7] in the architecture" in msg
    assert "Traceback" not in msg


def test_mismatch_says_which_prefix_most_keys_carry(tmp_path, resnet3):
    state = {f"backbone.{k}": v for k, v in resnet3.state_dict().items()}
    state["head.weight"] = torch.zeros(3, 3)  # not every key carries it: not stripped silently
    path = tmp_path / "w.safetensors"
    from safetensors.torch import save_file

    save_file(state, str(path))
    with pytest.raises(InputError) as info:
        interpret.load_model(str(path), arch="resnet18")
    msg = str(info.value)
    n = len(resnet3.state_dict())
    assert f"{n} of the file's {n + 1} keys start with 'backbone.'" in msg
    assert f"({n} of them fit the architecture without it)" in msg
    assert "strip that prefix" in msg


def test_a_timm_checkpoint_for_a_torchvision_name_is_refused_plainly(tmp_path):
    import tiny_models as tm

    path = tmp_path / "w.pth"
    torch.save(tm.timm_convnext().state_dict(), path)
    with pytest.raises(InputError, match=r"does not match the architecture 'convnext_tiny'.*missing"):
        interpret.load_model(str(path), arch="convnext_tiny")


# ----------------------------------------------------------------------------------
# the team's own architecture code


FACTORY_MODULE = '''
import torch
from torch import nn

CALLS = []


def build_net(width=8, classes=4):
    CALLS.append((width, classes))
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))


def not_a_module():
    return 42
'''


@pytest.fixture
def ourlab(tmp_path, monkeypatch):
    pkg = tmp_path / "code" / "ourlab_models"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent(FACTORY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    yield pkg
    for name in [m for m in sys.modules if m.startswith("ourlab_models")]:
        del sys.modules[name]


def _weights(tmp_path, width=6, classes=5):
    torch.manual_seed(11)
    net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)).eval()
    from safetensors.torch import save_file

    path = tmp_path / "ournet.safetensors"
    save_file(net.state_dict(), str(path))
    return net, path


def test_factory_string_and_callable_from_python(tmp_path, ourlab, x64):
    net, path = _weights(tmp_path)
    h = interpret.load_model(path, arch="ourlab_models.nets:build_net",
                             arch_kwargs={"width": 6, "classes": 5}, preprocessing=Preprocessing(64, 64))
    from ourlab_models import nets

    assert nets.CALLS == [(6, 5)]
    with torch.no_grad():
        torch.testing.assert_close(h.module(x64), net(x64))
    assert "arch=ourlab_models.nets:build_net" in h.source
    h2 = interpret.load_model(path, arch=lambda: nets.build_net(6, 5))
    with torch.no_grad():
        torch.testing.assert_close(h2.module(x64), net(x64))
    e = interpret.explain(h, x64, "gradcam", target=1)
    assert e.heatmap.max() > 0.99
    with pytest.raises(InputError, match="does not match"):
        interpret.load_model(path, arch="ourlab_models.nets:build_net")  # default width 8
    with pytest.raises(InputError, match="not an nn.Module"):
        interpret.load_model(path, arch="ourlab_models.nets:not_a_module")
    with pytest.raises(InputError, match="has no 'missing'"):
        interpret.load_model(path, arch="ourlab_models.nets:missing")
    with pytest.raises(InputError, match="Cannot import the factory module 'nosuch.mod'"):
        interpret.load_model(path, arch="nosuch.mod:fn")
    with pytest.raises(InputError, match="arch_kwargs only apply to a factory"):
        interpret.load_model(path, arch="resnet18", arch_kwargs={"width": 1})


def test_factory_in_the_model_folder(tmp_path, ourlab, x64):
    net, path = _weights(tmp_path)
    (tmp_path / "models.toml").write_text(textwrap.dedent('''
        [[model]]
        name = "Our net"
        file = "ournet.safetensors"
        factory = "ourlab_models.nets:build_net"
        kwargs = { width = 6, classes = 5 }
        resize = 64
        crop = 64
    '''))
    (entry,) = read_model_folder(str(tmp_path))
    assert entry.factory == "ourlab_models.nets:build_net" and entry.kwargs == {"width": 6, "classes": 5}
    h = entry.load()
    assert h.name == "Our net" and h.input_size == (64, 64)
    with torch.no_grad():
        torch.testing.assert_close(h.module(x64), net(x64))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ournet.safetensors").write_bytes(path.read_bytes())
    for text, message in (
        ('factory = "os.system"', "factory must be written"),
        ('factory = "ourlab_models.nets:build_net"\narch = "resnet18"', "both arch and factory"),
        ('arch = "resnet18"\nkwargs = { a = 1 }', "kwargs must be a table and need a factory"),
    ):
        (bad / "models.toml").write_text(f'[[model]]\nname = "x"\nfile = "ournet.safetensors"\n{text}\n')
        with pytest.raises(InputError, match=message):
            read_model_folder(str(bad))


def test_an_upload_never_imports_a_factory(ourlab, tmp_path):
    """The upload form offers only torchvision and timm architectures; a factory string
    (or anything outside the lists) is refused before any loading, and nothing is
    imported."""
    from ui.upload import check_upload_arch

    with pytest.raises(InputError, match="not one of the architectures"):
        check_upload_arch("torchvision", "ourlab_models.nets:build_net")
    with pytest.raises(InputError, match="not one of the architectures"):
        check_upload_arch("timm", "os:system")
    assert "ourlab_models.nets" not in sys.modules
    assert check_upload_arch("torchvision", "resnet18") == "resnet18"
    assert check_upload_arch("timm", "convnext_atto") == "timm:convnext_atto"
    assert check_upload_arch("onnx", None) is None
    # and the loader behind the form refuses one as well, before reading the file
    from ui.compute import load_uploaded_model

    with pytest.raises(InputError, match="names code to import"):
        load_uploaded_model(b"not even a checkpoint", "m.pth", "ourlab_models.nets:build_net", None)
    assert "ourlab_models.nets" not in sys.modules


def test_a_module_from_a_notebook_keeps_its_library_metadata():
    """load_model(module) of a timm model reads timm's metadata (preprocessing, token
    layout, suggested layer) instead of ImageNet defaults."""
    import tiny_models as tm

    h = interpret.load_model(tm.timm_vit_registers())
    assert h.tokens.prefix_tokens == 5 and h.tokens.grid == (4, 4)
    assert h.info.suggested_layer == "blocks.1.norm1"
    assert h.preprocessing.mean == (0.5, 0.5, 0.5) and h.preprocessing.interpolation == "bicubic"
    h = interpret.load_model(tm.timm_vit_registers(), preprocessing=Preprocessing(32, 32))
    assert h.preprocessing == Preprocessing(32, 32)


def test_cli_model_options_accept_every_source(tmp_path, resnet3, x64):
    import argparse

    from interpret.cli.common import add_model_args, load_model

    p = argparse.ArgumentParser()
    add_model_args(p)
    h = load_model(p.parse_args(["--model", "timm:resnet18", "--random-init"]))
    assert h.name == "timm:resnet18" and any("random" in n for n in h.notes)
    path = tmp_path / "w.pth"
    torch.save(resnet3.state_dict(), path)
    h = load_model(p.parse_args(["--model", str(path), "--arch", "torchvision:resnet18"]))
    with torch.no_grad():
        torch.testing.assert_close(h.module(x64), resnet3(x64))
    with pytest.raises(InputError, match="--arch-kwargs is not valid JSON"):
        load_model(p.parse_args(["--model", str(path), "--arch", "a.b:c", "--arch-kwargs", "{x"]))


def test_accepted_sources_follow_the_settings():
    from interpret.settings import Settings

    from ui.upload import accepted_sources_markdown

    closed = accepted_sources_markdown(Settings(allow_uploads=False))
    assert "switched off" in closed and "ONNX" not in closed
    default = accepted_sources_markdown(Settings())
    for word in ("timm", "Hugging Face", "ONNX", "safetensors", "**refused**"):
        assert word in default, word
    opened = accepted_sources_markdown(Settings(allow_untrusted=True, model_folder="/srv/models"))
    assert "run code when loaded" in opened and "team models" in opened and "**refused**" not in opened


def test_the_content_fingerprint_covers_the_labels():
    """Results shared across sessions are keyed by the content fingerprint; figures carry
    class names, so the same weights with another label file must not share them."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3).eval()
    a = interpret.load_model(net, labels=["cat", "dog", "cow"])
    b = interpret.load_model(net, labels=["cat", "dog", "cow"])
    c = interpret.load_model(net, labels=["ant", "bee", "fly"])
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.with_info(labels=("ant", "bee", "fly")).fingerprint() == c.fingerprint()
