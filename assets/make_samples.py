"""Regenerate the sample photos in assets/samples/ from scikit-image's bundled images.

    python assets/make_samples.py

The photos are public domain or CC0 / CC-BY (see scikit-image's ``skimage/data/README``
for the credits). Each is saved as a small JPEG (longest side <= 512 px, < 100 KB) so
that the repository stays light and the gallery loads fast.  The dashboard lists
whatever ``*.jpg``/``*.png`` it finds here; titles come from ``ui/samples.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent / "samples"
MAX_SIDE = 512
MAX_BYTES = 100_000


def _pil(array: np.ndarray) -> Image.Image:
    if isinstance(array, tuple):  # stereo pairs: the left view
        array = array[0]
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    img = Image.fromarray(array)
    return img.convert("RGB")


def _cat_and_cup(cat: Image.Image, cup: Image.Image) -> Image.Image:
    """Two ImageNet objects side by side on a neutral band: the cat's face on the
    left, the espresso cup on the right.  The 5:4 frame keeps both inside the model's
    centre crop, so Grad-CAM for 'Egyptian cat' lights up the left half and for
    'espresso' the right half."""
    side = 200
    width, height = 2 * side, int(2 * side * 0.8)
    canvas = Image.new("RGB", (width, height), (232, 228, 220))
    top = (height - side) // 2
    canvas.paste(cat.crop((20, 0, 320, 300)).resize((side, side), Image.Resampling.LANCZOS), (0, top))
    canvas.paste(cup.crop((60, 0, 500, 400)).resize((side, side), Image.Resampling.LANCZOS), (side, top))
    return canvas


def _save(img: Image.Image, name: str) -> Path:
    img = img.copy()
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    path = OUT / f"{name}.jpg"
    for quality in (88, 82, 75, 68, 60):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality, optimize=True, progressive=True)
        if buf.tell() < MAX_BYTES:
            break
    path.write_bytes(buf.getvalue())
    return path


def main() -> None:
    from skimage import data

    OUT.mkdir(parents=True, exist_ok=True)
    cat, cup = _pil(data.chelsea()), _pil(data.coffee())
    photos = {
        "cat": cat,
        "espresso": cup,
        "cat_and_cup": _cat_and_cup(cat, cup),
        "rocket": _pil(data.rocket()),
        "motorbike": _pil(data.stereo_motorcycle()),
        "cameraman": _pil(data.camera()),
        "astronaut": _pil(data.astronaut()),
    }
    for name, img in photos.items():
        path = _save(img, name)
        w, h = Image.open(path).size
        print(f"{path.relative_to(OUT.parent.parent)}  {w}x{h}  {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
