"""ONNX models (``pip install "interpret-dashboard[onnx]"``), converted to a PyTorch
module with ``onnx2torch`` so that every gradient method works on them (an ONNX runtime
gives no gradients).

What ``torch.onnx.export`` writes, and what is done so that ``onnx2torch`` 1.5.15 takes it:

* **The default (dynamo) exporter** writes opset 20 and its weights as external data
  (``m.onnx`` + ``m.onnx.data``).  From a path, the data files next to the ``.onnx`` file
  are read with onnx's own loader (``load_external_data_for_model``, what
  ``onnx.load(path, load_external_data=True)`` calls) after our own check that every
  location is a regular file inside the model's folder (no absolute path, ``..`` or
  symbolic link; onnx 1.23 refuses those too, as the tests check, older versions within
  our ``onnx>=1.16`` may not all).  An
  upload comes as a zip of the ``.onnx`` and its data files (:func:`read_zip`); a lone
  ``.onnx`` whose data file is missing is refused with what to do.
* **Operators the converter lacks**: ``Gelu`` (opset 20, every ``nn.GELU`` of a dynamo
  export) and ``Reshape`` 19+ get converters of ours (:func:`_register_converters`).
* **Opsets the converter lacks** (``ReduceMean`` with its axes as an input since opset 18):
  :func:`down_convert` rewrites the graph with ``onnx.version_converter``
  for the highest opset at which every operator has a converter, only when one lacks
  it, and checks the result with ``onnx.checker`` (after removing the
  ``noop_with_empty_axes`` attribute the converter leaves behind on reductions, when it
  has no effect).
* **``Reshape`` with ``allowzero=1``** (the dynamo exporter writes it on every reshape):
  ``onnx2torch`` refuses it.  The attribute only changes what a ``0`` in the target shape
  means, so :func:`drop_inert_allowzero` removes it where the shape is a constant without
  a zero, and refuses the graph, naming the node, otherwise.
* **The constant-folded TorchScript export** (``dynamo=False``) deduplicates equal
  weights (the zero biases of folded batch norms) into one initializer read through
  ``Identity`` nodes, for which opset 19+ has no converter, and at opset 17 the
  convolution converter looks the weight up among the initializers
  (``KeyError: 'onnx::Conv_197'``).  :func:`prepare_graph` folds the graph first:
  ``Identity`` nodes fed by an initializer become initializers of their own, other
  ``Identity`` nodes are bypassed, and ``Constant`` nodes become initializers.

An operator ``onnx2torch`` cannot convert at any opset is named in an
:class:`InputError` before any conversion starts.  The converted module is checked
against ``onnxruntime`` in the tests (max abs logit difference < 1e-4).  ONNX files carry
no preprocessing: the input size is read from the graph, the rest assumed (ImageNet
mean/std) and said in the model's notes.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing, input_pixel_limit, input_too_large
from ..tokens import TokenLayout
from .files import MAX_MODEL_BYTES, open_zip, safe_zip_members, unpack_member

#: an ONNX zip is one .onnx file and its data files (``onnx.save(...,
#: all_tensors_to_one_file=False)`` writes one per tensor: a few hundred for a ResNet);
#: the default of the ``max_zip_files`` setting, which is what is applied
MAX_ZIP_FILES = 1024
#: reductions whose ``noop_with_empty_axes`` (opset 18+) the version converter keeps
_REDUCE = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
           "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")
_EXPORT_HINT = ("export it again with torch.onnx.export(..., dynamo=False, opset_version=17), "
                "or load the PyTorch model itself")


def _the(fname: str) -> str:
    """A file's name inside a sentence ("the uploaded file" for bytes)."""
    return "the uploaded file" if fname == "uploaded file" else fname


def _modules():
    from ..optional import require

    mods = require("ONNX models", "onnx", "onnx", "onnx2torch")
    _register_converters()
    return mods


