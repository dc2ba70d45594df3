"""Issue 18, the backend: every cost a hostile upload can cause is refused, with its
numbers and the setting that bounds it, before the work is paid; a full disk and a
read-only runs folder say so and leave the run readable and resumable; a state dict
loaded as the wrong architecture names the architecture its keys look like.

"Before the work is paid" is checked, not timed: a spy on the step that would cost
the memory (Pillow's resize, onnx2torch, from_pretrained, torch.load, safetensors'
loader, zipfile's directory parser) fails the test if it is reached."""

from __future__ import annotations

import builtins
import errno
import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

import interpret
from interpret import InputError, Preprocessing
from interpret.dataset import list_runs, open_dataset, synthetic as syn
from interpret.dataset import store as store_mod

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(autouse=True)
def default_settings(monkeypatch, tmp_path):
    """The built-in defaults: no settings file, no INTERPRET_* variables (a test sets
    the ones it lowers)."""
    import os

    for key in [k for k in os.environ if k.startswith("INTERPRET_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no ./interpret.toml


class Reached(AssertionError):
    """A step that the bound should have kept from running was reached."""


def _spy(monkeypatch, owner, name: str) -> None:
    def fail(*args, **kwargs):
        raise Reached(f"{name} was reached: the work was not refused before it")

    monkeypatch.setattr(owner, name, fail)


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h), 128).save(buf, "PNG", optimize=True)
    return buf.getvalue()


# ----------------------------------------------------------------------------------
# pixels after preprocessing


def test_a_114_byte_1x10000_png_is_refused_before_resizing_at_the_default_limit(monkeypatch):
    data = _png(1, 10000)
    assert len(data) < 200  # the reviewer's file was 114 bytes
    image = interpret.load_image(data)  # 10,000 pixels: fine as it is
    _spy(monkeypatch, Image.Image, "resize")
    with pytest.raises(InputError) as info:
        Preprocessing().to_tensor(image)
    msg = str(info.value)
    assert "1x10000" in msg and "256x2560000" in msg and "655,360,000 pixels" in msg
    assert "4,194,304" in msg and "max_input_pixels" in msg
    assert "10,000.0 times its short side" in msg and "at most about 64.0 times" in msg


def test_the_pixel_bound_is_the_setting_and_prediction_goes_through_it(monkeypatch):
    monkeypatch.setenv("INTERPRET_MAX_INPUT_PIXELS", "100000")
    handle = interpret.load_model(syn.TinyCNN().eval(), preprocessing=Preprocessing(resize=64, crop=64),
                                  labels=list(syn.CLASSES))
    image = interpret.load_image(_png(1, 30))  # 64 x 1920 = 122,880 pixels after the resize
    _spy(monkeypatch, Image.Image, "resize")
    with pytest.raises(InputError, match=r"64x1920 \(122,880 pixels\).*100,000 pixels"):
        interpret.predict(handle, image)


def test_an_ordinary_photo_is_preprocessed_as_before():
    image = Image.new("RGB", (640, 480), (10, 20, 30))
    assert Preprocessing().model_view(image).size == (224, 224)
    assert Preprocessing(resize=None, crop=224).model_view(image).size == (224, 224)


@pytest.mark.parametrize("size, resized, resize, limit, parts", [
    ((1, 10000), (256, 2560000), 256, 4194304, ["655,360,000 pixels", "10,000.0 times", "64.0 times"]),
    ((3000, 40), (19200, 256), 256, 1000000, ["4,915,200 pixels", "75.0 times", "15.3 times"]),
    ((10, 10), (5000, 5000), (5000, 5000), 1000, ["25,000,000 pixels", "limit of 1,000 pixels"]),
])
def test_the_resize_sentence_is_its_numbers(size, resized, resize, limit, parts):
    from interpret.preprocessing import resize_too_large

    msg = resize_too_large(size, resized, resize, limit)
    for part in parts:
        assert part in msg
    assert ("times its short side" in msg) == isinstance(resize, int)


@pytest.mark.parametrize("h, w, limit, mib", [(13000, 13000, 4194304, "1,934 MiB"), (8000, 8000, 1, "732 MiB"),
                                              (2049, 2048, 2048 * 2048, "48 MiB")])
