"""ONNX graphs converted with onnx2torch.

* torch's default (dynamo) exporter: opset 20, weights in ``m.onnx.data`` next to the
  graph, ``ReduceMean`` with axes as an input and ``Reshape(allowzero=1)``.  A small CNN and
  a torchvision ResNet-18 load from a path with their data file, from a zip of both (the
  upload) and exported as one file; the logits match onnxruntime's, Grad-CAM matches the
  original module's.
* The TorchScript exporter (``dynamo=False``): the constant-folded graphs (opset 17:
  ``KeyError 'onnx::Conv_...'`` in onnx2torch; opset 20: no converter for ``Identity``), the
  unfolded one, opset 18's ``ReduceMean``.
* What is refused, with the message: a lone ``.onnx`` without its data file, weights
  outside the model's folder (zip members, locations, symbolic links), a ``Reshape``
  whose ``allowzero=1`` matters, an operator the converter lacks at every opset.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret import InputError, Preprocessing

import tiny_models as tm

pytestmark = [pytest.mark.usefixtures("single_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx2torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402


@pytest.fixture(scope="module")
def cnn():
    return tm.small_cnn()


def _ort_logits(path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _zip(files) -> bytes:
    """A zip of ``{member name: bytes}``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _relocated(path: Path, location: str) -> bytes:
    """The graph at ``path`` with every external tensor pointing at ``location``."""
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    return m.SerializeToString()


# ----------------------------------------------------------------------------------
# torch's default exporter


class Dynamo:
    """One model exported by ``torch.onnx.export(model, (x,), path)``: ``path`` (+ its
    ``.data``), ``one`` (the same program saved with ``external_data=False``, what
    ``torch.onnx.export(..., external_data=False)`` writes), the module and the layer
    Grad-CAM reads on it."""

    def __init__(self, root: Path, name: str, module: nn.Module, layer: str):
        import warnings

        self.module, self.layer, self.name = module, layer, name
        self.path, self.one = root / f"{name}.onnx", root / f"{name}_one.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (torch.zeros(1, 3, 64, 64),), str(self.path))
            program.save(str(self.one), external_data=False)
        self.data = root / f"{name}.onnx.data"
        self.x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
        self.ort = _ort_logits(self.path, self.x)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> its :class:`Dynamo`, each exported once for the module."""
    done = {}

    def get(name: str) -> Dynamo:
        if name not in done:
            if name == "cnn":
                net, layer = tm.small_cnn(), "relu2"
            else:
                import torchvision

                net, layer = tm.seeded(lambda: torchvision.models.resnet18(num_classes=5)), "layer4"
            done[name] = Dynamo(tmp_path_factory.mktemp(f"dynamo-{name}"), name, net, layer)
        return done[name]

    return get


@pytest.fixture(scope="module", params=["cnn", "r18"])
def dynamo(request, exported):
    return exported(request.param)


def test_the_default_export_is_what_we_think(dynamo):
    """The facts the loader handles, checked on torch's output itself."""
    assert dynamo.data.is_file() and dynamo.data.stat().st_size > 0
    assert not (dynamo.one.parent / f"{dynamo.one.name}.data").exists()
    m = onnx.load(str(dynamo.path), load_external_data=False)
    assert [o.version for o in m.opset_import if o.domain == ""] == [20]
    assert any(t.data_location == TensorProto.EXTERNAL for t in m.graph.initializer)
    reshape = [n for n in m.graph.node if n.op_type == "Reshape"]
    assert reshape and all(a.i == 1 for n in reshape for a in n.attribute if a.name == "allowzero")
    assert "ReduceMean" in {n.op_type for n in m.graph.node}
    one = onnx.load(str(dynamo.one), load_external_data=False)
    assert not any(t.data_location == TensorProto.EXTERNAL for t in one.graph.initializer)


@pytest.mark.parametrize("form", ["path+data", "zip", "one-file"])
def test_default_export_loads_and_matches_onnxruntime(dynamo, form):
    if form == "path+data":
        h = interpret.load_model(dynamo.path)
    elif form == "zip":  # the upload form passes bytes; members in a folder of their own
        h = interpret.load_model(_zip({f"export/{dynamo.path.name}": dynamo.path.read_bytes(),
                                       f"export/{dynamo.data.name}": dynamo.data.read_bytes()}),
                                 name="uploaded")
    else:
        h = interpret.load_model(dynamo.one)
    assert h.input_size == (64, 64) and h.num_classes == 5
    assert "opset 20, rewritten for 17" in h.source and "onnx2torch" in h.source
    assert any("onnx.version_converter" in n and "ReduceMean (opset 20)" in n for n in h.notes)
    with torch.no_grad():
        ours = h.module(torch.from_numpy(dynamo.x)).numpy()
        orig = dynamo.module(torch.from_numpy(dynamo.x)).numpy()
    diff = float(np.abs(ours - dynamo.ort).max())
    print(f"\n{dynamo.name} {form}: max |torch - onnxruntime| = {diff:.2e}, "
          f"vs the module {float(np.abs(ours - orig).max()):.2e}")
    assert diff < 1e-4
    assert float(np.abs(ours - orig).max()) < 1e-4
    # exported for a batch of one (Reshape to [1, C]): batches run one image at a time
    assert any("one image at a time" in n for n in h.notes)
    xs = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(h.module(xs), dynamo.module(xs), rtol=1e-4, atol=1e-4)