def _register_converters() -> None:
    """Converters ``onnx2torch`` 1.5.15 lacks, added to its registry once per process
    (a version of onnx2torch that has its own keeps it):

    * ``Gelu`` (opset 20, what torch's default exporter writes for ``nn.GELU``, so most
      ViTs and ConvNeXts) becomes ``nn.GELU`` with the node's ``approximate`` mode;
    * ``Reshape`` 19 and 21 reuse the converter of ``Reshape`` 14: they only add tensor
      types (``allowzero`` is handled before, by :func:`drop_inert_allowzero`).  Without
      them a graph with both ``Gelu`` (20 only) and ``Reshape`` could be converted at no
      opset."""
    from onnx2torch.node_converters import registry
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    table = registry._CONVERTER_REGISTRY
    reshape14 = table.get(registry.OperationDescription("", "Reshape", 14))
    for version in (19, 21):
        key = registry.OperationDescription("", "Reshape", version)
        if reshape14 is not None and key not in table:
            registry.add_converter(operation_type="Reshape", version=version)(reshape14)
    if registry.OperationDescription("", "Gelu", 20) in table:
        return

    def gelu(node, graph):  # noqa: ARG001 - onnx2torch's converter signature
        approximate = node.attributes.get("approximate", "none")
        if approximate not in ("none", "tanh"):
            raise NotImplementedError(f"Gelu with approximate='{approximate}'")
        return OperationConverterResult(torch_module=nn.GELU(approximate=approximate),
                                        onnx_mapping=onnx_mapping_from_node(node))

    registry.add_converter(operation_type="Gelu", version=20)(gelu)


def looks_like_onnx(data: bytes) -> bool:
    """Whether ``data`` parses as an ONNX model with a graph (ModelProto starts with
    field 1, ``ir_version``, so its first byte is 0x08)."""
    if data[:1] != b"\x08":
        return False
    try:
        onnx, _ = _modules()
        model = onnx.load_model_from_string(data)
    except Exception:  # noqa: BLE001 - not a protobuf, or not an ONNX one
        return False
    return len(model.graph.node) > 0


def is_onnx_zip(names: List[str]) -> bool:
    """Whether a zip's member names hold an ONNX graph (a ``.onnx`` file, with its data
    files)."""
    return any(n.lower().endswith(".onnx") for n in names)


def _first_line(exc: BaseException, n: int = 200) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:n]


def _parse(data: bytes, fname: str):
    onnx, _ = _modules()
    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - a damaged file
        raise InputError(f"{fname} is not a valid ONNX file: {_first_line(exc)}") from None


# ----------------------------------------------------------------------------------
# external data


def _tensors_of(graph) -> Iterator:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _attribute_tensors(node)


def _attribute_tensors(node) -> Iterator:
    for a in node.attribute:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        if a.HasField("g"):
            yield from _tensors_of(a.g)
        for g in a.graphs:
            yield from _tensors_of(g)


def external_locations(model) -> Dict[str, List[str]]:
    """Data file location -> names of the tensors stored there, for every tensor of the
    model (initializers, constants, subgraphs, functions) kept as external data."""
    from onnx import TensorProto

    tensors = list(_tensors_of(model.graph))
    for fn in model.functions:
        for node in fn.node:
            tensors.extend(_attribute_tensors(node))
    out: Dict[str, List[str]] = {}
    for t in tensors:
        if t.HasField("data_location") and t.data_location == TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), "")
            out.setdefault(loc, []).append(t.name)
    return out


def _relative_location(location: str, fname: str) -> PurePosixPath:
    """``location`` as a path relative to the model's folder; refuses anything that
    could leave it (absolute, drive letters, ``..``, either slash)."""
    parts = [p for p in re.split(r"[\\/]+", location) if p not in ("", ".")]
    if (not location or "\x00" in location or location.startswith(("/", "\\"))
            or re.match(r"^[A-Za-z]:", location) or ".." in parts or not parts):
        raise InputError(
            f"{fname} names a weights file outside its own folder ({location!r}): refused. "
            "An ONNX file's external data must lie next to it (as torch.onnx.export and "
            "onnx.save write it).")
    return PurePosixPath(*parts)


