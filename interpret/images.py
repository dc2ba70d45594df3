"""Loading untrusted images into RGB PIL images, with explicit limits.

Limits (documented in the README):

* ``MAX_IMAGE_BYTES`` (50 MiB): larger files are refused before any decoding.
* ``MAX_IMAGE_PIXELS`` (40 megapixels, e.g. 8000 x 5000; the ``max_image_pixels``
  setting changes it): images whose header claims more are refused *before* the pixel
  data is decoded, so a decompression bomb (a small file claiming enormous dimensions)
  costs a header read, not gigabytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import InputError

MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
#: Background used when compositing transparent images (a neutral mid grey, which
#: after ImageNet normalisation is close to zero and so adds little evidence).
TRANSPARENT_BACKGROUND = (124, 116, 104)

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO, Image.Image, np.ndarray]

# Never silently accept truncated files; we check and report them ourselves.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _read_bytes(source) -> tuple[bytes, str]:
    """Return (bytes, a short description of the source for messages)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = "The uploaded file"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = f"The file '{path.name}'"
        if not path.exists():
            raise InputError(f"Image file {path} does not exist.")
        if path.is_dir():
            raise InputError(f"{path} is a folder, not an image file.")
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise InputError(
                f"{name} is {size / 2**20:.1f} MiB; the limit is "
                f"{MAX_IMAGE_BYTES / 2**20:.0f} MiB."
            )
        data = path.read_bytes()
    elif hasattr(source, "read"):
        fname = getattr(source, "name", None)
        name = f"The file '{os.path.basename(str(fname))}'" if fname else "The uploaded file"
        data = source.read(MAX_IMAGE_BYTES + 1)
        if isinstance(data, str):
            raise InputError("The image file was opened in text mode; open it with 'rb'.")
    else:
        raise InputError(
            f"Cannot read an image from a {type(source).__name__}; give a file path, "
            "bytes, a binary file object, a PIL image or a numpy array."
        )
    if len(data) == 0:
        raise InputError(f"{name} is empty (0 bytes).")
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(
            f"{name} is larger than the {MAX_IMAGE_BYTES / 2**20:.0f} MiB limit."
        )
    return data, name


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited on a neutral grey."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: rescale the full range to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        lo = 0.0 if mode.startswith("I;16") else min(float(arr.min()), 0.0)
        arr = np.clip((arr - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo if hi > lo else 1.0) * 255.0
        return Image.fromarray(np.nan_to_num(arr).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode == "P":
        img = img.convert("RGB")
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, TRANSPARENT_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV ...
    return img


def load_image(source: ImageSource) -> Image.Image:
    """Load an image from a path, bytes, a binary file object, a PIL image or an array.

    Returns an 8-bit RGB :class:`PIL.Image.Image` with EXIF orientation applied; the
    first frame of animations; transparency composited on a neutral grey. Raises
    :class:`InputError` with a specific message for empty, non-image, truncated or
    oversized files (decompression bombs are refused from the header alone).
    """
    if isinstance(source, Image.Image):
        img = source
        _check_dimensions(img.size, "The image")
        return _to_rgb(ImageOps.exif_transpose(img) or img).copy()
    if isinstance(source, np.ndarray):
        return _from_array(source)

    data, name = _read_bytes(source)
    try:
        with warnings.catch_warnings():
            # Pillow warns (and at 2x its own limit raises) about bombs; we apply our own
            # limit below from the header, before decoding anything.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise InputError(
            f"{name} claims enormous dimensions (a possible decompression bomb); "
            f"the limit is {max_image_pixels() / 1e6:g} megapixels ({max_image_pixels():,} "
            "pixels, setting max_image_pixels)."
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"{name} is not an image Pillow can read "
            "(supported: PNG, JPEG, WebP, BMP, GIF, TIFF and other common formats)."
        ) from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad headers
        raise InputError(f"Could not read {name[0].lower() + name[1:]} as an image: {exc}") from None

    _check_dimensions(img.size, name)
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return _to_rgb(img)
    except Image.DecompressionBombError:
        raise InputError(f"{name} is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        if "truncated" in msg or "broken data stream" in msg or isinstance(exc, EOFError):
            raise InputError(
                f"{name} is truncated or corrupt (the file ends before the picture "
                "does); re-export or re-download it."
            ) from None
        raise InputError(f"{name} could not be decoded: {msg}") from None


def max_image_pixels() -> int:
    """The largest photo, in pixels: the ``max_image_pixels`` setting (default
    :data:`MAX_IMAGE_PIXELS`)."""
    from .settings import current

    return current().max_image_pixels


def _check_dimensions(size: tuple[int, int], name: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise InputError(f"{name} has no pixels ({w}x{h}).")
    limit = max_image_pixels()
    if w * h > limit:
        raise InputError(
            f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{limit / 1e6:g} megapixels ({limit:,} pixels, setting max_image_pixels). "
            "Downscale it first. "
            "(Refused before decoding: a small file claiming huge dimensions is a "
            "decompression bomb.)"
        )


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise InputError(
            f"An image array must be HxW, HxWx3 or HxWx4; got shape {tuple(arr.shape)}."
        )
    _check_dimensions((arr.shape[1], arr.shape[0]), "The image array")
    if arr.dtype != np.uint8:
        arr = np.asarray(arr, dtype=np.float64)
        if arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[-1] == 1:
        return Image.fromarray(arr[..., 0], "L").convert("RGB")
    return _to_rgb(Image.fromarray(arr, "RGBA" if arr.shape[-1] == 4 else "RGB"))


def image_hash(image: Image.Image) -> str:
    """A content hash of an RGB image (size and pixels), for caching."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()