def test_gradcam_on_the_default_export_equals_the_originals(dynamo, corr):
    h = interpret.load_model(dynamo.path, preprocessing=Preprocessing(64, 64))
    orig = interpret.load_model(dynamo.module, preprocessing=Preprocessing(64, 64))
    layer = interpret.default_layer(h)
    # the converted twins of cnn.relu2 and resnet18.layer4 (its last block's relu)
    assert layer == {"cnn": "graph.node_relu_1", "r18": "graph.node_relu_16"}[dynamo.name]
    x = torch.from_numpy(dynamo.x)
    ours = interpret.explain(h, x, "gradcam", layer=layer, target=3)
    ref = interpret.explain(orig, x, "gradcam", layer=dynamo.layer, target=3)
    c = corr(ours.heatmap, ref.heatmap)
    print(f"\n{dynamo.name}: Grad-CAM correlation {c:.6f}")
    assert c > 0.999
    torch.testing.assert_close(ours.attribution, ref.attribution, rtol=1e-3, atol=1e-5)


def test_a_lone_onnx_without_its_data_file_says_what_to_do(dynamo, tmp_path):
    with pytest.raises(InputError, match=rf"keeps its weights in a separate file, "
                                         rf"'{dynamo.data.name}', which did not come with it: "
                                         rf"upload a \.zip holding both {dynamo.path.name} and "
                                         rf"{dynamo.data.name}, or export the model as one file "
                                         r"with torch\.onnx\.export\(\.\.\., external_data=False\)"):
        interpret.load_model(dynamo.path.read_bytes())  # an upload of the .onnx alone
    with pytest.raises(InputError, match=rf"holds {dynamo.path.name} but not the weights file it "
                                         rf"names, '{dynamo.data.name}': zip the \.onnx file "
                                         "together with its data file"):
        interpret.load_model(_zip({dynamo.path.name: dynamo.path.read_bytes()}))
    alone = tmp_path / dynamo.path.name
    alone.write_bytes(dynamo.path.read_bytes())
    with pytest.raises(InputError, match=rf"'{dynamo.data.name}', which is not in {tmp_path}: "
                                         "keep the data file next to the .onnx file"):
        interpret.load_model(alone)


# ----------------------------------------------------------------------------------
# weights outside the model's folder


@pytest.fixture(scope="module")
def cnn_export(exported):
    return exported("cnn")


def test_a_zip_whose_data_escapes_its_folder_is_refused(cnn_export, tmp_path):
    graph, data = cnn_export.path.read_bytes(), cnn_export.data.read_bytes()
    with pytest.raises(InputError, match=r"holds a file outside its folder \('\.\./cnn\.onnx\.data'\)"):
        interpret.load_model(_zip({"cnn.onnx": graph, "../cnn.onnx.data": data}))
    # the member is harmless, the location the graph names is not
    evil = _relocated(cnn_export.path, "../cnn.onnx.data")
    with pytest.raises(InputError, match=r"names a weights file outside its own folder "
                                         r"\('\.\./cnn\.onnx\.data'\): refused"):
        interpret.load_model(_zip({"model/cnn.onnx": evil, "cnn.onnx.data": data}))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cnn.onnx", graph)
        link = zipfile.ZipInfo("cnn.onnx.data")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(InputError, match="holds a symbolic link"):
        interpret.load_model(buf.getvalue())


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin", "/etc/hostname",
                                      "..\\secret.bin", "link.bin"])
def test_a_path_whose_data_lies_outside_its_folder_is_refused(cnn_export, tmp_path, location):
    """Our check refuses, and so does onnx's own loader (so neither is the only guard)."""
    (tmp_path / "secret.bin").write_bytes(cnn_export.data.read_bytes())
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "link.bin").symlink_to(tmp_path / "secret.bin")
    path = model_dir / "cnn.onnx"
    path.write_bytes(_relocated(cnn_export.path, location))
    refusal = "is a symbolic link: refused" if location == "link.bin" else "outside its own folder"
    with pytest.raises(InputError, match=refusal):
        interpret.load_model(path)
    with pytest.raises(Exception, match="symbolic link|outside|absolute path"):
        onnx.load(str(path), load_external_data=True)


