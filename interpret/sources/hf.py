"""Hugging Face ``transformers`` image classifiers (``pip install
"interpret-dashboard[hf]"``): a folder, or a zip of one, holding ``config.json`` and
``model.safetensors`` (and ``preprocessor_config.json`` if there is one), as
``model.save_pretrained(folder)`` writes it.

Nothing from the folder is executed: a config that asks for the model's own code
(``auto_map``, ``trust_remote_code``) and pickled weights (``pytorch_model.bin``) are
refused unless untrusted formats are allowed, with the same rule and wording as pickles.
The model is built by ``AutoModelForImageClassification.from_pretrained(folder,
use_safetensors=True, trust_remote_code=False, local_files_only=True)``; the labels come
from ``config.id2label``, the preprocessing from the image processor's config, and what
is explained is the output's ``.logits``.  An ``*ForObjectDetection`` folder (DETR and its
relatives) is built by ``AutoModelForObjectDetection`` and read as a detector
(:func:`detection_fields`; its queries scored as its processor's post-processing scores
them, :data:`interpret.detection.HF_SCORING`).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Tuple

from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing
from ..tokens import TokenLayout
from .files import UNTRUSTED_WHY, open_zip, safe_zip_members, unpack_member

CONFIG = "config.json"
SAFE_WEIGHTS = "model.safetensors"
PICKLED_WEIGHTS = ("pytorch_model.bin",)
PROCESSOR = "preprocessor_config.json"
MAX_ZIP_FILES = 64

#: PIL's resampling codes, as image processor configs store them
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


def _transformers():
    from ..optional import require

    return require("Hugging Face models", "hf", "transformers")[0]


def is_hf_module(module: nn.Module) -> bool:
    """Whether ``module`` is a ``transformers`` model (a ``PreTrainedModel``)."""
    return type(module).__module__.startswith("transformers.") and hasattr(module, "config")


def is_hf_zip(names: List[str]) -> bool:
    """Whether a zip's member names look like a saved Hugging Face folder."""
    return any(PurePosixPath(n).name == CONFIG for n in names)


# ----------------------------------------------------------------------------------
# what the folder says


def _read_json(path: Path, what: str) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"The model folder's {what} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"The model folder's {what} is not a JSON object.")
    return data


def _check_folder(folder: Path, what: str, allow_untrusted: bool) -> Tuple[Dict[str, Any], bool]:
    """(config, use_safetensors) after the safety checks: refuses remote code and
    pickled weights unless ``allow_untrusted``."""
    cfg_path = folder / CONFIG
    if not cfg_path.is_file():
        raise InputError(f"{what} has no {CONFIG}: save the model with model.save_pretrained(folder).")
    config = _read_json(cfg_path, CONFIG)
    proc = _read_json(folder / PROCESSOR, PROCESSOR) if (folder / PROCESSOR).is_file() else {}
    code = [k for k in ("auto_map", "trust_remote_code") if k in config or k in proc]
    if code and not allow_untrusted:
        raise InputError(
            f"Refused to load {what}: its config asks for the model's own Python code "
            f"({', '.join(code)}), which would run on this server; {UNTRUSTED_WHY}"
        )
    safe = (folder / SAFE_WEIGHTS).is_file() or (folder / f"{SAFE_WEIGHTS}.index.json").is_file()
    pickled = [n for n in PICKLED_WEIGHTS if (folder / n).is_file()
               or (folder / f"{n}.index.json").is_file()]
    if not safe:
        if pickled and not allow_untrusted:
            raise InputError(
                f"Refused to load {what}: its weights are {pickled[0]}, a pickle, not "
                f"{SAFE_WEIGHTS} (save with model.save_pretrained(folder), which writes "
                f"safetensors); {UNTRUSTED_WHY}"
            )
        if not pickled:
            raise InputError(f"{what} has no {SAFE_WEIGHTS}: save the model with "
                             "model.save_pretrained(folder).")
    _check_declared_size(folder, what, config, proc)
    if safe and (folder / SAFE_WEIGHTS).is_file():
        from .files import check_safetensors

        with open(folder / SAFE_WEIGHTS, "rb") as fh:  # the header only: the tensor count
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            if 0 < n <= 100 * 2**20:  # safetensors' own header limit
                check_safetensors(head + fh.read(n), f"{what}'s {SAFE_WEIGHTS}")
    return config, safe


