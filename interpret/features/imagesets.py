"""Sets of images for dataset examples and embeddings: a list of images, the files of
a server folder, or the members of an uploaded zip, read safely.

Every image goes through :func:`interpret.load_image` (size limits, decompression
bombs refused from the header).  Folders and zips are also bounded in the number of
files and the total bytes read; what cannot be used is skipped and listed with the
reason, so one bad file does not spoil an upload.  Large photos are reduced to
``max_side`` pixels on their longest side as they are read, to bound memory (the
model's own preprocessing resizes them much smaller anyway).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..errors import InputError
from ..images import MAX_IMAGE_BYTES, image_hash, load_image
from ..errors import Progress, report

__all__ = ["ImageSet", "load_images", "images_from_zip", "images_from_folder", "as_image_set",
           "MAX_SET_IMAGES", "MAX_SET_BYTES", "IMAGE_EXTENSIONS"]

#: Most images one set may hold (zip members and folder files are counted before
#: anything is decoded).
MAX_SET_IMAGES = 1000
#: Most bytes read from a zip (uncompressed) or a folder for one set.
MAX_SET_BYTES = 1024 * 1024 * 1024
#: Longest side kept in memory for each image of a set: a set of MAX_SET_IMAGES 4:3
#: photos then holds at most about 600 MB, and the shorter side (384) is still above
#: the resize of common preprocessing (256).
MAX_SIDE = 512
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                    ".pgm", ".pbm", ".ico")


@dataclass(frozen=True)
class ImageSet:
    """Images ready for :func:`top_activating` / :func:`embed`: RGB PIL ``images``, their
    ``names``, content ``hashes`` (for caching), and ``skipped``: (name, reason) for
    every file that was not used."""

    images: Tuple[Image.Image, ...]
    names: Tuple[str, ...]
    hashes: Tuple[str, ...] = field(repr=False)
    skipped: Tuple[Tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def key(self) -> str:
        """One hash for the whole set, in order (a cache key)."""
        h = hashlib.blake2b(digest_size=16)
        for x in self.hashes:
            h.update(x.encode())
        return h.hexdigest()


def _shrink(img: Image.Image, max_side: Optional[int]) -> Image.Image:
    if max_side and max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def _make(images: List[Image.Image], names: List[str], skipped) -> ImageSet:
    return ImageSet(tuple(images), tuple(names), tuple(image_hash(i) for i in images),
                    tuple(skipped))


def load_images(sources: Sequence, names: Optional[Sequence[str]] = None, *,
                skip_bad: bool = False, max_side: Optional[int] = MAX_SIDE,
                max_images: int = MAX_SET_IMAGES) -> ImageSet:
    """An :class:`ImageSet` from a list of images (paths, bytes, file objects, PIL
    images, arrays).  A file that is not a usable image raises :class:`InputError`
    naming it, or with ``skip_bad`` is left out and listed in ``skipped``."""
    sources = list(sources)
    if names is not None and len(names) != len(sources):
        raise InputError(f"{len(names)} names were given for {len(sources)} images.")
    if len(sources) > max_images:
        raise InputError(f"{len(sources)} images were given; the limit is {max_images}.")
    images, kept, skipped = [], [], []
    for i, src in enumerate(sources):
        name = names[i] if names is not None else _source_name(src, i)
        try:
            images.append(_shrink(load_image(src), max_side))
            kept.append(name)
        except InputError as exc:
            if not skip_bad:
                raise InputError(f"Image {i} ({name}): {exc}") from None
            skipped.append((name, str(exc)))
    return _make(images, kept, skipped)


def _source_name(src, i: int) -> str:
    if isinstance(src, (str, os.PathLike)):
        return Path(src).name
    name = getattr(src, "name", None)
    if isinstance(name, str) and name:
        return os.path.basename(name)
    return f"image {i}"


def zip_member_skip_reason(info: zipfile.ZipInfo) -> Optional[str]:
    name = info.filename
    parts = PurePosixPath(name).parts
    if info.is_dir():
        return "folder"
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return "hidden or system file"
    if info.flag_bits & 0x1:
        return "encrypted"
    if info.file_size > MAX_IMAGE_BYTES:
        return f"larger than the {MAX_IMAGE_BYTES // 2**20} MiB image limit"
    return None


def images_from_zip(data: Union[bytes, bytearray, str, os.PathLike, io.IOBase], *,
                    max_images: int = MAX_SET_IMAGES, max_total_bytes: int = MAX_SET_BYTES,
                    max_side: Optional[int] = MAX_SIDE,
                    progress: Optional[Progress] = None) -> ImageSet:
    """The images of a zip archive (bytes, a path or a binary file object), in name
    order.  Nothing is extracted to disk.  Members are counted before any is read
    (more than ``max_images`` files: refused); the bytes actually decompressed are
    counted as they are read, so an archive whose headers lie about sizes still stops
    at ``max_total_bytes``.  Folders, hidden files, encrypted members and files that
    are not images are skipped with a reason.  ``progress(done, total)`` after each
    member (raise :class:`interpret.Cancelled` in it to stop)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        fh = io.BytesIO(bytes(data))
    elif isinstance(data, (str, os.PathLike)):
        p = Path(data)
        if not p.is_file():
            raise InputError(f"Zip file {p} does not exist.")
        fh = open(p, "rb")
    elif hasattr(data, "read"):
        fh = data
    else:
        raise InputError(f"Cannot read a zip archive from a {type(data).__name__}.")
    try:
        from ..sources.files import zip_entries_in  # lazy: torch

        declared = zip_entries_in(fh)  # counted before zipfile builds one object per entry
        if declared is not None and declared > max_images:
            raise InputError(f"The zip archive holds {declared:,} files; the limit is {max_images:,}.")
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InputError(f"The upload is not a readable zip archive ({exc}).") from None
        with zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
            files = [i for i in infos if not i.is_dir()]
            if len(files) > max_images:
                raise InputError(
                    f"The zip archive holds {len(files)} files; the limit is {max_images}.")
            claimed = sum(i.file_size for i in files)
            if claimed > max_total_bytes:
                raise InputError(
                    f"The zip archive would unpack to {claimed / 2**20:.0f} MiB; the limit is "
                    f"{max_total_bytes / 2**20:.0f} MiB.")
            images, names, skipped = [], [], []
            total = 0
            for k, info in enumerate(files):
                if k:
                    report(progress, k, len(files))
                name = info.filename
                why = zip_member_skip_reason(info)
                if why is None and not name.lower().endswith(IMAGE_EXTENSIONS):
                    why = "not an image file (by its extension)"
                if why is not None:
                    if why != "folder":
                        skipped.append((name, why))
                    continue
                try:
                    with zf.open(info) as member:
                        raw = member.read(MAX_IMAGE_BYTES + 1)
                except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError,
                        EOFError, ValueError) as exc:
                    skipped.append((name, f"could not be unpacked ({exc})"))
                    continue
                total += len(raw)
                if total > max_total_bytes:
                    raise InputError(
                        f"The zip archive unpacks to more than {max_total_bytes / 2**20:.0f} MiB "
                        "(the limit).")
                if len(raw) > MAX_IMAGE_BYTES:
                    skipped.append((name, f"larger than the {MAX_IMAGE_BYTES // 2**20} MiB image limit"))
                    continue
                try:
                    images.append(_shrink(load_image(raw), max_side))
                    names.append(name)
                except InputError as exc:
                    skipped.append((name, str(exc)))
            report(progress, len(files), len(files))
    finally:
        if fh is not data:
            fh.close()
    if not images:
        raise InputError(_none_usable("The zip archive", skipped))
    return _make(images, names, skipped)