# ----------------------------------------------------------------------------------
# graph preparation, on hand-built graphs


def _graph(nodes, inits=None, out_shape=(1, 48), opset=17) -> bytes:
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def test_allowzero_is_dropped_where_it_changes_nothing_and_refused_where_it_would():
    """``allowzero=1`` only changes what a 0 in the target shape means."""
    def reshape(shape_input="shape"):
        return helper.make_node("Reshape", ["x", shape_input], ["y"], name="head/flatten", allowzero=1)

    h = interpret.load_model(_graph([reshape()], {"shape": np.array([1, 48], np.int64)}))
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(h.module(x), x.reshape(1, 48), rtol=0, atol=0)
    with pytest.raises(InputError, match=r"Reshape node 'head/flatten' with allowzero=1 and a 0 in "
                                         r"its target shape \[1, 0, 48\]"):
        interpret.load_model(_graph([reshape()], {"shape": np.array([1, 0, 48], np.int64)},
                                    out_shape=(1, 0, 48)))
    computed = [helper.make_node("Shape", ["x"], ["s"], name="shape_of_x"), reshape("s")]
    with pytest.raises(InputError, match=r"Reshape node 'head/flatten' with allowzero=1 whose "
                                         r"target shape is computed inside the graph"):
        interpret.load_model(_graph(computed, out_shape=(1, 3, 4, 4)))


def test_a_no_op_reduction_is_not_rewritten_into_a_mean():
    """The opset 18 -> 17 adapter keeps ``noop_with_empty_axes``; with no axes and 1 the
    node does nothing at 18 but would average everything at 17."""
    node = helper.make_node("ReduceMean", ["x"], ["y"], name="pool", noop_with_empty_axes=1)
    with pytest.raises(InputError, match=r"ReduceMean node 'pool' with noop_with_empty_axes=1 "
                                         r"and no axes"):
        interpret.load_model(_graph([node], out_shape=(1, 3, 4, 4), opset=18))


def test_an_operator_missing_at_every_opset_is_named():
    """Hardmax (opset 13) has no onnx2torch converter at any opset: named before any
    conversion starts."""
    node = helper.make_node("Hardmax", ["x"], ["y"], name="act", axis=1)
    with pytest.raises(InputError, match=r"operator\(s\) the converter \(onnx2torch\) does not "
                                         r"support: Hardmax \(opset 20\), at this or any older opset"):
        interpret.load_model(_graph([node], out_shape=(1, 3, 4, 4), opset=20))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_gets_a_converter_that_matches_onnxruntime(approximate):
    """onnx2torch 1.5.15 has no Gelu converter; ours maps it to nn.GELU with the node's
    ``approximate`` mode (the two differ by up to ~1e-3, so a wrong mode shows)."""
    node = helper.make_node("Gelu", ["x"], ["y"], name="act", approximate=approximate)
    data = _graph([node], out_shape=(1, 3, 4, 4), opset=20)
    h = interpret.load_model(data, preprocessing=Preprocessing(4, 4))
    x = (np.random.default_rng(0).standard_normal((1, 3, 4, 4)) * 3).astype(np.float32)
    s = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    ref = s.run(None, {"x": x})[0]
    with torch.no_grad():
        ours = h.module(torch.from_numpy(x)).numpy()
    assert float(np.abs(ours - ref).max()) < 1e-5
    other = nn.GELU(approximate="tanh" if approximate == "none" else "none")(torch.from_numpy(x))
    assert float(np.abs(other.numpy() - ref).max()) > 1e-4


