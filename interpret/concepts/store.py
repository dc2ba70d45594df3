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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import zipfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np

__all__ = ["FORMAT", "reference_key", "reference_path", "load_references", "save_references"]

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
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, share=np.asarray(share, np.float64), argmax=np.asarray(argmax, np.int64),
                     classes=np.asarray(classes, np.int64), map_size=np.asarray(map_size, np.int64),
                     meta=np.array(json.dumps(key, sort_keys=True)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except OSError as exc:
        log.warning("Reference patches could not be stored in %s (%s).", path.parent, exc)
        try:
            tmp.unlink()
        except OSError:
            pass
        return False
