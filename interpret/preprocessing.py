"""Preprocessing: how a photo becomes the tensor a model sees, and back again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

Size = Union[int, Tuple[int, int]]


def _pair(size: Size) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


@dataclass(frozen=True)
class Preprocessing:
    """Resize (shorter side, or exact ``(h, w)``), centre-crop, scale to [0, 1], normalise.

    This mirrors torchvision's ``ImageClassification`` preset so that the values of a
    torchvision weight's metadata can be used as they are.
    """

    resize: Optional[Size] = 256
    crop: Optional[Size] = 224
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"

    def __post_init__(self):
        if self.interpolation not in _RESAMPLE:
            raise ValueError(f"interpolation must be one of {sorted(_RESAMPLE)}")
        if self.resize is None and self.crop is None:
            raise ValueError("Preprocessing needs a resize or a crop to fix the input size.")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    @property
    def input_size(self) -> Tuple[int, int]:
        """(height, width) of the tensor the model receives."""
        if self.crop is not None:
            return _pair(self.crop)
        return _pair(self.resize)  # exact resize

    def _resized_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """(width, height) after the resize step, for an original (width, height)."""
        w, h = size
        if self.resize is None:
            return w, h
        if isinstance(self.resize, int):
            # torchvision semantics: the shorter side becomes `resize`.
            if w <= h:
                return self.resize, max(1, int(self.resize * h / w))
            return max(1, int(self.resize * w / h)), self.resize
        rh, rw = _pair(self.resize)
        return rw, rh

    def crop_box(self, size: Tuple[int, int]) -> Tuple[float, float, float, float]:
        """The region (left, top, right, bottom) of an original image of ``size``
        (width, height) that the model sees, in original-pixel coordinates."""
        w, h = size
        rw, rh = self._resized_size(size)
        ch, cw = self.input_size if self.crop is not None else (rh, rw)
        left = (rw - cw) / 2.0
        top = (rh - ch) / 2.0
        left, top = float(int(round(left))), float(int(round(top)))
        sx, sy = w / rw, h / rh
        return (left * sx, top * sy, (left + cw) * sx, (top + ch) * sy)

    def model_view(self, image: Image.Image) -> Image.Image:
        """The image resized and cropped exactly as the model sees it (before scaling
        and normalisation); RGB, of size ``input_size``."""
        rw, rh = self._resized_size(image.size)
        out = image
        if (rw, rh) != image.size:
            out = image.resize((rw, rh), _RESAMPLE[self.interpolation])
        if self.crop is not None:
            ch, cw = self.input_size
            if cw > rw or ch > rh:  # pad like torchvision's CenterCrop, with zeros
                canvas = Image.new("RGB", (max(cw, rw), max(ch, rh)))
                canvas.paste(out, ((max(cw, rw) - rw) // 2, (max(ch, rh) - rh) // 2))
                out, rw, rh = canvas, canvas.size[0], canvas.size[1]
            left = int(round((rw - cw) / 2.0))
            top = int(round((rh - ch) / 2.0))
            out = out.crop((left, top, left + cw, top + ch))
        return out

    def _stats(self, like: torch.Tensor):
        shape = (1, 3, 1, 1) if like.dim() == 4 else (3, 1, 1)
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(shape)
        return mean, std

    def normalize(self, t: torch.Tensor) -> torch.Tensor:
        """``(t - mean) / std`` of a (B x) 3 x H x W tensor of values in [0, 1]: the one
        place the normalisation is written (differentiable)."""
        mean, std = self._stats(t)
        return (t - mean) / std

    def unnormalize(self, t: torch.Tensor) -> torch.Tensor:
        """``t * std + mean``: a normalised (B x) 3 x H x W tensor back in [0, 1] units."""
        mean, std = self._stats(t)
        return t * std + mean

    def scale(self, image: Image.Image) -> torch.Tensor:
        """1 x 3 x H x W float tensor of an RGB image's pixels in [0, 1] (no resize)."""
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """1 x 3 x H x W float tensor, resized, cropped and normalised."""
        return self.normalize(self.scale(self.model_view(image.convert("RGB"))))

    def denormalize(self, tensor: torch.Tensor) -> np.ndarray:
        """Invert the normalisation of a 1x3xHxW (or 3xHxW) tensor: HxWx3 floats in [0, 1]."""
        t = tensor.detach().float().cpu()
        if t.dim() == 4:
            t = t[0]
        return self.unnormalize(t).clamp(0, 1).permute(1, 2, 0).numpy()

    def describe(self) -> str:
        parts = []
        if self.resize is not None:
            parts.append(
                f"resize shorter side to {self.resize}" if isinstance(self.resize, int)
                else f"resize to {self.resize[0]}x{self.resize[1]}"
            )
        if self.crop is not None:
            h, w = self.input_size
            parts.append(f"centre-crop {h}x{w}")
        parts.append(f"{self.interpolation} interpolation")
        parts.append("scale to [0, 1]")
        parts.append(
            "normalise mean=(" + ", ".join(f"{m:.3f}" for m in self.mean)
            + ") std=(" + ", ".join(f"{s:.3f}" for s in self.std) + ")"
        )
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {
            "resize": self.resize,
            "crop": self.crop,
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "input_size": list(self.input_size),
        }