def test_a_vit_from_the_default_export_converts_and_its_gradients_match(tmp_path):
    """A vision transformer (nn.GELU in every MLP) through torch's default exporter: its
    Gelu nodes convert, the logits match onnxruntime and the original, and saliency
    (the input gradient through every GELU) equals the original's."""
    import warnings

    vit = tm.tv_vit()
    size = tm.VIT_SIZE
    path = tmp_path / "vit.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(vit, (torch.zeros(1, 3, size, size),), str(path))
    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    assert "Gelu" in ops
    pre = Preprocessing(size, size)
    h = interpret.load_model(path, preprocessing=pre)
    x = np.random.default_rng(2).standard_normal((1, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        ours = h.module(torch.from_numpy(x)).numpy()
        orig = vit(torch.from_numpy(x)).numpy()
    assert float(np.abs(ours - _ort_logits(path, x)).max()) < 1e-4
    assert float(np.abs(ours - orig).max()) < 1e-4
    xt = torch.from_numpy(x)
    a = interpret.explain(h, xt, "saliency", target=1).attribution
    b = interpret.explain(interpret.load_model(vit, preprocessing=pre), xt, "saliency",
                          target=1).attribution
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)


# ----------------------------------------------------------------------------------
# torch's TorchScript exporter (dynamo=False)


@pytest.mark.parametrize("opset, folding", [(17, True), (20, True), (17, False)],
                         ids=["opset17-folded", "opset20-folded", "opset17-unfolded"])
def test_converted_logits_match_onnxruntime(tmp_path, cnn, opset, folding):
    path = tm.export_onnx(cnn, tmp_path / "cnn.onnx", opset=opset, folding=folding)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    if folding:
        assert "Identity" in ops, "the folded export should dedup weights through Identity"
    h = interpret.load_model(path)
    assert h.input_size == (64, 64) and "onnx2torch" in h.source
    assert any("no preprocessing" in n for n in h.notes)
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ours = h.module(torch.from_numpy(x)).numpy()
    diff = float(np.abs(ours - _ort_logits(path, x)).max())
    print(f"\nopset {opset}, folding {folding}: max |torch - onnxruntime| = {diff:.2e}")
    assert diff < 1e-4
    with torch.no_grad():
        assert float(np.abs(ours - cnn(torch.from_numpy(x)).numpy()).max()) < 1e-4


def test_gradcam_on_the_converted_model_equals_the_originals(tmp_path, cnn, corr):
    path = tm.export_onnx(cnn, tmp_path / "cnn.onnx")
    h = interpret.load_model(path, preprocessing=Preprocessing(64, 64))
    orig = interpret.load_model(cnn, preprocessing=Preprocessing(64, 64))
    layer = interpret.default_layer(h)
    assert layer == "relu2/Relu"  # the converted twin of cnn.relu2
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    ours = interpret.explain(h, x, "gradcam", layer=layer, target=3)
    ref = interpret.explain(orig, x, "gradcam", layer="relu2", target=3)
    torch.testing.assert_close(ours.attribution, ref.attribution, rtol=1e-4, atol=1e-6)
    assert corr(ours.heatmap, ref.heatmap) > 0.9999
    ig = interpret.explain(h, x, "integrated_gradients", target=3, n_steps=8, adaptive=False)
    ig_ref = interpret.explain(orig, x, "integrated_gradients", target=3, n_steps=8, adaptive=False)
    torch.testing.assert_close(ig.attribution, ig_ref.attribution, rtol=1e-3, atol=1e-6)


def test_a_graph_exported_for_one_image_runs_batches(tmp_path):
    """torch.flatten(x, 1) exports as Flatten, which takes any batch; x.view(1, -1)
    bakes the batch of one into a Reshape: that graph runs one image at a time."""

    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.relu = nn.ReLU()
            self.fc = nn.Linear(4 * 8 * 8, 3)

        def forward(self, x):
            return self.fc(self.relu(self.conv(x)).reshape(1, -1))

    net = tm.seeded(Fixed)
    path = tm.export_onnx(net, tmp_path / "fixed.onnx", size=8, dynamic=False)
    h = interpret.load_model(path)
    assert any("one image at a time" in n for n in h.notes)
    xs = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = h.module(xs)
        want = torch.cat([net(xs[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    e = interpret.explain(h, xs[:1], "integrated_gradients", target=1, n_steps=4, adaptive=False)
    assert float(e.attribution.abs().max()) > 0


def test_opset_18_reduce_mean_is_rewritten_for_opset_17(tmp_path):
    """At opset 18 ReduceMean takes its axes as an input; onnx2torch 1.5.15 has no
    converter for that version, onnx.version_converter rewrites it for 17."""

    class MeanNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    net = tm.seeded(MeanNet)
    path = tm.export_onnx(net, tmp_path / "mean.onnx", size=16, opset=18)
    h = interpret.load_model(path)
    assert "opset 18, rewritten for 17" in h.source
    assert any("ReduceMean (opset 18)" in n for n in h.notes)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        ours = h.module(torch.from_numpy(x)).numpy()
    assert float(np.abs(ours - _ort_logits(path, x)).max()) < 1e-5


def test_onnx_bytes_are_recognised_and_garbage_is_not(tmp_path, cnn):
    path = tm.export_onnx(cnn, tmp_path / "cnn.onnx")
    h = interpret.load_model(path.read_bytes(), name="uploaded")  # the upload form passes bytes
    assert h.name == "uploaded" and h.num_classes == 5
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(InputError, match="bad.onnx is not a valid ONNX file"):
        interpret.load_model(tmp_path / "bad.onnx")
    with pytest.raises(InputError, match="not a PyTorch checkpoint"):
        interpret.load_model(b"\x08\x07garbage")
