"""The two engines that run a dataset analysis's batches: ``local`` (in this process,
one batch after another) and ``ray`` (Ray actors, each holding the model once).

Both call :func:`interpret.dataset.batch.run_batch` on the same batches and write each
finished batch to the store as soon as it arrives (never collected in one list), so
their results are equal and a killed job loses at most the batches in flight.

On Ray (https://docs.ray.io): ``ray.init(address=...)`` joins an existing cluster
(``"auto"``, ``"ray://head:10001"``, or the ``RAY_ADDRESS`` environment variable), or
starts a local one.  Each worker is an actor (:class:`DatasetWorker`) that builds the
model once from a :class:`ModelSpec`; batches are actor tasks, at most two in flight
per worker (bounded memory on the driver and in the object store).  Actors are created
with ``max_restarts`` and ``max_task_retries``: a worker process that dies is
restarted and its batch retried, and a batch whose worker cannot be restarted is sent
to another one.  The driver reads the image files and ships their bytes, so workers
need the packages but not the files.
"""

from __future__ import annotations

import copy
import os
import pickle
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..errors import InputError, Progress, report
from ..handle import ModelHandle, ModelInfo
from .batch import JobSettings, Payload, run_batch
from .sources import DatasetSource, Item
from .store import Store, batch_name

__all__ = ["ModelSpec", "plan_batches", "run_local", "run_ray", "DatasetWorker", "ENGINES",
           "RAY_MAX_RESTARTS", "RAY_MAX_TASK_RETRIES"]

ENGINES = ("local", "ray")
#: How often Ray restarts a dead worker, and retries a task whose worker died.
RAY_MAX_RESTARTS = 4
RAY_MAX_TASK_RETRIES = 4
#: Batches in flight per Ray worker (one running, one queued behind it).
IN_FLIGHT_PER_WORKER = 2


def plan_batches(items: Sequence[Item], batch_size: int) -> List[List[Item]]:
    """Consecutive batches of ``batch_size`` images, in the plan's order.  The images
    still missing after a stopped job are whole batches of the first plan, so the
    batches of a resumed job are those of an uninterrupted one."""
    items = list(items)
    return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]


def payload(source: DatasetSource, items: Sequence[Item]) -> List[Payload]:
    """The batch as it travels: keys, labels, boxes and the raw bytes of each file."""
    return [Payload(it.key, it.path, it.label, it.label_index, it.box, data, err, tuple(it.truth))
            for it, (data, err) in zip(items, source.read(items))]


# ----------------------------------------------------------------------------------
# Local


def run_local(handle: ModelHandle, settings: JobSettings, source: DatasetSource, store: Store,
              batches: Sequence[Sequence[Item]], done: int, total: int,
              progress: Optional[Progress] = None) -> int:
    """Run the batches here, one after another; returns the images done.  With the
    faithfulness figures, ``progress`` also moves within a batch (after every batch of
    perturbed images), so a long batch never sits at the same count."""
    for b in batches:
        name = batch_name(i.key for i in b)
        within = (lambda k, done=done: report(progress, done + k, total)) if settings.trust and progress else None
        rows = run_batch(handle, settings, payload(source, b), name, progress=within)
        store.write_part(name, rows, settings.methods)
        done += len(b)
        report(progress, done, total)
    return done


# ----------------------------------------------------------------------------------
# Ray


@dataclass(frozen=True)
class ModelSpec:
    """How a Ray worker gets the model: the module (on the CPU), its
    :class:`~interpret.ModelInfo` and the weights' fingerprint.  A
    :class:`~interpret.ModelHandle` holds locks and caches and does not travel; this
    does (Ray pickles it with cloudpickle: a module's class is sent by reference when
    it can be imported on the worker, which needs the same packages installed, and by
    value when it was defined in a script or notebook).  The worker checks the
    fingerprint of what it built, so it explains exactly the model it was given."""

    module: nn.Module
    info: ModelInfo
    fingerprint: str

    @staticmethod
    def from_handle(handle: ModelHandle) -> "ModelSpec":
        fp = handle.fingerprint()
        # the model's write lock: no explanation has hooks on it while it is pickled
        with handle.rwlock.write():
            module = handle.module
            if any(p.device.type != "cpu" for p in module.parameters()):
                module = copy.deepcopy(module).cpu()
            return ModelSpec(module, handle.info, fp)

    def build(self) -> ModelHandle:
        handle = ModelHandle(self.module, info=self.info)
        if handle.fingerprint() != self.fingerprint:
            raise InputError("The model a Ray worker rebuilt differs from the driver's (its weights' "
                             "fingerprint does not match): check that the workers run the same "
                             "versions of torch and of the model's code.")
        return handle


