"""A planted concept a tiny CNN learns in seconds: 32 x 32 images whose class is 1 when a
striped 8 x 8 patch sits at a random place, 0 when a grey patch of the same mean colour
does; both classes carry the same random distractor shapes.  Only the stripes tell the
classes apart, so the model must use them."""

from __future__ import annotations

from collections import OrderedDict
from typing import List, Tuple

import numpy as np
import torch
from PIL import Image
from torch import nn

SIZE = 32
PATCH = 8


def _canvas(rng) -> np.ndarray:
    img = np.full((SIZE, SIZE, 3), rng.uniform(0.3, 0.7, 3), dtype=np.float32)
    for _ in range(3):  # distractors: filled squares and discs of random colours
        s = int(rng.integers(4, 9))
        y, x = (int(v) for v in rng.integers(0, SIZE - s, 2))
        colour = rng.uniform(0, 1, 3)
        if rng.random() < 0.5:
            img[y:y + s, x:x + s] = colour
        else:
            yy, xx = np.mgrid[0:s, 0:s]
            disc = (yy - s / 2 + 0.5) ** 2 + (xx - s / 2 + 0.5) ** 2 <= (s / 2) ** 2
            img[y:y + s, x:x + s][disc] = colour
    return img


def stripes(rng) -> np.ndarray:
    """An 8 x 8 patch of vertical black and white stripes, 2 pixels wide."""
    cols = (np.arange(PATCH) // 2) % 2
    if rng.random() < 0.5:
        cols = 1 - cols
    return np.repeat(np.repeat(cols[None, :, None], PATCH, 0), 3, 2).astype(np.float32)


def sample(rng, label: int) -> Tuple[np.ndarray, Tuple[int, int, int, int]]:
    """(H x W x 3 image in [0, 1], the (left, top, right, bottom) box of the patch)."""
    img = _canvas(rng)
    y, x = (int(v) for v in rng.integers(0, SIZE - PATCH + 1, 2))
    img[y:y + PATCH, x:x + PATCH] = stripes(rng) if label == 1 else 0.5
    return img, (x, y, x + PATCH, y + PATCH)


def dataset(n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    imgs, boxes = zip(*(sample(rng, int(l)) for l in labels))
    return np.stack(imgs), np.asarray(labels), list(boxes)


def concept_set(n: int, seed: int) -> List[Image.Image]:
    """Examples of the concept "stripes": striped patches on a plain background at
    random places, no distractors."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.full((SIZE, SIZE, 3), rng.uniform(0.3, 0.7, 3), dtype=np.float32)
        y, x = (int(v) for v in rng.integers(0, SIZE - PATCH + 1, 2))
        img[y:y + PATCH, x:x + PATCH] = stripes(rng)
        out.append(to_pil(img))
    return out


def noise_set(n: int, seed: int) -> List[Image.Image]:
    """Random photos of this small world: uniform noise."""
    rng = np.random.default_rng(seed)
    return [to_pil(rng.uniform(0, 1, (SIZE, SIZE, 3)).astype(np.float32)) for _ in range(n)]


def to_pil(img: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))


def net() -> nn.Module:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()), ("pool", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(16, 16, 3, padding=1)), ("relu3", nn.ReLU()),
        ("gap", nn.AdaptiveMaxPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(16, 2)),
    ]))


def train(seed: int = 0, n: int = 600, epochs: int = 8) -> Tuple[nn.Module, float]:
    """(the trained model in eval mode, its accuracy on 200 fresh images)."""
    imgs, labels, _ = dataset(n, seed)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    y = torch.from_numpy(labels)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = net()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(epochs):
            perm = torch.randperm(n)
            for i in range(0, n, 32):
                idx = perm[i:i + 32]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    model.eval()
    ti, tl, _ = dataset(200, seed + 1000)
    with torch.no_grad():
        acc = float((model(torch.from_numpy(ti).permute(0, 3, 1, 2)).argmax(1).numpy() == tl).mean())
    for p in model.parameters():
        p.grad = None
    return model, acc