def _missing_data(fname: str, location: str, folder: Optional[Path]) -> InputError:
    if fname != "uploaded file":
        stem = os.path.basename(fname)
    else:  # torch.onnx.export names the data file after the graph: m.onnx -> m.onnx.data
        stem = location[:-len(".data")] if location.endswith(".onnx.data") else "the .onnx file"
    if folder is None:
        return InputError(
            f"{fname} keeps its weights in a separate file, {location!r}, which did not come "
            f"with it: upload a .zip holding both {stem} and {location}, or export the model "
            "as one file with torch.onnx.export(..., external_data=False) (or "
            "onnx.save(model, path, save_as_external_data=False)). From Python, give the "
            ".onnx file's path: the data file next to it is read.")
    return InputError(
        f"{fname} keeps its weights in a separate file, {location!r}, which is not in "
        f"{folder}: keep the data file next to the .onnx file with the name it was "
        "exported with, or export the model as one file with "
        "torch.onnx.export(..., external_data=False).")


def check_external_data(model, folder: Path, fname: str) -> int:
    """Our own check of every external data location of ``model`` against ``folder``
    (relative, inside it, no symbolic link on the way, a regular file); returns their
    total size in bytes (at most the 2 GiB limit)."""
    total = 0
    for location in external_locations(model):
        rel = _relative_location(location, fname)
        path = folder
        for part in rel.parts:
            path = path / part
            if os.path.islink(path):
                raise InputError(
                    f"{fname}'s weights file {location!r} is a symbolic link: refused (copy "
                    "the data file itself next to the .onnx file).")
        try:
            st = os.lstat(path)
        except OSError:
            raise _missing_data(fname, location, folder) from None
        if not stat.S_ISREG(st.st_mode):
            raise _missing_data(fname, location, folder)
        total += st.st_size
    if total > MAX_MODEL_BYTES:
        raise InputError(f"{fname}'s external weights are larger than the 2 GiB limit.")
    return total


def load_external_data(model, folder: Path, fname: str) -> int:
    """Read ``model``'s external tensors from ``folder`` in place, with onnx's own loader
    after :func:`check_external_data`; returns the bytes read."""
    from onnx.external_data_helper import load_external_data_for_model

    total = check_external_data(model, folder, fname)
    try:
        load_external_data_for_model(model, str(folder))
    except Exception as exc:  # noqa: BLE001 - onnx's ValidationError, ValueError, OSError
        raise InputError(f"{fname}'s external weights could not be read: {_first_line(exc, 300)}") from None
    return total


def _max_files() -> int:
    """Files an ONNX zip may hold: the ``max_zip_files`` setting (default 1024)."""
    from ..settings import current

    return current().max_zip_files


def _safe_members(zf: zipfile.ZipFile, fname: str) -> List[zipfile.ZipInfo]:
    """The zip's files (see :func:`~interpret.sources.files.safe_zip_members`)."""
    most = _max_files()
    return safe_zip_members(zf, fname, most, "an ONNX model is one .onnx file and its "
                            f"data files (at most {most}, setting max_zip_files)")


