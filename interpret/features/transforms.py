"""Random transformations applied to the image before each optimisation step
(transformation robustness: Olah et al. 2017, "Regularization"; the list and the
values of Lucid's / Lucent's ``standard_transforms``).

A visualisation that still excites the feature after being jittered, scaled and
rotated a little is made of patterns the model really responds to, not of
pixel-exact adversarial noise.  Every transform is ``t(x, generator) -> x`` on a
B x 3 x H x W image in [0, 1]; its random choices come from ``generator`` only, so a
seed reproduces the whole run.
"""

from __future__ import annotations

import math
from typing import Callable, List, Sequence, Union

import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = ["Pad", "Jitter", "RandomScale", "RandomRotate", "standard_transforms",
           "resolve_transforms", "Transform"]

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _choice(seq: Sequence, g: torch.Generator):
    return seq[int(torch.randint(len(seq), (1,), generator=g))]


class Pad:
    """Pad every side by ``width`` pixels of constant ``value`` (0.5: mid grey), so
    jitter and rotation do not push the borders' content off the image."""

    def __init__(self, width: int, value: float = 0.5):
        self.width, self.value = int(width), float(value)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        w = self.width
        return F.pad(x, (w, w, w, w), mode="constant", value=self.value) if w > 0 else x

    def __repr__(self) -> str:
        return f"pad({self.width})"


class Jitter:
    """Random translation by 0..d-1 pixels in each direction (a crop of d pixels less)."""

    def __init__(self, d: int):
        if int(d) < 1:
            raise InputError(f"Jitter must be at least 1 pixel; got {d}.")
        self.d = int(d)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        d = self.d
        if d <= 1:
            return x
        h, w = x.shape[-2:]
        dy = int(torch.randint(d, (1,), generator=g))
        dx = int(torch.randint(d, (1,), generator=g))
        return x[:, :, dy:dy + h - d + 1, dx:dx + w - d + 1]

    def __repr__(self) -> str:
        return f"jitter({self.d})"


class RandomScale:
    """Resize by a factor drawn from ``scales`` (bilinear)."""

    def __init__(self, scales: Sequence[float]):
        if not scales or any(float(s) <= 0 for s in scales):
            raise InputError("Scales must be a non-empty list of positive factors.")
        self.scales = [float(s) for s in scales]

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        s = _choice(self.scales, g)
        if s == 1.0:
            return x
        h, w = x.shape[-2:]
        size = (max(1, int(round(h * s))), max(1, int(round(w * s))))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def __repr__(self) -> str:
        return f"scale({min(self.scales):g}-{max(self.scales):g})"


class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn from ``angles``; the corners
    are filled with the border colour (the grey of :class:`Pad`)."""

    def __init__(self, angles: Sequence[float]):
        if not angles:
            raise InputError("Angles must be a non-empty list.")
        self.angles = [float(a) for a in angles]

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        a = _choice(self.angles, g)
        if a == 0.0:
            return x
        r = math.radians(a)
        c, s = math.cos(r), math.sin(r)
        h, w = x.shape[-2:]
        # affine_grid works in normalised [-1, 1] coordinates: correct for the aspect
        # ratio so a non-square image rotates rigidly
        theta = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]],
                             dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def __repr__(self) -> str:
        return f"rotate({min(self.angles):g}..{max(self.angles):g} deg)"


def standard_transforms() -> List[Transform]:
    """Lucid's / Lucent's ``standard_transforms``: pad 12 (grey), jitter 8, scale
    0.9-1.1, rotate -10..10 degrees (0 more often), jitter 4."""
    return [
        Pad(12, 0.5),
        Jitter(8),
        RandomScale([1 + (i - 5) / 50.0 for i in range(11)]),
        RandomRotate(list(range(-10, 11)) + 5 * [0]),
        Jitter(4),
    ]


def resolve_transforms(transforms: Union[str, None, Sequence[Transform]]) -> List[Transform]:
    """``"standard"`` (the default recipe), ``None`` / ``"none"`` / ``[]`` (no
    transforms), or a list of ``t(x, generator) -> x`` callables."""
    if transforms is None:
        return []
    if isinstance(transforms, str):
        key = transforms.lower()
        if key == "standard":
            return standard_transforms()
        if key == "none":
            return []
        raise InputError(f"Unknown transforms '{transforms}'; use 'standard', 'none' or a list.")
    out = list(transforms)
    for t in out:
        if not callable(t):
            raise InputError(f"A transform must be callable as t(image, generator); got {t!r}.")
    return out


def apply(transforms: Sequence[Transform], x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    for t in transforms:
        x = t(x, g)
    return x


def describe(transforms: Sequence[Transform]) -> str:
    return ", ".join(getattr(t, "__name__", None) or repr(t) for t in transforms) or "none"
