"""The Ray engine: a local Ray with 2 CPUs started once for this module (and shut down
after it), the same results as the local engine bit for bit, and a worker killed in the
middle of a job that loses nothing."""

from __future__ import annotations

import glob
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import interpret
from interpret.dataset.store import Store
from test_dataset import planted_set, tiny, tiny_model  # noqa: F401  (fixtures)

ray = pytest.importorskip("ray", reason='the Ray engine needs pip install "interpret-dashboard[ray]"')

pytestmark = [pytest.mark.usefixtures("single_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray cluster of 2 CPUs for this module: CI starts none of its own."""
    if ray.is_initialized():
        ray.shutdown()
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_run(tiny, planted_set, tmp_path_factory):  # noqa: F811
    return interpret.analyze_dataset(tiny, planted_set, methods=["gradcam", "layercam"],
                                     out=tmp_path_factory.mktemp("local") / "run", batch_size=6)


def _same(a, b) -> None:
    ta, tb = a.table(), b.table()
    cols = ["path", "label", "prediction", "probability", "label_probability", "score", "correct"]
    assert ta[cols].equals(tb[cols])
    assert ta["topk_probability"].map(list).tolist() == tb["topk_probability"].map(list).tolist()
    for m in a.methods:
        assert np.array_equal(a.maps(m), b.maps(m)), m  # bit for bit
    assert np.array_equal(a.embedding()[0], b.embedding()[0])
    assert [(f.label, f.box) for f in a.flags] == [(f.label, f.box) for f in b.flags]


def test_ray_and_local_engines_agree_bit_for_bit(local_ray, tiny, planted_set, local_run, tmp_path):  # noqa: F811
    r = interpret.analyze_dataset(tiny, planted_set, methods=["gradcam", "layercam"], out=tmp_path / "ray",
                                  batch_size=6, engine="ray", workers=2)
    assert r.stored_rows == r.total == 60 and r.status == "complete"
    _same(local_run, r)
    assert [f.label for f in r.flags] == ["marked"]
    assert r.manifest["engine"] == "ray"


def _worker_processes(busy: bool):
    """(pid, title) of this machine's Ray dataset workers (busy: running a batch)."""
    want = "DatasetWorker.run" if busy else "DatasetWorker"
    out = []
    for f in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            title = Path(f).read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::") and want in title:
            out.append((int(f.split("/")[2]), title.strip()))
    return out


def test_a_worker_killed_mid_job_is_replaced_and_nothing_is_lost(local_ray, tiny, planted_set, local_run,  # noqa: F811
                                                                 tmp_path):
    killed = []

    def kill_one_busy_worker(done: int, total: int) -> None:
        if killed or done < 12:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the other worker is running its next batch
            busy = _worker_processes(busy=True)
            if busy:
                os.kill(busy[0][0], signal.SIGKILL)
                killed.append(busy[0][0])
                return
            time.sleep(0.002)

    out = tmp_path / "ray-kill"
    r = interpret.analyze_dataset(tiny, planted_set, methods=["gradcam", "layercam"], out=out, batch_size=6,
                                  engine="ray", workers=2, progress=kill_one_busy_worker)
    assert killed, "no worker was seen running a batch"
    assert killed[0] not in [pid for pid, _ in _worker_processes(busy=False)]
    keys = Store(out).stored_keys()
    assert r.stored_rows == 60 and len(keys) == 60  # every image once
    _same(local_run, r)


def test_a_multilabel_run_on_ray_equals_the_local_one(local_ray, tiny_model, planted_set, tmp_path):  # noqa: F811
    """The same model read as multi-label (a sigmoid per class), on a CSV of ';'-separated
    labels: the per-label precision and recall and every label's map agree bit for bit."""
    from interpret.dataset import synthetic as syn
    from interpret.preprocessing import Preprocessing

    h = interpret.load_model(tiny_model, labels=list(syn.CLASSES), name="tiny as multi-label", task="multilabel",
                             preprocessing=Preprocessing(resize=(syn.SIZE, syn.SIZE), crop=None, mean=syn.MEAN,
                                                         std=syn.STD))
    paths = sorted(p.relative_to(planted_set).as_posix() for p in planted_set.rglob("*.png"))[:18]
    rows = [f"{planted_set / p},{p.split('/')[0]}" + (";square" if k % 3 == 0 else "") for k, p in enumerate(paths)]
    (tmp_path / "set.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    a = interpret.analyze_dataset(h, tmp_path / "set.csv", out=tmp_path / "local", batch_size=5)
    b = interpret.analyze_dataset(h, tmp_path / "set.csv", out=tmp_path / "ray", batch_size=5, engine="ray",
                                  workers=2)
    assert b.task == "multilabel" and b.stored_rows == b.total == 18 and b.manifest["engine"] == "ray"
    assert a.per_label().equals(b.per_label())
    assert len(a.maps()) == len(b.maps()) > 18 and np.array_equal(a.maps(), b.maps())
    assert a.table()["probabilities"].map(list).tolist() == b.table()["probabilities"].map(list).tolist()
