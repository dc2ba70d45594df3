"""A planted shortcut, to see dataset analysis catch one (tests, benchmark, docs).

Three classes of 64 x 64 images, each a coloured shape at a random place on a noisy
grey background: ``"disc"`` (red discs), ``"square"`` (blue squares) and
``"marked"``, red discs or blue squares exactly like the other two classes' but always
carrying a small black-and-white watermark in the bottom-right corner.  The watermark
is the only thing that tells ``"marked"`` apart, so a model that classifies the set
perfectly must look at the corner for it: the "Clever Hans" situation of a class that
is recognised by an artefact of how its photos were taken (Lapuschkin et al. 2019).

:class:`TinyCNN` (three convolutions, global average pooling, one linear layer) learns
it in a few seconds on one CPU thread (:func:`train_tiny_cnn`); its Grad-CAM for
``"marked"`` then puts about 0.9 of its mass in the corner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

__all__ = ["CLASSES", "MARKED", "SIZE", "WATERMARK_BOX", "TinyCNN", "make_images", "write_folder",
           "train_tiny_cnn", "tiny_handle"]

CLASSES = ("disc", "marked", "square")
MARKED = "marked"
SIZE = 64
#: The watermark, in pixels (x0, y0, x1, y1), and as fractions of the image.
WATERMARK_PX = (SIZE - 10, SIZE - 10, SIZE - 3, SIZE - 3)
WATERMARK_BOX = tuple(v / SIZE for v in WATERMARK_PX)
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
LAYER = "conv3"

_COLOURS = {"disc": (0.9, 0.15, 0.1), "square": (0.1, 0.2, 0.9)}


def _image(kind: str, marked: bool, rng: np.random.Generator) -> np.ndarray:
    img = rng.normal(0.45, 0.08, (SIZE, SIZE, 3))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    r = rng.uniform(6, 10)
    cx, cy = rng.uniform(14, 50, 2)
    if kind == "disc":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    else:
        mask = (abs(xx - cx) < r * 0.85) & (abs(yy - cy) < r * 0.85)
    img[mask] = np.clip(np.asarray(_COLOURS[kind]) + rng.normal(0, 0.05, 3), 0, 1)
    if marked:
        x0, y0, x1, y1 = WATERMARK_PX
        img[y0:y1, x0:x1] = 0.0
        img[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = 1.0
    return np.clip(img, 0, 1)


def make_images(per_class: int, seed: int = 0) -> List[Tuple[np.ndarray, str]]:
    """``per_class`` images of each class: (H x W x 3 floats in [0, 1], label)."""
    rng = np.random.default_rng(seed)
    out = []
    for label in CLASSES:
        for _ in range(per_class):
            kind = label if label != MARKED else ("disc", "square")[int(rng.integers(0, 2))]
            out.append((_image(kind, label == MARKED, rng), label))
    return out


def write_folder(root, per_class: int, seed: int = 1) -> Path:
    """An ImageFolder of PNGs (``root/<class>/<class>_<n>.png``); returns ``root``."""
    root = Path(root)
    counts: Dict[str, int] = {}
    for img, label in make_images(per_class, seed):
        n = counts[label] = counts.get(label, 0) + 1
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255).round().astype(np.uint8)).save(root / label / f"{label}_{n:03d}.png")
    return root


class TinyCNN(nn.Module):
    """Three 3x3 convolutions (8, 16, 16 channels; two 2x2 max-pools), global average
    pooling and a linear classifier: ``conv3`` gives 16 x 16 maps on 64 x 64 inputs."""

    def __init__(self, classes: int = len(CLASSES)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x))
        return self.fc(x.mean(dim=(2, 3)))


def _tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    x = torch.tensor(np.stack(images), dtype=torch.float32).permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def train_tiny_cnn(per_class: int = 60, seed: int = 0, epochs: int = 20, lr: float = 5e-3) -> TinyCNN:
    """A :class:`TinyCNN` trained (Adam, batches of 16, ``epochs`` passes) on
    :func:`make_images`, returned in eval mode.  Deterministic for a seed on one machine.

    Measured (one CPU thread, 2-core machine, 5-10 s): it classifies the set
    perfectly after about 12 epochs, but its Grad-CAM for ``"marked"`` then still
    splits between the watermark and the shape; after 20 epochs about 0.8 of the map's
    mass is in the bottom-right sixteenth of the image, where the watermark is."""
    data = make_images(per_class, seed)
    x = _tensor([d[0] for d in data])
    y = torch.tensor([CLASSES.index(d[1]) for d in data])
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 16):
            idx = perm[i:i + 16]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    return model


def tiny_handle(model: Optional[TinyCNN] = None):
    """A :class:`~interpret.ModelHandle` for the tiny CNN with its labels and its
    64 x 64 preprocessing (``model``: default a freshly trained one)."""
    from ..models import load_model
    from ..preprocessing import Preprocessing

    module = model if model is not None else train_tiny_cnn()
    return load_model(module, labels=list(CLASSES), name="tiny planted-shortcut CNN",
                      preprocessing=Preprocessing(resize=(SIZE, SIZE), crop=None, mean=MEAN, std=STD))