def _check_declared_size(folder: Path, what: str, config: Dict[str, Any], proc: Dict[str, Any]) -> None:
    """Refuse, before the model is built, a config whose ``image_size`` or an image
    processor config whose sizes are more than ``max_input_pixels`` (an 8000x8000
    ``size`` costs gigabytes per prediction)."""
    from ..preprocessing import input_pixel_limit, input_too_large

    limit = input_pixel_limit()
    image = config.get("image_size")
    try:
        ih, iw = (image, image) if isinstance(image, int) else (int(image[0]), int(image[1]))
    except (TypeError, ValueError, IndexError, KeyError):
        ih = iw = None
    if ih is not None and iw is not None and ih * iw > limit:
        raise InputError(input_too_large(ih, iw, limit, f"The input that {what}'s {CONFIG} declares "
                                                        "(image_size)"))
    if not proc:
        return
    try:
        declared = preprocessing_from(proc)
    except (TypeError, ValueError, KeyError, AttributeError):
        declared = None  # transformers' own processor reads it; checked again after loading
    if declared is not None:
        declared.check_declared(f"{what}'s {PROCESSOR}", limit)


def preprocessing_from(proc) -> Optional[Preprocessing]:
    """A :class:`Preprocessing` from an image processor (its attributes, or the JSON of
    ``preprocessor_config.json``): ``size`` {height, width} is an exact resize,
    ``{shortest_edge}`` a resize of the shorter side (with ``crop_pct``:
    ``shortest_edge / crop_pct``, as ConvNeXt's processor does below 384); then
    ``crop_size`` when ``do_center_crop``, else a centre crop to the resize."""
    get = proc.get if isinstance(proc, dict) else (lambda k, d=None: getattr(proc, k, d))

    def as_dict(v):
        if v is None:
            return {}
        if isinstance(v, dict):
            return v
        return {k: getattr(v, k) for k in ("height", "width", "shortest_edge")
                if getattr(v, k, None) is not None}

    size, crop = as_dict(get("size")), as_dict(get("crop_size"))
    if isinstance(get("size"), int):
        size = {"shortest_edge": int(get("size"))}
    mean = get("image_mean") if get("do_normalize", True) else (0.0, 0.0, 0.0)
    std = get("image_std") if get("do_normalize", True) else (1.0, 1.0, 1.0)
    if mean is None or std is None:
        return None
    if isinstance(mean, (int, float)):
        mean = (float(mean),) * 3
    if isinstance(std, (int, float)):
        std = (float(std),) * 3
    rescale = get("rescale_factor", 1 / 255) if get("do_rescale", True) else 1.0
    if rescale and abs(float(rescale) * 255 - 1) > 1e-6:
        # our pipeline scales pixels to [0, 1]: fold any other rescale into mean/std
        k = float(rescale) * 255
        mean, std = tuple(m / k for m in mean), tuple(s / k for s in std)
    resample = get("resample", 2)
    interp = _PIL_RESAMPLE.get(int(resample), "bilinear") if resample is not None else "bilinear"
    crop_size = None
    if get("do_center_crop") and crop.get("height"):
        crop_size = (int(crop["height"]), int(crop["width"]))
    if "height" in size and "width" in size:
        resize: Any = (int(size["height"]), int(size["width"]))
        return Preprocessing(resize, crop_size, tuple(mean), tuple(std), interp)
    if "shortest_edge" in size:
        s = int(size["shortest_edge"])
        pct = get("crop_pct")
        if crop_size is None and pct and s < 384:
            return Preprocessing(int(s / float(pct)), s, tuple(mean), tuple(std), interp)
        if crop_size is None and pct:
            return Preprocessing((s, s), None, tuple(mean), tuple(std), interp)
        return Preprocessing(s, crop_size or s, tuple(mean), tuple(std), interp)
    return None


