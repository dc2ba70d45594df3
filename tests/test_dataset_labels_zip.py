"""A multi-label or binary set as one zip: its images and a ``labels.csv`` of
``path,labels`` at the zip's top, read in place (nothing extracted).  The numbers are
the hand-computed ones of tests/test_dataset_labels.py (the same fixed-weight colour
net and the same six images), so the zip must give exactly the CSV-on-disk result."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

import interpret
from interpret.dataset import read_source
from test_dataset_labels import HAND, LABELS, MULTI, colour_handle, multi_run, multi_set  # noqa: F401

pytestmark = pytest.mark.usefixtures("single_thread")


def _zip_of(csv_file: Path, csv_name: str = "labels.csv", extra=()) -> bytes:
    """The images a CSV lists and the CSV itself, in one zip (paths from its top)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(csv_name, csv_file.read_text())
        for k in range(len(MULTI)):
            zf.write(csv_file.parent / f"{k}.png", f"{k}.png")
        for name, data in extra:
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def multi_zip(multi_set, tmp_path_factory) -> Path:  # noqa: F811
    p = tmp_path_factory.mktemp("mzip") / "colours.zip"
    p.write_bytes(_zip_of(multi_set))
    return p


def test_a_zip_with_labels_csv_gives_the_same_per_label_numbers_as_the_csv_on_disk(multi_zip, multi_run,
                                                                                  tmp_path):  # noqa: F811
    run = interpret.analyze_dataset(colour_handle(3, LABELS, task="multilabel"), multi_zip, methods=["gradcam"],
                                    out=tmp_path / "run", batch_size=4)
    assert run.task == "multilabel" and run.complete and run.done == 6
    pl = run.per_label().set_index("label")
    for lab, (present, predicted, tp, precision, recall) in HAND.items():
        row = pl.loc[lab]
        assert (row["present"], row["predicted"], row["true_positives"]) == (present, predicted, tp), lab
        assert row["precision"] == pytest.approx(precision) and row["recall"] == pytest.approx(recall), lab
    disk = multi_run.per_label()
    assert run.per_label().equals(disk)
    assert run.accuracy == pytest.approx(multi_run.accuracy) == pytest.approx(0.5)


def test_the_zip_set_lists_members_read_in_place_not_extracted(multi_zip):
    src = read_source(multi_zip, LABELS, task="multilabel")
    assert src.kind == "zip" and src.root == str(multi_zip)
    assert [it.path for it in src.items] == [f"{k}.png" for k in range(6)]
    assert [it.truth for it in src.items] == [(0,), (0,), (1, 2), (2,), (0,), (0, 1, 2)]
    data = src.read(src.items[:1])[0][0]
    assert data is not None and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in multi_zip.parent.iterdir()) == ["colours.zip"]  # nothing unpacked


def test_zip_csv_paths_outside_the_zip_or_missing_are_skipped_with_a_reason(multi_set, tmp_path):  # noqa: F811
    text = multi_set.read_text() + "../secret.png,red\nnot_there.png,red\nnotes.txt,red\n"
    (tmp_path / "set.csv").write_text(text)
    for k in range(len(MULTI)):
        (tmp_path / f"{k}.png").write_bytes((multi_set.parent / f"{k}.png").read_bytes())
    z = tmp_path / "s.zip"
    z.write_bytes(_zip_of(tmp_path / "set.csv", "mine.csv"))  # the only CSV: any name
    src = read_source(z, LABELS, task="multilabel")
    why = dict(src.skipped)
    assert len(src) == 6
    assert "not in the zip" in why["../secret.png"] and "not in the zip" in why["not_there.png"]
    assert "not an image" in why["notes.txt"]


def test_a_multilabel_zip_without_a_csv_or_with_two_is_refused_with_a_sentence(multi_set, tmp_path):  # noqa: F811
    z = tmp_path / "none.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(multi_set.parent / "0.png", "red/0.png")
    with pytest.raises(interpret.InputError, match="no CSV at its top"):
        read_source(z, LABELS, task="multilabel")
    two = tmp_path / "two.zip"
    two.write_bytes(_zip_of(multi_set, "a.csv", extra=[("b.csv", "path,label\n")]))
    with pytest.raises(interpret.InputError, match="2 CSV files"):
        read_source(two, LABELS, task="multilabel")
    # labels.csv wins over another CSV beside it
    both = tmp_path / "both.zip"
    both.write_bytes(_zip_of(multi_set, "labels.csv", extra=[("notes.csv", "x,y\n")]))
    assert len(read_source(both, LABELS, task="multilabel")) == 6


