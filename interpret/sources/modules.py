"""What a built ``nn.Module`` says about itself: the ModelInfo fields (token layout,
suggested layer, preprocessing and labels where its library records them) for a
module given directly (``load_model(module)``), built by a factory, or built for a
state dict.  timm and Hugging Face models are read from their own metadata
(:mod:`.timm`, :mod:`.hf`); torchvision's vision transformers from their attributes,
its segmentation models from their class (``task="segmentation"``)."""

from __future__ import annotations

from typing import Any, Dict

from torch import nn

from ..tokens import TokenLayout


def torchvision_tokens(module: nn.Module) -> TokenLayout:
    """torchvision: a ViT's class token before its ``image_size / patch_size`` grid;
    Swin's maps are channels-last."""
    name = type(module).__name__
    if "Swin" in name:
        return TokenLayout(channels_last=True)
    if name == "VisionTransformer" and hasattr(module, "class_token") and hasattr(module, "patch_size"):
        side = int(module.image_size) // int(module.patch_size)
        return TokenLayout(prefix_tokens=1, grid=(side, side))
    return TokenLayout()


def info_fields(module: nn.Module) -> Dict[str, Any]:
    """ModelInfo fields known from the module itself (an empty preprocessing/labels
    entry is left out, so that the caller's defaults apply)."""
    from . import hf, timm, ultralytics

    if isinstance(module, ultralytics.YOLODetector):  # its neck, 0..1 RGB at 640, its names
        return ultralytics.info_fields(module)
    if ultralytics.is_ultralytics_module(module):
        from ..errors import InputError

        raise InputError("This is an Ultralytics DetectionModel, whose output is not read as it is: "
                         "load it as load_model(interpret.sources.ultralytics.wrap(model)) (its layers "
                         "shared, never fused), or save its state_dict() and load it with "
                         "arch='ultralytics:<its yaml>'.")
    if timm.is_timm_module(module):
        return timm.info_fields(module)
    if hf.is_hf_module(module):
        return hf.info_fields(module)
    layout = torchvision_tokens(module)
    fields = {"tokens": layout, "is_transformer": layout.prefix_tokens is not None or layout.channels_last}
    if type(module).__module__.startswith("torchvision.models.segmentation"):
        fields["task"] = "segmentation"
    from ..detection import is_detector

    if is_detector(module):  # resizes and normalises inside: pixels in [0, 1] at its own side
        from ..preprocessing import Preprocessing

        side = int(getattr(getattr(module, "transform", None), "min_size", (800,))[0])
        fields.update(task="detection", suggested_layer="backbone" if hasattr(module, "backbone") else None,
                      preprocessing=Preprocessing((side, side), None, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
        from ..detection import class_count

        if type(module).__module__.startswith("torchvision.") and class_count(module) == 91:
            from .torchvision import detection_labels

            fields["labels"] = tuple(detection_labels())
    return fields
