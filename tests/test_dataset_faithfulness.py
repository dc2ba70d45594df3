"""Dataset faithfulness, batched (issue 17): the perturbed images of several photos go
through the model in shared batches (interpret.trust.faithfulness.faithfulness_many),
the numbers equal one faithfulness() call per photo, and progress is reported after
every batch (counts only: speed is measured in benchmarks/bench_dataset.py)."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import interpret
from interpret.dataset import synthetic as syn
from interpret.dataset.batch import TRUST_FIELDS

fmod = importlib.import_module("interpret.trust.faithfulness")  # the module (its function shares the name)

import tiny_models as tm

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = sorted((ROOT / "assets" / "dataset_sample").glob("*/*.jpg"))[::8][:5]
STEPS, SEEDS = 6, 2


@pytest.fixture(scope="module")
def cnn() -> interpret.ModelHandle:
    return interpret.load_model(tm.small_cnn(), labels=["a", "b", "c", "d", "e"], resize=72, crop=64)


def _fresh(handle):
    return handle.with_info()  # the same module, an empty cache: nothing is reused


def _photos_and_maps(handle, methods=("gradcam",)):
    images = [interpret.load_image(p) for p in PHOTOS]
    expl = [interpret.explain(handle, im, methods[k % len(methods)], layer="relu2", target=k % 5)
            for k, im in enumerate(images)]
    return images, expl


FIELDS = ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc",
          "random_deletion_auc_std", "random_insertion_auc_std", "probability", "baseline_probability")


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_batched_faithfulness_equals_one_call_per_photo(cnn, batch_size):
    """Every number of the batched call (curves, areas, spreads, verdict) equals a call
    of faithfulness() on each photo alone, whatever the batches' borders."""
    images, expl = _photos_and_maps(cnn, ("gradcam", "saliency"))
    many = fmod.faithfulness_many(_fresh(cnn), images, expl, steps=STEPS, seeds=SEEDS,
                                  batch_size=batch_size)
    assert len(many) == len(images)
    for im, e, b in zip(images, expl, many):
        a = interpret.faithfulness(_fresh(cnn), im, e, steps=STEPS, seeds=SEEDS)
        for k in FIELDS:
            assert getattr(b, k) == pytest.approx(getattr(a, k), abs=1e-6), k
        for k in ("deletion", "insertion", "random_deletion", "random_insertion"):
            np.testing.assert_allclose(getattr(b, k), getattr(a, k), atol=1e-6, err_msg=k)
        assert (b.verdict, b.target, b.grid, b.method) == (a.verdict, a.target, a.grid, a.method)
        assert b.forwards == a.forwards + 1  # the photo itself is one of the batch's images


def test_progress_is_reported_after_every_batch_in_photos_done(cnn):
    """One report per batch of perturbed images; the count is the photos whose every
    perturbed image has been through the model (photos are laid out one after another)."""
    images, expl = _photos_and_maps(cnn)
    per_photo = 2 + (1 + SEEDS) * 2 * (STEPS - 1)   # the photo, its reference, its curves
    bs = 9
    calls = []
    fmod.faithfulness_many(_fresh(cnn), images, expl, steps=STEPS, seeds=SEEDS, batch_size=bs,
                           progress=lambda done, total: calls.append((done, total)))
    n = len(images)
    assert len(calls) == math.ceil(n * per_photo / bs)
    assert all(t == n for _, t in calls)
    want = [min(n, (b + 1) * bs // per_photo) for b in range(len(calls))]
    assert [d for d, _ in calls] == want
    assert calls[-1][0] == n and want[0] == 0 < want[len(want) // 2] < n  # it moves within


def test_cancelling_stops_the_batches(cnn):
    images, expl = _photos_and_maps(cnn)
    seen = []

    def stop(done, total):
        seen.append(done)
        if len(seen) == 2:
            raise interpret.Cancelled("stopped")

    with pytest.raises(interpret.Cancelled):
        fmod.faithfulness_many(_fresh(cnn), images, expl, steps=STEPS, seeds=SEEDS, batch_size=4, progress=stop)
    assert len(seen) == 2


def test_mismatched_lists_are_refused(cnn):
    images, expl = _photos_and_maps(cnn)
    with pytest.raises(interpret.InputError, match="5 photos but 4 explanations"):
        fmod.faithfulness_many(cnn, images, expl[:4])


# ----------------------------------------------------------------------------------
# Through analyze_dataset


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    return syn.write_folder(tmp_path_factory.mktemp("ds") / "set", per_class=3, seed=5)


@pytest.fixture(scope="module")
def tiny() -> interpret.ModelHandle:
    # an untrained planted-shortcut CNN is enough to compare two ways of computing
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return syn.tiny_handle(syn.TinyCNN().eval())


def test_dataset_trust_figures_equal_one_call_per_image(tiny, tiny_set, tmp_path, monkeypatch):
    """The stored figures of the batched run equal those of a run whose faithfulness is
    computed one photo at a time (faithfulness() per image, the code before batching)."""
    batched = interpret.analyze_dataset(tiny, tiny_set, out=tmp_path / "batched", trust=True,
                                        trust_steps=STEPS, batch_size=4)

    def one_at_a_time(model, xs, explanations, steps, baseline, batch_size=None, progress=None, **kw):
        return [interpret.faithfulness(model, x, e, steps=steps, baseline=baseline)
                for x, e in zip(xs, explanations)]

    monkeypatch.setattr(fmod, "faithfulness_many", one_at_a_time)
    single = interpret.analyze_dataset(_fresh(tiny), tiny_set, out=tmp_path / "single", trust=True,
                                       trust_steps=STEPS, batch_size=4)
    a = batched.table().set_index("path").sort_index()
    b = single.table().set_index("path").sort_index()
    assert len(a) == 9 and list(a.index) == list(b.index)
    for k in TRUST_FIELDS:
        np.testing.assert_allclose(a[k].to_numpy(float), b[k].to_numpy(float), atol=1e-6, err_msg=k)
    assert list(a["verdict"]) == list(b["verdict"])


def test_dataset_progress_moves_within_a_batch_with_trust(tiny, tiny_set, tmp_path):
    """Defect: the bar sat at "0 of 40" for most of a 163 s run (progress only after
    each batch of images).  With trust, progress comes after every batch of perturbed
    images: many more reports than image batches, never backwards, ending at the total."""
    calls = []
    interpret.analyze_dataset(tiny, tiny_set, out=tmp_path / "run", trust=True, trust_steps=STEPS,
                              batch_size=9, progress=lambda d, t: calls.append((d, t)))
    done = [d for d, _ in calls]
    assert all(t == 9 for _, t in calls)
    assert done == sorted(done) and done[0] == 0 and done[-1] == 9
    # one dataset batch of 9 images; each: itself, its reference, and the deletion and
    # insertion images of its map and 3 random maps: 9 x (2 + 4 x 2 x 5) = 378, in batches of 4
    from interpret.dataset.batch import TRUST_BATCH

    per_photo = 2 + (1 + 3) * 2 * (STEPS - 1)
    inner = math.ceil(9 * per_photo / (TRUST_BATCH or 4))  # 4 on a CPU
    assert len(calls) == 1 + inner + 1  # the start, every inner batch, the stored batch
    assert len({d for d in done if 0 < d < 9}) >= 5  # the count climbs photo by photo