def images_from_folder(folder: Union[str, os.PathLike], *, recursive: bool = False,
                       max_images: int = MAX_SET_IMAGES, max_total_bytes: int = MAX_SET_BYTES,
                       max_side: Optional[int] = MAX_SIDE,
                       progress: Optional[Progress] = None) -> ImageSet:
    """The images of a folder on the server, in name order (``recursive``: also in
    sub-folders).  Symbolic links and hidden files are skipped (a link could point
    anywhere on the server); files with an image extension are read, up to
    ``max_images`` of them and ``max_total_bytes`` in all; other files are skipped.
    ``progress(done, total)`` after each image (raise :class:`interpret.Cancelled` in it to stop)."""
    root = Path(folder)
    if not root.exists():
        raise InputError(f"Folder {root} does not exist.")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder.")
    candidates: List[Path] = []
    skipped: List[Tuple[str, str]] = []
    walker: Iterable[Path] = root.rglob("*") if recursive else root.iterdir()
    entries: List[Path] = []
    for p in walker:  # bounded: a huge tree is refused, not listed to the end
        entries.append(p)
        if len(entries) > 20 * max_images:
            raise InputError(f"Folder {root} holds more than {20 * max_images} files; pick a smaller folder.")
    for p in sorted(entries):
        rel = p.relative_to(root).as_posix()
        if any(part.startswith(".") for part in p.relative_to(root).parts):
            continue  # hidden files and folders are not part of the set
        if p.is_symlink():
            skipped.append((rel, "symbolic link"))
            continue
        if p.is_dir():
            continue
        if not p.name.lower().endswith(IMAGE_EXTENSIONS):
            skipped.append((rel, "not an image file (by its extension)"))
            continue
        candidates.append(p)
        if len(candidates) > max_images:
            raise InputError(f"Folder {root} holds more than {max_images} images (the limit).")
    images, names = [], []
    total = 0
    for k, p in enumerate(candidates):
        if k:
            report(progress, k, len(candidates))
        rel = p.relative_to(root).as_posix()
        try:
            size = p.stat().st_size
        except OSError as exc:
            skipped.append((rel, f"unreadable ({exc})"))
            continue
        total += size
        if total > max_total_bytes:
            raise InputError(
                f"The images in {root} add up to more than {max_total_bytes / 2**20:.0f} MiB (the limit).")
        try:
            images.append(_shrink(load_image(p), max_side))
            names.append(rel)
        except InputError as exc:
            skipped.append((rel, str(exc)))
    report(progress, len(candidates), len(candidates))
    if not images:
        raise InputError(_none_usable(f"Folder {root}", skipped))
    return _make(images, names, skipped)