def test_zip_member_count_is_checked_before_the_csv_is_read(multi_zip):
    with pytest.raises(interpret.InputError, match="holds 7 files"):
        read_source(multi_zip, LABELS, task="multilabel", max_images=3)


def test_a_binary_zip_with_a_csv_of_0_and_1(multi_set, tmp_path):  # noqa: F811
    (tmp_path / "bin.csv").write_text("path,label\n" + "".join(
        f"{k}.png,{1 if 'red' in labs else 0}\n" for k, (_, labs) in enumerate(MULTI)))
    for k in range(len(MULTI)):
        (tmp_path / f"{k}.png").write_bytes((multi_set.parent / f"{k}.png").read_bytes())
    z = tmp_path / "bin.zip"
    z.write_bytes(_zip_of(tmp_path / "bin.csv"))
    src = read_source(z, ["red"], task="binary")
    assert [it.truth for it in src.items] == [(0,), (0,), (), (), (0,), (0,)]
    assert [it.label for it in src.items][2] == "not red"


def test_the_dataset_page_accepts_a_multilabel_zip_and_shows_per_label(multi_zip, tmp_path, monkeypatch):
    pytest.importorskip("streamlit.testing.v1")
    from streamlit.testing.v1 import AppTest

    from test_app import ROOT

    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    at = AppTest.from_file(str(ROOT / "pages" / "6_Dataset.py"), default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.session_state["uploaded_model"] = colour_handle(3, LABELS, task="multilabel")
    view = at.session_state["view"]
    view["model"] = "upload"
    at.session_state["view"] = view
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.segmented_control(key="w_ds_source").set_value("upload").run()
    assert not at.exception, [e.value for e in at.exception]
    up = at.file_uploader(key="w_ds_zip")
    assert "labels.csv" in up.label  # the page says the layout it expects
    up.upload("colours.zip", multi_zip.read_bytes(), "application/zip")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    at.button(key="ds_start_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(t.label == "Per label" for t in at.tabs), [t.label for t in at.tabs]
    figs = {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    prec, rec = figs["ds_per_label"]["data"]
    assert prec["y"] == pytest.approx([1.0, 2 / 3, 1.0]) and rec["y"] == pytest.approx([0.75, 1.0, 2 / 3])


@pytest.mark.parametrize("task, says", [
    ("multilabel", ["labels.csv of path,labels at its top", "separated by ';'"]),
    ("binary", ["labels.csv of path,label at its top", "two folders named 1 and 0"]),
    ("classification", ["zip of class folders"]),
])
def test_the_zip_uploader_says_the_layout_the_models_task_needs(task, says):
    from ui.dataset import zip_layout

    label, help_ = zip_layout(task, 500)
    assert all(s in label for s in says), label
    assert help_.startswith("Up to 500 images.")
    assert ("labels.csv" in label) == (task != "classification")


def test_the_servers_image_folder_with_a_labels_csv_is_a_multilabel_set(multi_set, tmp_path, monkeypatch):  # noqa: F811
    import ui.dataset as ds

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "labels.csv").write_text(multi_set.read_text())
    for k in range(len(MULTI)):
        (folder / f"{k}.png").write_bytes((multi_set.parent / f"{k}.png").read_bytes())
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(ds, "folder_path", lambda: folder)
    handle = colour_handle(3, LABELS, task="multilabel")
    job = ds.plan(handle, "folder", ["gradcam"], "label", False)
    assert job.source == str(folder / "labels.csv")
    assert ds.check_source(handle, job) == (6, [])
    # a single-label model still reads the folder's class folders
    assert ds.plan(colour_handle(3, LABELS), "folder", ["gradcam"], "label", False).source == str(folder)
