"""Preprocessing: how a photo becomes the tensor a model sees, and back again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image

from .errors import InputError

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


def input_pixel_limit() -> int:
    """The ``max_input_pixels`` setting: the most pixels a preprocessing step may make."""
    from .settings import current

    return current().max_input_pixels


def input_too_large(h: int, w: int, limit: int, what: str = "The model's input",
                    tensor: bool = True) -> str:
    """Why an input (``tensor``: the model's float32 RGB input; else an intermediate
    image) of ``h`` x ``w`` pixels is refused (``h * w > limit``)."""
    cost = (f"; its input tensor alone would take {h * w * 12 / 2**20:,.0f} MiB per image"
            if tensor else "")
    return (f"{what} is {h}x{w} pixels ({h * w:,}), more than the limit of {limit:,} pixels "
            f"per image (setting max_input_pixels){cost}. Use a model with a smaller input, "
            "or ask the server's operator to raise the limit.")


def shorter_side_too_large(side: int, limit: int, what: str = "The model's preprocessing") -> str:
    """Why a resize of every image's shorter side to ``side`` is refused (``side**2 > limit``)."""
    return (f"{what} resizes every image's shorter side to {side} pixels, so even a square "
            f"photo would become {side}x{side} ({side * side:,} pixels), more than the limit "
            f"of {limit:,} pixels per image (setting max_input_pixels). Use a model with a "
            "smaller input, or ask the server's operator to raise the limit.")


def resize_too_large(size: Tuple[int, int], resized: Tuple[int, int], resize, limit: int,
                     step: str = "resize") -> str:
    """Why an image of ``size`` (width, height), resized (``step="resize"``) or padded
    (``"pad"``) to ``resized`` (width, height) by ``resize`` (a shorter side, an exact
    (h, w) or None), is refused (``resized`` has more than ``limit`` pixels)."""
    w, h = size
    rw, rh = resized
    msg = (f"The image is {w}x{h} pixels; the model's preprocessing would {step} it to "
           f"{rw}x{rh} ({rw * rh:,} pixels) before cropping, more than the limit of "
           f"{limit:,} pixels per image (setting max_input_pixels), so it was refused before "
           f"any {'resizing' if step == 'resize' else 'padding'}.")
    if step == "resize" and isinstance(resize, int) and resize > 0 and min(w, h) > 0:
        ratio = max(w, h) / min(w, h)
        most = limit / (resize * resize)  # the longest side a resize keeps, in shorter sides
        msg += (f" Its long side is {ratio:,.1f} times its short side; for this model it may "
                f"be at most about {most:,.1f} times. Crop it to a less elongated shape first.")
    return msg


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

    def check_declared(self, source: Optional[str] = None, limit: Optional[int] = None) -> None:
        """InputError when what the preprocessing declares (the model's input, an exact
        resize, a shorter side whose square) is more than ``limit`` pixels (default: the
        ``max_input_pixels`` setting).  ``source``: the file that declared it (named in
        the message), for a model refused when it is loaded."""
        limit = input_pixel_limit() if limit is None else limit
        h, w = self.input_size
        if h * w > limit:
            what = f"The input that {source} declares" if source else "The model's input"
            raise InputError(input_too_large(h, w, limit, what))
        if isinstance(self.resize, int):
            if self.resize * self.resize > limit:
                what = f"The preprocessing that {source} declares" if source else "The model's preprocessing"
                raise InputError(shorter_side_too_large(self.resize, limit, what))
        elif self.resize is not None:
            rh, rw = _pair(self.resize)
            if rh * rw > limit:
                what = (f"The resize before the crop that {source} declares" if source
                        else "The model's resize before the crop")
                raise InputError(input_too_large(rh, rw, limit, what, tensor=False))

    def check_size(self, size: Tuple[int, int], limit: Optional[int] = None) -> None:
        """InputError, before any pixel is made, when preprocessing an image of ``size``
        (width, height) would make an image of more than ``limit`` pixels (default: the
        ``max_input_pixels`` setting): the resize before the crop (a thin photo resized
        by its shorter side) or the model's input itself."""
        limit = input_pixel_limit() if limit is None else limit
        self.check_declared(None, limit)
        rw, rh = self._resized_size(size)
        if self.resize is not None and rw * rh > limit:  # no resize: only the crop is made
            raise InputError(resize_too_large(size, (rw, rh), self.resize, limit))
        if self.crop is not None:
            ch, cw = self.input_size
            if (cw > rw or ch > rh) and max(cw, rw) * max(ch, rh) > limit:  # the zero padding
                raise InputError(resize_too_large(size, (max(cw, rw), max(ch, rh)), self.resize, limit, "pad"))

    def model_view(self, image: Image.Image, resample: Optional[str] = None) -> Image.Image:
        """The image resized and cropped exactly as the model sees it (before scaling
        and normalisation), of size ``input_size``, in the image's own mode.
        ``resample``: another interpolation for the resize (``"nearest"`` for a mask).
        Refused (InputError) before resizing when it would exceed ``max_input_pixels``
        (:meth:`check_size`)."""
        self.check_size(image.size)
        rw, rh = self._resized_size(image.size)
        out = image
        if (rw, rh) != image.size:
            out = image.resize((rw, rh), _RESAMPLE[resample or self.interpolation])
        if self.crop is not None:
            ch, cw = self.input_size
            if cw > rw or ch > rh:  # pad like torchvision's CenterCrop, with zeros
                canvas = Image.new(out.mode, (max(cw, rw), max(ch, rh)))
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
