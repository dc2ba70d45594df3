"""Regenerate the small labelled sample set in assets/dataset_sample/ (the Dataset
page's "sample set" and its browser test) from scikit-image's bundled photos.

    python assets/make_dataset_sample.py

Five ImageNet classes of the bundled model, eight images each: random crops (60-100%
of the photo's side), half of them mirrored, with a little brightness jitter, saved as
small JPEGs (longest side 160 px).  The labels are what the photos show: Chelsea is a
tabby cat (the model often says "Egyptian cat"), the rocket a missile (it often says
"drilling platform"), so the confusion matrix has something to show.  The photos are
public domain / CC0 as listed in scikit-image's data README.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

OUT = Path(__file__).resolve().parent / "dataset_sample"
PER_CLASS = 8
SIDE = 160


def _photos():
    from skimage import data

    return {
        "tabby": data.chelsea(),
        "espresso": data.coffee(),
        "moped": data.stereo_motorcycle()[0],
        "tripod": data.camera(),
        "missile": data.rocket(),
    }


def main() -> None:
    rng = np.random.default_rng(12)
    if OUT.exists():
        shutil.rmtree(OUT)
    total = 0
    for label, array in _photos().items():
        img = Image.fromarray(array).convert("RGB")
        W, H = img.size
        (OUT / label).mkdir(parents=True)
        for k in range(PER_CLASS):
            s = rng.uniform(0.6, 1.0)
            w, h = int(W * s), int(H * s)
            x0, y0 = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            crop = img.crop((x0, y0, x0 + w, y0 + h))
            if k % 2:
                crop = ImageOps.mirror(crop)
            crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.85, 1.15)))
            crop.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            crop.save(buf, "JPEG", quality=82, optimize=True)
            (OUT / label / f"{label}_{k + 1}.jpg").write_bytes(buf.getvalue())
            total += buf.tell()
    print(f"{len(_photos()) * PER_CLASS} images, {total / 1024:.0f} KiB in {OUT}")


if __name__ == "__main__":
    main()
