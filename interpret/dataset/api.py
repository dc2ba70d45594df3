""":func:`analyze_dataset`: predictions and explanations for a whole labelled image set,
stored, resumable, on this machine or on Ray."""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

from ..errors import InputError, Progress, report
from ..words import a_task
from ..layers import check_layer
from .batch import LABEL_TASKS, JobSettings, TARGETS, check_methods, map_size
from .engines import ENGINES, plan_batches, run_local, run_ray
from .result import DatasetResult
from .sources import MAX_DATASET_IMAGES, MAX_ZIP_BYTES, Box, DatasetSource, read_source
from .store import Store

__all__ = ["analyze_dataset", "run_key"]

MAX_BATCH = 1024
#: What a result folder may hold besides a run (an uploaded zip the run reads).
OWN_FILES = {"manifest.json", "items.parquet", "parts", ".lock", "source.zip"}


def run_key(fingerprint: str, labels: Sequence[str], preprocessing: str, settings: JobSettings,
            task: str = "classification") -> str:
    """The identity of a run: the model's weights and preprocessing, its labels, its
    task, and the settings.  Two runs with the same key compute the same numbers, so the
    store serves the second; the batch size and the engine do not change the results
    and are not part of it."""
    h = hashlib.blake2b(digest_size=12)
    what = [fingerprint, list(labels), preprocessing, settings.as_dict()]
    if task != "classification":  # (a classifier's key is the one runs stored before tasks)
        what.append(task)
    h.update(json.dumps(what, sort_keys=True).encode())
    return h.hexdigest()


def _check_box(label: str, box) -> Box:
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"The box of '{label}' must be four numbers (x0, y0, x1, y1).") from None
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise InputError(f"The box of '{label}' must have 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 "
                         "(fractions of the image as the model sees it).")
    return (x0, y0, x1, y1)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return ""


