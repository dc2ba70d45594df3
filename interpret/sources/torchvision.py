"""torchvision classifiers and semantic-segmentation models: by name, with pretrained weights from the local torch cache
(downloaded with a time limit when missing), or randomly initialised; preprocessing
and labels from torchvision's own weight metadata."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import nn

from ..errors import InputError
from ..handle import ModelInfo
from ..preprocessing import Preprocessing
from . import download as dl

PREFIX = "torchvision:"


def imagenet_labels() -> List[str]:
    """The 1000 ImageNet class names, from torchvision's metadata (offline)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def classifiers() -> List[str]:
    """Names of every torchvision image-classification model."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def segmenters() -> List[str]:
    """Names of every torchvision semantic-segmentation model (``deeplabv3_resnet50``,
    ``deeplabv3_mobilenet_v3_large``, ``lraspp_mobilenet_v3_large``, ``fcn_resnet50``...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models.segmentation))


def is_segmenter(arch: str) -> bool:
    return arch_name(arch) in segmenters()


def detectors() -> List[str]:
    """Names of every torchvision object detector (``fasterrcnn_resnet50_fpn``,
    ``fasterrcnn_mobilenet_v3_large_320_fpn``, ``retinanet_resnet50_fpn``,
    ``fcos_resnet50_fpn``, ``ssd300_vgg16``, ``ssdlite320_mobilenet_v3_large``,
    ``maskrcnn_resnet50_fpn``...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models.detection))


def is_detector(arch: str) -> bool:
    return arch_name(arch) in detectors()


def detector_side(arch: str) -> int:
    """The shorter side torchvision's detector resizes to (its ``min_size``): 320 for
    the ``*320*`` models, 300 for SSD300, else 800."""
    name = arch_name(arch)
    return 320 if "320" in name else 300 if name.startswith("ssd300") else 800


#: the state-dict key of each detector family's class scores, and how many rows it has
#: per class (anchors per location)
_CLASS_KEYS = ("roi_heads.box_predictor.cls_score.weight", "head.classification_head.cls_logits.weight",
               "head.classification_head.module_list.0.weight",
               "head.classification_head.module_list.0.1.weight")


def detector_classes(arch: str, state: Optional[Dict[str, torch.Tensor]]) -> int:
    """The class count of a detector's state dict (91, COCO's with background, when it
    does not say): the rows of its class head divided by the anchors per location."""
    if not state:
        return 91
    import warnings

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        probe = _detector(arch, 91)
    own = probe.state_dict()
    for key in _CLASS_KEYS:
        if key in state and key in own:
            per_class = int(own[key].shape[0]) // 91
            n, rem = divmod(int(state[key].shape[0]), max(1, per_class))
            if rem == 0 and n > 0:
                return n
    return 91


def _detector(arch: str, num_classes: int = 91) -> nn.Module:
    """A torchvision detector, randomly initialised, with no backbone weights (never a
    download)."""
    from torchvision.models import get_model

    return get_model(arch_name(arch), weights=None, weights_backbone=None, num_classes=num_classes)


def arch_name(arch: str) -> str:
    """``resnet18`` or ``torchvision:resnet18`` -> ``resnet18``."""
    arch = arch.strip()
    return arch[len(PREFIX):].strip() if arch.startswith(PREFIX) else arch


def _weights_enum(arch: str):
    from torchvision.models import get_model_weights

    try:
        return get_model_weights(arch)
    except (ValueError, KeyError):
        return None


def preprocessing(arch: str) -> Preprocessing:
    """The preprocessing of ``arch``'s default weights (ImageNet defaults without)."""
    if is_detector(arch):
        # torchvision's detectors resize and normalise inside (GeneralizedRCNNTransform):
        # the photo goes in as pixels in [0, 1], here at an exact square of the side the
        # detector resizes to, so that every photo gives one input size
        side = detector_side(arch)
        return Preprocessing((side, side), None, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "bilinear")
    enum = _weights_enum(arch)
    if enum is None:
        return Preprocessing()
    t = enum.DEFAULT.transforms()
    if is_segmenter(arch):
        # torchvision's SemanticSegmentation preset: the shorter side to 520, no crop;
        # here an exact square resize, so that every photo gives one input size
        side = int(t.resize_size[0]) if t.resize_size else 520
        interp = getattr(t.interpolation, "value", str(t.interpolation)).lower()
        return Preprocessing((side, side), None, tuple(t.mean), tuple(t.std), interp)
    interp = getattr(t.interpolation, "value", str(t.interpolation)).lower()
    resize = t.resize_size[0] if len(t.resize_size) == 1 else tuple(t.resize_size)
    crop = t.crop_size[0] if len(t.crop_size) == 1 else tuple(t.crop_size)
    return Preprocessing(resize, crop, tuple(t.mean), tuple(t.std), interp)


def check_arch(arch: str) -> str:
    """The architecture name, or an InputError with close matches."""
    name = arch_name(arch)
    names = classifiers() + segmenters() + detectors()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(
            f"'{arch}' is not a torchvision classification, segmentation or detection architecture.{hint} "
            "See interpret.torchvision_classifiers() for the list."
        )
    return name


def weights_file(arch: str, weights: str = "DEFAULT") -> Optional[Path]:
    """Where torch's cache keeps the pretrained weights of ``arch`` (may not exist)."""
    enum = _weights_enum(arch_name(arch))
    if enum is None:
        return None
    w = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)


