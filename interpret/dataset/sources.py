"""Where a labelled image set comes from: a folder in torchvision's ``ImageFolder``
layout (one sub-folder per class), a zip of one, or a CSV of ``path,label``.

Reading a source lists its images and labels (:class:`Item`) without decoding any:
a data set of 50,000 photos is never held in memory.  The bytes of each image are read
when its batch runs (:meth:`DatasetSource.read`), bounded like every other image
(:data:`interpret.MAX_IMAGE_BYTES`, and the set's total for zips).  Class names
(folder names, or the CSV's label column) are matched to the model's labels; names
that match none get a message listing them with the closest labels.  Files that
cannot be used are skipped and listed with the reason, never fatal.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import InputError
from ..features.imagesets import IMAGE_EXTENSIONS, MAX_SET_BYTES, MAX_SET_IMAGES
# the zip member rules (folders, hidden files, encrypted, too large) are the image sets'
from ..features.imagesets import zip_member_skip_reason
from ..images import MAX_IMAGE_BYTES

__all__ = ["Item", "DatasetSource", "read_source", "match_labels", "Box", "MAX_DATASET_IMAGES",
           "MAX_UPLOAD_IMAGES", "MAX_UPLOAD_BYTES", "ClassName", "class_names", "close_labels"]

#: A box (x0, y0, x1, y1) in fractions of the image as the model sees it (after its
#: resize and crop): (0, 0) is the top-left corner, (1, 1) the bottom-right one.
Box = Tuple[float, float, float, float]

#: Most images one analysis reads from a folder, zip or CSV given by a program or the
#: command line (counted before anything is decoded).
MAX_DATASET_IMAGES = 1_000_000
#: Limits for a zip uploaded by a person (untrusted): the image sets' limits.
MAX_UPLOAD_IMAGES = MAX_SET_IMAGES
MAX_UPLOAD_BYTES = MAX_SET_BYTES
#: Most bytes read in all from one zip (uncompressed), whatever its headers claim.
MAX_ZIP_BYTES = 64 * 1024**3


@dataclass(frozen=True)
class Item:
    """One image of the set: ``path`` (relative to the set's root, or the zip member
    name), its class ``label`` and that label's index in the model's labels, an
    optional ``box`` (CSV sources) and ``key``: a content identity (path, label, size
    and modification time or zip CRC) under which its results are stored."""

    path: str
    label: str
    label_index: int
    key: str
    box: Optional[Box] = None
    #: multi-label and binary sets: the indices of the labels present in the image
    #: (binary: ``(0,)`` for the positive class, ``()`` for the negative one); ``label``
    #: is then their names joined by ``;`` (binary: the label or "not <label>") and
    #: ``label_index`` -1.  Empty for a single-label set.
    truth: Tuple[int, ...] = ()


@dataclass(frozen=True)
class DatasetSource:
    """A listed data set.  ``kind`` is ``"folder"``, ``"zip"`` or ``"csv"``; ``root``
    the folder, zip file or CSV file; ``items`` in path order; ``skipped``: (path,
    reason) of every file that is not part of the set; ``classes``: folder or CSV class
    name -> model label, for the ones used."""

    kind: str
    root: str
    items: Tuple[Item, ...]
    skipped: Tuple[Tuple[str, str], ...] = ()
    classes: Tuple[Tuple[str, str], ...] = ()
    max_total_bytes: int = MAX_ZIP_BYTES
    _base: str = field(default="", repr=False)

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        what = {"folder": "folder", "zip": "zip archive", "csv": "CSV list"}[self.kind]
        return f"{len(self.items)} images in {len(dict(self.classes))} classes from the {what} {self.root}"

    def read(self, items: Sequence[Item]) -> List[Tuple[Optional[bytes], Optional[str]]]:
        """(bytes, None) or (None, reason) for each item: the raw file, read with the
        image size limit (nothing is decoded here)."""
        if self.kind == "zip":
            return self._read_zip(items)
        out: List[Tuple[Optional[bytes], Optional[str]]] = []
        for it in items:
            p = self.file_path(it)
            try:
                if p.is_symlink():
                    out.append((None, "symbolic link"))
                    continue
                size = p.stat().st_size
                if size > MAX_IMAGE_BYTES:
                    out.append((None, f"larger than the {MAX_IMAGE_BYTES // 2**20} MiB image limit"))
                    continue
                with open(p, "rb") as fh:
                    out.append((fh.read(MAX_IMAGE_BYTES + 1), None))
            except FileNotFoundError:
                out.append((None, "the file no longer exists"))
            except OSError as exc:
                out.append((None, f"unreadable ({exc.strerror or exc})"))
        return out

    def file_path(self, item: Item) -> Path:
        """The file of a folder or CSV item."""
        p = Path(item.path)
        return p if p.is_absolute() else Path(self._base or self.root) / p

    def _read_zip(self, items: Sequence[Item]) -> List[Tuple[Optional[bytes], Optional[str]]]:
        out: List[Tuple[Optional[bytes], Optional[str]]] = []
        try:
            zf = zipfile.ZipFile(self.root)
        except (zipfile.BadZipFile, OSError) as exc:
            return [(None, f"the zip archive cannot be read any more ({exc})")] * len(items)
        with zf:
            for it in items:
                try:
                    with zf.open(it.path) as member:
                        raw = member.read(MAX_IMAGE_BYTES + 1)
                except KeyError:
                    out.append((None, "no longer in the zip archive"))
                    continue
                except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError,
                        ValueError) as exc:
                    out.append((None, f"could not be unpacked ({exc})"))
                    continue
                if len(raw) > MAX_IMAGE_BYTES:
                    out.append((None, f"larger than the {MAX_IMAGE_BYTES // 2**20} MiB image limit"))
                    continue
                out.append((raw, None))
        return out


# ----------------------------------------------------------------------------------
# Class names -> the model's labels


def _norm(s: str) -> str:
    return re.sub(r"[\s_\-]+", " ", s.strip().lower())


def match_labels(names: Iterable[str], labels: Sequence[str],
                 class_map: Optional[Mapping[str, str]] = None) -> Tuple[Dict[str, int], List[str]]:
    """({class name: label index} for the names that match, [names that match none]).

    A name matches a label exactly, then ignoring case, then ignoring case and the
    difference between spaces, ``_`` and ``-`` ("tiger_cat" is "tiger cat"); a whole
    number in range is a class index; ``class_map`` ({name: label}) decides first."""
    labels = list(labels)
    exact = {l: i for i, l in reversed(list(enumerate(labels)))}
    lower: Dict[str, List[int]] = {}
    loose: Dict[str, List[int]] = {}
    for i, l in enumerate(labels):
        lower.setdefault(l.lower(), []).append(i)
        loose.setdefault(_norm(l), []).append(i)
    found: Dict[str, int] = {}
    missing: List[str] = []
    for name in names:
        target = class_map.get(name, name) if class_map else name
        idx = exact.get(target)
        if idx is None and len(lower.get(target.lower(), [])) == 1:
            idx = lower[target.lower()][0]
        if idx is None and len(loose.get(_norm(target), [])) == 1:
            idx = loose[_norm(target)][0]
        if idx is None and target.strip().isdigit() and int(target) < len(labels):
            idx = int(target)
        if idx is None:
            missing.append(name)
        else:
            found[name] = idx
    return found, missing


def close_labels(name: str, labels: Sequence[str], n: int = 2) -> List[str]:
    """Up to ``n`` labels whose names are close to ``name`` (difflib, ignoring case and
    the difference between spaces, ``_`` and ``-``), closest first."""
    by_norm = {_norm(l): l for l in labels}
    return [by_norm[c] for c in difflib.get_close_matches(_norm(name), list(by_norm), n=n, cutoff=0.6)]


def _unmatched_message(what: str, missing: Sequence[str], labels: Sequence[str], model: str) -> str:
    parts = []
    for name in missing[:8]:
        close = close_labels(name, labels)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        parts.append(f"'{name}'{hint}")
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    return (f"{len(missing)} {what} match no label of the model '{model}': {', '.join(parts)}{more}. "
            f"Name them after the model's labels (e.g. '{labels[0]}'), map them with "
            "class_map={name: label} (--class-map NAME=LABEL), or leave them out with "
            "unmatched='skip' (--skip-unmatched).")


# ----------------------------------------------------------------------------------
# Listing


def _key(path: str, label: str, size: int, stamp: str) -> str:
    h = hashlib.blake2b(f"{path}\0{label}\0{size}\0{stamp}".encode(), digest_size=12)
    return h.hexdigest()


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _resolve(names: Iterable[str], labels, class_map, unmatched: str, what: str, model: str):
    found, missing = match_labels(sorted(set(names)), labels, class_map)
    if missing and unmatched != "skip":
        raise InputError(_unmatched_message(what, missing, labels, model))
    return found, set(missing)


def _list_folder(root: Path, labels, class_map, unmatched, max_images, model) -> DatasetSource:
    if not root.exists():
        raise InputError(f"Folder {root} does not exist.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and not p.is_symlink())
    skipped: List[Tuple[str, str]] = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_symlink():
            skipped.append((p.name, "symbolic link"))
        elif p.is_file():
            skipped.append((p.name, "not inside a class folder"))
    if not classes:
        raise InputError(
            f"Folder {root} has no class sub-folders. A labelled set has one folder per class, "
            "named after the model's labels (torchvision's ImageFolder layout: "
            "root/tabby/1.jpg, root/espresso/2.jpg), or use a CSV of path,label.")
    found, missing = _resolve([c.name for c in classes], labels, class_map, unmatched,
                              "folder name(s)", model)
    items: List[Item] = []
    for cdir in classes:
        if cdir.name in missing:
            skipped.append((cdir.name + "/", "the folder name matches no label of the model"))
            continue
        idx = found[cdir.name]
        label = labels[idx]
        for dirpath, dirnames, filenames in os.walk(cdir):  # never follows links
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                p = Path(dirpath) / fn
                rel = p.relative_to(root).as_posix()
                if fn.startswith("."):
                    continue
                if p.is_symlink():
                    skipped.append((rel, "symbolic link"))
                    continue
                if not _is_image_name(fn):
                    skipped.append((rel, "not an image file (by its extension)"))
                    continue
                try:
                    st = p.stat()
                except OSError as exc:
                    skipped.append((rel, f"unreadable ({exc.strerror or exc})"))
                    continue
                items.append(Item(rel, label, idx, _key(rel, label, st.st_size, str(st.st_mtime_ns))))
                if len(items) > max_images:
                    raise InputError(f"Folder {root} holds more than {max_images} images (the limit).")
    return _finish("folder", str(root), items, skipped, found, labels, str(root))


def _zip_infos(path: Path, max_images: int, max_total_bytes: int) -> List[zipfile.ZipInfo]:
    """The file members of a zip, by name, counted (before zipfile lists them) and their
    claimed sizes summed against the limits; nothing is read."""
    if not path.is_file():
        raise InputError(f"Zip file {path} does not exist.")
    from ..sources.files import zip_entries_in  # lazy: torch

    try:
        with open(path, "rb") as fh:  # counted before zipfile builds one object per entry
            declared = zip_entries_in(fh)
        zf = zipfile.ZipFile(path) if declared is None or declared <= max_images else None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path.name} is not a readable zip archive ({exc}).") from None
    if zf is None:
        raise InputError(f"The zip archive holds {declared:,} files; the limit is {max_images:,}.")
    with zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
    if len(infos) > max_images:
        raise InputError(f"The zip archive holds {len(infos)} files; the limit is {max_images}.")
    claimed = sum(i.file_size for i in infos)
    if claimed > max_total_bytes:
        raise InputError(f"The zip archive would unpack to {claimed / 2**20:.0f} MiB; the limit is "
                         f"{max_total_bytes / 2**20:.0f} MiB.")
    return infos


def _list_zip(path: Path, labels, class_map, unmatched, max_images, max_total_bytes, model) -> DatasetSource:
    infos = _zip_infos(path, max_images, max_total_bytes)
    usable = [i for i in infos if not _hidden(PurePosixPath(i.filename).parts)]
    parts = [PurePosixPath(i.filename).parts for i in usable]
    # one folder around the class folders ("val/tabby/1.jpg") is dropped: every member is
    # in it, and it is not itself a class
    roots = {p[0] for p in parts}
    strip = 0
    if len(roots) == 1 and any(len(p) >= 3 for p in parts):
        found_root, _ = match_labels(roots, labels, class_map)
        strip = 0 if found_root else 1
    skipped: List[Tuple[str, str]] = []
    by_class: Dict[str, List[zipfile.ZipInfo]] = {}
    for info, p in zip(usable, parts):
        why = zip_member_skip_reason(info)
        if why is None and len(p) - strip < 2:
            why = "not inside a class folder"
        if why is None and not _is_image_name(info.filename):
            why = "not an image file (by its extension)"
        if why is not None:
            skipped.append((info.filename, why))
            continue
        by_class.setdefault(p[strip], []).append(info)
    if not by_class:
        raise InputError(
            f"The zip archive {path.name} has no class folders with images. A labelled set has "
            "one folder per class, named after the model's labels (tabby/1.jpg, espresso/2.jpg).")
    found, missing = _resolve(by_class, labels, class_map, unmatched, "folder name(s)", model)
    items: List[Item] = []
    for cname in sorted(by_class):
        if cname in missing:
            skipped.append((cname + "/", "the folder name matches no label of the model"))
            continue
        idx = found[cname]
        for info in by_class[cname]:
            items.append(Item(info.filename, labels[idx], idx,
                              _key(info.filename, labels[idx], info.file_size, f"crc{info.CRC:08x}")))
    return _finish("zip", str(path), items, skipped, found, labels, str(path.parent), max_total_bytes)


def _parse_box(values: Sequence[str]) -> Box:
    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except ValueError:
        raise ValueError("the box is not four numbers") from None
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise ValueError("the box must be x0 < x1 and y0 < y1, fractions between 0 and 1")
    return (x0, y0, x1, y1)


def negative_name(label: str) -> str:
    """A binary set's negative class, in words."""
    return f"not {label}"


