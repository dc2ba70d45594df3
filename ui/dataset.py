"""Helpers of the Dataset page: where runs are kept and listed, the sources a person can
start from, the analysis through the server's compute gate with progress, an ETA and a
cancel button, and opening one image on the Attributions page.  No maths here: every
number comes from :mod:`interpret.dataset`.

Runs live in the ``dataset_runs`` folder (setting; default a temporary folder of the
server process), one sub-folder each, and are shared by everyone on the server: a run
of the same model, settings and images is found and served instead of computed again
(and a stopped one continues where it stopped).  Uploaded zips are copied into their
run's folder (``source.zip``), so a shared run can still open its images.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import streamlit as st

import interpret
from interpret import words
from interpret.dataset import (MAX_UPLOAD_BYTES, MAX_UPLOAD_IMAGES, BATCHED_CAMS, DatasetResult, RunInfo,
                               list_runs, read_source, run_key)
from interpret.dataset.batch import JobSettings
from interpret.dataset.store import Store

from . import compute, state
from .errors import error_message

log = logging.getLogger("interpret.app")

SAMPLE_SET = Path(__file__).resolve().parent.parent / "assets" / "dataset_sample"
SOURCES = {"sample": "Sample set", "folder": "Server folder", "upload": "Upload a zip",
           "stored": "Stored runs"}
#: Largest zip a person may upload here, MB (also bounded by max_model_mb).
MAX_ZIP_MB = 200
#: Images per batch on the server (a batch of 224 x 224 CAMs holds ~1 GB at most).
BATCH_SIZE = 16
#: Images shown per confusion cell, flag, or sorted list.
GALLERY = 24


# ----------------------------------------------------------------------------------
# Where runs live


@st.cache_resource(show_spinner=False)
def _temporary_runs() -> str:
    return tempfile.mkdtemp(prefix="interpret-dataset-runs-")


def runs_folder() -> Path:
    """The server's shared runs folder (``dataset_runs``), or a temporary one."""
    raw = (compute.server_settings().dataset_runs or "").strip()
    p = Path(raw).expanduser() if raw else Path(_temporary_runs())
    p.mkdir(parents=True, exist_ok=True)
    return p


def runs_are_kept() -> bool:
    return bool((compute.server_settings().dataset_runs or "").strip())


#: who started a run when nobody is signed in (an open server, or the shared password,
#: which says nothing about who typed it); never the server's OS user
VISITOR = "a visitor"


def who() -> str:
    """The signed-in person (e-mail or name), else :data:`VISITOR`."""
    try:
        user = st.user
        if getattr(user, "is_logged_in", False):
            return str(getattr(user, "email", None) or getattr(user, "name", None) or VISITOR)
    except Exception:  # noqa: BLE001 - st.user is unavailable without auth configured
        pass
    return VISITOR


def sharing_note(shared_folder: bool, mode: str) -> str:
    """What the uploader says about who will see a stored run (``shared_folder``: runs
    go to the operator's ``dataset_runs`` folder, which outlives the server process;
    ``mode``: the server's access mode, "open", "password" or "oidc")."""
    audience = {"open": "everyone who can reach this server (it has no sign-in)",
                "password": "everyone who has this server's team password",
                "oidc": "everyone who can sign in to this server"}.get(mode, "everyone on this server")
    where = ("kept in the server's shared runs folder" if shared_folder
             else "kept on this server until it restarts")
    return (f"Your zip, its file names and thumbnails, and the results are {where} and "
            f"listed under **Stored runs** for {audience}, with \"by\" showing who started "
            "the run (your sign-in name, or \"a visitor\"). Upload only images your "
            "colleagues may see.")


def stored_runs() -> List[RunInfo]:
    return list_runs(runs_folder())


def _slug(text: str, n: int = 24) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return s[:n] or "run"


@st.cache_resource(show_spinner=False, max_entries=8)
def _open(path: str, signature: Tuple) -> DatasetResult:
    return interpret.open_dataset(path)