def weights_cached(arch: str, weights: str = "DEFAULT") -> bool:
    path = weights_file(arch, weights)
    return bool(path and path.exists())


def weights_help(arch: str, url: str, path: Path, why: str) -> str:
    return (
        f"Pretrained weights for {arch} are not in the local torch cache ({why}). "
        f"Download {url} and put it at {path} (the cache folder is set by TORCH_HOME), "
        f"or load a state-dict file with load_model('file.pth', arch='{arch}'), "
        "or use weights=None for a randomly initialised model."
    )


def build(arch: str, num_classes: int = 1000, state: Optional[Dict[str, torch.Tensor]] = None) -> nn.Module:
    """``arch`` randomly initialised with ``num_classes`` outputs (Inception/GoogLeNet:
    auxiliary heads only if ``state`` has them)."""
    from torchvision.models import get_model

    kwargs = {"num_classes": num_classes}
    if is_segmenter(arch):
        return _segmenter(arch, num_classes, state)
    if is_detector(arch):
        return _detector(arch, detector_classes(arch, state) if state else num_classes)
    if arch.startswith(("inception", "googlenet")):
        kwargs["aux_logits"] = any("Aux" in k for k in (state or {}))
        kwargs["init_weights"] = False
    try:
        return get_model(arch, weights=None, **kwargs)
    except TypeError:
        return get_model(arch, weights=None, num_classes=num_classes)


def _segmenter(arch: str, num_classes: int = 21, state: Optional[Dict[str, torch.Tensor]] = None) -> nn.Module:
    """A torchvision segmentation model, randomly initialised, with no backbone weights
    (never a download), with its auxiliary head only if ``state`` has one."""
    from torchvision.models import get_model

    kwargs = {"weights": None, "weights_backbone": None, "num_classes": num_classes}
    if not arch.startswith("lraspp"):
        kwargs["aux_loss"] = any(k.startswith("aux_classifier.") for k in (state or {}))
    return get_model(arch, **kwargs)


def load(arch: str, weights: Optional[str], pre: Optional[Preprocessing], download: bool,
         progress=None):
    """(module, info) of torchvision's ``arch`` with ``weights`` ("DEFAULT", a weight
    name, or None for random initialisation)."""
    arch = check_arch(arch)
    notes = []
    enum = _weights_enum(arch)
    if weights is not None and enum is None:
        raise InputError(f"torchvision has no pretrained weights for '{arch}'; use weights=None.")
    if weights is not None:
        try:
            w = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
        except KeyError:
            raise InputError(
                f"Unknown weights '{weights}' for {arch}; available: "
                + ", ".join(["DEFAULT"] + [m.name for m in enum])
            ) from None
        path = weights_file(arch, weights)
        if not path.exists():
            if not download or dl.offline():
                raise InputError(weights_help(arch, w.url, path, "downloads are off"))
            # torchvision file names carry the first hex digits of the SHA-256
            stem = path.stem
            prefix = stem.rsplit("-", 1)[-1] if "-" in stem else ""
            ok = prefix and all(c in "0123456789abcdef" for c in prefix)
            try:
                dl.download(w.url, path, dl.DOWNLOAD_TIMEOUT_S, progress, prefix if ok else None)
            except InputError:
                raise
            except Exception as exc:  # network errors of many kinds
                raise InputError(weights_help(arch, w.url, path, f"download failed: {exc}")) from None
        from torchvision.models import get_model

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            module = (_segmenter(arch, len(w.meta.get("categories") or []) or 21, state)
                      if is_segmenter(arch) else _detector(arch, detector_classes(arch, state))
                      if is_detector(arch) else get_model(arch, weights=None))
            module.load_state_dict(state)
        except Exception as exc:
            raise InputError(
                f"The cached weights file {path} could not be loaded ({exc}); delete it and retry."
            ) from None
        labels = list(w.meta.get("categories") or []) or None
        weights_name = f"{type(w).__name__}.{w.name}"
    else:
        from torchvision.models import get_model

        notes.append("random initialisation (no pretrained weights): predictions are meaningless")
        if is_segmenter(arch):
            module = _segmenter(arch)
            labels = list(enum.DEFAULT.meta.get("categories") or []) or None if enum is not None else None
        elif is_detector(arch):
            module = _detector(arch)
            labels = list(enum.DEFAULT.meta.get("categories") or []) or None if enum is not None else None
        else:
            module = get_model(arch, weights=None)
            labels = imagenet_labels()
        weights_name = None
    module.eval()
    layout = tokens_for(module)
    return module, ModelInfo(
        name=arch, labels=tuple(labels) if labels else None,
        preprocessing=pre or preprocessing(arch), source="torchvision", weights=weights_name,
        notes=tuple(notes), tokens=layout,
        is_transformer=layout.prefix_tokens is not None or layout.channels_last,
        suggested_layer="backbone" if is_detector(arch) else None,
        task="segmentation" if is_segmenter(arch) else "detection" if is_detector(arch) else None)


def tokens_for(module: nn.Module):
    """The token layout of a torchvision model: a ViT's class token before its patch
    grid; Swin's maps are channels-last."""
    from .modules import torchvision_tokens

    return torchvision_tokens(module)


def detection_labels() -> List[str]:
    """COCO's 91 category names as torchvision's detectors number them (index 0 is the
    background, some indices "N/A"), from torchvision's metadata (offline)."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    return list(FasterRCNN_ResNet50_FPN_Weights.DEFAULT.meta["categories"])