def _truth_names(task: str, value: str, labels, class_map, unmatched, model, path: str):
    """A multi-label or binary CSV cell read: (truth indices, None) or (None, why)."""
    value = value.strip()
    if task == "binary":
        if value not in ("0", "1"):
            return None, f"the label of a binary set is 0 or 1, not '{value[:40]}'"
        return ((0,) if value == "1" else ()), None
    names = [n.strip() for n in value.split(";") if n.strip()]
    found, missing = match_labels(sorted(set(names)), labels, class_map)
    if missing and unmatched != "skip":
        raise InputError(_unmatched_message("label(s) in the CSV", missing, labels, model))
    if missing:
        return None, f"the label '{missing[0]}' matches no label of the model"
    return tuple(sorted({found[n] for n in names})), None


def _listed_file(rel: str, base: Path, skipped: List[Tuple[str, str]]):
    """The ``os.stat`` of an image a CSV lists (relative to ``base``), or None after
    adding why it is skipped to ``skipped``."""
    if not _is_image_name(rel):
        skipped.append((rel, "not an image file (by its extension)"))
        return None
    try:
        return (Path(rel) if Path(rel).is_absolute() else base / rel).stat()
    except FileNotFoundError:
        skipped.append((rel, "the file does not exist"))
    except OSError as exc:
        skipped.append((rel, f"unreadable ({exc.strerror or exc})"))
    return None