def test_the_declared_input_sentence_is_its_numbers(h, w, limit, mib):
    from interpret.preprocessing import input_too_large

    msg = input_too_large(h, w, limit)
    assert f"{h}x{w} pixels ({h * w:,})" in msg and f"limit of {limit:,} pixels" in msg and mib in msg


# ----------------------------------------------------------------------------------
# declared input sizes


def _onnx_declaring(side: int) -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, side, side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["x"], ["p"]),
                               helper.make_node("Flatten", ["p"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_a_300_byte_onnx_declaring_13000x13000_is_refused_when_loaded(monkeypatch):
    onnx2torch = pytest.importorskip("onnx2torch")
    data = _onnx_declaring(13000)
    assert len(data) < 300
    _spy(monkeypatch, onnx2torch, "convert")
    with pytest.raises(InputError) as info:
        interpret.load_model(data)
    msg = str(info.value)
    assert "13000x13000 pixels (169,000,000)" in msg and "4,194,304" in msg and "max_input_pixels" in msg


def test_an_onnx_input_under_the_limit_still_loads():
    pytest.importorskip("onnx2torch")
    handle = interpret.load_model(_onnx_declaring(32))
    assert handle.input_size == (32, 32)


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    pytest.importorskip("transformers")
    import tiny_models as tm

    return tm.save_hf_folder(tm.hf_vit(), tmp_path_factory.mktemp("hf") / "vit")


def _copy(folder: Path, dest: Path) -> Path:
    dest.mkdir()
    for f in folder.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


def test_an_hf_preprocessor_config_of_8000x8000_is_refused_before_the_model_is_built(vit_folder, tmp_path,
                                                                                     monkeypatch):
    import tiny_models as tm
    import transformers

    evil = _copy(vit_folder, tmp_path / "evil")
    proc = json.loads((evil / "preprocessor_config.json").read_text())
    proc["size"] = {"height": 8000, "width": 8000}
    (evil / "preprocessor_config.json").write_text(json.dumps(proc))
    _spy(monkeypatch, transformers.AutoModelForImageClassification, "from_pretrained")
    for source in (evil, tm.zip_folder(evil)):
        with pytest.raises(InputError) as info:
            interpret.load_model(source)
        msg = str(info.value)
        assert "preprocessor_config.json" in msg and "8000x8000 pixels (64,000,000)" in msg
        assert "4,194,304" in msg and "max_input_pixels" in msg


def test_an_hf_config_image_size_over_the_limit_is_refused(vit_folder, tmp_path, monkeypatch):
    import transformers

    evil = _copy(vit_folder, tmp_path / "evil")
    cfg = json.loads((evil / "config.json").read_text())
    cfg["image_size"] = 4096
    (evil / "config.json").write_text(json.dumps(cfg))
    (evil / "preprocessor_config.json").unlink()
    _spy(monkeypatch, transformers.AutoModelForImageClassification, "from_pretrained")
    with pytest.raises(InputError, match=r"config.json declares \(image_size\) is 4096x4096"):
        interpret.load_model(evil)


# ----------------------------------------------------------------------------------
# tensors of a state dict


def _torch_bytes(state, **kw) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf, **kw)
    return buf.getvalue()


def test_a_state_dict_of_too_many_tensors_is_refused_before_torch_load(monkeypatch):
    monkeypatch.setenv("INTERPRET_MAX_STATE_TENSORS", "50")
    data = _torch_bytes({f"t{i}": torch.zeros(1) for i in range(200)})
    _spy(monkeypatch, torch, "load")
    with pytest.raises(InputError) as info:
        interpret.load_model(data, arch="resnet18")
    msg = str(info.value)
    assert "200 tensor storages" in msg and "limit of 50 tensors" in msg and "max_state_tensors" in msg


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_views_of_one_storage_are_counted_as_tensors(monkeypatch, legacy):
    monkeypatch.setenv("INTERPRET_MAX_STATE_TENSORS", "50")
    base = torch.zeros(8)
    kw = {"_use_new_zipfile_serialization": False} if legacy else {}
    data = _torch_bytes({f"t{i}": base[i % 8:] for i in range(200)}, **kw)  # one storage
    _spy(monkeypatch, torch, "load")
    with pytest.raises(InputError, match=r"holds 51 tensors or more, more than the limit of 50"):
        interpret.load_model(data, arch="resnet18")


def test_a_safetensors_file_of_too_many_tensors_is_refused_before_loading(monkeypatch):
    import safetensors.torch
    from safetensors.torch import save

    monkeypatch.setenv("INTERPRET_MAX_STATE_TENSORS", "50")
    data = save({f"t{i}": torch.zeros(1) for i in range(200)})
    _spy(monkeypatch, safetensors.torch, "load")
    with pytest.raises(InputError, match=r"holds 200 tensors, more than the limit of 50 tensors"):
        interpret.load_model(data, arch="resnet18")


def _safetensors_header_only(n: int) -> bytes:
    """A safetensors file of ``n`` empty tensors, written by hand (cheap for any n)."""
    header = json.dumps({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                         for i in range(n)}, separators=(",", ":")).encode()
    return struct.pack("<Q", len(header)) + header


def test_the_default_tensor_limit_refuses_30000_tensors_from_the_header(monkeypatch):
    import safetensors.torch

    data = _safetensors_header_only(30_000)
    _spy(monkeypatch, safetensors.torch, "load")
    with pytest.raises(InputError, match=r"holds 30,000 tensors, more than the limit of 20,000 tensors"):
        interpret.load_model(data, arch="resnet18")


def _zip_declaring_65535_files() -> bytes:
    """A small zip (one file) whose end record declares 65,535 files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", b"")
    data = bytearray(buf.getvalue())
    end = data.rfind(b"PK\x05\x06")
    data[end + 8:end + 12] = struct.pack("<HH", 0xFFFF, 0xFFFF)  # 65,535 entries declared
    return bytes(data)


def test_a_zip_declaring_more_entries_than_allowed_is_refused_before_its_directory_is_parsed(monkeypatch):
    data = _zip_declaring_65535_files()
    _spy(monkeypatch, zipfile, "ZipFile")
    with pytest.raises(InputError, match=r"zip of 65,535 files, more than an uploaded zip may hold \(1,024, setting max_zip_files\) and more than a state dict of at most 20,000 tensors needs"):
        interpret.load_model(data, arch="resnet18")


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def test_hf_and_onnx_zips_of_too_many_files_are_refused_before_parsing(monkeypatch):
    from interpret.sources import hf as hf_src, onnx as onnx_src

    monkeypatch.setenv("INTERPRET_MAX_ZIP_FILES", "30")
    hf = _zip({"config.json": b"{}", **{f"junk/{i}.txt": b"" for i in range(100)}})
    onnx = _zip({"m.onnx": _onnx_declaring(32), **{f"m{i}.data": b"" for i in range(100)}})
    real = zipfile.ZipFile
    parsed = []

    def spy(*args, **kwargs):
        parsed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", spy)
    for data in (hf, onnx):
        parsed.clear()
        with pytest.raises(InputError, match=r"zip of 101 files, more than the limit of 30 \(setting max_zip_files\)"):
            hf_src.load_zip(data, "up.zip") if data is hf else onnx_src.read_zip(data, "up.zip")
        assert not parsed


def test_a_zip_unpacking_past_the_byte_limit_is_refused_before_unpacking(monkeypatch):
    monkeypatch.setenv("INTERPRET_MAX_UNPACKED_MB", "1")
    data = _zip({"config.json": b"{}", "model.safetensors": bytes(3 * 2**20)})  # 3 MiB of zeros
    assert len(data) < 20_000
    with pytest.raises(InputError, match=r"unpacks to 3.0 MiB, more than the limit of 1 MiB \(setting max_unpacked_mb\)"):
        interpret.load_model(data)


# ----------------------------------------------------------------------------------
# a full disk, a read-only runs folder


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return syn.write_folder(tmp_path_factory.mktemp("set") / "set", per_class=2, seed=3)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return syn.tiny_handle(syn.TinyCNN().eval())


def test_a_full_disk_is_said_plainly_and_the_run_resumes(tiny, small_set, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = store_mod._atomic_write
    calls = []

    def full_after_three(path, write):  # manifest, items, the first batch; then the disk is full
        calls.append(path.name)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(store_mod, "_atomic_write", full_after_three)
    with pytest.raises(InputError) as info:
        interpret.analyze_dataset(tiny, small_set, out=out, batch_size=2)
    msg = str(info.value)
    assert f"The disk holding the runs folder {out} is full (" in msg and " free)" in msg
    assert "a batch of 2 results could not be written" in msg and "resume" in msg
    partial = open_dataset(out)
    assert (partial.done, partial.total, partial.status) == (2, len(partial._items), "stopped")
    monkeypatch.setattr(store_mod, "_atomic_write", real)
    done = interpret.analyze_dataset(tiny, small_set, out=out, batch_size=2)
    assert done.status == "complete" and done.done == done.total == partial.total


def test_the_command_line_prints_the_full_disk_in_one_line(tiny, small_set, tmp_path, monkeypatch, capsys):
    from interpret.cli import main

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod, "_atomic_write", full)
    monkeypatch.setattr("interpret.cli.dataset._model", lambda args: tiny)
    rc = main(["dataset", str(small_set), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "is full" in err and "please report" not in err


@pytest.fixture
def stopped_run(tiny, small_set, tmp_path):
    out = tmp_path / "runs" / "stopped"

    def stop_after_first(done, total):
        if done >= 2:
            raise interpret.Cancelled()

    with pytest.raises(interpret.Cancelled):
        interpret.analyze_dataset(tiny, small_set, out=out, batch_size=2, progress=stop_after_first)
    return out


def _read_only(monkeypatch, root: Path) -> None:
    """Writes under ``root`` fail with EROFS, as on a read-only mount (root ignores
    permission bits, so a chmod would not show it)."""
    real_open = builtins.open

    def ro_open(file, mode="r", *args, **kwargs):
        if str(file).startswith(str(root)) and any(c in mode for c in "wax+"):
            raise OSError(errno.EROFS, "Read-only file system", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", ro_open)


def test_an_unfinished_run_on_a_read_only_folder_opens_lists_and_refuses_writing_plainly(
        tiny, small_set, stopped_run, monkeypatch):
    _read_only(monkeypatch, stopped_run.parent)
    r = open_dataset(stopped_run)
    assert r.status == "stopped" and r.done == 2
    assert "2 of" in repr(r) and "stopped" in repr(r)
    assert [run.path for run in list_runs(stopped_run.parent)] == [str(stopped_run)]
    with pytest.raises(InputError) as info:
        interpret.analyze_dataset(tiny, small_set, out=stopped_run, batch_size=2)
    msg = str(info.value)
    assert f"The runs folder {stopped_run} cannot be written (Read-only file system)" in msg
    assert "can still be opened" in msg


@pytest.mark.parametrize("free, shown", [(0, "0 bytes free"), (1536, "1.5 KiB free"),
                                         (5 * 2**30, "5.0 GiB free"), (None, "free space unknown")])
def test_the_full_disk_sentence_is_its_numbers(free, shown):
    msg = store_mod.disk_full_message("/runs/x", "a batch of 3 results", free)
    assert msg.startswith(f"The disk holding the runs folder /runs/x is full ({shown}): a batch of 3 results")


# ----------------------------------------------------------------------------------
# issue 17: a state dict loaded as the wrong architecture


def test_a_mobilenet_file_loaded_as_resnet18_is_named_and_no_prefix_is_suggested():
    from torchvision.models import mobilenet_v2

    data = _torch_bytes(mobilenet_v2(num_classes=7).state_dict())
    with pytest.raises(InputError) as info:
        interpret.load_model(data, arch="resnet18")
    msg = str(info.value)
    assert "This is not a resnet18 file: its keys and shapes look like mobilenet_v2" in msg
    assert "arch='mobilenet_v2'" in msg and "strip" not in msg


def test_a_prefix_is_suggested_only_when_the_stripped_keys_fit():
    from torchvision.models import mobilenet_v2, resnet18

    fits = _torch_bytes({f"backbone.{k}": v for k, v in resnet18(num_classes=3).state_dict().items()})
    with pytest.raises(InputError, match=r"start with 'backbone.' \(\d+ of them fit the architecture "
                                         r"without it\): strip that prefix"):
        interpret.load_model(fits, arch="resnet18")
    other = _torch_bytes({f"backbone.{k}": v for k, v in mobilenet_v2().state_dict().items()})
    with pytest.raises(InputError, match=r"without it, they look like mobilenet_v2 .* not resnet18: strip "
                                         r"that prefix .* and load it with arch='mobilenet_v2'"):
        interpret.load_model(other, arch="resnet18")


def test_naming_a_huge_architecture_for_a_small_file_builds_it_on_the_meta_device_only(monkeypatch):
    from interpret.sources import torchvision as tv_src

    real = tv_src.build
    devices = []

    def build(*args, **kwargs):
        devices.append(torch.get_default_device().type)
        if devices[-1] != "meta":
            raise Reached("the architecture was built with real weights for a file that does not fit it")
        return real(*args, **kwargs)

    monkeypatch.setattr(tv_src, "build", build)
    data = _torch_bytes({"conv1.weight": torch.zeros(64, 3, 7, 7)})
    with pytest.raises(InputError, match=r"does not match the architecture 'vit_h_14': 392 of the architecture's"):
        interpret.load_model(data, arch="vit_h_14")  # 632 million parameters: 2.5 GB if built for real
    assert devices and set(devices) == {"meta"}


@pytest.mark.parametrize("change, message", [
    ({"num_hidden_layers": 5000}, r"config.json asks for 5,000 layers, but its weights hold only \d+ tensors"),
    ({"hidden_size": 2048}, r"config.json describes a model of [\d,]+ parameters, but its weights hold "
                            r"[\d,]+ numbers: the other [\d,]+ would be random"),
], ids=["layers", "width"])
def test_an_hf_config_far_larger_than_its_weights_is_refused_before_it_is_built(
        vit_folder, tmp_path, monkeypatch, change, message):
    import transformers

    evil = _copy(vit_folder, tmp_path / "evil")
    cfg = json.loads((evil / "config.json").read_text())
    cfg.update(change)
    (evil / "config.json").write_text(json.dumps(cfg))
    _spy(monkeypatch, transformers.AutoModelForImageClassification, "from_pretrained")
    with pytest.raises(InputError, match=message):
        interpret.load_model(evil)


def test_the_photo_pixel_limit_is_a_setting_read_from_the_header(monkeypatch):
    data = _png(40, 40)
    monkeypatch.setenv("INTERPRET_MAX_IMAGE_PIXELS", "1000")
    _spy(monkeypatch, Image.Image, "load")  # the pixels are never decoded
    with pytest.raises(InputError, match=r"40x40 pixels .*the limit is 0.001 megapixels \(1,000 pixels, "
                                         r"setting max_image_pixels\)"):
        interpret.load_image(data)


def test_image_set_and_dataset_zips_of_too_many_files_are_refused_before_their_directory_is_parsed(
        tmp_path, monkeypatch):
    """A photo-set zip (Features) and a dataset zip (Dataset page) of 3,000 empty members:
    refused from the end record and the directory's signatures, before ``zipfile`` builds
    one object per entry (which costs memory per entry: a million entries, gigabytes)."""
    from pathlib import Path

    from interpret.dataset import sources as dataset_sources
    from interpret.features.imagesets import images_from_zip

    data = _zip({f"cls/{i}.png": b"" for i in range(3000)})
    path = tmp_path / "set.zip"
    path.write_bytes(data)
    _spy(monkeypatch, zipfile, "ZipFile")
    for source in (data, str(path)):
        with pytest.raises(InputError, match=r"holds 3,000 files; the limit is 100\."):
            images_from_zip(source, max_images=100)
    with pytest.raises(InputError, match=r"holds 3,000 files; the limit is 100\."):
        dataset_sources._list_zip(Path(path), None, None, None, 100, 10**9, None)


def test_the_directory_count_of_a_zip_file_equals_the_one_of_its_bytes():
    from interpret.sources.files import zip_entries, zip_entries_in

    for n in (0, 1, 7, 5000):
        data = _zip({f"{i}.txt": b"x" * (i % 3) for i in range(n)})
        fh = io.BytesIO(data)
        fh.seek(5)
        assert zip_entries_in(fh) == zip_entries(data) == n
        assert fh.tell() == 5  # the caller's position is kept