def _none_usable(what: str, skipped) -> str:
    if not skipped:
        return f"{what} holds no images."
    first = "; ".join(f"{n}: {r}" for n, r in skipped[:3])
    return f"{what} holds no usable image ({len(skipped)} skipped: {first}{' ...' if len(skipped) > 3 else ''})."


def as_image_set(images) -> ImageSet:
    """Accept an :class:`ImageSet`, a folder path, zip bytes / a ``.zip`` path, a single
    image, or a list of images (a bad image in a list is an error naming its index)."""
    if isinstance(images, ImageSet):
        if len(images) == 0:
            raise InputError("The image set is empty.")
        return images
    if isinstance(images, (str, os.PathLike)):
        p = Path(images)
        if p.is_dir():
            return images_from_folder(p)
        if p.suffix.lower() == ".zip":
            return images_from_zip(p)
        return load_images([p])
    if isinstance(images, (bytes, bytearray)) and bytes(images[:4]) == b"PK\x03\x04":
        return images_from_zip(images)
    if isinstance(images, np.ndarray):
        return load_images(list(images) if images.ndim == 4 else [images])
    if isinstance(images, (bytes, bytearray, Image.Image)) or hasattr(images, "read"):
        return load_images([images])
    if isinstance(images, (list, tuple)):
        if not images:
            raise InputError("No images were given.")
        return load_images(images)
    raise InputError(
        f"Cannot make an image set from a {type(images).__name__}: give a list of images, a "
        "folder, or a zip archive.")
