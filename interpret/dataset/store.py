"""The result store of a dataset analysis: a folder of Parquet files.

::

    out/
      manifest.json           the run: model, settings, source, labels, who and when
      items.parquet           the plan: every image of the set (path, label, key)
      parts/part-<id>.parquet one file per finished batch: one row per image, maps
                              (float32 at the layer's resolution) and thumbnails inside
      .lock                   held (flock) by the job writing to the folder

Why Parquet files and not one DuckDB database: every finished batch is written as its
own file, to a temporary name, flushed to disk, then renamed (``os.replace`` is
atomic), so a job killed at any instant leaves only whole batches and nothing to
repair: a restart reads which images are stored and computes only the others.
A batch's file name is a hash of the images in it, so a batch computed twice (a Ray
task retried after its worker died) replaces itself instead of adding rows.  Readers
need no lock: the dashboard, a teammate's notebook or DuckDB
(``SELECT * FROM 'out/parts/*.parquet'``) can read a folder while a job is still
writing to it, also on a shared network drive, where DuckDB's single-writer database
file would lock everyone else out.  Columns are compressed (zstd) and read
selectively: the table view never loads the maps or thumbnails.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set

from ..errors import InputError

try:  # POSIX advisory locks; released by the kernel when the process dies (SIGKILL too)
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one job per folder is on you
    fcntl = None

__all__ = ["Store", "FORMAT", "row_schema", "batch_name"]

FORMAT = "interpret-dataset/1"


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - a dependency of the [dataset] extra
        raise InputError('Dataset analysis stores its results with pyarrow: '
                         'pip install "interpret-dashboard[dataset]".') from None
    return pa, pq


def row_schema(methods: Sequence[str], labelled: bool = False):
    """The Parquet schema of one stored row (every part of a run has exactly this
    schema; ``labelled``: a multi-label or binary run's extra columns)."""
    pa, _ = _pa()
    f32, i32 = pa.float32(), pa.int32()
    fields = [
        ("item", pa.string()), ("path", pa.string()), ("label", pa.string()),
        ("label_index", i32), ("status", pa.string()), ("reason", pa.string()),
        ("prediction_index", i32), ("prediction", pa.string()), ("probability", f32),
        ("label_probability", f32), ("correct", pa.bool_()),
        ("topk_index", pa.list_(i32)), ("topk_probability", pa.list_(f32)),
        ("target_index", i32), ("score", f32), ("box", pa.list_(f32)),
        ("deletion_auc", f32), ("insertion_auc", f32), ("random_deletion_auc", f32),
        ("random_insertion_auc", f32), ("verdict", pa.string()), ("trust_sentence", pa.string()),
        ("batch", pa.string()), ("thumb", pa.binary()), ("features", pa.binary()),
    ] + [(f"map_{m}", pa.binary()) for m in methods]
    if labelled:  # multi-label and binary runs: every label's probability, the labels explained
        fields += [("truth", pa.list_(i32)), ("probabilities", pa.list_(f32)),
                   ("target_indices", pa.list_(i32)), ("target_signs", pa.list_(i32)),
                   ("scores", pa.list_(f32))]
    return pa.schema(fields)


#: errno values that mean "this disk cannot take more" and "this folder cannot be written"
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"  # pragma: no cover


def disk_full_message(root, what: str, free: Optional[int]) -> str:
    """What a person reads when ``what`` could not be written to the runs folder ``root``
    because its disk is full (``free``: bytes left, None when unknown)."""
    left = f"{_size(free)} free" if free is not None else "free space unknown"
    return (f"The disk holding the runs folder {root} is full ({left}): {what} could not be "
            "written. The run so far is kept: free some space and run it again to resume "
            "where it stopped.")


def read_only_message(root, what: str, why: str) -> str:
    """What a person reads when ``what`` could not be written because the runs folder
    ``root`` is read-only (``why``: the system's reason)."""
    return (f"The runs folder {root} cannot be written ({why}): {what} was not written. Its "
            "stored runs can still be opened; to start or resume a run, use a folder this "
            "server can write to (setting dataset_runs, or --out).")


def _write_error(exc: OSError, root: Path, what: str) -> Optional[InputError]:
    """The InputError for a failed write of ``what`` under ``root`` (a full disk, a
    read-only folder), or None for any other failure."""
    if exc.errno in _FULL:
        try:
            free: Optional[int] = shutil.disk_usage(root if root.exists() else root.parent).free
        except OSError:
            free = None
        return InputError(disk_full_message(root, what, free))
    if exc.errno in _READ_ONLY:
        return InputError(read_only_message(root, what, exc.strerror or type(exc).__name__))
    return None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems do not open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then flush and rename onto ``path``: readers and a restart
    see the old file or the new one, never half of one."""
    tmp = path.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}"
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def batch_name(keys: Iterable[str]) -> str:
    """The file stem of a batch: a hash of its images' keys."""
    h = hashlib.blake2b(digest_size=10)
    for k in keys:
        h.update(k.encode() + b"\0")
    return f"part-{h.hexdigest()}"


class Store:
    """Reads and writes one result folder (see the module docstring)."""

    def __init__(self, out):
        self.root = Path(out).expanduser()
        self.manifest_path = self.root / "manifest.json"
        self.items_path = self.root / "items.parquet"
        self.parts = self.root / "parts"
        self._lock_fh = None

    # -- the folder ----------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, what: str) -> Iterator[None]:
        """Turn a full disk or a read-only folder, while writing ``what``, into an
        InputError that says so (other failures pass through as they are)."""
        try:
            yield
        except OSError as exc:
            err = _write_error(exc, self.root, what)
            if err is None:
                raise
            raise err from None

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def create(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root} is a file; give a folder for the results.")
        with self.writing("the run's folder"):
            self.parts.mkdir(parents=True, exist_ok=True)

    def clear(self) -> None:
        """Remove this store's own files (and nothing else in the folder)."""
        with self.writing("the removal of the old run"):
            for p in self.part_files():
                p.unlink()
            for p in (self.items_path, self.manifest_path):
                if p.exists():
                    p.unlink()

    def clean_temporary(self) -> int:
        """Remove half-written files a killed job left (call with the lock held)."""
        n = 0
        with self.writing("the removal of half-written files"):
            for folder in (self.root, self.parts):
                if folder.is_dir():
                    for p in folder.glob(".tmp-*"):
                        p.unlink()
                        n += 1
        return n

    # -- the lock --------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for one writing job; InputError when another job holds it
        (or when the folder cannot be written: a full disk, a read-only folder)."""
        self.create()
        with self.writing("the run's lock file"):
            fh = open(self.root / ".lock", "a+")
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise InputError(f"Another job is writing to {self.root} right now; wait for it "
                                     "to finish or choose another folder.") from None
            yield
        finally:
            fh.close()  # releases the lock

    def is_running(self) -> bool:
        """Whether a job holds the folder's lock at this moment.  Opens the lock file
        read-only (``flock`` needs no write access), so that a run on a read-only
        folder opens and says its status; a lock file that cannot be opened at all
        means no job can be writing through it."""
        if fcntl is None or not (self.root / ".lock").exists():
            return False
        try:
            fh = open(self.root / ".lock", "rb")
        except OSError:
            return False
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False

    # -- manifest and plan ------------------------------------------------------------
    def read_manifest(self) -> dict:
        try:
            data = json.loads(self.manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            raise InputError(f"{self.root} holds no dataset analysis (no manifest.json).") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.manifest_path} cannot be read ({exc}).") from None
        if data.get("format") != FORMAT:
            raise InputError(f"{self.root} holds results of another format ({data.get('format')!r}); "
                             f"this version reads {FORMAT!r}.")
        return data

    def write_manifest(self, data: dict) -> None:
        data = {"format": FORMAT, **data}
        text = json.dumps(data, indent=1, sort_keys=True)
        with self.writing("the run's manifest"):
            _atomic_write(self.manifest_path, lambda p: p.write_text(text, "utf-8"))

    def update_manifest(self, **changes) -> dict:
        data = self.read_manifest()
        data.update(changes)
        self.write_manifest(data)
        return data

    def write_items(self, items) -> None:
        pa, pq = _pa()
        table = pa.table({
            "item": [i.key for i in items], "path": [i.path for i in items],
            "label": [i.label for i in items], "label_index": pa.array([i.label_index for i in items], pa.int32()),
            "box": pa.array([list(i.box) if i.box else None for i in items], pa.list_(pa.float32())),
            "truth": pa.array([list(getattr(i, "truth", ())) for i in items], pa.list_(pa.int32())),
        })
        with self.writing("the run's list of images"):
            _atomic_write(self.items_path, lambda p: pq.write_table(table, p, compression="zstd"))

    def read_items(self):
        _, pq = _pa()
        if not self.items_path.exists():
            raise InputError(f"{self.root} holds no list of images (items.parquet).")
        return pq.read_table(self.items_path)

    # -- rows ---------------------------------------------------------------------------
    def part_files(self) -> List[Path]:
        return sorted(self.parts.glob("part-*.parquet")) if self.parts.is_dir() else []

    def write_part(self, name: str, rows: List[dict], methods: Sequence[str]) -> Path:
        pa, pq = _pa()
        schema = row_schema(methods, labelled=any("truth" in r for r in rows))
        cols: Dict[str, list] = {f.name: [r.get(f.name) for r in rows] for f in schema}
        table = pa.Table.from_pydict(cols, schema=schema)
        path = self.parts / f"{name}.parquet"
        with self.writing(f"a batch of {len(rows)} results"):
            _atomic_write(path, lambda p: pq.write_table(table, p, compression="zstd"))
        return path

    def stored_keys(self) -> Set[str]:
        """The keys of every image with a stored row."""
        _, pq = _pa()
        keys: Set[str] = set()
        for p in self.part_files():
            keys.update(pq.read_table(p, columns=["item"]).column("item").to_pylist())
        return keys

    def read_rows(self, columns: Optional[Sequence[str]] = None):
        """Every stored row (a pyarrow Table, parts concatenated), with only
        ``columns`` when given."""
        pa, pq = _pa()
        files = self.part_files()
        if not files:
            return None
        tables = [pq.read_table(p, columns=list(columns) if columns else None) for p in files]
        # a labelled run's batch of only unreadable images has the plain schema
        return pa.concat_tables(tables, promote_options="default")