def open_run(path: str) -> DatasetResult:
    """A stored run, reread when its files change (the result object is shared and only
    read)."""
    store = Store(path)
    files = store.part_files()
    sig = (len(files), max((f.stat().st_mtime_ns for f in files), default=0),
           store.manifest_path.stat().st_mtime_ns if store.exists() else 0)
    return _open(str(path), sig)


# ----------------------------------------------------------------------------------
# Sources


def folder_path() -> Optional[Path]:
    raw = (compute.server_settings().image_folder or "").strip()
    return Path(raw).expanduser() if raw else None


def sources() -> List[str]:
    out = ["sample"]
    if folder_path() is not None:
        out.append("folder")
    if compute.allow_uploads():
        out.append("upload")
    out.append("stored")
    return out


def zip_layout(task: str, max_images: int) -> Tuple[str, str]:
    """(label, help) of the Dataset page's zip uploader: the file layout a zip must
    have for a model of ``task`` (``max_images``: the upload limit)."""
    if task == "multilabel":
        return ("A zip of the images and a labels.csv of path,labels at its top "
                "(1.jpg,cat;dog — the labels present, separated by ';'; empty: none)",
                f"Up to {max_images} images. The CSV's paths are relative to the zip's top; its labels "
                "must be labels of the model. Rows that cannot be used are skipped and listed.")
    if task == "binary":
        return ("A zip of the images and a labels.csv of path,label at its top (1.jpg,1 — 1: the "
                "positive class, 0: not), or of two folders named 1 and 0",
                f"Up to {max_images} images. The CSV's paths are relative to the zip's top. Rows "
                "that cannot be used are skipped and listed.")
    return ("A zip of class folders (tabby/1.jpg, espresso/2.jpg, ...)",
            f"Up to {max_images} images. Folder names must be labels of the model; files that are "
            "not images are skipped and listed.")


@dataclass(frozen=True)
class Job:
    """An analysis to run: where the images are, how to read them, the settings, and the
    run folder it goes to (the same folder for the same model, settings and images)."""

    source: str          # a folder or zip path
    label: str           # for people
    out: str
    methods: Tuple[str, ...]
    target: str
    trust: bool
    upload: bool = False
    #: the person's class map: (class name, model label) pairs; and whether the names
    #: they chose to leave out (and any other unmatched name) are skipped
    class_map: Tuple[Tuple[str, str], ...] = ()
    skip_unmatched: bool = False

    def read_kw(self) -> Dict[str, Any]:
        """The keyword arguments that list this job's source (read_source,
        analyze_dataset): the upload limits, the class map."""
        kw: Dict[str, Any] = dict(max_images=MAX_UPLOAD_IMAGES, max_total_bytes=MAX_UPLOAD_BYTES) if self.upload else {}
        if self.class_map:
            kw["class_map"] = dict(self.class_map)
        if self.skip_unmatched:
            kw["unmatched"] = "skip"
        return kw


def plan(handle: interpret.ModelHandle, kind: str, methods: Sequence[str], target: str, trust: bool,
         upload: Optional[Tuple[str, bytes]] = None, class_map: Optional[Dict[str, str]] = None,
         skip_unmatched: bool = False) -> Job:
    """The :class:`Job` for a start option; InputError when the source cannot be used.
    ``class_map`` / ``skip_unmatched``: the Dataset page's "Class names" control (they
    change which images are read and as what, so they are part of the run's folder)."""
    from dataclasses import replace

    job = _plan(handle, kind, methods, target, trust, upload)
    cmap = tuple(sorted((class_map or {}).items()))
    if not cmap and not skip_unmatched:
        return job
    tag = hashlib.blake2b(repr((cmap, bool(skip_unmatched))).encode(), digest_size=4).hexdigest()
    out = f"{job.out}-map{tag}"
    if job.upload:  # the uploaded zip is copied next to the run that reads it
        Path(out).mkdir(parents=True, exist_ok=True)
        zpath = Path(out) / "source.zip"
        if not zpath.exists():
            tmp = Path(out) / f".tmp-{os.getpid()}-source.zip"
            tmp.write_bytes(Path(job.source).read_bytes())
            os.replace(tmp, zpath)
        job = replace(job, source=str(zpath))
    return replace(job, out=out, class_map=cmap, skip_unmatched=bool(skip_unmatched))