def _labels(config) -> Optional[Tuple[str, ...]]:
    id2label = getattr(config, "id2label", None) or {}
    try:
        items = sorted((int(k), str(v)) for k, v in id2label.items())
    except (TypeError, ValueError):
        return None
    names = [v for _, v in items]
    if not names or [i for i, _ in items] != list(range(len(items))):
        return None
    if all(v == f"LABEL_{i}" for i, v in enumerate(names)):
        return None  # transformers' placeholders, not real names
    return tuple(names)


def _base(module: nn.Module) -> nn.Module:
    prefix = getattr(module, "base_model_prefix", "")
    return getattr(module, prefix, module) if prefix else module


def tokens(module: nn.Module) -> TokenLayout:
    """Token layout of a ViT-like model: the embedding's own tokens (``cls_token``,
    ``distillation_token``, ``register_tokens``: not ``mask_token``) before a grid of
    ``image_size / patch_size``."""
    cfg = module.config
    image, patch = getattr(cfg, "image_size", None), getattr(cfg, "patch_size", None)
    emb = getattr(_base(module), "embeddings", None)
    if image is None or patch is None or emb is None:
        return TokenLayout(channels_last="Swin" in type(module).__name__)
    prefix = 0
    for name, p in emb.named_parameters(recurse=False):
        if name.endswith(("token", "tokens")) and name != "mask_token" and p.dim() == 3:
            prefix += int(p.shape[1])
    ih, iw = (image, image) if isinstance(image, int) else image
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    return TokenLayout(prefix_tokens=prefix, grid=(ih // ph, iw // pw))


def info_fields(module: nn.Module, proc=None) -> Dict[str, Any]:
    """ModelInfo fields for a ``transformers`` classifier: labels from ``id2label``,
    preprocessing from its image processor (``proc``; else the config's image size with
    ImageNet statistics), token layout, and for a ViT the first norm of its last block."""
    from ..attention import describe_module

    pre = preprocessing_from(proc) if proc is not None else None
    if pre is None:
        image = getattr(module.config, "image_size", 224)
        side = image if isinstance(image, int) else image[0]
        pre = Preprocessing(side, side) if side != 224 else Preprocessing()
    layout = tokens(module)
    vit = describe_module(module, layout)
    suggested = None
    if not isinstance(vit, str):
        suggested = vit.blocks[-1].norm
    return {"labels": _labels(module.config), "preprocessing": pre, "tokens": layout,
            "suggested_layer": suggested, "is_transformer": layout.prefix_tokens is not None,
            "task": task_of(module)}


def task_of(module: nn.Module) -> Optional[str]:
    """What the model's output means, where transformers records it: its
    ``*ForSemanticSegmentation`` class, or ``config.problem_type``."""
    if type(module).__name__.endswith("ForSemanticSegmentation"):
        return "segmentation"
    if type(module).__name__.endswith("ForObjectDetection"):
        return "detection"
    return {"multi_label_classification": "multilabel", "regression": "regression",
            "single_label_classification": "classification"}.get(
        getattr(module.config, "problem_type", None) or "")


# ----------------------------------------------------------------------------------
# object detectors (AutoModelForObjectDetection: DETR, Conditional/Deformable DETR,
# YOLOS, RT-DETR); docs/detection.md


def is_detector_config(config: Dict[str, Any]) -> bool:
    """Whether a folder's ``config.json`` names an ``*ForObjectDetection`` model."""
    return any(str(a).endswith("ForObjectDetection") for a in config.get("architectures") or [])


def _size_dict(v) -> Dict[str, int]:
    if v is None:
        return {}
    if isinstance(v, int):
        return {"shortest_edge": int(v)}
    if isinstance(v, dict):
        return {k: int(x) for k, x in v.items() if isinstance(x, int)}
    return {k: int(getattr(v, k)) for k in ("height", "width", "shortest_edge", "longest_edge")
            if isinstance(getattr(v, k, None), int)}


def detection_preprocessing(proc) -> Optional[Preprocessing]:
    """A detector's :class:`Preprocessing` from its image processor: one fixed input
    size (every photo the same tensor, as for torchvision's detectors), an exact resize
    with no crop so that every part of the photo is seen: ``size`` {height, width}
    as it is (RT-DETR's 640 x 640), else a square of ``shortest_edge`` (DETR's 800:
    its own processor keeps the aspect ratio up to ``longest_edge`` and pads, so the
    model sees the photo stretched to a square here; :func:`detection_notes` says so).
    Mean, std and rescale as :func:`preprocessing_from` reads them."""
    get = proc.get if isinstance(proc, dict) else (lambda k, d=None: getattr(proc, k, d))
    size = _size_dict(get("size"))
    if "height" in size and "width" in size:
        hw = (size["height"], size["width"])
    elif "shortest_edge" in size:
        hw = (size["shortest_edge"], size["shortest_edge"])
    else:
        return None
    keys = ("image_mean", "image_std", "do_normalize", "rescale_factor", "do_rescale", "resample")
    plain = {k: get(k) for k in keys if get(k) is not None}
    plain.update(size={"height": hw[0], "width": hw[1]}, do_center_crop=False)
    return preprocessing_from(plain)


def detection_notes(proc, pre: Preprocessing) -> Tuple[str, ...]:
    """What a person should know about a detector's preprocessing here (words from the
    processor's sizes and ours)."""
    get = proc.get if isinstance(proc, dict) else (lambda k, d=None: getattr(proc, k, d))
    size = _size_dict(get("size"))
    if "height" in size and "width" in size:
        return ()
    h, w = pre.input_size
    longest = f" (longest side at most {size['longest_edge']})" if "longest_edge" in size else ""
    return (f"photos are resized to {w} x {h} pixels; the model's own image processor keeps the "
            f"aspect ratio, shortest side {size.get('shortest_edge', h)}{longest}, so a photo that is "
            "not square is seen stretched here",)


def _backbone_last_stage(module: nn.Module) -> Optional[str]:
    """The name of the last stage of a detector's convolutional backbone (a
    transformers ``*Backbone``'s ``encoder.stages.N``, timm's ``layerN``/``stages_N``),
    or None (YOLOS: a ViT, no backbone)."""
    import re

    last = None
    for name, _ in module.named_modules():
        if ".backbone." in f".{name}." and re.search(r"(^|\.)(stages[._]\d+|layer\d+)$", name):
            last = name
    return last


def detection_fields(module: nn.Module, proc, what: str) -> Dict[str, Any]:
    """ModelInfo fields for a ``transformers`` object detector: labels from
    ``id2label`` (the classes the logits score; DETR's last "no object" logit is not one),
    the preprocessing of :func:`detection_preprocessing` (else 800 x 800 with ImageNet
    statistics, DETR's defaults), the backbone's last stage as the suggested layer.
    RT-DETR trained without focal loss (``use_focal_loss=False``) is refused: its
    processor scores it another way than the class's (:data:`interpret.detection.HF_SCORING`)."""
    cfg = module.config
    if getattr(cfg, "use_focal_loss", True) is False:
        raise InputError(f"{what} is an RT-DETR trained without focal loss (use_focal_loss: false); "
                         "only the focal-loss scoring (a sigmoid per class) is read here.")
    pre = detection_preprocessing(proc) if proc is not None else None
    if pre is None:
        pre = Preprocessing((800, 800), None)
    layout = TokenLayout()
    patch = getattr(cfg, "patch_size", None)
    if getattr(cfg, "num_detection_tokens", None) and isinstance(patch, int) and patch > 0:
        # YOLOS: [class token, patches, detection tokens]: the detection tokens come after
        # the grid, which a TokenLayout cannot skip; fixing the class token and the grid
        # makes its blocks non-spatial (the CAMs refuse them), never a grid read wrongly
        h, w = pre.input_size
        layout = TokenLayout(prefix_tokens=1, grid=(h // patch, w // patch))
    return {"labels": _labels(cfg), "preprocessing": pre, "tokens": layout,
            "suggested_layer": _backbone_last_stage(module), "is_transformer": False,
            "task": "detection"}


# ----------------------------------------------------------------------------------
# loading


class HFEmbedding(nn.Module):
    """A Hugging Face base vision model (``Dinov2Model``, ``ViTModel``: no head) as an
    embedding model (task ``"embedding"``): photo in, the model's own ``pooler_output``
    out (DINOv2: the final norm's class token; ViT: its pooler on that token), so that
    the handle's output is one vector per photo.  ``model`` is the only child."""

    base_model_prefix = "model"

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.training = model.training  # follows the model's own flag, never flips it

    @property
    def config(self):
        return self.model.config

    def forward(self, x):
        out = self.model(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            raise InputError(f"{type(self.model).__name__} returns no pooled output (pooler_output) "
                             "to use as the photo's embedding.")
        return pooled

    def pool_tokens(self, z):
        """The embedding computed from a block's output tokens ``z`` as the model computes
        it from its last block's: the final norm, then the pooler (or the class token)."""
        seq = self.model.layernorm(z)
        pooler = getattr(self.model, "pooler", None)
        return pooler(seq) if pooler is not None else seq[:, 0]


def is_base_model(config: Dict[str, Any]) -> bool:
    """Whether a folder's ``config.json`` names a base model (``Dinov2Model``,
    ``ViTModel``): a model without a head, whose output is an embedding."""
    archs = [str(a) for a in config.get("architectures") or []]
    return bool(archs) and all(a.endswith("Model") and "For" not in a for a in archs)


def load_folder(folder, allow_untrusted: bool = False, pre: Optional[Preprocessing] = None,
                name: Optional[str] = None, what: Optional[str] = None):
    """(module, info) of a saved Hugging Face image classifier folder (or of a base
    vision model such as ``Dinov2Model``: an embedding model, :class:`HFEmbedding`)."""
    transformers = _transformers()
    folder = Path(folder)
    what = what or f"the folder {folder.name}"
    config, safe = _check_folder(folder, what, allow_untrusted)
    remote = "auto_map" in config
    from .open_clip import is_image_text_folder

    if is_image_text_folder(config):  # a CLIP / SigLIP folder (a zip from the upload form)
        from .open_clip import load_hf_folder

        return load_hf_folder(folder, pre, name or folder.name, allow_untrusted)
    if is_base_model(config):
        return _load_embedding(transformers, folder, what, config, safe, pre, name)
    segmenter = any(str(a).endswith("ForSemanticSegmentation") for a in config.get("architectures") or [])
    detector = is_detector_config(config)
    auto = (transformers.AutoModelForSemanticSegmentation if segmenter
            else transformers.AutoModelForObjectDetection if detector
            else transformers.AutoModelForImageClassification)
    if safe and not remote:
        _check_weights_cover(transformers, auto, folder, what, config)
    try:
        module = auto.from_pretrained(
            str(folder), use_safetensors=safe, trust_remote_code=bool(allow_untrusted and remote),
            local_files_only=True)
    except ValueError as exc:
        kind = config.get("model_type", "?")
        raise InputError(
            f"{what} is not an image classifier transformers can build (model_type "
            f"'{kind}'): {str(exc).splitlines()[0][:200]}"
        ) from None
    except (OSError, RuntimeError, KeyError) as exc:
        raise InputError(f"{what} could not be loaded: {str(exc).splitlines()[0][:300]}") from None
    module.eval()
    proc = None
    if (folder / PROCESSOR).is_file():
        try:
            proc = transformers.AutoImageProcessor.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False)
        except Exception:  # noqa: BLE001 - fall back to the JSON itself
            proc = _read_json(folder / PROCESSOR, PROCESSOR)
    fields = detection_fields(module, proc, what) if detector else info_fields(module, proc)
    if pre is not None:
        fields["preprocessing"] = pre
    fields["preprocessing"].check_declared(f"{what}'s {PROCESSOR if proc is not None else CONFIG}")
    notes = () if proc is not None else (
        f"no {PROCESSOR} in the folder: ImageNet mean/std assumed at the config's image size; "
        "if the model was trained otherwise, set its own under Preprocessing, below the model in "
        "the dashboard's sidebar (load_model: mean=, std=, resize=, crop=)",)
    if detector and proc is not None and pre is None:
        notes = notes + detection_notes(proc, fields["preprocessing"])
    label = name or folder.name
    arch = (config.get("architectures") or [type(module).__name__])[0]
    return module, ModelInfo(name=label, source=f"Hugging Face folder ({arch})",
                             weights=SAFE_WEIGHTS if safe else PICKLED_WEIGHTS[0], notes=notes,
                             **fields)


def _load_embedding(transformers, folder: Path, what: str, config: Dict[str, Any], safe: bool,
                    pre: Optional[Preprocessing], name: Optional[str]):
    """(HFEmbedding, info) of a saved base vision model (``Dinov2Model``): built by
    ``AutoModel`` with the same checks as a classifier; no remote code."""
    if "auto_map" in config:
        raise InputError(f"Refused to load {what}: it asks for its own Python code.")
    if safe:
        _check_weights_cover(transformers, transformers.AutoModel, folder, what, config)
    try:
        inner = transformers.AutoModel.from_pretrained(str(folder), use_safetensors=safe,
                                                       trust_remote_code=False, local_files_only=True)
    except (ValueError, OSError, RuntimeError, KeyError) as exc:
        raise InputError(f"{what} could not be loaded: {str(exc).splitlines()[0][:300]}") from None
    inner.eval()
    if getattr(inner, "main_input_name", "pixel_values") != "pixel_values" or \
            not hasattr(inner, "layernorm"):
        raise InputError(f"{what} holds a {type(inner).__name__}, not a vision model whose pooled "
                         "output is an image embedding (Dinov2Model, ViTModel).")
    proc = None
    if (folder / PROCESSOR).is_file():
        try:
            proc = transformers.AutoImageProcessor.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False)
        except Exception:  # noqa: BLE001 - fall back to the JSON itself
            proc = _read_json(folder / PROCESSOR, PROCESSOR)
    module = HFEmbedding(inner)
    fields = info_fields(inner, proc)
    if pre is not None:
        fields["preprocessing"] = pre
    fields["preprocessing"].check_declared(f"{what}'s {PROCESSOR if proc is not None else CONFIG}")
    layout = fields["tokens"]
    patch = getattr(inner.config, "patch_size", None)
    if layout.grid is not None and isinstance(patch, int) and patch > 0:
        # DINOv2 interpolates its position embeddings: the grid is the input's, not the config's
        h, w = fields["preprocessing"].input_size
        layout = TokenLayout(prefix_tokens=layout.prefix_tokens, grid=(h // patch, w // patch))
    from ..attention import describe_module

    vit = describe_module(module, layout)
    fields.update(tokens=layout, labels=None, task="embedding",
                  suggested_layer=None if isinstance(vit, str) else vit.blocks[-1].norm)
    notes = () if proc is not None else (
        f"no {PROCESSOR} in the folder: ImageNet mean/std assumed at the config's image size",)
    arch = (config.get("architectures") or [type(inner).__name__])[0]
    return module, ModelInfo(name=name or folder.name, source=f"Hugging Face folder ({arch}, embedding)",
                             weights=SAFE_WEIGHTS if safe else PICKLED_WEIGHTS[0], notes=notes, **fields)


def _max_files() -> int:
    from ..settings import current

    return min(MAX_ZIP_FILES, current().max_zip_files)


def _stored_tensors(folder: Path) -> Tuple[int, int]:
    """(tensors, numbers) the folder's safetensors files hold, from their headers."""
    files = [folder / SAFE_WEIGHTS] if (folder / SAFE_WEIGHTS).is_file() else []
    index = folder / f"{SAFE_WEIGHTS}.index.json"
    if not files and index.is_file():
        weight_map = _read_json(index, index.name).get("weight_map") or {}
        names = sorted({str(v) for v in weight_map.values()} if isinstance(weight_map, dict) else ())
        files = [folder / n for n in names if PurePosixPath(n).name == n and (folder / n).is_file()]
    tensors = numbers = 0
    for f in files:
        with open(f, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            try:
                entries = json.loads(fh.read(n)) if 0 < n <= 100 * 2**20 else {}
            except ValueError:
                entries = {}
        for k, v in entries.items() if isinstance(entries, dict) else ():
            if k == "__metadata__" or not isinstance(v, dict):
                continue
            tensors += 1
            count = 1
            for d in v.get("shape") or []:
                count *= int(d)
            numbers += count
    return tensors, numbers


def _check_weights_cover(transformers, auto, folder: Path, what: str, config: Dict[str, Any]) -> None:
    """Refuse, before anything is built for real, a config that describes a model much
    larger than the weights in the folder: ``from_pretrained`` fills every weight the
    file lacks with random numbers, so a config asking for thousands of layers or a huge
    width next to a small file would cost gigabytes.  The layer counts are compared with
    the stored tensors first (a layer has at least one), then the model is built on the
    meta device (no memory) and its parameters counted."""
    import torch

    tensors, numbers = _stored_tensors(folder)
    if not tensors:
        return  # from_pretrained says what is missing
    layers = 0
    for key, value in config.items():
        if key in ("num_hidden_layers", "num_layers", "depths", "depth", "num_blocks"):
            vals = value if isinstance(value, list) else [value]
            layers = max(layers, sum(int(v) for v in vals if isinstance(v, int) and not isinstance(v, bool)))
    if layers > tensors:
        raise InputError(f"{what}'s {CONFIG} asks for {layers:,} layers, but its weights hold only "
                         f"{tensors:,} tensors: the rest would be random numbers; refused before "
                         "building it.")
    try:
        cfg = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True,
                                                      trust_remote_code=False)
        with torch.device("meta"):
            probe = auto.from_config(cfg)
    except Exception:  # noqa: BLE001 - from_pretrained reports an unbuildable config
        return
    seen, need = set(), 0
    for p in probe.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            need += p.numel()
    if need > 1.1 * numbers + 10**6:
        raise InputError(
            f"{what}'s {CONFIG} describes a model of {need:,} parameters, but its weights hold "
            f"{numbers:,} numbers: the other {need - numbers:,} would be random "
            f"({(need - numbers) * 4 / 2**20:,.0f} MiB); refused before building it.")


def _safe_members(zf: zipfile.ZipFile, fname: str) -> List[zipfile.ZipInfo]:
    return safe_zip_members(zf, fname, _max_files(), "a saved model folder has a few")


def load_zip(data: bytes, fname: str, allow_untrusted: bool = False,
             pre: Optional[Preprocessing] = None, name: Optional[str] = None):
    """(module, info) of a zipped Hugging Face folder (``config.json`` at the top or in
    one folder), unpacked into a temporary folder that is removed afterwards."""
    with open_zip(data, fname, _max_files()) as zf:
        members = _safe_members(zf, fname)
        configs = [m.filename for m in members if PurePosixPath(m.filename).name == CONFIG]
        top = min(configs, key=lambda n: len(PurePosixPath(n).parts))
        root = str(PurePosixPath(top).parent)
        with tempfile.TemporaryDirectory(prefix="interpret-hf-") as tmp:
            for m in members:
                rel = PurePosixPath(m.filename)
                if root not in ("", ".") and not str(rel).startswith(root + "/"):
                    continue
                inside = rel.relative_to(root) if root not in ("", ".") else rel
                dest = Path(tmp, *inside.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(dest, "wb") as out:
                    unpack_member(zf, m, fname, out)
            stem = os.path.splitext(fname)[0] if fname != "uploaded file" else None
            label = name or (PurePosixPath(root).name if root not in ("", ".") else stem) or "model"
            return load_folder(tmp, allow_untrusted, pre, label,
                               what=fname if fname != "uploaded file" else "the uploaded file")
