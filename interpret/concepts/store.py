"""Reference patches kept on disk: computed once per model and layer (and image set,
target and LRP rules), stored as one ``.npz`` file, read back by every later request,
also by another process or after a restart.

::

    folder/
      refs-<key>.npz   share (N x C float64), argmax (N x C int64), classes (N int64),
                       map_size (2 int64), meta (JSON: what the key was made of)

The key is a hash of the model's content fingerprint (weights, labels,
preprocessing), the layer, the image set's content hash, the target and the
composite, so a changed model or set never reads another's numbers.  A file is written
to a temporary name in the same folder and renamed (``os.replace`` is atomic, as in
:mod:`interpret.dataset.store`): a reader sees a whole file or none.  Files are read
with ``allow_pickle=False`` (nothing in them can run code); one that does not match
what it claims (its shapes, its key) is ignored and computed again.

The names a team gives concepts live beside them, one JSON file per model::

      names-<hash of the model's fingerprint>.json
          {"format": ..., "model": fingerprint, "names": {layer: {channel: name}}}

A name is untrusted text (a visitor typed it): :func:`clean_name` strips control and
format characters (a newline, a bidirectional override), collapses white space and
refuses more than :data:`MAX_NAME` characters; a stored file is bounded
(:data:`MAX_NAMES` names, :data:`MAX_NAMES_BYTES` bytes) and every name read back is
cleaned again (the file may have been edited).  Whoever shows a name escapes it
(:func:`interpret.words.text`).  Writes are read-modify-write under a lock of this
process and renamed into place atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import unicodedata
import uuid
import zipfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = ["FORMAT", "reference_key", "reference_path", "load_references", "save_references", "MAX_NAME",
           "MAX_NAMES", "clean_name", "names_path", "load_names", "save_name"]

FORMAT = "interpret-concepts-references/1"
log = logging.getLogger(__name__)


def reference_key(fingerprint: str, layer: str, set_key: str, target: Optional[str], composite: str) -> Dict[str, str]:
    """What a stored table is keyed by (its file name is a hash of this)."""
    return {"format": FORMAT, "model": str(fingerprint), "layer": str(layer), "images": str(set_key),
            "target": "" if target is None else str(target), "composite": str(composite)}


def reference_path(folder, key: Dict[str, str]) -> Path:
    h = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=16).hexdigest()
    return Path(folder).expanduser() / f"refs-{h}.npz"


def load_references(path: Path, key: Dict[str, str], n: int) -> Optional[Dict[str, np.ndarray]]:
    """The stored arrays for ``key`` over ``n`` images, or None (no file, or one that
    does not hold what it should: it is ignored)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            out = {k: np.asarray(z[k]) for k in ("share", "argmax", "classes", "map_size")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("Stored reference patches %s are unreadable (%s); computing them again.", path.name, exc)
        return None
    share, argmax, classes, size = out["share"], out["argmax"], out["classes"], out["map_size"]
    ok = (meta == key and share.ndim == 2 and share.shape[0] == n and argmax.shape == share.shape
          and classes.shape == (n,) and size.shape == (2,) and np.isfinite(share).all()
          and share.dtype.kind == "f" and argmax.dtype.kind == "i" and classes.dtype.kind == "i"
          and (argmax >= 0).all() and (argmax < int(np.prod(size))).all())
    if not ok:
        log.warning("Stored reference patches %s do not match their key; computing them again.", path.name)
        return None
    return out


def save_references(path: Path, key: Dict[str, str], share: np.ndarray, argmax: np.ndarray,
                    classes: np.ndarray, map_size) -> bool:
    """Write the table atomically (a temporary file, flushed, then renamed); False (and
    a log line) when the folder cannot be written: the result is still used."""
    def write(f):
        np.savez(f, share=np.asarray(share, np.float64), argmax=np.asarray(argmax, np.int64),
                 classes=np.asarray(classes, np.int64), map_size=np.asarray(map_size, np.int64),
                 meta=np.array(json.dumps(key, sort_keys=True)))

    return _atomic_write(path, ".npz", write, "Reference patches")


def _atomic_write(path: Path, suffix: str, write, what: str) -> bool:
    """``write(f)`` into a temporary file beside ``path`` (binary), flushed, synced and
    renamed onto ``path``; False (and a log line naming ``what``) when the folder
    cannot be written."""
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("%s could not be stored in %s (%s).", what, path.parent, exc)
        try:
            tmp.unlink()
        except OSError:
            pass
        return False


# ---------------------------------------------------------------------------------------
# the names a team gives concepts

NAMES_FORMAT = "interpret-concepts-names/1"
#: characters of one name (after cleaning)
MAX_NAME = 60
#: names kept per model, and the size of its file read back
MAX_NAMES = 5000
MAX_NAMES_BYTES = 2_000_000
_WRITING = threading.Lock()


def clean_name(name) -> Optional[str]:
    """``name`` as it is stored: control and format characters (Unicode Cc, Cf, line
    and paragraph separators) removed, runs of white space made one space, the ends
    stripped; None for an empty name (which clears one).  InputError for anything but
    text, or for more than :data:`MAX_NAME` characters."""
    from ..errors import InputError

    if name is None:
        return None
    if not isinstance(name, str):
        raise InputError(f"A concept's name is text; got {type(name).__name__}.")
    kept = "".join(" " if unicodedata.category(ch) in ("Zs", "Zl", "Zp") or ch in "\t\n\r\f\v"
                   else ("" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") else ch)
                   for ch in name)
    kept = " ".join(kept.split())
    if not kept:
        return None
    if len(kept) > MAX_NAME:
        raise InputError(f"A concept's name has at most {MAX_NAME} characters; this one has {len(kept)}.")
    return kept


def names_path(folder, fingerprint: str) -> Path:
    h = hashlib.blake2b(f"{NAMES_FORMAT}\x00{fingerprint}".encode(), digest_size=16).hexdigest()
    return Path(folder).expanduser() / f"names-{h}.json"


def load_names(folder, fingerprint: str) -> Dict[Tuple[str, int], str]:
    """The stored names of the model with content ``fingerprint``: {(layer, channel):
    name}; empty when there is no file, or one that is unreadable, too large or of
    another model (logged).  Names that do not clean are left out."""
    return _read_names(folder, fingerprint)[0]


def _read_names(folder, fingerprint: str) -> Tuple[Dict[Tuple[str, int], str], bool]:
    """(the names, whether the file was absent or read as this model's names file)."""
    path = names_path(folder, fingerprint)
    try:
        if not path.is_file():
            return {}, True
        if path.stat().st_size > MAX_NAMES_BYTES:
            log.warning("Stored concept names %s are larger than %d bytes; ignored.", path.name, MAX_NAMES_BYTES)
            return {}, False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.warning("Stored concept names %s are unreadable (%s); ignored.", path.name, exc)
        return {}, False
    if not (isinstance(data, dict) and data.get("format") == NAMES_FORMAT and data.get("model") == fingerprint
            and isinstance(data.get("names"), dict)):
        log.warning("Stored concept names %s are not this model's; ignored.", path.name)
        return {}, False
    from ..errors import InputError

    out: Dict[Tuple[str, int], str] = {}
    for layer, chans in data["names"].items():
        if not isinstance(chans, dict):
            continue
        for ch, name in chans.items():
            try:
                c = int(ch)
                cleaned = clean_name(name)
            except (ValueError, InputError):
                continue
            if c >= 0 and cleaned is not None and len(out) < MAX_NAMES:
                out[(str(layer), c)] = cleaned
    return out, True


def save_name(folder, fingerprint: str, layer: str, channel: int, name: Optional[str]) -> bool:
    """Store ``name`` (already cleaned; None: remove the name) for ``channel`` of
    ``layer``; the file is rewritten whole and renamed into place.  InputError when the
    model would have more than :data:`MAX_NAMES` names; False (and a log line) when the
    folder cannot be written.  A names file that cannot be read as this model's is
    left as it is (InputError): writing over it would lose the names it may hold."""
    from ..errors import InputError

    path = names_path(folder, fingerprint)
    with _WRITING:
        names, ok = _read_names(folder, fingerprint)
        if not ok:
            raise InputError("The stored names of this model's concepts cannot be read, so no name is changed "
                             f"(the server's operator can move {path.name} away).")
        if name is None:
            names.pop((str(layer), int(channel)), None)
        else:
            if (str(layer), int(channel)) not in names and len(names) >= MAX_NAMES:
                raise InputError(f"This model has {MAX_NAMES} named concepts already; remove one first.")
            names[(str(layer), int(channel))] = name
        nested: Dict[str, Dict[str, str]] = {}
        for (ly, ch), nm in sorted(names.items()):
            nested.setdefault(ly, {})[str(ch)] = nm
        body = json.dumps({"format": NAMES_FORMAT, "model": fingerprint, "names": nested},
                          ensure_ascii=False, sort_keys=True, indent=1)
        return _atomic_write(path, ".json", lambda f: f.write(body.encode("utf-8")), "Concept names")


def _memory(handle) -> Dict[Tuple[str, str, int], str]:
    """The names given to ``handle``'s concepts in this process ({(fingerprint, layer,
    channel): name}; held by the handle, so a fresh handle starts empty)."""
    return handle.memo("concept_names", dict)


def name_concept(model, layer: str, channel: int, name: Optional[str], *, store=None) -> Optional[str]:
    """Name ``channel`` of ``layer`` of ``model`` (say "striped fur", after looking at its
    heatmap and reference patches); ``name`` None or blank removes the name.  Returns
    the name as kept (:func:`clean_name`: control characters stripped, at most
    :data:`MAX_NAME` characters) or None.  Kept in ``store`` (a folder: the concept
    store, shared by processes and kept across restarts) when given, else with the
    model's handle for this process only.  Names are keyed by the model's content
    fingerprint: other weights do not inherit them.  :func:`interpret.concepts` results
    carry them as ``.name``."""
    from ..errors import InputError
    from ..explain import as_handle
    from ..layers import check_layer

    handle = as_handle(model)
    handle.check_ready()
    layer = check_layer(handle, layer)
    if isinstance(channel, bool) or not hasattr(channel, "__index__"):
        raise InputError(f"A channel is a whole number; got {channel!r}.")
    channel = int(channel)
    n = _channels(handle, layer)
    if not 0 <= channel < n:
        raise InputError(f"Channel {channel} is out of range: layer '{layer}' has {n} channels.")
    cleaned = clean_name(name)
    fp = handle.fingerprint()
    if store is not None and not save_name(store, fp, layer, channel, cleaned):
        raise InputError("The concept's name could not be stored: the concept store's folder cannot be written.")
    mem = _memory(handle)
    with _WRITING:
        if cleaned is None or store is not None:
            mem.pop((fp, layer, channel), None)  # the store's word is the newest
        else:
            mem[(fp, layer, channel)] = cleaned
    return cleaned


def _channels(handle, layer: str) -> int:
    """How many channels ``layer`` has (from the layer list's probe): C of a CNN's
    B x C x h x w maps, or of a vision transformer's B x N x C tokens."""
    from ..errors import InputError
    from ..layers import list_layers

    for li in list_layers(handle):
        if li.name == layer:
            shape = li.output_shape
            if shape and len(shape) == 4:
                return int(shape[1])
            if shape and len(shape) == 3:  # tokens (a ViT block's output): C is the last axis
                return int(shape[2])
    raise InputError(f"Layer '{layer}' has no B x C x h x w maps or B x N x C tokens; pick a convolutional "
                     "layer or a transformer block.")


def concept_names(model, layer: Optional[str] = None, *, store=None) -> Dict[Tuple[str, int], str]:
    """The names given to ``model``'s concepts: {(layer, channel): name}, of ``layer``
    only when given: those in ``store`` (a folder, read each time: another process
    may have named one) and those given in this process without a store."""
    from ..explain import as_handle

    handle = as_handle(model)
    mem = _memory(handle)
    if store is None and not mem:
        return {}  # nothing named: the weights need not be hashed
    fp = handle.fingerprint()
    out = dict(load_names(store, fp)) if store is not None else {}
    with _WRITING:
        out.update({(ly, ch): nm for (f, ly, ch), nm in mem.items() if f == fp})
    return {k: v for k, v in out.items() if layer is None or k[0] == layer}