def _plan(handle: interpret.ModelHandle, kind: str, methods: Sequence[str], target: str, trust: bool,
          upload: Optional[Tuple[str, bytes]] = None) -> Job:
    layer = interpret.default_layer(handle)
    settings = JobSettings(methods=tuple(methods), layer=layer or "", target=target, trust=trust)
    key = run_key(handle.fingerprint(), handle.labels, repr(handle.preprocessing), settings)[:12]
    root = runs_folder()
    if kind == "sample":
        return Job(str(SAMPLE_SET), "the sample set", str(root / f"sample-{key}"), tuple(methods), target, trust)
    if kind == "folder":
        p = folder_path()
        if p is None or not p.is_dir():
            raise interpret.InputError("The server's image folder is not available.")
        tag = hashlib.blake2b(str(p.resolve()).encode(), digest_size=4).hexdigest()
        if handle.task in ("multilabel", "binary") and (p / "labels.csv").is_file():
            p = p / "labels.csv"  # its labels.csv of path,labels lists the set
        return Job(str(p), "the server's image folder", str(root / f"folder-{tag}-{key}"), tuple(methods),
                   target, trust)
    if kind == "upload" and upload is not None:
        name, data = upload
        digest = hashlib.blake2b(data, digest_size=6).hexdigest()
        out = root / f"upload-{_slug(Path(name).stem, 16)}-{digest}-{key}"
        zpath = out / "source.zip"
        if not zpath.exists():
            out.mkdir(parents=True, exist_ok=True)
            tmp = out / f".tmp-{os.getpid()}-source.zip"
            tmp.write_bytes(data)
            os.replace(tmp, zpath)
        return Job(str(zpath), name, str(out), tuple(methods), target, trust, upload=True)
    raise interpret.InputError("Choose where the images come from.")


def check_source(handle: interpret.ModelHandle, job: Job) -> Tuple[int, List[Tuple[str, str]]]:
    """(images, skipped) of a job's source before it runs (folder names checked)."""
    src = read_source(job.source, handle.labels, model=handle.name, task=handle.task, **job.read_kw())
    return len(src), list(src.skipped)


@st.cache_data(show_spinner=False, max_entries=16)
def _class_names(source: str, stamp: int, labels: Tuple[str, ...], upload: bool) -> list:
    from interpret.dataset.sources import class_names

    kw = dict(max_images=MAX_UPLOAD_IMAGES, max_total_bytes=MAX_UPLOAD_BYTES) if upload else {}
    return class_names(source, list(labels), **kw)


def class_names(handle: interpret.ModelHandle, job: Job) -> list:
    """The class names of a job's source (:func:`interpret.dataset.sources.class_names`,
    without the person's map), cached per source and its modification time.  None for
    a multi-label or binary model: its set's labels are a CSV's or the folders 1 and 0."""
    if handle.task in ("multilabel", "binary"):
        return []
    p = Path(job.source)
    stamp = p.stat().st_mtime_ns if p.exists() else 0
    return _class_names(str(p), stamp, tuple(handle.labels), job.upload)


#: the two choices of the "Class names" control besides the model's labels
CHOOSE, LEAVE_OUT = "\u2014 choose a label \u2014", "(leave these images out)"


