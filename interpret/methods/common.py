"""What every method receives (a :class:`Context`) and the shared post-processing
that turns raw attributions into display heatmaps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..capture import Capture, capture, target_score
from ..models import ModelHandle, _first_tensor


class Cancelled(Exception):
    """Raise this from a progress callback to stop a long computation."""


@dataclass
class Context:
    handle: ModelHandle
    x: torch.Tensor  # 1 x 3 x H x W, normalised, on the model's device
    layer: Optional[str]
    target: int
    contrast: Optional[int]
    params: Dict[str, Any]
    progress: Optional[Callable[[int, int], Any]] = None

    def capture(self, with_layer: bool = True) -> Capture:
        return capture(self.handle, self.x, self.layer if with_layer else None,
                       self.target, self.contrast)

    def report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(int(done), int(total))

    def scores(self, batch: torch.Tensor) -> torch.Tensor:
        """Target score of each sample of a batch (no gradients, no hooks)."""
        with torch.no_grad():
            return target_score(_first_tensor(self.handle.module(batch)), self.target, self.contrast)

    def score_fn(self):
        """A forward function for Captum: batch -> score per sample (contrast applied)."""
        module, target, contrast = self.handle.module, self.target, self.contrast

        def fn(batch):
            return target_score(_first_tensor(module(batch)), target, contrast)

        return fn

    @property
    def size(self):
        return tuple(self.x.shape[-2:])


@dataclass
class Result:
    attribution: torch.Tensor
    heatmap: np.ndarray
    extras: Dict[str, Any] = field(default_factory=dict)


def upsample(m: torch.Tensor, size) -> torch.Tensor:
    """Bilinear upsampling (half-pixel centres, as OpenCV's resize) of an h x w map."""
    return F.interpolate(m[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]


def cam_heatmap(cam: torch.Tensor, size) -> np.ndarray:
    """ReLU, min-max scale, upsample to the input size: the convention of Grad-CAM
    and pytorch-grad-cam (``scale_cam_image``), so maps are comparable across tools."""
    cam = cam.detach().float().clamp(min=0)
    cam = cam - cam.min()
    cam = cam / (cam.max() + 1e-7)
    return upsample(cam, size).clamp(0, 1).cpu().numpy().astype(np.float32)


def signed_map_heatmap(m: torch.Tensor, size) -> np.ndarray:
    """Min-max scale of a map that may be negative (activations), then upsample."""
    m = m.detach().float()
    m = (m - m.min()) / (m.max() - m.min() + 1e-7)
    return upsample(m, size).clamp(0, 1).cpu().numpy().astype(np.float32)


def grad_heatmap(attr: torch.Tensor, reduce: str = "abs_max", positive_only: bool = False,
                 percentile: float = 99.0) -> np.ndarray:
    """Reduce a 1 x 3 x H x W attribution over channels and scale to [0, 1], clipping at
    the given percentile so that a few extreme pixels do not wash the map out
    (the usual practice for gradient maps, e.g. Smilkov et al. 2017)."""
    a = attr.detach().float()[0]
    if reduce == "sum":
        m = a.sum(0)
        m = m.clamp(min=0) if positive_only else m.abs()
    elif reduce == "abs_sum":
        m = a.abs().sum(0)
    else:
        m = a.abs().amax(0)
    m = m.cpu().numpy()
    hi = float(np.percentile(m, percentile)) if m.size else 0.0
    if hi <= 0:
        hi = float(m.max()) if m.size and m.max() > 0 else 1.0
    return np.clip(m / hi, 0, 1).astype(np.float32)