def read_zip(data: bytes, fname: str) -> Tuple[object, str]:
    """(ModelProto with its weights loaded, the .onnx member's file name) of a zip holding
    one ``.onnx`` file and the data files it names, located relative to it.  Only those
    files are unpacked, into a temporary folder removed afterwards, and read with onnx's
    loader as from a path."""
    with open_zip(data, fname) as zf:
        members = _safe_members(zf, fname)
        graphs = [m for m in members if m.filename.lower().endswith(".onnx")]
        if not graphs:
            raise InputError(f"{fname} holds no .onnx file: zip the .onnx file together with "
                             "its .data file.")
        if len(graphs) > 1:
            shown = ", ".join(repr(m.filename) for m in graphs[:3])
            raise InputError(f"{fname} holds {len(graphs)} .onnx files ({shown}): zip one model "
                             "(its .onnx file and its .data file) at a time.")
        graph = graphs[0]
        what = f"{fname} ({graph.filename})"
        model = _parse(unpack_member(zf, graph, fname).getvalue(), what)
        base = PurePosixPath(graph.filename.replace("\\", "/")).parent
        by_name = {str(PurePosixPath(m.filename.replace("\\", "/"))): m for m in members}
        locations = list(external_locations(model))
        if not locations:
            return model, PurePosixPath(graph.filename).name
        with tempfile.TemporaryDirectory(prefix="interpret-onnx-") as tmp:
            for location in locations:
                rel = _relative_location(location, what)
                member = by_name.get(str(base / rel))
                if member is None:
                    raise InputError(
                        f"{fname} holds {graph.filename} but not the weights file it names, "
                        f"{str(base / rel)!r}: zip the .onnx file together with its data file, "
                        "under the names they were exported with.")
                dest = Path(tmp, *rel.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(dest, "wb") as out:
                    unpack_member(zf, member, fname, out)
            load_external_data(model, Path(tmp), what)
        return model, PurePosixPath(graph.filename).name


# ----------------------------------------------------------------------------------
# graph preparation


def prepare_graph(model) -> Dict[str, int]:
    """Fold what ``onnx2torch`` cannot convert out of ``model``'s graph, in place:
    ``Constant`` nodes become initializers; an ``Identity`` of an initializer becomes a
    copy of it under the node's output name; any other ``Identity`` is bypassed (its
    consumers read its input).  Returns how many nodes of each kind were folded."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    folded = {"Constant": 0, "Identity": 0}
    changed = True
    while changed:
        changed = False
        keep = []
        renames: Dict[str, str] = {}
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                keep.append(node)
                continue
            if node.op_type == "Constant" and len(node.output) == 1:
                attr = {a.name: a for a in node.attribute}
                if "value" in attr:
                    t = type(attr["value"].t)()
                    t.CopyFrom(attr["value"].t)
                    t.name = node.output[0]
                    graph.initializer.append(t)
                    inits[t.name] = t
                    folded["Constant"] += 1
                    changed = True
                    continue
            if node.op_type == "Identity" and len(node.input) == 1 and len(node.output) == 1:
                src, dst = node.input[0], node.output[0]
                if src in inits:
                    t = numpy_helper.from_array(numpy_helper.to_array(inits[src]), name=dst)
                    graph.initializer.append(t)
                    inits[dst] = t
                    folded["Identity"] += 1
                    changed = True
                    continue
                if dst not in outputs:
                    renames[dst] = src
                    folded["Identity"] += 1
                    changed = True
                    continue
            keep.append(node)
        if renames:
            def resolve(name: str) -> str:
                while name in renames:
                    name = renames[name]
                return name

            for node in keep:
                for i, name in enumerate(node.input):
                    if name in renames:
                        node.input[i] = resolve(name)
        del graph.node[:]
        graph.node.extend(keep)
    # initializers listed as graph inputs (old exporters) are not inputs to feed
    names = {t.name for t in graph.initializer}
    real = [i for i in graph.input if i.name not in names]
    if len(real) != len(graph.input):
        del graph.input[:]
        graph.input.extend(real)
    return folded


def _node_label(node) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def drop_inert_allowzero(model, fname: str = "the ONNX file") -> int:
    """Remove ``allowzero=1`` from every ``Reshape`` whose target shape is a constant
    without a 0, in place, and return how many.  ``allowzero`` only decides what a 0 in
    the shape means (an empty dimension, instead of a copy of the input's), so there it
    changes nothing; ``onnx2torch`` refuses the attribute.  A Reshape whose shape holds
    a 0, or is computed in the graph, is refused with its name."""
    from onnx import numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    dropped = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.domain not in ("", "ai.onnx"):
            continue
        attr = next((a for a in node.attribute if a.name == "allowzero"), None)
        if attr is None or attr.i == 0:
            continue
        shape_name = node.input[1] if len(node.input) > 1 else ""
        if shape_name not in inits:
            raise InputError(
                f"{fname} has a Reshape node '{_node_label(node)}' with allowzero=1 whose target "
                "shape is computed inside the graph: the converter (onnx2torch) cannot convert "
                "allowzero=1, and whether the shape holds a 0 (the only case where it matters) "
                f"is not known before the model runs; {_EXPORT_HINT}.")
        shape = numpy_helper.to_array(inits[shape_name]).reshape(-1).tolist()
        if 0 in shape:
            raise InputError(
                f"{fname} has a Reshape node '{_node_label(node)}' with allowzero=1 and a 0 in "
                f"its target shape {shape} (an empty dimension): the converter (onnx2torch) "
                "would copy the input's dimension there instead, so the graph cannot be "
                f"converted; {_EXPORT_HINT}.")
        node.attribute.remove(attr)
        dropped += 1
    return dropped


def _default_opset(model) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=1)


def _missing_at(model, version: Optional[int]) -> List[str]:
    from onnx2torch.node_converters.registry import get_converter

    opsets = {o.domain or "": o.version for o in model.opset_import}
    if version is not None:
        opsets[""] = version
    missing = []
    for node in model.graph.node:
        domain = node.domain if node.domain not in ("ai.onnx",) else ""
        v = opsets.get(domain, opsets.get("", 1))
        try:
            get_converter(node.op_type, v, domain)
        except NotImplementedError:
            desc = f"{node.op_type} (opset {v}{', domain ' + domain if domain else ''})"
            if desc not in missing:
                missing.append(desc)
    return missing


def unsupported_operators(model) -> List[str]:
    """``op (domain, opset N)`` for every operator of the graph ``onnx2torch`` has no
    converter for, from its own registry."""
    return _missing_at(model, None)


def target_opset(model) -> Optional[int]:
    """The highest default-domain opset below the graph's at which ``onnx2torch`` has a
    converter for every operator (None: there is none)."""
    for version in range(_default_opset(model) - 1, 6, -1):
        if not _missing_at(model, version):
            return version
    return None


def _tidy_reductions(model, fname: str) -> int:
    """``onnx.version_converter``'s opset 18 -> 17 adapter moves a reduction's axes from
    its input to its attribute but keeps ``noop_with_empty_axes``, which opset 17 does
    not have (onnx.checker: "Unrecognized attribute").  It only acts when the axes are
    empty, so it is removed where it is 0 or the axes are given; an empty-axes no-op
    reduction is refused.  Returns how many were removed."""
    from onnx import defs

    version = _default_opset(model)
    removed = 0
    for node in model.graph.node:
        if node.op_type not in _REDUCE or node.domain not in ("", "ai.onnx"):
            continue
        attr = next((a for a in node.attribute if a.name == "noop_with_empty_axes"), None)
        if attr is None:
            continue
        try:
            schema = defs.get_schema(node.op_type, version, "")
        except defs.SchemaError:  # pragma: no cover - every reduction has a schema
            continue
        if "noop_with_empty_axes" in schema.attributes:
            continue
        axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), [])
        if attr.i and not axes:
            raise InputError(
                f"{fname} has a {node.op_type} node '{_node_label(node)}' with "
                "noop_with_empty_axes=1 and no axes (it does nothing), which has no "
                f"equivalent at opset {version}; {_EXPORT_HINT}.")
        node.attribute.remove(attr)
        removed += 1
    return removed


def down_convert(model, version: int, fname: str, missing: List[str]):
    """``model`` rewritten for default-domain opset ``version`` by
    ``onnx.version_converter``, checked by ``onnx.checker``."""
    import onnx
    from onnx import version_converter

    why = (f"{fname} uses {', '.join(missing)}, which the converter (onnx2torch) cannot "
           f"convert, and onnx.version_converter could not rewrite the graph for opset {version}")
    try:
        converted = version_converter.convert_version(model, version)
    except Exception as exc:  # noqa: BLE001 - the converter's C++ assertions
        raise InputError(f"{why} ({_first_line(exc)}); {_EXPORT_HINT}.") from None
    _tidy_reductions(converted, fname)
    try:
        onnx.checker.check_model(converted)
    except Exception as exc:  # noqa: BLE001 - ValidationError; ValueError above 2 GB
        raise InputError(f"{why}: the rewritten graph fails onnx.checker ({_first_line(exc)}); "
                         f"{_EXPORT_HINT}.") from None
    return converted


class OneAtATime(nn.Module):
    """Runs a converted graph that was exported for a batch of exactly one (its shapes
    are fixed) on each image of a batch in turn."""

    def __init__(self, graph: nn.Module):
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return self.graph(x)
        return torch.cat([self.graph(x[i:i + 1]) for i in range(x.shape[0])])


def _input_shape(model) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """(batch, height, width) of the graph's first input; None where dynamic."""
    inits = {t.name for t in model.graph.initializer}
    inp = next((i for i in model.graph.input if i.name not in inits), None)
    if inp is None:
        raise InputError("The ONNX graph has no input.")
    dims = inp.type.tensor_type.shape.dim
    vals = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(vals) != 4 or vals[1] not in (None, 3):
        raise InputError(
            f"The ONNX graph's input '{inp.name}' has shape {vals}; an image classifier "
            "takes batch x 3 x height x width.")
    return vals[0], vals[2], vals[3]


def read_model(data: bytes, fname: str = "model.onnx", folder=None) -> Tuple[object, str]:
    """(ModelProto with every weight in memory, file name) from ONNX bytes or a zip of a
    ``.onnx`` file and its data files.  ``folder``: where the ``.onnx`` file lies on disk
    (its external data is read from there); None for uploads, whose external data must
    come in a zip."""
    if data[:2] == b"PK":
        model, inner = read_zip(data, fname)
        return model, fname if fname != "uploaded file" else inner
    model = _parse(data, fname)
    locations = list(external_locations(model))
    if locations:
        if folder is None:
            _relative_location(locations[0], fname)
            raise _missing_data(fname, locations[0], None)
        load_external_data(model, Path(folder), fname)
    return model, fname


def convert_model(model, fname: str = "model.onnx") -> Tuple[nn.Module, Dict[str, object]]:
    """(converted module in eval mode, facts about the graph) from a ModelProto with its
    weights in memory; ``model`` is changed (folded) on the way."""
    _, onnx2torch = _modules()
    batch, h, w = _input_shape(model)
    if h and w:  # bounded before any conversion or probe forward (max_input_pixels)
        limit = input_pixel_limit()
        if h * w > limit:
            raise InputError(input_too_large(h, w, limit, f"The input that {_the(fname)} declares"))
    opset = _default_opset(model)
    folded = prepare_graph(model)
    allowzero = drop_inert_allowzero(model, fname)
    missing = unsupported_operators(model)
    converted_to = None
    if missing:
        version = target_opset(model)
        if version is None:
            # name the operators no opset helps with, not those a rewrite would fix
            def op(desc: str) -> str:
                return desc.split(" (")[0]

            older = [{op(d) for d in _missing_at(model, v)}
                     for v in range(_default_opset(model) - 1, 6, -1)]
            never = [d for d in missing if all(op(d) in at for at in older)] or missing
            raise InputError(
                f"{fname} uses ONNX operator(s) the converter (onnx2torch) does not support: "
                f"{', '.join(never)}, at this or any older opset; {_EXPORT_HINT} (the "
                "TorchScript exporter writes some operators as simpler ones).")
        model = down_convert(model, version, fname, missing)
        prepare_graph(model)
        still = unsupported_operators(model)
        if still:  # pragma: no cover - target_opset checked every node at that opset
            raise InputError(f"{fname} uses ONNX operator(s) the converter (onnx2torch) does not "
                             f"support: {', '.join(still)}, even at opset {version}; {_EXPORT_HINT}.")
        converted_to = version
    try:
        module = onnx2torch.convert(model)
    except NotImplementedError as exc:
        raise InputError(f"{fname} could not be converted: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the converter's many failure modes
        raise InputError(
            f"{fname} could not be converted to PyTorch by onnx2torch: "
            f"{type(exc).__name__}: {_first_line(exc)}") from None
    module.eval()  # onnx2torch returns its GraphModule in training mode
    return module, {"batch": batch, "height": h, "width": w, "folded": folded, "opset": opset,
                    "converted_to": converted_to, "rewritten_for": missing if converted_to else [],
                    "allowzero_dropped": allowzero}


def convert(data: bytes, fname: str = "model.onnx", folder=None) -> Tuple[nn.Module, Dict[str, object]]:
    """(converted module in eval mode, facts about the graph) from ONNX bytes (or a zip of
    a ``.onnx`` file and its data files); see :func:`read_model` for ``folder``."""
    model, fname = read_model(data, fname, folder)
    return convert_model(model, fname)


def load(data: bytes, fname: str, pre: Optional[Preprocessing], name: Optional[str], folder=None):
    """(module, info) of an ONNX classifier: the converted graph (run one image at a
    time when the graph was exported for a batch of one and cannot take more).
    ``folder``: the folder of the ``.onnx`` file when it was loaded from a path, where
    its external data lies."""
    model, inner = read_model(data, fname, folder)
    module, facts = convert_model(model, inner)
    h, w = facts["height"] or 224, facts["width"] or 224
    notes = []
    if facts["converted_to"]:
        notes.append(f"the graph (opset {facts['opset']}) was rewritten for opset "
                     f"{facts['converted_to']} with onnx.version_converter before conversion: "
                     f"onnx2torch has no converter for {', '.join(facts['rewritten_for'])}")
    if facts["batch"] == 1:
        try:
            with torch.no_grad():
                out = module(torch.zeros(2, 3, h, w))
            ok = isinstance(out, torch.Tensor) and out.shape[0] == 2
        except Exception:  # noqa: BLE001 - fixed shapes inside the graph
            ok = False
        if not ok:
            module = OneAtATime(module).eval()
            notes.append("the ONNX graph was exported for a batch of one image: batches run "
                         "one image at a time (export with a dynamic batch for speed: "
                         "dynamic_shapes=, or dynamic_axes= with dynamo=False)")
    from . import ultralytics as ul_src

    yolo = ul_src.from_onnx(model, module, facts["height"], facts["width"])
    if yolo is not None:  # an Ultralytics YOLO export: a detector (issue 20)
        module, fields = yolo
        fields["preprocessing"] = pre or fields["preprocessing"]
        fields["preprocessing"].check_declared(_the(inner))
        label = name or (os.path.splitext(inner)[0] if inner != "uploaded file" else "onnx model")
        return module, ModelInfo(
            name=label, source=f"ONNX (Ultralytics YOLO export, opset {facts['opset']}, converted by onnx2torch)",
            weights=fname, notes=tuple(notes), tokens=TokenLayout(), **fields)
    if pre is None:
        side = min(h, w)
        resize = round(side * 256 / 224)
        if resize * resize > input_pixel_limit():  # the margin would pass the limit
            resize = side
        pre = Preprocessing(resize, (h, w) if h != w else h)
        notes.append("ONNX files carry no preprocessing: ImageNet mean/std and a resize "
                     f"to {resize} then a {h}x{w} centre crop are assumed; if the model was trained "
                     "otherwise, set its own under Preprocessing, below the model in the dashboard's "
                     "sidebar (load_model: mean=, std=, resize=, crop=)")
    pre.check_declared(_the(inner))
    label = name or (os.path.splitext(inner)[0] if inner != "uploaded file" else "onnx model")
    opsets = f"opset {facts['opset']}" + (f", rewritten for {facts['converted_to']}"
                                          if facts["converted_to"] else "")
    return module, ModelInfo(
        name=label, preprocessing=pre, source=f"ONNX ({opsets}, converted by onnx2torch)",
        weights=fname, notes=tuple(notes), tokens=TokenLayout())
