"""Ultralytics YOLO detectors (v8 and later): built from the package's own model YAML
(``arch="ultralytics:yolov8n.yaml"``) for a safetensors or ``torch.save`` state dict,
read from an ONNX export, or (pickles, only with ``allow_untrusted``) from an
Ultralytics ``.pt`` checkpoint.  docs/detection.md, "Ultralytics YOLO".

The module the handle holds is :class:`YOLODetector`: the ``DetectionModel``'s own
layers (its ``nn.Sequential``, as ``model``, so a ``DetectionModel`` state dict loads
into it key for key) run in eval mode by a forward of our own.  Ultralytics' own
``predict`` / ``fuse`` are never called (they fuse the convolutions and batch norms in
place), nor ``Detect.forward`` (it caches its anchors on the module); the head's
branches are called (``Detect.forward_head``) and the boxes decoded with the
package's own ``make_anchors`` / ``dist2bbox``.

The output is the packed B x A x 6 detection tensor of :mod:`interpret.detection` with
one row per anchor, **before** non-maximum suppression: ``(x0, y0, x1, y1)`` in input
pixels, the best class's sigmoid and that class.  ``interpret.predict`` applies NMS
(``YOLODetector.detection_nms_iou``, 0.7 as Ultralytics' predictor; end-to-end heads,
YOLOv10 and YOLO26, need none and get None).  The three feature maps the ``Detect``
head reads (P3-P5, strides 8/16/32) pass through ``neck`` (an identity that returns
them as a dict), so the suggested layer ``neck`` is a feature pyramid brought to one
grid (:class:`interpret.detection.Pyramid`).

Preprocessing: RGB in [0, 1] with no normalisation, resized to an exact square (640,
Ultralytics' default ``imgsz``, a multiple of the largest stride 32; an ONNX export's
own input size) - a plain resize, not Ultralytics' letterbox, so that boxes map back
through :func:`interpret.detection.photo_box` as for every other detector.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError

PREFIX = "ultralytics:"
#: Ultralytics' default input side (``imgsz``); a multiple of the largest stride (32)
DEFAULT_SIZE = 640
#: the IoU of Ultralytics' predictor's NMS (``iou=0.7`` in its default config)
NMS_IOU = 0.7
#: heads this loader reads (plain detection; segment, pose, OBB, YOLO-World/YOLOE heads
#: carry more than boxes and classes)
DETECT_HEADS = ("Detect", "v10Detect")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}\.ya?ml$")


def unpatch() -> None:
    """Undo what importing Ultralytics does to the whole process.

    ``import ultralytics`` replaces ``PIL.Image.open`` with a version that, on a file
    Pillow cannot identify, runs ``check_requirements("pi-heif")`` (a ``pip install`` when
    the machine is online and ``YOLO_AUTOINSTALL`` is not off) and then raises
    ``ModuleNotFoundError`` instead of Pillow's ``UnidentifiedImageError``; and it replaces
    ``torch.save`` (and, on Windows, ``cv2.imread/imwrite/imshow``).  A visitor's
    bad upload must not install packages on the server, and no other part of the
    process should see another library's functions: the originals, which Ultralytics
    keeps, are put back.  Safe to call whoever imported Ultralytics, any number of
    times."""
    import sys

    patches = sys.modules.get("ultralytics.utils.patches")
    if patches is None:
        return
    from PIL import Image

    if Image.open is getattr(patches, "image_open", None):
        Image.open = patches._image_open
    if torch.save is getattr(patches, "torch_save", None):
        torch.save = patches._torch_save
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        for name, ours in (("imread", "imread_unicode"), ("imwrite", "imwrite"), ("imshow", "imshow")):
            orig = getattr(patches, "_" + name, None) or getattr(patches, "_" + ours, None)
            if getattr(cv2, name, None) is getattr(patches, ours, object()) and orig is not None:
                setattr(cv2, name, orig)


def _lib():
    """The ``ultralytics`` package, imported on first use (offline: no update checks, no
    automatic ``pip install``; its process-wide patches undone: :func:`unpatch`)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    try:
        import ultralytics  # noqa: F401
        from ultralytics.nn import tasks
        unpatch()
    except ImportError as exc:  # pragma: no cover - it is in the default install
        if "libGL" in str(exc) or "libgthread" in str(exc):  # opencv-python on a slim image
            raise InputError("Ultralytics YOLO models need OpenCV, which cannot load here "
                             f"({str(exc)[:120]}): install the system's libGL (apt-get install libgl1 "
                             "libglib2.0-0) or replace opencv-python with opencv-python-headless "
                             "(pip install --force-reinstall opencv-python-headless).") from None
        raise InputError("Ultralytics YOLO models need the 'ultralytics' package "
                         f"(pip install ultralytics): {str(exc)[:200]}") from None
    return tasks