class DatasetWorker:
    """A Ray actor: builds the model once, then runs batches (:func:`run_batch`)."""

    def __init__(self, spec: ModelSpec, settings: dict, threads: int = 1):
        torch.set_num_threads(max(1, int(threads)))
        self.handle = spec.build()
        try:
            import ray

            gpus = ray.get_gpu_ids()
        except Exception:  # noqa: BLE001 - outside Ray (tests of the class itself)
            gpus = []
        if gpus and torch.cuda.is_available():
            self.handle.module.to("cuda")
        self.settings = JobSettings.from_dict(settings)

    def pid(self) -> int:
        return os.getpid()

    def run(self, name: str, items: List[Payload]) -> List[dict]:
        return run_batch(self.handle, self.settings, items, name)


def _ray():
    from ..optional import require

    return require('engine="ray"', "ray", "ray")[0]


def ray_connect(address: Optional[str] = None, num_cpus: Optional[int] = None):
    """The Ray module, connected: to ``address`` (or ``$RAY_ADDRESS``) when given, else
    to the Ray this process already joined, else a new local Ray (``num_cpus``)."""
    ray = _ray()
    if not ray.is_initialized():
        kwargs = dict(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                      configure_logging=False)
        if address or os.environ.get("RAY_ADDRESS"):
            kwargs["address"] = address or os.environ["RAY_ADDRESS"]
        elif num_cpus:
            kwargs["num_cpus"] = int(num_cpus)
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise InputError(f"Cannot reach the Ray cluster at {kwargs.get('address')}: {exc}") from None
    return ray


def _cause(exc: BaseException) -> BaseException:
    return getattr(exc, "cause", None) or exc


def run_ray(handle: ModelHandle, settings: JobSettings, source: DatasetSource, store: Store,
            batches: Sequence[Sequence[Item]], done: int, total: int,
            progress: Optional[Progress] = None, *, address: Optional[str] = None,
            workers: Optional[int] = None, num_gpus: Optional[float] = None,
            threads: int = 1) -> int:
    """Run the batches on Ray actors (see the module docstring); returns the images done.
    ``workers``: actors (default: the cluster's CPUs, at most one per batch);
    ``num_gpus``: GPUs per actor (default: 1 when the cluster has GPUs, else 0)."""
    if not batches:
        return done
    ray = ray_connect(address, num_cpus=workers)
    from ray.exceptions import RayActorError

    resources = ray.cluster_resources()
    if num_gpus is None:
        num_gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
    n = int(workers or max(1, int(resources.get("CPU", 1)) // max(1, threads)))
    if num_gpus:
        n = min(n, max(1, int(resources.get("GPU", 0) / num_gpus)))
    n = max(1, min(n, len(batches)))
    try:
        spec_ref = ray.put(ModelSpec.from_handle(handle))
    except (TypeError, AttributeError, pickle.PicklingError) as exc:
        raise InputError(f"This model cannot be sent to Ray workers ({exc}). Load it from a "
                         "checkpoint with its architecture, or use engine='local'.") from None
    Worker = ray.remote(DatasetWorker).options(
        num_cpus=threads, num_gpus=num_gpus, max_restarts=RAY_MAX_RESTARTS,
        max_task_retries=RAY_MAX_TASK_RETRIES)
    actors = [Worker.remote(spec_ref, settings.as_dict(), threads) for _ in range(n)]
    try:
        try:
            ray.get([a.pid.remote() for a in actors])  # every worker built the model
        except InputError as exc:
            raise InputError(str(_cause(exc))) from None
        except RayActorError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"A Ray worker could not build the model ({first[:300]}). The workers need "
                             "the same packages as this process (see docs/dataset.md).") from None
        queue: Deque[Tuple[List[Item], int]] = deque((list(b), 0) for b in batches)
        inflight: Dict = {}
        load = [0] * n

        def submit(k: int) -> None:
            b, tries = queue.popleft()
            name = batch_name(i.key for i in b)
            ref = actors[k].run.remote(name, payload(source, b))
            inflight[ref] = (b, tries, k, name)
            load[k] += 1

        alive = set(range(n))
        for _ in range(IN_FLIGHT_PER_WORKER):
            for k in range(n):
                if queue:
                    submit(k)
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            ref = ready[0]
            b, tries, k, name = inflight.pop(ref)
            load[k] -= 1
            try:
                rows = ray.get(ref)
            except RayActorError:
                # the worker died more often than it may be restarted: retry the batch
                # on another one
                alive.discard(k)
                if not alive or tries >= RAY_MAX_TASK_RETRIES:
                    raise InputError("The Ray workers keep dying (out of memory?); the finished "
                                     "batches are stored: run the job again to continue.") from None
                queue.appendleft((b, tries + 1))
                submit(min(alive, key=lambda j: load[j]))
                continue
            except InputError as exc:
                raise InputError(str(_cause(exc))) from None
            store.write_part(name, rows, settings.methods)
            done += len(b)
            report(progress, done, total)
            while queue and alive and load[k] < IN_FLIGHT_PER_WORKER and k in alive:
                submit(k)
            while queue and alive and len(inflight) < IN_FLIGHT_PER_WORKER * len(alive):
                submit(min(alive, key=lambda j: load[j]))
        return done
    finally:
        for a in actors:
            ray.kill(a)