def _list_csv_labels(path: Path, rows, labels, class_map, unmatched, model, task,
                     members: Optional[Mapping[str, zipfile.ZipInfo]] = None,
                     zip_path: Optional[Path] = None) -> DatasetSource:
    """A CSV of ``path,labels`` for a multi-label model (labels ``;``-separated, empty:
    none present) or a binary one (0 or 1).  ``members``/``zip_path``: the CSV was read
    from that zip and its paths name the zip's members (``members``: name -> info)."""
    base = path.parent
    skipped: List[Tuple[str, str]] = []
    items: List[Item] = []
    seen = set()
    used: Dict[str, int] = {}
    for n, r in enumerate(rows, start=1):
        r = [c.strip() for c in r]
        if len(r) < 2 or not r[0] or (task == "binary" and not r[1]):
            skipped.append((r[0] if r else f"row {n}", f"row {n} is not path,label"))
            continue
        rel = r[0]
        box = None
        if len(r) >= 6 and any(r[2:6]):
            try:
                box = _parse_box(r[2:6])
            except ValueError as exc:
                skipped.append((rel, f"row {n}: {exc}"))
                continue
        truth, why = _truth_names(task, r[1], labels, class_map, unmatched, model, str(path))
        if truth is None:
            skipped.append((rel, f"row {n}: {why}"))
            continue
        if rel in seen:
            skipped.append((rel, "listed twice in the CSV"))
            continue
        seen.add(rel)
        if members is not None:
            found = _listed_member(rel, members, skipped)
            if found is None:
                continue
            rel, size, stamp = found
        else:
            st = _listed_file(rel, base, skipped)
            if st is None:
                continue
            size, stamp = st.st_size, str(st.st_mtime_ns)
        if task == "binary":
            name = labels[0] if truth else negative_name(labels[0])
        else:
            name = ";".join(labels[i] for i in truth)
        for i in truth:
            used[labels[i]] = i
        items.append(Item(rel, name, -1, _key(rel, name, size, stamp), box, truth))
    items = sorted(items, key=lambda i: i.path)
    if not items:
        first = "; ".join(f"{n}: {r}" for n, r in skipped[:3])
        raise InputError(f"The csv {path} holds no usable image"
                         + (f" ({len(skipped)} skipped: {first})." if skipped else "."))
    classes = tuple(sorted((l, l) for l in used))
    if zip_path is not None:
        return DatasetSource("zip", str(zip_path), tuple(items), tuple(sorted(skipped)), classes,
                             MAX_ZIP_BYTES, str(zip_path.parent))
    return DatasetSource("csv", str(path), tuple(items), tuple(sorted(skipped)), classes, MAX_ZIP_BYTES,
                         str(base))