def _cfg_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise InputError("Ultralytics YOLO models need the 'ultralytics' package (pip install ultralytics).")
    return Path(list(spec.submodule_search_locations)[0]) / "cfg" / "models"


def is_spec(arch: Any) -> bool:
    return isinstance(arch, str) and arch.strip().startswith(PREFIX)


def _yaml_files() -> Dict[str, Path]:
    return {p.name: p for p in sorted(_cfg_dir().rglob("*.yaml"))}


def architectures() -> List[str]:
    """The detection YAMLs the package ships, with their scales (``yolov8n.yaml``...),
    the names ``arch="ultralytics:<name>"`` takes."""
    out = []
    skip = ("-seg", "-pose", "-obb", "-cls", "-world", "yoloe", "rtdetr", "-sem", "-depth", "-ghost",
            "-p2", "-p6")
    for name, path in _yaml_files().items():
        if any(s in name for s in skip):
            continue
        try:
            import yaml

            scales = (yaml.safe_load(path.read_text()) or {}).get("scales") or {}
        except Exception:  # noqa: BLE001 - a YAML the package ships but we cannot read
            continue
        stem = name[:-5]
        if not scales or re.search(r"\d+[a-z]$", stem):  # one file per scale (yolov10n.yaml)
            out.append(name)
        else:  # yolov8.yaml -> yolov8n.yaml, yolov8s.yaml...
            out.extend(re.sub(r"(\d+)(.*)$", lambda m, s=s: f"{m.group(1)}{s}{m.group(2)}", stem) + ".yaml"
                       for s in scales)
    return sorted(set(out))


def resolve(arch: str) -> Tuple[str, Path, str]:
    """(name, the package's YAML file, scale) for ``ultralytics:<name>.yaml``: only a
    YAML shipped inside the package (never a path or a URL: Ultralytics' own lookup
    downloads and searches the disk)."""
    name = arch.strip()[len(PREFIX):].strip() if is_spec(arch) else str(arch).strip()
    if not _NAME.match(name):
        raise InputError(f"'{name[:80]}' is not an Ultralytics model YAML name: give one that the "
                         "package ships, e.g. arch='ultralytics:yolov8n.yaml' or 'ultralytics:yolo11s.yaml'.")
    files = _yaml_files()
    stem, suffix = os.path.splitext(name)
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", stem) + suffix  # yolov8n.yaml -> yolov8.yaml
    path = files.get(name) or files.get(unified)
    if path is None:
        raise InputError(f"Ultralytics has no model YAML '{name}'; e.g. yolov8n.yaml, yolo11n.yaml, "
                         "yolo26n.yaml (the package's cfg/models).")
    m = re.search(r"yolo(e-)?[v]?\d+([nslmx])", stem)
    return name, path, (m.group(2) if m else "")


