"""Tiny, seeded models of every family the dashboard loads, for tests that must not
download anything: torchvision and timm ResNet, ConvNeXt, EfficientNet, ViT, DeiT
(timm), Swin; a Hugging Face ViT saved with ``save_pretrained``; an ONNX CNN exported
with torch's default constant folding.  Each builder returns an ``nn.Module`` in eval
mode (or a path), with random weights from a fixed seed, small enough that a method
runs on it in milliseconds at 32-64 pixels."""

from __future__ import annotations

import io
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict

import torch
from torch import nn

SIZE = 64      # CNN inputs
VIT_SIZE = 32  # ViT inputs: a 4 x 4 patch grid of 8-pixel patches


def seeded(fn: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return fn().eval()


def _randomise_zero_heads(m: nn.Module) -> nn.Module:
    """torchvision and timm initialise some classifier heads (and LayerScale) to zero,
    which makes every gradient zero: give them small random weights."""
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() >= 1 and float(p.abs().max()) == 0 and ("head" in name or "classifier" in name):
                p.normal_(0, 0.2)
    return m


# ----------------------------------------------------------------------------------
# torchvision


def tv_resnet() -> nn.Module:
    from torchvision.models import resnet18

    return seeded(lambda: resnet18(num_classes=5))


def tv_convnext() -> nn.Module:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    return seeded(lambda: _randomise_zero_heads(ConvNeXt(
        [CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, None, 1)],
        layer_scale=1.0, num_classes=5)))


def tv_efficientnet() -> nn.Module:
    from torchvision.models import efficientnet_b0

    return seeded(lambda: efficientnet_b0(num_classes=5))


def tv_vit() -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    return seeded(lambda: _randomise_zero_heads(VisionTransformer(
        image_size=VIT_SIZE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
        num_classes=5)))


def tv_swin() -> nn.Module:
    from torchvision.models.swin_transformer import SwinTransformer

    return seeded(lambda: SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1],
                                          num_heads=[1, 2], window_size=[4, 4], num_classes=5))


# ----------------------------------------------------------------------------------
# timm


def timm_model(name: str, **kw) -> nn.Module:
    import timm

    kw.setdefault("num_classes", 5)
    return seeded(lambda: _randomise_zero_heads(timm.create_model(name, pretrained=False, **kw)))


VIT_KW = dict(img_size=VIT_SIZE, patch_size=8, embed_dim=32, depth=2, num_heads=2)


def timm_resnet() -> nn.Module:
    return timm_model("resnet18")


def timm_convnext() -> nn.Module:
    return timm_model("convnext_atto", dims=(16, 24, 32, 48), depths=(1, 1, 1, 1))


def timm_efficientnet() -> nn.Module:
    return timm_model("efficientnet_b0")


def timm_vit() -> nn.Module:
    return timm_model("vit_tiny_patch16_224", **VIT_KW)


def timm_vit_registers() -> nn.Module:
    return timm_model("vit_tiny_patch16_224", reg_tokens=4, **VIT_KW)


def timm_deit() -> nn.Module:
    return timm_model("deit_tiny_distilled_patch16_224", **VIT_KW)


def timm_swin() -> nn.Module:
    return timm_model("swin_tiny_patch4_window7_224", img_size=VIT_SIZE, patch_size=4, window_size=4,
                      embed_dim=16, depths=(1, 1), num_heads=(1, 2))


# ----------------------------------------------------------------------------------
# Hugging Face


def hf_vit_config(**kw):
    from transformers import ViTConfig

    labels = {i: f"shape {i}" for i in range(5)}
    args = dict(image_size=VIT_SIZE, patch_size=8, hidden_size=32, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=64, num_labels=5, id2label=labels,
                label2id={v: k for k, v in labels.items()})
    args.update(kw)
    return ViTConfig(**args)


def hf_vit() -> nn.Module:
    from transformers import ViTForImageClassification

    return seeded(lambda: ViTForImageClassification(hf_vit_config()))


def save_hf_folder(model: nn.Module, folder: Path, processor: bool = True) -> Path:
    """``model.save_pretrained(folder)`` (safetensors) and, optionally, a ViT image
    processor config with mean/std 0.5 at the model's size."""
    from transformers import ViTImageProcessor

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    if processor:
        size = model.config.image_size
        ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5] * 3,
                          image_std=[0.5] * 3, resample=2).save_pretrained(str(folder))
    return folder


def zip_folder(folder: Path, top: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{top}/{p.relative_to(folder)}" if top else str(p.relative_to(folder)))
    return buf.getvalue()


# ----------------------------------------------------------------------------------
# ONNX


def small_cnn() -> nn.Module:
    """conv-bn-relu x2 with a residual add, global pooling and a linear head: the
    constant-folded export dedups its biases into Identity nodes."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(8)
            self.relu2 = nn.ReLU()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 5)

        def forward(self, x):
            a = self.relu1(self.bn1(self.conv1(x)))
            b = self.relu2(self.bn2(self.conv2(a)) + a)
            return self.fc(torch.flatten(self.pool(b), 1))

    return seeded(Net)


def export_onnx(model: nn.Module, path: Path, size: int = SIZE, opset: int = 17,
                folding: bool = True, dynamic: bool = True) -> Path:
    """torch's TorchScript-based exporter (the dynamo one needs onnxscript), constant
    folding on by default as in ``torch.onnx.export``."""
    import warnings

    x = torch.zeros(1, 3, size, size)
    kw = {"dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}}} if dynamic else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), str(path), opset_version=opset, do_constant_folding=folding,
                          input_names=["input"], output_names=["logits"], dynamo=False, **kw)
    return path


# ----------------------------------------------------------------------------------
# the family table the matrix test walks


def families() -> Dict[str, Callable[[], nn.Module]]:
    """Family id -> builder of a module (the ONNX and HF entries are built by the
    tests, which need a folder)."""
    return OrderedDict([
        ("torchvision-resnet", tv_resnet), ("torchvision-convnext", tv_convnext),
        ("torchvision-efficientnet", tv_efficientnet), ("torchvision-vit", tv_vit),
        ("torchvision-swin", tv_swin),
        ("timm-resnet", timm_resnet), ("timm-convnext", timm_convnext),
        ("timm-efficientnet", timm_efficientnet), ("timm-vit", timm_vit),
        ("timm-vit-registers", timm_vit_registers), ("timm-deit", timm_deit),
        ("timm-swin", timm_swin),
    ])