def _listed_member(rel: str, members: Mapping[str, zipfile.ZipInfo], skipped: List[Tuple[str, str]]):
    """(member name, size, CRC stamp) of the zip member a CSV in the zip lists, or None
    after adding why it is skipped to ``skipped``."""
    if not _is_image_name(rel):
        skipped.append((rel, "not an image file (by its extension)"))
        return None
    name = PurePosixPath(rel.replace("\\", "/")).as_posix()
    name = name[2:] if name.startswith("./") else name
    info = members.get(name)
    if info is None:
        skipped.append((rel, "not in the zip archive (paths are relative to the zip's top)"))
        return None
    why = zip_member_skip_reason(info)
    if why is not None:
        skipped.append((rel, why))
        return None
    return info.filename, info.file_size, f"crc{info.CRC:08x}"


#: Largest CSV of labels read from a zip (uncompressed).
MAX_ZIP_CSV_BYTES = 64 * 2**20


def _list_zip_csv(path: Path, labels, class_map, unmatched, max_images, max_total_bytes, model,
                  task) -> Optional[DatasetSource]:
    """A multi-label or binary set as a zip of its images and a CSV of ``path,labels``
    at the zip's top (``labels.csv``, or its only ``.csv``), paths relative to the zip's
    top.  The CSV and the images are read from the zip, never extracted.  None: the
    zip has no CSV at its top."""
    infos = _zip_infos(path, max_images + 1, max_total_bytes)  # + 1: the CSV itself
    tops = [i for i in infos if len(PurePosixPath(i.filename).parts) == 1
            and i.filename.lower().endswith(".csv") and not _hidden([i.filename])]
    if not tops:
        return None
    chosen = [i for i in tops if i.filename.lower() == "labels.csv"] or tops
    if len(chosen) > 1:
        raise InputError(f"The zip archive {path.name} holds {len(chosen)} CSV files at its top "
                         f"({', '.join(sorted(i.filename for i in chosen)[:4])}); name the one of "
                         "labels labels.csv.")
    info = chosen[0]
    if info.flag_bits & 0x1:
        raise InputError(f"{info.filename} in {path.name} is encrypted.")
    if info.file_size > MAX_ZIP_CSV_BYTES:
        raise InputError(f"{info.filename} in {path.name} is larger than the "
                         f"{MAX_ZIP_CSV_BYTES // 2**20} MiB limit of a CSV of labels.")
    try:
        with zipfile.ZipFile(path) as zf, zf.open(info) as member:
            raw = member.read(MAX_ZIP_CSV_BYTES + 1)  # the bytes read count, not the header's
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as exc:
        raise InputError(f"{info.filename} in {path.name} could not be unpacked ({exc}).") from None
    if len(raw) > MAX_ZIP_CSV_BYTES:
        raise InputError(f"{info.filename} in {path.name} is larger than the "
                         f"{MAX_ZIP_CSV_BYTES // 2**20} MiB limit of a CSV of labels.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{info.filename} in {path.name} cannot be read as UTF-8 text ({exc}).") from None
    rows = _csv_rows(text, info.filename, max_images)
    members = {i.filename: i for i in infos if i is not info}
    return _list_csv_labels(path / info.filename, rows, labels, class_map, unmatched, model, task,
                            members=members, zip_path=path)