def build_detection_model(arch: str, nc: Optional[int] = None):
    """Ultralytics' ``DetectionModel`` for ``arch`` with ``nc`` classes (random init),
    from the package's YAML read here."""
    tasks = _lib()
    from ultralytics.utils import YAML

    name, path, scale = resolve(arch)
    d = YAML.load(path)
    d["scale"], d["yaml_file"] = scale, name
    import logging

    log = logging.getLogger("ultralytics")
    level = log.level
    log.setLevel(logging.WARNING)  # "Overriding model.yaml nc=80 with nc=3"
    try:
        m = tasks.DetectionModel(d, nc=nc, verbose=False)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a YAML that does not build
        raise InputError(f"Ultralytics could not build {name}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    finally:
        log.setLevel(level)
    return m.eval()


def is_ultralytics_module(module: Any) -> bool:
    """Whether ``module`` is an Ultralytics ``DetectionModel`` (or a subclass)."""
    return isinstance(module, nn.Module) and any(
        c.__name__ == "DetectionModel" and c.__module__.startswith("ultralytics.") for c in type(module).__mro__)


class Neck(nn.Module):
    """The feature maps the ``Detect`` head reads, returned as a dict ``P3``, ``P4``...
    (an identity): the layer whose levels are brought to one grid."""

    def forward(self, maps: List[torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict((f"P{3 + i}", t) for i, t in enumerate(maps))


class YOLODetector(nn.Module):
    """An Ultralytics YOLO detector as a module that returns the packed detection tensor
    (B x anchors x 6: xyxy in input pixels, best class sigmoid, class; every anchor,
    before NMS).  ``model``: the ``DetectionModel``'s own ``nn.Sequential`` (shared,
    never changed); ``names``: index -> class name."""

    def __init__(self, net: nn.Sequential, names: Optional[Dict[int, str]] = None):
        super().__init__()
        head = net[-1]
        if type(head).__name__ not in DETECT_HEADS:
            raise InputError(f"This Ultralytics model's head is {type(head).__name__}, not a detection "
                             "head (Detect): segmentation, pose, oriented-box, classification and "
                             "open-vocabulary YOLO models are not supported; load a detection model.")
        self.model = net
        self.neck = Neck()
        self.names = {int(k): str(v) for k, v in (names or {}).items()}
        self.num_classes = int(head.nc)
        self.end2end = bool(getattr(head, "end2end", False))
        #: NMS for interpret.predict (None: the head is end-to-end, one box per object)
        self.detection_nms_iou = None if self.end2end else NMS_IOU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ultralytics.utils.tal import dist2bbox, make_anchors

        head = self.model[-1]
        step = int(max(float(v) for v in head.stride)) if head.stride.numel() else 32
        if x.shape[-2] % step or x.shape[-1] % step:
            raise InputError(f"A YOLO model takes sides that are multiples of its largest stride ({step}); "
                             f"this input is {x.shape[-2]} x {x.shape[-1]}: give a preprocessing with an "
                             f"exact resize to multiples of {step} (e.g. 640 x 640).")
        outs: List[Any] = []
        for m in self.model[:-1]:  # DetectionModel._predict_once, every output kept
            if m.f != -1:
                x = outs[m.f] if isinstance(m.f, int) else [x if j == -1 else outs[j] for j in m.f]
            x = m(x)
            outs.append(x)
        maps = [x if j == -1 else outs[j] for j in (head.f if isinstance(head.f, list) else [head.f])]
        levels = list(self.neck(maps).values())
        branch = head.one2one if self.end2end else head.one2many
        p = head.forward_head(levels, **branch)
        anchors, strides = (a.transpose(0, 1) for a in make_anchors(levels, head.stride, 0.5))
        boxes = dist2bbox(head.dfl(p["boxes"]), anchors.unsqueeze(0), xywh=False, dim=1) * strides
        score, label = p["scores"].sigmoid().max(dim=1)
        return torch.cat([boxes.transpose(1, 2), score[..., None], label.to(score.dtype)[..., None]], dim=-1)


def wrap(model, names: Optional[Dict[int, str]] = None) -> YOLODetector:
    """A :class:`YOLODetector` over an Ultralytics ``DetectionModel`` (its layers shared,
    not copied; the model is never changed)."""
    if not is_ultralytics_module(model):
        raise InputError(f"Not an Ultralytics DetectionModel: {type(model).__name__}.")
    if names is None:
        names = getattr(model, "names", None)
        names = names if isinstance(names, dict) else (
            dict(enumerate(names)) if isinstance(names, (list, tuple)) else None)
    return YOLODetector(model.model, names).eval()


def class_count(state: Dict[str, torch.Tensor]) -> Optional[int]:
    """The class count of a YOLO state dict: the rows of the head's last class
    convolution (``model.<head>.cv3.0.<last>.weight``)."""
    best = None
    for k, v in state.items():
        m = re.match(r"^(?:model\.)?(\d+)\.(?:one2one_)?cv3\.0\.(\d+)\.weight$", k)
        if m and v.dim() == 4:
            key = (int(m.group(1)), int(m.group(2)))
            if best is None or key > best[0]:
                best = (key, int(v.shape[0]))
    return None if best is None else best[1]


def coco_names() -> Tuple[str, ...]:
    """COCO's 80 class names as Ultralytics' ``coco.yaml`` lists them."""
    import yaml

    path = _cfg_dir().parent / "datasets" / "coco.yaml"
    names = (yaml.safe_load(path.read_text()) or {}).get("names") or {}
    return tuple(str(names[i]) for i in sorted(names))


def parse_names(value: Any, nc: Optional[int] = None) -> Optional[Tuple[str, ...]]:
    """Class names from a file's metadata: a JSON list, a JSON object index -> name, or
    the Python dict literal Ultralytics writes into its exports (read with
    ``ast.literal_eval``: literals only, nothing runs); None when unreadable or when
    their count is not ``nc``."""
    obj = value
    if isinstance(value, (bytes, str)):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if len(text) > 1_000_000:
            return None
        try:
            obj = json.loads(text)
        except ValueError:
            try:
                obj = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
    if isinstance(obj, dict):
        try:
            items = sorted((int(k), str(v)) for k, v in obj.items())
        except (TypeError, ValueError):
            return None
        if [k for k, _ in items] != list(range(len(items))):
            return None
        names = tuple(v for _, v in items)
    elif isinstance(obj, (list, tuple)):
        names = tuple(str(v) for v in obj)
    else:
        return None
    if not names or (nc is not None and len(names) != nc):
        return None
    return names


def _default_names(names: Optional[Sequence[str]], nc: int) -> Optional[Tuple[str, ...]]:
    """The labels to show: ``names`` when they are real names, COCO's for an 80-class
    model whose names are Ultralytics' placeholders ('0', '1', ...), else None (the
    handle numbers the classes)."""
    if names is not None and len(names) == nc and any(n != str(i) for i, n in enumerate(names)):
        return tuple(names)
    if nc == 80:
        return coco_names()
    return None


def preprocessing(side=DEFAULT_SIZE):
    from ..preprocessing import Preprocessing

    hw = (int(side[0]), int(side[1])) if isinstance(side, (tuple, list)) else (int(side), int(side))
    return Preprocessing(hw, None, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def info_fields(module: YOLODetector, names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """ModelInfo fields of a YOLO detector: task, suggested layer (the neck's feature
    pyramid), preprocessing (0..1 RGB, 640 x 640), labels."""
    nc = module.num_classes
    own = [module.names[i] for i in range(nc)] if sorted(module.names) == list(range(nc)) else None
    return {"task": "detection", "suggested_layer": "neck", "preprocessing": preprocessing(),
            "labels": _default_names(names if names is not None else own, nc)}


# -- architectures for state dicts (interpret.sources.files) ---------------------------------

def arch(spec: str, metadata: Optional[Dict[str, str]] = None):
    """The :class:`interpret.sources.files.Arch` for ``ultralytics:<name>.yaml``: the class
    count from the state dict's class head, names from the file's metadata (``names``)
    when they fit."""
    from .files import Arch

    name, _, _ = resolve(spec)

    def build(state):
        if torch.get_default_device().type == "meta":  # files._check_on_meta: shapes only
            return skeleton(name, class_count(state))
        return wrap(build_detection_model(name, class_count(state)))

    def info(module):
        names = parse_names((metadata or {}).get("names"), module.num_classes) if metadata else None
        return info_fields(module, names)

    return Arch(f"{PREFIX}{name}", build, info)


def skeleton(arch: str, nc: Optional[int] = None) -> YOLODetector:
    """``arch``'s layers as Ultralytics' ``parse_model`` builds them, with no forward (a
    ``DetectionModel`` runs one to measure its strides, which the meta device cannot):
    built under ``torch.device("meta")`` it costs no memory, so that a file is compared
    with the architecture before a 173-million-parameter YOLOv6x is allocated for it
    (its keys and shapes are the ``DetectionModel``'s, tested)."""
    tasks = _lib()
    from ultralytics.utils import YAML

    name, path, scale = resolve(arch)
    d = YAML.load(path)
    d["scale"], d["yaml_file"] = scale, name
    if nc:
        d["nc"] = int(nc)
    net, _ = tasks.parse_model(d, ch=3, verbose=False)
    return YOLODetector(net)


def load(spec: str, weights: Optional[str] = None, pre=None, name: Optional[str] = None):
    """(module, ModelInfo) of ``load_model("ultralytics:<name>.yaml", weights=None)``: a
    random init of the package's YAML (its own class count, 80: COCO's names), like a
    torchvision name with ``weights=None``.  Ultralytics' pretrained weights are pickled
    ``.pt`` files fetched from GitHub: never downloaded here, they are refused with
    what to do instead."""
    from ..handle import ModelInfo

    yaml_name, _, _ = resolve(spec)
    if weights is not None:
        raise InputError(f"Ultralytics' pretrained weights for {yaml_name} are pickled .pt files, which "
                         "this loader never downloads: give weights=None for a random init, or load a "
                         f"state dict with load_model('w.safetensors', arch='{PREFIX}{yaml_name}') "
                         "(a .pt checkpoint only with allow_untrusted=True).")
    module = wrap(build_detection_model(yaml_name))
    fields = info_fields(module)
    if pre is not None:
        fields["preprocessing"] = pre
    fields["preprocessing"].check_declared()
    return module, ModelInfo(
        name=name or f"{PREFIX}{yaml_name}", source="ultralytics", weights=None,
        notes=("random initialisation (no pretrained weights): predictions are meaningless",), **fields)


def from_checkpoint(obj: Any) -> Optional[YOLODetector]:
    """A :class:`YOLODetector` from an unpickled Ultralytics checkpoint (``{"model":
    DetectionModel, "ema": ..., ...}``, weights in half precision: made float) or a
    pickled ``DetectionModel``; None when ``obj`` is neither.  Only ever called on what
    ``allow_untrusted`` let in."""
    model = obj
    if isinstance(obj, dict):
        model = obj.get("ema") if is_ultralytics_module(obj.get("ema")) else obj.get("model")
    if not is_ultralytics_module(model):
        return None
    return wrap(model.float().eval())


# -- ONNX exports (interpret.sources.onnx) ---------------------------------------------------

class YOLOExport(nn.Module):
    """An ONNX export of a YOLO detector, converted by onnx2torch, returning the packed
    detection tensor: Ultralytics' export gives B x (4 + nc) x anchors (centre x, centre
    y, width, height in input pixels, then class sigmoids: every anchor, before NMS), or
    B x k x 6 (x0, y0, x1, y1, score, class) for end-to-end heads."""

    def __init__(self, graph: nn.Module, num_classes: int, end2end: bool):
        super().__init__()
        self.graph = graph
        self.num_classes = int(num_classes)
        self.end2end = bool(end2end)
        self.detection_nms_iou = None if end2end else NMS_IOU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.graph(x)
        if isinstance(y, (tuple, list)):
            y = y[0]
        want = "B x k x 6" if self.end2end else f"B x {4 + self.num_classes} x anchors"
        if not isinstance(y, torch.Tensor) or y.dim() != 3 or (
                y.shape[-1] < 6 if self.end2end else y.shape[1] != 4 + self.num_classes):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise InputError(f"This ONNX graph says it is an Ultralytics detection export, but it returns "
                             f"{got}, not {want}.")
        if self.end2end:
            return y[..., :6]
        cx, cy, w, h = y[:, :4].unbind(1)
        score, label = y[:, 4:4 + self.num_classes].max(dim=1)
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, label.to(score.dtype)], -1)


def anchor_count(h: int, w: int, strides: Sequence[int] = (8, 16, 32)) -> int:
    """Anchors of a YOLO head at an h x w input (one per cell of each level)."""
    return sum(-(-h // s) * -(-w // s) for s in strides)


def onnx_metadata(model_proto) -> Dict[str, str]:
    return {p.key: p.value for p in getattr(model_proto, "metadata_props", [])}


def _imgsz(meta: Dict[str, str]) -> Optional[Tuple[int, int]]:
    try:
        v = ast.literal_eval(str(meta.get("imgsz", "")))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    v = [v, v] if isinstance(v, int) else v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(i, int) and 32 <= i <= 4096 for i in v):
        return int(v[0]), int(v[1])
    return None


def _output_dims(model_proto) -> List[Optional[int]]:
    outs = list(model_proto.graph.output)
    if len(outs) != 1:
        return []
    return [d.dim_value if d.HasField("dim_value") else None for d in outs[0].type.tensor_type.shape.dim]


def from_onnx(model_proto, module: nn.Module, h: Optional[int], w: Optional[int]):
    """(module, ModelInfo fields) when a converted ONNX graph is a YOLO detection export
    (Ultralytics' metadata says ``task: detect``, or, without metadata, its one output is
    declared B x (4 + nc) x anchors with the anchor count of a stride 8/16/32 head at the
    graph's input size); None otherwise.  ``h``, ``w``: the graph's input size (None
    where dynamic: then the metadata's ``imgsz``, else 640)."""
    meta = onnx_metadata(model_proto)
    told = meta.get("task")
    if told is not None and (told != "detect" or meta.get("author", "Ultralytics") != "Ultralytics"):
        return None
    if told is None:  # no metadata (torch.onnx.export): the declared output's shape
        dims = _output_dims(model_proto)
        if not (h and w and len(dims) == 3 and dims[1] and dims[1] > 4 and dims[2] == anchor_count(h, w)):
            return None
        nc, end2end = int(dims[1]) - 4, False
    else:
        if not (h and w):
            h, w = _imgsz(meta) or (DEFAULT_SIZE, DEFAULT_SIZE)
        end2end = str(meta.get("end2end", "False")).strip().lower() == "true"
        names = parse_names(meta.get("names"))
        nc = len(names) if names else None
        if nc is None:
            dims = _output_dims(model_proto)
            if end2end or len(dims) != 3 or not dims[1] or dims[1] <= 4:
                raise InputError("This YOLO export names no classes in its metadata and its output does "
                                 "not say how many it scores; give its labels (load_model(..., labels=...)).")
            nc = int(dims[1]) - 4
    det = YOLOExport(module, nc, end2end).eval()
    names = parse_names(meta.get("names"), nc)
    fields = {"task": "detection", "preprocessing": preprocessing((h, w)),
              "labels": _default_names(names, nc), "suggested_layer": finest_level(model_proto, det)}
    return det, fields


def finest_level(model_proto, module: nn.Module) -> Optional[str]:
    """In a converted YOLO export, the module that computes the finest map the head reads
    (P3, the output of the lowest-numbered layer feeding ``/model.<head>/``): every level
    of the head depends on it (the neck's bottom-up path starts there), so a box on any
    level has a gradient there, where the last layer before the head (P5) has none for a
    small object's anchor.  None when the graph's node names are not Ultralytics'."""
    names = [n.name for n in model_proto.graph.node]
    layers = [int(m.group(1)) for n in names for m in [re.match(r"^/model\.(\d+)/", n)] if m]
    if not layers:
        return None
    head = f"/model.{max(layers)}/"
    producer = {o: n for n in model_proto.graph.node for o in n.output}
    feeding = []
    for n in model_proto.graph.node:
        if n.name.startswith(head):
            for i in n.input:
                p = producer.get(i)
                m = re.match(r"^/model\.(\d+)/", p.name) if p is not None else None
                if m and not p.name.startswith(head):
                    feeding.append((int(m.group(1)), p.name))
    if not feeding:
        return None
    want = min(feeding)[1].lstrip("/").replace(".", "/")  # onnx2torch's module name for the node
    for name, _ in module.named_modules():
        if name == want or name.endswith("." + want):
            return name
    return None
