"""Dataset mode (interpret.analyze_dataset): sources, batched CAMs, the store, resuming
after a kill, the planted shortcut, trust plumbing, the command line.

The planted shortcut: a tiny CNN trained once per session (about 5-10 s on one thread)
on 64 x 64 images where the class "marked" always carries a watermark in the
bottom-right corner (interpret.dataset.synthetic).  Everything else runs on a few dozen
tiny images; the kill-and-resume test runs the real command line on the bundled model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import interpret
from interpret.dataset import FlagRules, read_source, synthetic as syn
from interpret.dataset.store import Store

pytestmark = pytest.mark.usefixtures("single_thread")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SET = ROOT / "assets" / "dataset_sample"


# ----------------------------------------------------------------------------------
# fixtures (also imported by test_dataset_ray.py)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> syn.TinyCNN:
    """The planted-shortcut CNN, trained once per session (its weights are kept in the
    session's temporary folder, so a second test module loads them instead)."""
    path = tmp_path_factory.getbasetemp() / "tiny_planted_cnn.pt"
    if path.exists():
        model = syn.TinyCNN()
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = syn.train_tiny_cnn()
    finally:
        torch.set_num_threads(n)
    torch.save(model.state_dict(), path)
    return model


@pytest.fixture(scope="session")
def tiny(tiny_model) -> interpret.ModelHandle:
    return syn.tiny_handle(tiny_model)


@pytest.fixture(scope="session")
def planted_set(tmp_path_factory) -> Path:
    """20 images per class, not the ones the model was trained on."""
    return syn.write_folder(tmp_path_factory.mktemp("planted") / "set", per_class=20, seed=1)


@pytest.fixture(scope="session")
def planted_result(tiny, planted_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("planted-run") / "run"
    return interpret.analyze_dataset(tiny, planted_set, methods=["gradcam"], out=out, batch_size=16)


def _small_set(root: Path, per_class: int = 3) -> Path:
    return syn.write_folder(root, per_class=per_class, seed=5)


# ----------------------------------------------------------------------------------
# sources


def test_folder_zip_and_csv_list_the_same_images_and_labels(tmp_path):
    folder = _small_set(tmp_path / "set")
    zpath = tmp_path / "set.zip"
    with zipfile.ZipFile(zpath, "w") as zf:  # with one folder around the class folders
        for p in sorted(folder.rglob("*.png")):
            zf.write(p, "val/" + p.relative_to(folder).as_posix())
        zf.writestr("val/README.txt", "not an image")
        zf.writestr("__MACOSX/._x.png", b"junk")
    csv_path = folder / "list.csv"
    rows = ["path,label"] + [f"{p.relative_to(folder).as_posix()},{p.parent.name}"
                             for p in sorted(folder.rglob("*.png"))]
    csv_path.write_text("\n".join(rows) + "\n")
    labels = list(syn.CLASSES)
    f = read_source(folder, labels)
    z = read_source(zpath, labels)
    c = read_source(csv_path, labels)
    pairs = [(i.path, i.label) for i in f.items]
    assert len(pairs) == 9 and {l for _, l in pairs} == set(syn.CLASSES)
    assert [(i.path.removeprefix("val/"), i.label) for i in z.items] == pairs
    assert [(i.path, i.label) for i in c.items] == pairs
    assert [i.label_index for i in f.items] == [labels.index(l) for _, l in pairs]
    assert ("list.csv", "not inside a class folder") in f.skipped
    assert z.skipped == (("val/README.txt", "not inside a class folder"),)  # macOS junk: hidden
    # the keys identify content: the same listing gives the same keys
    assert [i.key for i in read_source(folder, labels).items] == [i.key for i in f.items]


def test_folder_names_that_match_no_label_get_a_clear_message(tmp_path):
    folder = _small_set(tmp_path / "set")
    (folder / "disc").rename(folder / "Disc")          # case and spacing do not matter
    (folder / "square").rename(folder / "sqare")       # a typo
    (folder / "kitten").mkdir()
    syn.write_folder(tmp_path / "k", 1)
    for p in (tmp_path / "k" / "disc").iterdir():
        p.rename(folder / "kitten" / p.name)
    with pytest.raises(interpret.InputError) as exc:
        read_source(folder, list(syn.CLASSES), model="tiny")
    msg = str(exc.value)
    assert "2 folder name(s) match no label of the model 'tiny'" in msg
    assert "'sqare' (did you mean 'square'?)" in msg and "'kitten'" in msg
    assert "class_map" in msg and "skip" in msg
    src = read_source(folder, list(syn.CLASSES), unmatched="skip")
    assert {i.label for i in src.items} == {"disc", "marked"}
    assert ("kitten/", "the folder name matches no label of the model") in src.skipped
    src = read_source(folder, list(syn.CLASSES), class_map={"sqare": "square", "kitten": "disc"})
    assert sum(i.label == "square" for i in src.items) == 3
    assert sum(i.label == "disc" for i in src.items) == 4


def test_unreadable_images_are_skipped_and_listed_with_their_reason(tiny, tmp_path):
    folder = _small_set(tmp_path / "set")
    (folder / "disc" / "empty.png").write_bytes(b"")
    good = (folder / "disc" / "disc_001.png").read_bytes()
    (folder / "disc" / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "square" / "text.png").write_text("this is not a picture")
    (folder / "square" / "notes.txt").write_text("no image")
    r = interpret.analyze_dataset(tiny, folder, out=tmp_path / "out", batch_size=4)
    reasons = dict(r.skipped)
    assert len(r.table()) == 9 and r.done == r.total == 12
    assert "empty" in reasons["disc/empty.png"]
    assert "truncated" in reasons["disc/truncated.png"].lower()
    assert "not" in reasons["square/text.png"] and "image" in reasons["square/text.png"]
    assert reasons["square/notes.txt"] == "not an image file (by its extension)"
    assert set(r.table()["path"]).isdisjoint(reasons)


# ----------------------------------------------------------------------------------
# the batch


def test_batched_cams_equal_one_image_explanations(tiny, tmp_path):
    folder = _small_set(tmp_path / "set", per_class=2)
    methods = list(interpret.dataset.BATCHED_CAMS)
    r = interpret.analyze_dataset(tiny, folder, methods=methods, out=tmp_path / "out", batch_size=4)
    df = r.table()
    assert len(df) == 6
    for m in methods:
        maps = r.maps(m)
        for j, row in df.iterrows():
            e = interpret.explain(tiny, interpret.load_image(folder / row["path"]), m, layer="conv3",
                                  target=int(row["label_index"]))
            ref = e.attribution[0, 0].numpy()
            scale = float(np.abs(ref).max())
            assert scale > 0
            # float32: a batch of 4 and one image sum in other orders; seen up to 1.1e-5
            # of the map's scale (XGrad-CAM divides by the activations' sum), so 1e-4
            np.testing.assert_allclose(maps[j], ref, rtol=0, atol=1e-4 * scale, err_msg=f"{m} {row['path']}")
    # the predictions are the model's own
    probs = torch.softmax(torch.stack([interpret.capture.logits(tiny, tiny.preprocess(
        interpret.load_image(folder / p)))[0] for p in df["path"]]), 1)
    np.testing.assert_allclose(df["probability"], probs.max(1).values.numpy(), rtol=1e-5)
    assert list(df["prediction"]) == [syn.CLASSES[i] for i in probs.argmax(1)]


def test_analysis_leaves_the_model_unchanged(tiny, tmp_path, model_state):
    before = model_state.snapshot(tiny.module)
    interpret.analyze_dataset(tiny, _small_set(tmp_path / "set", 2), methods=["gradcam", "layercam"],
                              out=tmp_path / "out", batch_size=4)
    model_state.assert_unchanged(before, tiny.module)


# ----------------------------------------------------------------------------------
# the planted shortcut


def test_planted_watermark_is_flagged_in_its_corner_and_clean_classes_are_not(planted_result):
    r = planted_result
    assert r.accuracy == 1.0
    assert r.confusion.trace() == 60 and r.confusion.shape == (3, 3)
    flags = [f for f in r.flags if f.kind == "concentration"]
    assert [f.label for f in flags] == [syn.MARKED], [f.sentence for f in r.flags]
    f = flags[0]
    x0, y0, x1, y1 = f.box
    wx0, wy0, wx1, wy1 = syn.WATERMARK_BOX
    assert 0.6 <= x0 <= wx0 and 0.6 <= y0 <= wy0 and x1 >= wx1 and y1 >= wy1  # around the mark
    assert (x1 - x0) * (y1 - y0) <= 0.1
    assert f.share > 0.6 and f.fraction >= 0.8
    assert "bottom-right corner" in f.sentence and "'marked'" in f.sentence
    where = r.where().set_index("label")
    assert where.loc["marked", "cell_2_2"] > 0.6
    assert where.loc["disc", "cell_2_2"] < 0.15 and where.loc["square", "cell_2_2"] < 0.15
    assert where.loc["marked", "border"] > 2 * where.loc["disc", "border"]


def test_a_box_the_maps_fall_outside_of_is_flagged(planted_result):
    r = planted_result
    boxes = {"marked": (0.1, 0.1, 0.75, 0.75), "disc": (0.0, 0.0, 1.0, 1.0)}
    flags = r.find_flags(boxes=boxes)
    outside = [f for f in flags if f.kind == "outside_box"]
    assert [f.label for f in outside] == ["marked"]
    assert outside[0].share > 0.6 and outside[0].given_box == boxes["marked"]
    assert "outside the object's box" in outside[0].sentence
    ranked = r.most_outside(boxes=boxes)
    assert len(ranked) == 40  # images with a box: 'marked' and 'disc'
    assert set(ranked["label"].head(20)) == {"marked"}
    assert ranked["outside"].is_monotonic_decreasing
    assert ranked[ranked["label"] == "disc"]["outside"].max() < 1e-6
    # stricter rules flag nothing
    assert not r.find_flags(rules=FlagRules(consistency=1.01))


def test_per_class_means_and_embedding(planted_result):
    r = planted_result
    means = r.mean_maps()
    assert list(means) == list(syn.CLASSES)
    m = means["marked"]
    assert m.shape == (16, 16) and abs(m.sum() - 1) < 1e-6
    assert m[12:, 12:].sum() > 0.6  # the corner holds most of the mean map
    coords, explained = r.embedding()
    assert coords.shape == (60, 2) and 0 < explained[0] <= 1
    df = r.table()
    # the classifier's features separate the classes: each class's centroid is nearer
    # its own points than the other classes' centroids are
    cent = {l: coords[df["label"] == l].mean(0) for l in syn.CLASSES}
    for l in syn.CLASSES:
        own = np.linalg.norm(coords[df["label"] == l] - cent[l], axis=1).mean()
        assert all(np.linalg.norm(cent[l] - cent[o]) > own for o in syn.CLASSES if o != l)
    summary = r.class_summary().set_index("label")
    assert summary.loc["marked", "flags"] == "concentration" and summary.loc["disc", "flags"] == ""


# ----------------------------------------------------------------------------------
# the store: served, refused, resumed


def _mtimes(out: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in Store(out).part_files()}


def test_a_rerun_is_served_from_the_store_and_other_settings_are_refused(tiny, tmp_path):
    folder = _small_set(tmp_path / "set")
    out = tmp_path / "out"
    first = interpret.analyze_dataset(tiny, folder, out=out, batch_size=4)
    parts = _mtimes(out)
    seen = []
    again = interpret.analyze_dataset(tiny, folder, out=out, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(9, 9)] and _mtimes(out) == parts  # nothing recomputed
    pd_eq = again.table()[["path", "prediction", "probability"]].equals(first.table()[["path", "prediction", "probability"]])
    assert pd_eq
    with pytest.raises(interpret.InputError, match="holds another analysis"):
        interpret.analyze_dataset(tiny, folder, out=out, methods=["layercam"])
    other = interpret.analyze_dataset(tiny, folder, out=out, methods=["layercam"], overwrite=True)
    assert other.methods == ("layercam",) and other.stored_rows == 9
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("mine")
    with pytest.raises(interpret.InputError, match="not empty"):
        interpret.analyze_dataset(tiny, folder, out=tmp_path / "busy")


def test_a_cancelled_job_reopens_partial_and_resumes_to_the_same_numbers(tiny, planted_set, tmp_path):
    full = interpret.analyze_dataset(tiny, planted_set, out=tmp_path / "full", batch_size=8)
    out = tmp_path / "part"

    def stop_after_three(done, total):
        if done >= 24:
            raise interpret.Cancelled("stop")

    with pytest.raises(interpret.Cancelled):
        interpret.analyze_dataset(tiny, planted_set, out=out, batch_size=8, progress=stop_after_three)
    partial = interpret.open_dataset(out)
    assert (partial.done, partial.total, partial.status) == (24, 60, "stopped")
    assert len(partial.table()) == 24 and "run it again" in partial.describe()
    seen = []
    done = interpret.analyze_dataset(tiny, planted_set, out=out, batch_size=8, progress=lambda d, t: seen.append(d))
    assert seen[0] == 24 and seen[-1] == 60
    assert done.stored_rows == 60 and done.status == "complete"
    assert done.table()["path"].tolist() == full.table()["path"].tolist()
    assert np.array_equal(done.maps(), full.maps())
    assert done.table()["probability"].equals(full.table()["probability"])


def _cli(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "interpret", "dataset", *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _raw_rows(out: Path):
    import pyarrow.parquet as pq

    keys = []
    for p in Store(out).part_files():
        keys += pq.read_table(p, columns=["item"]).column("item").to_pylist()
    return keys


@pytest.mark.slow
def test_sigkill_of_the_command_line_then_resume_loses_and_duplicates_nothing(lite0, tmp_path):
    out = tmp_path / "run"
    proc = _cli(SAMPLE_SET, "--out", out, "--batch-size", "4", "--quiet")
    deadline = time.monotonic() + 240
    try:
        while len(Store(out).part_files()) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the job wrote no batches"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    partial = interpret.open_dataset(out)
    assert 8 <= partial.done < partial.total == 40 and partial.status == "stopped"
    assert len(_raw_rows(out)) == partial.done  # only whole batches were stored

    resumed = _cli(SAMPLE_SET, "--out", out, "--batch-size", "4", "--json")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    summary = json.loads(stdout)
    assert (summary["done"], summary["total"], summary["status"]) == (40, 40, "complete")
    keys = _raw_rows(out)
    assert len(keys) == 40 and len(set(keys)) == 40  # nothing lost, nothing twice
    r = interpret.open_dataset(out)
    ref = interpret.analyze_dataset(lite0, SAMPLE_SET, out=tmp_path / "ref", batch_size=4)
    a, b = r.table(), ref.table()
    assert a["path"].tolist() == b["path"].tolist()
    assert a["prediction"].tolist() == b["prediction"].tolist()
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=1e-5)
    np.testing.assert_allclose(r.maps(), ref.maps(), rtol=1e-4, atol=1e-6 * np.abs(ref.maps()).max())
    assert summary["accuracy"] == pytest.approx(ref.accuracy)
    # a stored run's folder alone: what it holds
    show = subprocess.run([sys.executable, "-m", "interpret", "dataset", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert show.returncode == 0 and "40 of 40 images stored (complete)" in show.stdout
    assert "tabby" in show.stdout


def test_command_line_refuses_unmatched_folders_in_one_line(tmp_path):
    folder = _small_set(tmp_path / "set")
    r = subprocess.run([sys.executable, "-m", "interpret", "dataset", str(folder), "--out",
                        str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 3 folder name(s) match no label")
    assert "'disc'" in lines[0] and "efficientnet_lite0" in lines[0]


# ----------------------------------------------------------------------------------
# trust figures (interpret.faithfulness, the trust issue's contract)


class _FakeFaithfulness:
    """Stands in for interpret.faithfulness while interpret/trust/ is being built: the
    deletion AUC is the map's mass outside the top-left quadrant, so the order of the
    images is known."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, image, explanation, steps=20, baseline="blur"):
        from types import SimpleNamespace

        size = tuple(image.shape[-2:]) if isinstance(image, torch.Tensor) else image.size
        self.calls.append((model, size, explanation.method, explanation.target, steps, baseline))
        hm = explanation.heatmap
        share = float(hm[: hm.shape[0] // 2, : hm.shape[1] // 2].sum() / max(hm.sum(), 1e-9))
        return SimpleNamespace(deletion_auc=1 - share, insertion_auc=share, random_deletion_auc=0.5,
                               random_insertion_auc=0.5, verdict="fake", sentence="made up")


def test_trust_figures_are_stored_and_sort_the_least_faithful_first(tiny, tmp_path, monkeypatch):
    fake = _FakeFaithfulness()
    monkeypatch.setattr(interpret, "faithfulness", fake, raising=False)
    # the dataset computes a batch's figures in one batched call (issue 17): the fake per photo
    monkeypatch.setattr(sys.modules["interpret.trust.faithfulness"], "faithfulness_many",
                        lambda model, xs, expl, steps, baseline, **kw:
                        [fake(model, x, e, steps, baseline) for x, e in zip(xs, expl)])
    folder = _small_set(tmp_path / "set")
    r = interpret.analyze_dataset(tiny, folder, out=tmp_path / "out", trust=True, trust_steps=7, batch_size=4)
    assert len(fake.calls) == 9
    assert all(c[0] is tiny and c[1] == (64, 64) and c[2] == "gradcam" and c[4:] == (7, "blur")
               for c in fake.calls)
    df = r.table()
    assert df["verdict"].eq("fake").all() and df["deletion_auc"].between(0, 1).all()
    worst = r.least_faithful()
    margin = (worst["insertion_auc"] - 0.5) - (worst["deletion_auc"] - 0.5)
    assert np.allclose(worst["faithfulness_margin"], margin, atol=1e-6)
    assert worst["faithfulness_margin"].is_monotonic_increasing and len(worst) == 9
    # without trust the sorted view is empty, not made up
    monkeypatch.delattr(interpret, "faithfulness")
    plain = interpret.analyze_dataset(tiny, folder, out=tmp_path / "plain", batch_size=4)
    assert len(plain.least_faithful()) == 0 and plain.table()["deletion_auc"].isna().all()


def test_real_faithfulness_finds_the_watermark_maps_faithful(tiny, tmp_path):
    if not hasattr(interpret, "faithfulness"):
        pytest.skip("interpret.faithfulness (the trust measures) is not installed")
    folder = _small_set(tmp_path / "set")
    r = interpret.analyze_dataset(tiny, folder, out=tmp_path / "out", trust=True, trust_steps=10, batch_size=9)
    df = r.table().set_index("path")
    marked = df[df["label"] == "marked"]
    # hiding the corner the map points at kills 'marked': deletion far below random
    assert (marked["deletion_auc"] < marked["random_deletion_auc"] - 0.3).all()
    assert (marked["verdict"] == "faithful").all()
    worst = r.least_faithful()
    assert set(worst["label"].tail(3)) == {"marked"}
    assert worst["faithfulness_margin"].tail(3).min() > 0.5