def analyze_dataset(
    model,
    source: Union[str, os.PathLike, DatasetSource],
    methods: Sequence[str] = ("gradcam",),
    out: Union[str, os.PathLike, None] = None,
    *,
    engine: str = "local",
    batch_size: int = 32,
    progress: Optional[Progress] = None,
    layer: Optional[str] = None,
    target: str = "label",
    top_k: int = 5,
    boxes: Optional[Mapping[str, Sequence[float]]] = None,
    trust: bool = False,
    trust_steps: int = 20,
    trust_baseline: str = "blur",
    features: bool = True,
    thumbnails: int = 112,
    class_map: Optional[Mapping[str, str]] = None,
    unmatched: str = "error",
    max_images: int = MAX_DATASET_IMAGES,
    max_total_bytes: int = MAX_ZIP_BYTES,
    ray_address: Optional[str] = None,
    workers: Optional[int] = None,
    num_gpus: Optional[float] = None,
    overwrite: bool = False,
    name: Optional[str] = None,
    created_by: Optional[str] = None,
) -> DatasetResult:
    """Predict and explain every image of a labelled set, store the results in ``out``
    and return them (:class:`~interpret.dataset.DatasetResult`).

    ``source``: a folder of class folders (torchvision's ImageFolder layout, folder
    names matched to the model's labels), a ``.zip`` of one, or a ``.csv`` of
    ``path,label`` (see :func:`~interpret.dataset.read_source`; ``class_map``,
    ``unmatched``, ``max_images`` and ``max_total_bytes`` go there).  ``methods``:
    registry ids; the five gradient CAMs run batched from one recorded pass, any other
    method one image at a time.  ``layer``: default the model's suggested layer;
    ``target``: explain each image's true ``"label"`` (default) or its
    ``"prediction"``.  ``boxes``: {class: (x0, y0, x1, y1)}, where each class's object
    is, in fractions of the model's view, for the "outside the box" flags.
    ``trust``: the faithfulness figures of each primary map (slow).

    Multi-label and binary models (``handle.task``): the set is a CSV whose label
    column lists the labels present, ``;``-separated (multi-label), or is 1 or 0
    (binary; also two folders named ``1`` and ``0``).  Every label's sigmoid
    probability is stored, and one map per explained label of each image (the labels
    present, or predicted with ``target="prediction"``; a binary model's positive
    class, or what lowers it for a negative image); ``result.per_label()`` gives the
    precision and recall per label, and the where-it-looks figures and flags are per
    label.  Other tasks (segmentation, regression) are refused with a sentence.

    ``out``: the result folder (default: a new temporary one).  A job that stops
    (cancelled, killed, crashed) leaves every finished batch there; running it again
    with the same model and settings computes only the missing images, and a finished
    run is served from the folder.  A folder holding another run is refused unless
    ``overwrite``.  ``engine``: ``"local"`` (this process) or ``"ray"`` (``ray_address``
    or ``$RAY_ADDRESS``, else a local Ray; ``workers`` actors with ``num_gpus`` each).
    ``progress(done, total)`` counts images; raise :class:`interpret.Cancelled` in it to
    stop (what is finished stays stored)."""
    from ..explain import as_handle

    handle = as_handle(model)
    handle.check_ready()
    task = handle.task
    if task not in ("classification", *LABEL_TASKS):
        raise InputError(
            f"Dataset mode analyses classifiers (single-label, multi-label and binary) for now; "
            f"'{handle.name}' is {a_task(task)}. Explain its photos one at a time on the other pages.")
    if task in LABEL_TASKS and trust:
        raise InputError("The faithfulness figures of a dataset analysis are computed for "
                         "single-label classifiers only for now; run this multi-label or binary "
                         "analysis with trust=False (check single photos on the Attributions page).")
    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}.")
    if target not in TARGETS:
        raise InputError(f"target must be 'label' or 'prediction'; got {target!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise InputError(f"The batch size must be a whole number from 1 to {MAX_BATCH}; got {batch_size!r}.")
    methods = check_methods(methods)
    layer = check_layer(handle, layer)
    labels = handle.labels
    given: Dict[str, Box] = {}
    for lab, b in (boxes or {}).items():
        if lab not in labels:
            raise InputError(f"A box was given for '{lab}', which is not a label of the model.")
        given[lab] = _check_box(lab, b)
    settings = JobSettings(methods=methods, layer=layer, target=target, top_k=int(top_k),
                           thumb=int(thumbnails), features=bool(features), trust=bool(trust),
                           trust_steps=int(trust_steps), trust_baseline=str(trust_baseline))
    src = read_source(source, labels, class_map=class_map, unmatched=unmatched,
                      max_images=max_images, max_total_bytes=max_total_bytes, model=handle.name,
                      task=task)
    root = Path(out).expanduser() if out is not None else Path(tempfile.mkdtemp(prefix="interpret-dataset-"))
    store = Store(root)
    if root.is_dir() and not store.exists():
        foreign = [p.name for p in root.iterdir() if p.name not in OWN_FILES and not p.name.startswith(".tmp-")]
        if foreign:
            raise InputError(f"{root} is not empty and holds no analysis (it has {foreign[0]!r}); "
                             "choose a new or empty folder for the results.")
    key = run_key(handle.fingerprint(), labels, repr(handle.preprocessing), settings, task)
    with store.lock():
        store.clean_temporary()
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        old = None
        if store.exists():
            try:
                old = store.read_manifest()
            except InputError:
                if not overwrite:
                    raise
            if old is not None and old.get("run_key") != key:
                if not overwrite:
                    raise InputError(
                        f"{root} holds another analysis ({old.get('model', {}).get('name')}, "
                        f"{', '.join(old.get('settings', {}).get('methods', []))} at "
                        f"{old.get('settings', {}).get('layer')}, target {old.get('settings', {}).get('target')}); "
                        "choose another folder, or overwrite it (overwrite=True, --overwrite).")
                store.clear()
                old = None
        store.create()
        manifest = {
            "run_key": key, "name": name or (old or {}).get("name") or root.name,
            "created_by": (old or {}).get("created_by") or created_by or _user(),
            "created_at": (old or {}).get("created_at") or now, "updated_at": now,
            "model": {"name": handle.name, "fingerprint": handle.fingerprint(), "source": handle.source,
                      "preprocessing": handle.preprocessing.describe()},
            "labels": labels, "task": task, "settings": settings.as_dict(),
            "map_shape": list(map_size(handle, layer)), "input_size": list(handle.input_size),
            "source": {"kind": src.kind, "root": str(Path(src.root).resolve()),
                       "base": str(Path(src._base).resolve()) if src._base else "",
                       "description": src.describe()},
            "classes": [list(c) for c in src.classes], "skipped": [list(s) for s in src.skipped],
            "total": len(src), "boxes": {k: list(v) for k, v in given.items()} if boxes is not None
            else (old or {}).get("boxes", {}),
            "engine": engine, "batch_size": batch_size, "status": "running",
            "seconds": (old or {}).get("seconds", 0.0),
        }
        store.write_manifest(manifest)
        store.write_items(src.items)
        stored = store.stored_keys()
        missing = [it for it in src.items if it.key not in stored]
        done = len(src) - len(missing)
        report(progress, done, len(src))
        batches = plan_batches(missing, batch_size)
        t0 = time.perf_counter()
        status = "stopped"
        try:
            if engine == "local":
                run_local(handle, settings, src, store, batches, done, len(src), progress)
            else:
                run_ray(handle, settings, src, store, batches, done, len(src), progress,
                        address=ray_address, workers=workers, num_gpus=num_gpus)
            status = "complete"
        finally:
            _close(store, status, manifest["seconds"] + time.perf_counter() - t0,
                   failing=status != "complete")
    return DatasetResult(root)


def _close(store: Store, status: str, seconds: float, failing: bool) -> None:
    """Record how the job ended in the manifest.  When the job itself is failing (a full
    disk, say) and this write fails too, the job's own error is the one raised: a second
    error must not hide the first (readers take the status from the stored rows and the
    lock, not from this field)."""
    try:
        store.update_manifest(status=status, seconds=seconds,
                              updated_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    except (OSError, InputError):
        if not failing:
            raise