def _csv_rows(text: str, name: str, max_images: int) -> List[List[str]]:
    """The rows of a CSV of ``path,label`` (the header row dropped), counted."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][:2]] in (["path", "label"], ["path", "labels"]):
        rows = rows[1:]
    if not rows:
        raise InputError(f"CSV file {name} lists no images (expected rows of path,label).")
    if len(rows) > max_images:
        raise InputError(f"CSV file {name} lists {len(rows)} images; the limit is {max_images}.")
    return rows


def _list_csv(path: Path, labels, class_map, unmatched, max_images, model,
              task: str = "classification") -> DatasetSource:
    if not path.is_file():
        raise InputError(f"CSV file {path} does not exist.")
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"CSV file {path.name} cannot be read as UTF-8 text ({exc}).") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        raise InputError(f"CSV file {path.name} lists no images (expected rows of path,label).")
    if len(rows) > max_images:
        raise InputError(f"CSV file {path.name} lists {len(rows)} images; the limit is {max_images}.")
    if task in ("multilabel", "binary"):
        return _list_csv_labels(path, rows, labels, class_map, unmatched, model, task)
    base = path.parent
    skipped: List[Tuple[str, str]] = []
    entries: List[Tuple[str, str, Optional[Box]]] = []
    for n, r in enumerate(rows, start=1):
        r = [c.strip() for c in r]
        if len(r) < 2 or not r[0] or not r[1]:
            skipped.append((r[0] if r else f"row {n}", f"row {n} is not path,label"))
            continue
        box = None
        if len(r) >= 6 and any(r[2:6]):
            try:
                box = _parse_box(r[2:6])
            except ValueError as exc:
                skipped.append((r[0], f"row {n}: {exc}"))
                continue
        entries.append((r[0], r[1], box))
    found, missing = _resolve([e[1] for e in entries], labels, class_map, unmatched, "label(s) in the CSV", model)
    items: List[Item] = []
    seen = set()
    for rel, lab, box in entries:
        if lab in missing:
            skipped.append((rel, f"the label '{lab}' matches no label of the model"))
            continue
        if rel in seen:
            skipped.append((rel, "listed twice in the CSV"))
            continue
        seen.add(rel)
        st = _listed_file(rel, base, skipped)
        if st is None:
            continue
        idx = found[lab]
        items.append(Item(rel, labels[idx], idx, _key(rel, labels[idx], st.st_size, str(st.st_mtime_ns)), box))
    return _finish("csv", str(path), items, skipped, found, labels, str(base))


def _finish(kind, root, items, skipped, found, labels, base, max_total_bytes=MAX_ZIP_BYTES) -> DatasetSource:
    items = sorted(items, key=lambda i: i.path)
    if not items:
        first = "; ".join(f"{n}: {r}" for n, r in skipped[:3])
        raise InputError(f"The {kind} {root} holds no usable image"
                         + (f" ({len(skipped)} skipped: {first})." if skipped else "."))
    used = {i.label for i in items}
    classes = tuple(sorted((n, labels[i]) for n, i in found.items() if labels[i] in used))
    return DatasetSource(kind, root, tuple(items), tuple(sorted(skipped)), classes, max_total_bytes, base)


def read_source(source: Union[str, os.PathLike, DatasetSource], labels: Sequence[str], *,
                class_map: Optional[Mapping[str, str]] = None, unmatched: str = "error",
                max_images: int = MAX_DATASET_IMAGES, max_total_bytes: int = MAX_ZIP_BYTES,
                model: str = "model", task: str = "classification") -> DatasetSource:
    """List a data set: a folder of class folders, a ``.zip`` of one, or a ``.csv`` of
    ``path,label`` rows (paths relative to the CSV's folder; an optional header row
    ``path,label``; optional columns ``x0,y0,x1,y1``: the object's box in fractions of
    the model's view).  ``task="multilabel"``: a CSV whose label column lists the labels
    present, separated by ``;`` (empty: none); ``task="binary"``: a CSV whose label
    column is 1 (the model's positive class) or 0, or a folder (or zip) of two folders
    named ``1`` and ``0`` (:attr:`Item.truth`).  For both, a ``.zip`` of the images with
    such a CSV at its top (``labels.csv``, or its only ``.csv``; paths relative to the
    zip's top) is read in place, nothing extracted.  Class names are matched to ``labels`` (:func:`match_labels`);
    ``unmatched="error"`` (default) refuses names that match none with a message
    listing them, ``"skip"`` leaves their images out (listed in ``skipped``)."""
    if isinstance(source, DatasetSource):
        return source
    if unmatched not in ("error", "skip"):
        raise InputError("unmatched must be 'error' or 'skip'.")
    p = Path(source).expanduser()
    suffix = p.suffix.lower()
    if task in ("multilabel", "binary") and suffix == ".zip":
        listed = _list_zip_csv(p, list(labels), class_map, unmatched, max_images, max_total_bytes, model, task)
        if listed is not None:
            return listed
        if task == "multilabel":
            raise InputError(f"The zip archive {p.name} has no CSV at its top. A multi-label set in a zip "
                             "is its images and a labels.csv of path,labels (paths relative to the "
                             "zip's top, the labels present in each image separated by ';').")
    if task == "multilabel" and suffix != ".csv" and p.exists():
        raise InputError("A multi-label set is a CSV of path,labels (the labels present in each "
                         "image separated by ';'), or a zip of the images with that CSV at its top: "
                         "folders of class folders hold one label per image.")
    if p.is_dir():
        if task == "binary":
            return _binary_folders(_list_folder(p, ["0", "1"], None, unmatched, max_images, model), labels)
        return _list_folder(p, list(labels), class_map, unmatched, max_images, model)
    if suffix == ".zip":
        if task == "binary":
            return _binary_folders(_list_zip(p, ["0", "1"], None, unmatched, max_images, max_total_bytes,
                                             model), labels)
        return _list_zip(p, list(labels), class_map, unmatched, max_images, max_total_bytes, model)
    if suffix == ".csv":
        return _list_csv(p, list(labels), class_map, unmatched, max_images, model, task)
    if not p.exists():
        raise InputError(f"{p} does not exist.")
    raise InputError(f"{p.name} is not a data set: give a folder of class folders, a .zip of one, "
                     "or a .csv of path,label.")


def _binary_folders(src: DatasetSource, labels: Sequence[str]) -> DatasetSource:
    """A binary set from two folders named 1 (the positive class) and 0, re-labelled."""
    pos = labels[0]
    items = tuple(Item(it.path, pos if it.label_index == 1 else negative_name(pos), -1, it.key, it.box,
                       (0,) if it.label_index == 1 else ()) for it in src.items)
    return DatasetSource(src.kind, src.root, items, src.skipped, ((pos, pos),), src.max_total_bytes,
                         src._base)


@dataclass(frozen=True)
class ClassName:
    """One class name of a data set (a folder name, or a label of a CSV) and what it
    is read as: ``index`` of the model label it matches (through the class map), or
    None; ``close``: labels close to it, for a person to choose from."""

    name: str
    index: Optional[int]
    close: Tuple[str, ...] = ()


class _AskedNames(dict):
    """A class map that notes every class name a listing asks it about."""

    def __init__(self, base: Optional[Mapping[str, str]]):
        super().__init__(base or {})
        self.asked: List[str] = []

    def __bool__(self) -> bool:  # asked even when empty
        return True

    def get(self, key, default=None):
        self.asked.append(key)
        return super().get(key, default)


def class_names(source: Union[str, os.PathLike], labels: Sequence[str], *,
                class_map: Optional[Mapping[str, str]] = None,
                max_images: int = MAX_DATASET_IMAGES, max_total_bytes: int = MAX_ZIP_BYTES
                ) -> List[ClassName]:
    """Every class name of a source (its class folders, or the labels its CSV gives),
    sorted, each with the model label it matches through ``class_map`` and the close
    labels of those that match none: what a person needs to write the class map
    (the Dataset page's "Class names" control) before :func:`analyze_dataset` runs.
    The source is listed as :func:`read_source` lists it (same limits); nothing is read."""
    labels = list(labels)
    asked = _AskedNames(class_map)
    try:
        read_source(source, labels, class_map=asked, unmatched="skip", max_images=max_images,
                    max_total_bytes=max_total_bytes)
    except InputError:
        if not asked.asked:  # not a source at all: say why
            raise            # (else: no usable image until the names are mapped)
    names = sorted(set(asked.asked))
    found, _ = match_labels(names, labels, class_map)
    return [ClassName(n, found.get(n), () if n in found else tuple(close_labels(n, labels))) for n in names]