def unmapped_message(names: Sequence[Any], shown: int = 8) -> str:
    """What the Dataset page says when class names of the set match no label of the
    model and have no label chosen yet (``names``: :class:`interpret.dataset.sources.
    ClassName`), as markup (the names are a visitor's, escaped): how many, which (with
    the close labels), and the control that fixes it."""
    if not names:
        return ""
    parts = []
    for c in list(names)[:shown]:
        hint = (" (did you mean " + " or ".join(f"*{words.text(x)}*" for x in c.close) + "?)") if c.close else ""
        parts.append(f"*{words.text(c.name)}*{hint}")
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    one = len(names) == 1
    return (f"{len(names)} class name{'' if one else 's'} of this set match{'es' if one else ''} no label of "
            f"the model: {', '.join(parts)}{more}. Choose {'its' if one else 'their'} label under "
            f"**Class names** above, or leave {'its' if one else 'their'} images out there.")


def engine() -> Tuple[str, Optional[str]]:
    """("ray", address) when the server is pointed at a Ray cluster ($RAY_ADDRESS), else
    ("local", None)."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    return ("ray", address) if address else ("local", None)


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return ""
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    return f"about {seconds / 60:.0f} min left"


def run(handle: interpret.ModelHandle, job: Job, bar) -> DatasetResult:
    """Run (or continue, or serve) a job through the compute gate, with the progress bar
    showing the queue position, then images done, the rate and an ETA."""
    started: Dict[str, Any] = {}

    def waiting(position: int) -> None:
        bar.progress(0.0, text=f"The server is busy with other people's computations; you are number "
                               f"{position} in the queue.")

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if "t" not in started:
            started.update(t=now, done=done)
        rate = (done - started["done"]) / (now - started["t"]) if now > started["t"] else 0.0
        eta = _eta((total - done) / rate) if rate > 0 and done < total else ""
        text = f"Analysing {job.label}: {done} of {total} images" + (f", {rate:.1f} per second, {eta}" if eta else "")
        bar.progress(min(1.0, done / max(1, total)), text=text + ".")

    kind, address = engine()
    kw = job.read_kw()

    def work(prog):
        return interpret.analyze_dataset(
            handle, job.source, methods=list(job.methods), out=job.out, batch_size=BATCH_SIZE,
            progress=prog, target=job.target, trust=job.trust, engine=kind, ray_address=address,
            created_by=who(), name=f"{job.label} ({', '.join(job.methods)})", **kw)

    t0 = time.perf_counter()
    out = compute.run_gated(work, progress=progress, on_wait=waiting, handle=handle)
    log.info("dataset analysis of %s took %.1fs", job.source, time.perf_counter() - t0)
    return out


# ----------------------------------------------------------------------------------
# Opening one image on the Attributions page


def open_in_attributions(result: DatasetResult, path: str) -> None:
    """Put one image of a run in this session as the uploaded photo, explain its class
    there, and switch to the Attributions page."""
    row = result.table()
    row = row[row["path"] == path]
    if row.empty:  # only images of the run (the click's data comes from the browser)
        raise interpret.InputError("That image is not part of this run.")
    data = result.image_bytes(path)
    if data is None:  # the set is gone: the stored thumbnail is what there is
        data = (result.thumbnails([path]) or [None])[0]
    if data is None:
        raise interpret.InputError(f"The image {path} is no longer available.")
    compute.store_image_bytes("upload", data, Path(path).name)
    state.set("target", int(row["target_index"].iloc[0]))
    state.set("method", result.methods[0] if result.methods[0] in
              [m.name for m in interpret.methods()] else "gradcam")
    st.switch_page("pages/4_Attributions.py")


def cam_methods() -> List[str]:
    """The methods offered on the page: the gradient CAMs (batched, one pass each batch)."""
    return [m for m in BATCHED_CAMS]


def method_label(name: str) -> str:
    try:
        return interpret.get_method(name).label
    except interpret.InputError:
        return name


def when(iso: str) -> str:
    try:
        t = dt.datetime.fromisoformat(iso)
        return t.astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return iso or ""


def message(exc: BaseException, what: str) -> str:
    return error_message(exc, what) or str(exc)
