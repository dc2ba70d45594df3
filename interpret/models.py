"""Loading models: :func:`load_model` picks a loader from :mod:`interpret.sources`
and wraps what it builds in a :class:`~interpret.handle.ModelHandle`.

Everything that executes code from a file (full pickles, TorchScript, ``torch.export``
archives) is refused unless the caller passes ``allow_untrusted=True``; a safe load
never falls back to an unsafe one.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Dict, Optional, Union

from torch import nn

from .errors import InputError
from .handle import ModelHandle, ModelInfo
from .preprocessing import Preprocessing
from .sources import bundled, files, modules, timm as timm_src, torchvision as tv
from .sources.files import MAX_MODEL_BYTES  # noqa: F401  (re-exported)
from .sources.torchvision import classifiers as torchvision_classifiers  # noqa: F401
from .sources.torchvision import imagenet_labels, weights_cached, weights_file  # noqa: F401

DEFAULT_MODEL = bundled.NAME

_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".pt2", ".ckpt", ".onnx", ".zip")


def _preprocessing(pre: Optional[Preprocessing], resize, crop, mean, std) -> Optional[Preprocessing]:
    """``pre`` (the whole preprocessing given, or the model's own) with the fields given
    by name put over it; an exact resize with no crop (detectors, segmentation models)
    given one side (``resize=512``) stays an exact resize, to that square."""
    if all(v is None for v in (resize, crop, mean, std)):
        return pre
    base = pre or Preprocessing()
    if isinstance(resize, int) and crop is None and base.crop is None and not isinstance(base.resize, int):
        resize = (resize, resize)
    return Preprocessing(
        resize if resize is not None else base.resize,
        crop if crop is not None else base.crop,
        tuple(mean) if mean is not None else base.mean,
        tuple(std) if std is not None else base.std,
        base.interpolation,
    )


def load_model(
    source: Union[str, os.PathLike, bytes, nn.Module, Any] = DEFAULT_MODEL,
    *,
    weights: Optional[str] = "DEFAULT",
    arch: Union[str, Callable[..., nn.Module], None] = None,
    arch_kwargs: Optional[Dict[str, Any]] = None,
    labels=None,
    allow_untrusted: bool = False,
    preprocessing: Optional[Preprocessing] = None,
    resize=None,
    crop=None,
    mean=None,
    std=None,
    name: Optional[str] = None,
    download: bool = True,
    progress=None,
    task: Optional[str] = None,
    prompts=None,
) -> ModelHandle:
    """Load a model and return a :class:`ModelHandle`.

    ``source`` is one of:

    * ``"efficientnet_lite0"`` - the bundled ImageNet model (offline);
    * ``"torchvision:<name>"`` - any torchvision classifier; ``weights="DEFAULT"`` (from
      the local torch cache, downloaded with a timeout if missing) or ``None``;
    * ``"timm:<name>"`` - any timm model, likewise (``weights`` may also be a pretrained
      tag such as ``"fb_in1k"``); preprocessing from timm's ``pretrained_cfg``;
    * an ``nn.Module`` (notebook use), with optional ``labels`` and preprocessing (timm
      and Hugging Face modules bring their own token layout and suggested layer);
    * a folder saved by Hugging Face ``save_pretrained`` (``config.json`` +
      ``model.safetensors``), or a zip of one;
    * a file path, bytes or file object: a state dict (``.pt``/``.pth``, read with
      ``torch.load(weights_only=True)``) or ``.safetensors`` with ``arch=`` (``"resnet50"``,
      ``"torchvision:resnet50"``, ``"timm:convnext_tiny"``, ``"efficientnet_lite0"``, or
      your own code: a callable or ``"package.module:function"``, called with
      ``arch_kwargs``); an ``.onnx`` graph (converted with onnx2torch); full pickles,
      TorchScript, ``.pt2``, remote-code and ``pytorch_model.bin`` Hugging Face folders
      only with ``allow_untrusted=True``.

    ``labels``: a list, or a ``.txt`` (one per line) / ``.json`` file.  Preprocessing can
    be given whole (``preprocessing=``) or by field (``resize``, ``crop``, ``mean``, ``std``),
    each field put over the model's own preprocessing (a detector keeps its own scaling;
    one number as ``resize`` of an exact resize with no crop is an exact square).
    Ultralytics YOLO (docs/detection.md): ``"ultralytics:<yaml>"`` with ``weights=None``
    is a random init of one of the package's detection YAMLs (``"ultralytics:yolov8n.yaml"``);
    trained weights come as a state dict with ``arch="ultralytics:<yaml>"``.

    ``task``: what the output means (``"classification"``, ``"multilabel"``,
    ``"binary"``, ``"regression"``, ``"segmentation"``; see :attr:`ModelHandle.task`);
    None reads it from the loader (Hugging Face's ``problem_type``, torchvision's
    segmentation models) or from the output's shape.  A task that does not fit the
    output is an :class:`InputError` that describes the output.

    Image-text and embedding models (docs/imagetext.md): ``"open_clip:<name>"`` (e.g.
    ``"open_clip:ViT-B-32"``; ``weights=None`` a random init, else a pretrained tag from
    the local cache) and Hugging Face ``CLIPModel`` / ``SiglipModel`` folders are
    ``"embedding"`` models of their image tower until ``prompts=[...]`` makes them
    ``"image-text"``: the prompts are then the classes (zero-shot).  A module whose
    output is an embedding (a timm or torchvision backbone without its head) is
    ``"embedding"``, detected or with ``task="embedding"``.
    """
    if task is not None:
        from .targets import TASKS

        if task not in TASKS:
            raise InputError(f"Unknown task '{task}'; one of {', '.join(TASKS)}.")
    # the fields given by name go over the model's own preprocessing once it is loaded
    # (a detector keeps its 0..1 scaling and exact resize: only the size changes)
    pre = preprocessing
    label_list = files.load_labels(labels)

    if isinstance(source, nn.Module) and _is_open_clip(source):
        from .sources import open_clip as oc_src

        module, info = oc_src.wrap(source, None, name, pre)
    elif isinstance(source, nn.Module):
        fields = dict(modules.info_fields(source))
        if pre is not None or "preprocessing" not in fields:
            fields["preprocessing"] = pre or Preprocessing()
        module, info = source, ModelInfo(name=name or type(source).__name__, **fields)
    elif isinstance(source, str) and source == DEFAULT_MODEL and arch is None:
        module, info = bundled.load(pre)
    elif isinstance(source, str) and source.startswith(tv.PREFIX):
        module, info = tv.load(tv.arch_name(source), weights, pre, download, progress)
    elif isinstance(source, str) and source.startswith("open_clip:"):
        from .sources import open_clip as oc_src

        module, info = oc_src.load(oc_src.model_name(source), weights, pre, download, progress)
    elif isinstance(source, (str, os.PathLike)) and os.path.isdir(source) and _image_text_folder(source):
        from .sources import open_clip as oc_src

        module, info = oc_src.load_hf_folder(source, pre, name, allow_untrusted)
    elif isinstance(source, str) and source.startswith("ultralytics:"):
        from .sources import ultralytics as ul_src

        module, info = ul_src.load(source, weights, pre, name)
    elif isinstance(source, str) and source.startswith(timm_src.PREFIX):
        module, info = timm_src.load(timm_src.model_name(source), weights, pre, download, progress)
    elif isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        from .sources import hf

        module, info = hf.load_folder(source, allow_untrusted, pre, name)
    elif isinstance(source, (str, os.PathLike, bytes, bytearray)) or hasattr(source, "read"):
        if isinstance(source, str) and not os.path.exists(source) and not source.endswith(_FILE_SUFFIXES):
            raise InputError(
                f"Unknown model '{source}'. Use 'efficientnet_lite0', 'torchvision:<name>' "
                "(e.g. 'torchvision:resnet50'), 'timm:<name>' (e.g. 'timm:convnext_tiny'), "
                "a path to a checkpoint, ONNX file or Hugging Face folder."
            )
        module, info = files.load(source, arch, allow_untrusted, pre, name, arch_kwargs,
                                  embedding=task == "embedding")
    else:
        raise InputError(f"Cannot load a model from a {type(source).__name__}.")

    changes = {}
    fields = _preprocessing(info.preprocessing, resize, crop, mean, std)
    if fields is not info.preprocessing:
        fields.check_declared()
        # the loader's sentences about a preprocessing it assumed or its sizes no longer hold
        changes.update(preprocessing=fields, notes=tuple(
            n for n in info.notes if "assumed" not in n and not n.startswith("photos are resized to")))
    if task is None and info.task is None:
        from .imagetext import is_embedding_module

        if is_embedding_module(module):
            changes["task"] = "embedding"
    if label_list is not None:
        changes["labels"] = tuple(label_list)
    if name:
        changes["name"] = name
    if task is not None:
        changes["task"] = task
    if changes:
        info = dataclasses.replace(info, **changes)
    handle = ModelHandle(module, info=info)
    if prompts is not None:
        from .imagetext import with_prompts

        if label_list is not None:
            raise InputError("Give prompts= or labels=, not both: an image-text model's prompts are its labels.")
        return with_prompts(handle, prompts)
    handle = _check_labels(handle, explicit=label_list is not None)
    if task is not None and not handle.scripted:
        handle.task  # noqa: B018 - one forward: a task that does not fit the output is refused now
    return handle


def _is_open_clip(module) -> bool:
    from .sources.open_clip import is_open_clip_module

    return is_open_clip_module(module)


def _image_text_folder(folder) -> bool:
    """Whether a folder holds a Hugging Face CLIP / SigLIP model (its config's model_type)."""
    import json

    try:
        cfg = os.path.join(os.fspath(folder), "config.json")
        if os.path.getsize(cfg) > 1 << 20:
            return False
        with open(cfg, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return False
    from .sources.open_clip import is_image_text_folder

    return isinstance(data, dict) and is_image_text_folder(data)


def _check_labels(handle: ModelHandle, explicit: bool) -> ModelHandle:
    """Validate labels against the output size once, with a clear message; labels from
    a loader's defaults that do not fit (ImageNet names on a 10-class head) are dropped."""
    if handle.info.labels is None or handle.scripted:
        return handle
    try:
        n = handle.num_classes
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"Model '{handle.name}' failed on a {handle.input_size[0]}x{handle.input_size[1]} "
            f"input: {str(exc).splitlines()[0]}"
        ) from None
    if len(handle.info.labels) != n:
        if explicit:
            raise InputError(
                f"The labels list has {len(handle.info.labels)} entries but the model has {n} classes."
            )
        return handle.with_info(labels=None)
    return handle
