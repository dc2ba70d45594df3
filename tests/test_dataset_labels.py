"""Dataset mode for multi-label and binary models: sets as a CSV of ';'-separated labels
(or 0/1), every label's sigmoid probability stored, precision and recall per label in
place of the confusion matrix, and where each label's maps sit.

The models are fixed-weight and tiny, so every number is computed by hand: a 1 x 1
convolution that copies the colour channels (the CAM layer), a ReLU, a global mean and
a linear head ``logit_c = 10 * mean(channel c) - 5``.  A channel that is on everywhere
gives the label probability sigmoid(5) = 0.9933, one that is off sigmoid(-5) = 0.0067:
an image's predicted labels are exactly its colours that are on.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret.dataset import read_source
from interpret.dataset.batch import image_targets
from interpret.preprocessing import Preprocessing

pytestmark = pytest.mark.usefixtures("single_thread")

SIDE = 15
LABELS = ["red", "green", "blue"]


class ColourNet(nn.Module):
    """conv (identity on the channels) -> ReLU -> mean -> head (10 x - 5)."""

    def __init__(self, outputs: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.head = nn.Linear(3, outputs)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None])
            self.conv.bias.zero_()
            self.head.weight.copy_(10 * torch.eye(3)[:outputs])
            self.head.bias.fill_(-5.0)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def colour_handle(outputs: int, labels, task=None) -> interpret.ModelHandle:
    return interpret.load_model(ColourNet(outputs).eval(), labels=labels, name=f"colour net {outputs}",
                                preprocessing=Preprocessing(resize=(SIDE, SIDE), crop=None,
                                                            mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
                                task=task)


def _write(folder: Path, name: str, rgb, mask=None) -> str:
    """An image of SIDE x SIDE: colour ``rgb`` where ``mask`` (all of it by default)."""
    a = np.zeros((SIDE, SIDE, 3), np.uint8)
    m = np.ones((SIDE, SIDE), bool) if mask is None else mask
    a[m] = rgb
    Image.fromarray(a).save(folder / name)
    return name


#: (colour on, true labels): predicted = the colours on
MULTI = [((255, 0, 0), "red"), ((255, 255, 0), "red"), ((0, 255, 0), "green;blue"),
         ((0, 0, 255), "blue"), ((0, 0, 0), "red"), ((255, 255, 255), "red;green;blue")]
# by hand, at 0.5:  red   present 1,2,5,6 (4), predicted 1,2,6 (3), both 3
#                   green present 3,6 (2),     predicted 2,3,6 (3), both 2
#                   blue  present 3,4,6 (3),   predicted 4,6 (2),   both 2
HAND = {"red": (4, 3, 3, 1.0, 0.75), "green": (2, 3, 2, 2 / 3, 1.0), "blue": (3, 2, 2, 1.0, 2 / 3)}


@pytest.fixture(scope="module")
def multi_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multi")
    lines = ["path,label"]
    for k, (rgb, labs) in enumerate(MULTI):
        lines.append(f"{_write(root, f'{k}.png', rgb)},{labs}")
    (root / "set.csv").write_text("\n".join(lines) + "\n")
    return root / "set.csv"


@pytest.fixture(scope="module")
def multi_run(multi_set, tmp_path_factory):
    return interpret.analyze_dataset(colour_handle(3, LABELS, task="multilabel"), multi_set, methods=["gradcam"],
                                     out=tmp_path_factory.mktemp("mrun") / "run", batch_size=4)


def test_multilabel_precision_and_recall_per_label_match_the_hand_computed_counts(multi_run):
    assert multi_run.task == "multilabel" and multi_run.complete and multi_run.done == 6
    pl = multi_run.per_label().set_index("label")
    assert list(pl.index) == LABELS and (pl["threshold"] == 0.5).all()
    for lab, (present, predicted, tp, precision, recall) in HAND.items():
        row = pl.loc[lab]
        assert (row["present"], row["predicted"], row["true_positives"]) == (present, predicted, tp), lab
        assert row["precision"] == pytest.approx(precision) and row["recall"] == pytest.approx(recall), lab
    assert multi_run.accuracy == pytest.approx(0.5)  # exact match: images 1, 4, 6


def test_multilabel_probabilities_are_independent_sigmoids_not_a_softmax(multi_run):
    t = multi_run.table().set_index("path")
    on, off = 1 / (1 + math.exp(-5)), 1 / (1 + math.exp(5))
    assert np.allclose(list(t.loc["5.png", "probabilities"]), [on, on, on], atol=1e-6)  # sums to 2.98
    assert np.allclose(list(t.loc["3.png", "probabilities"]), [off, off, on], atol=1e-6)
    assert t.loc["2.png", "prediction"] == "green" and t.loc["2.png", "label"] == "green;blue"
    assert list(t.loc["2.png", "target_indices"]) == [1, 2]  # a map per true label


def test_the_threshold_is_a_stated_setting_of_precision_and_recall(multi_run):
    pl = multi_run.per_label(threshold=0.999).set_index("label")  # above sigmoid(5): none predicted
    assert (pl["predicted"] == 0).all() and pl["precision"].isna().all() and (pl["recall"] == 0).all()
    assert (pl["threshold"] == 0.999).all()
    with pytest.raises(interpret.InputError, match="between 0 and 1"):
        multi_run.per_label(threshold=1.5)
    with pytest.raises(interpret.InputError, match="per_label"):
        multi_run.confusion


def test_each_label_map_is_the_gradcam_of_that_label_alone(multi_run):
    """Grad-CAM of label c at the copy layer: weights 10/(h w) * (share of positive
    pixels) on channel c only, so the map is 10/(h w) * channel c: 10/225 where the
    colour is on, 0 elsewhere."""
    ex = multi_run._explained
    maps = multi_run.maps()
    assert len(ex) == 4 + 2 + 3 == len(maps)  # one map per (image, true label)
    for (path, lab), m in zip(zip(ex["path"], ex["label"]), maps):
        colour_on = dict(zip(LABELS, MULTI[int(path[0])][0]))[lab] > 0
        assert np.allclose(m, 10 / SIDE**2 if colour_on else 0.0, atol=1e-7), (path, lab)


def test_where_it_looks_is_summarised_per_label(tmp_path):
    """Red on the left third of each image, green on the right third: red's maps put all
    their mass in the left column of the 3 x 3 grid, green's in the right one."""
    left = np.zeros((SIDE, SIDE), bool)
    left[:, :5] = True
    right = np.zeros((SIDE, SIDE), bool)
    right[:, 10:] = True
    lines = []
    for k in range(3):
        a = np.zeros((SIDE, SIDE, 3), np.uint8)
        a[left, 0] = 255
        a[right, 1] = 255
        Image.fromarray(a).save(tmp_path / f"{k}.png")
        lines.append(f"{k}.png,red;green")
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    r = interpret.analyze_dataset(colour_handle(3, LABELS, task="multilabel"), tmp_path / "s.csv", out=tmp_path / "run")
    w = r.where().set_index("label")
    assert list(w.index) == ["red", "green"] and list(w["images"]) == [3, 3]
    red_left = sum(w.loc["red", f"cell_{i}_0"] for i in range(3))
    green_right = sum(w.loc["green", f"cell_{i}_2"] for i in range(3))
    assert red_left == pytest.approx(1.0) and green_right == pytest.approx(1.0)
    assert w.loc["red", "cell_1_1"] == pytest.approx(0.0) and w.loc["green", "cell_0_0"] == pytest.approx(0.0)
    # border: a band of 0.125 * 15 = 1.875 -> 2 pixels each side; red covers columns 0-4
    # (rows all), so its share on the border is 1 - (11 rows x 3 columns) / (15 x 5)
    assert w.loc["red", "border"] == pytest.approx(1 - 33 / 75)
    s = r.class_summary().set_index("label")
    # a third of the image is red: logit 10/3 - 5, probability 0.159, never predicted
    assert s.loc["red", "recall"] == 0.0 and np.isnan(s.loc["green", "precision"])
    assert r.table()["probabilities"].map(lambda p: p[0]).tolist() == pytest.approx([1 / (1 + math.exp(5 / 3))] * 3)


#: binary: red on in images 0, 1, 2; true class 1 in 0, 1, 3, 4
BINARY = [((255, 0, 0), 1), ((255, 0, 0), 1), ((255, 0, 0), 0), ((0, 0, 0), 1), ((0, 0, 0), 1), ((0, 0, 0), 0)]


def test_binary_precision_and_recall_of_the_positive_class_by_hand(tmp_path):
    lines = ["path,label"] + [f"{_write(tmp_path, f'{k}.png', rgb)},{y}" for k, (rgb, y) in enumerate(BINARY)]
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    h = colour_handle(1, ["red"])
    assert h.task == "binary"
    r = interpret.analyze_dataset(h, tmp_path / "b.csv", out=tmp_path / "run")
    pl = r.per_label()
    assert list(pl["label"]) == ["red"]
    # predicted 0, 1, 2 (3); present 0, 1, 3, 4 (4); both 0, 1 (2)
    assert (int(pl["predicted"][0]), int(pl["present"][0]), int(pl["true_positives"][0])) == (3, 4, 2)
    assert pl["precision"][0] == pytest.approx(2 / 3) and pl["recall"][0] == pytest.approx(0.5)
    t = r.table().set_index("path")
    assert t.loc["0.png", "label"] == "red" and t.loc["5.png", "label"] == "not red"
    assert t.loc["2.png", "prediction"] == "red" and t.loc["3.png", "prediction"] == "not red"
    # the probability of the true side: p(red) for a positive, 1 - p(red) for a negative
    assert t.loc["3.png", "label_probability"] == pytest.approx(1 / (1 + math.exp(5)), abs=1e-6)
    assert t.loc["5.png", "label_probability"] == pytest.approx(1 / (1 + math.exp(-5)), abs=1e-6)
    # what is explained: raises red for the positives, lowers it for the negatives
    assert list(t.loc["0.png", "target_signs"]) == [1] and list(t.loc["2.png", "target_signs"]) == [-1]
    assert r.classes() == ["red", "not red"]
    assert r.accuracy == pytest.approx(3 / 6)  # images 0, 1, 5


def test_binary_set_from_two_folders_named_1_and_0(tmp_path):
    for y in ("0", "1"):
        (tmp_path / "set" / y).mkdir(parents=True)
    _write(tmp_path / "set" / "1", "a.png", (255, 0, 0))
    _write(tmp_path / "set" / "0", "b.png", (0, 0, 0))
    src = read_source(tmp_path / "set", ["red"], task="binary")
    assert [(i.path, i.label, i.truth) for i in src.items] == [("0/b.png", "not red", ()), ("1/a.png", "red", (0,))]


@pytest.mark.parametrize("task,truth,probs,target,want", [
    ("multilabel", (0, 2), [0.9, 0.6, 0.1], "label", [("label", 0, 1), ("label", 2, 1)]),
    ("multilabel", (0, 2), [0.9, 0.5, 0.1], "prediction", [("label", 0, 1), ("label", 1, 1)]),
    ("multilabel", (), [0.1, 0.2, 0.3], "label", []),
    ("binary", (0,), [0.2], "label", [("output", 0, 1)]),
    ("binary", (), [0.7], "label", [("output", 0, -1)]),
    ("binary", (), [0.7], "prediction", [("output", 0, 1)]),
])
def test_what_each_image_explains(task, truth, probs, target, want):
    got = image_targets(task, truth, probs, target)
    assert [(t.kind, t.index, getattr(t, "sign", 1)) for t in got] == want


@pytest.mark.parametrize("cell,why", [("red;purple", "purple"), ("", None)])
def test_multilabel_csv_cells(tmp_path, cell, why):
    _write(tmp_path, "a.png", (255, 0, 0))
    _write(tmp_path, "b.png", (255, 0, 0))
    (tmp_path / "s.csv").write_text(f"a.png,{cell}\nb.png,red\n")
    if why:
        with pytest.raises(interpret.InputError, match=why):
            read_source(tmp_path / "s.csv", LABELS, task="multilabel")
        src = read_source(tmp_path / "s.csv", LABELS, task="multilabel", unmatched="skip")
        assert [i.path for i in src.items] == ["b.png"] and "purple" in src.skipped[0][1]
    else:  # an empty cell: no label present
        src = read_source(tmp_path / "s.csv", LABELS, task="multilabel")
        assert [(i.path, i.truth) for i in src.items] == [("a.png", ()), ("b.png", (0,))]


def test_binary_csv_refuses_labels_other_than_0_and_1(tmp_path):
    _write(tmp_path, "a.png", (255, 0, 0))
    _write(tmp_path, "b.png", (255, 0, 0))
    (tmp_path / "s.csv").write_text("a.png,yes\nb.png,1\n")
    src = read_source(tmp_path / "s.csv", ["red"], task="binary")
    assert [i.path for i in src.items] == ["b.png"] and "0 or 1" in src.skipped[0][1]


def test_regression_and_segmentation_sets_are_refused_with_a_sentence(multi_set, tmp_path):
    with pytest.raises(interpret.InputError, match="regression model"):
        interpret.analyze_dataset(colour_handle(1, ["value"], task="regression"), multi_set, out=tmp_path / "r")
    seg = interpret.load_model(nn.Conv2d(3, 4, 1).eval(), name="seg", task="segmentation",
                               preprocessing=Preprocessing(resize=(SIDE, SIDE), crop=None))
    with pytest.raises(interpret.InputError, match="segmentation model"):
        interpret.analyze_dataset(seg, multi_set, out=tmp_path / "s")


def test_a_stopped_multilabel_run_resumes_without_recomputing(multi_set, multi_run, tmp_path):
    class Stop(Exception):
        pass

    def stop_after_first(done, total):
        if done >= 2:
            raise Stop

    h = colour_handle(3, LABELS, task="multilabel")
    with pytest.raises(Stop):
        interpret.analyze_dataset(h, multi_set, out=tmp_path / "run", batch_size=2, progress=stop_after_first)
    part = interpret.open_dataset(tmp_path / "run")
    assert part.done == 2 and part.status == "stopped"
    r = interpret.analyze_dataset(h, multi_set, out=tmp_path / "run", batch_size=2)
    assert r.complete and r.stored_rows == 6
    assert r.per_label().equals(multi_run.per_label())
    assert np.array_equal(r.maps(), multi_run.maps())


@pytest.mark.parametrize("t,images,labels,binary,want", [
    (0.5, 6, 3, False, "Precision and recall of each of the 3 labels on 6 images, at a threshold of 0.50"),
    (0.25, 1, 1, True, "Precision and recall of the positive class on 1 image, at a threshold of 0.25"),
])
def test_the_per_label_caption_states_the_threshold(t, images, labels, binary, want):
    from interpret.figures.dataset import per_label_caption

    s = per_label_caption(t, images, labels, binary)
    assert s.startswith(want) and "at least that" in s


def test_the_per_label_figure_draws_the_hand_computed_values(multi_run):
    from interpret.figures.dataset import per_label_figure

    fig = per_label_figure(multi_run.per_label())
    prec, rec = fig.data
    assert list(prec.y) == pytest.approx([1.0, 2 / 3, 1.0]) and list(rec.y) == pytest.approx([0.75, 1.0, 2 / 3])
    assert list(prec.text) == ["100% (3/3)", "67% (2/3)", "100% (2/2)"]
    assert list(rec.text) == ["75% (3/4)", "100% (2/2)", "67% (2/3)"]
    assert "threshold 0.50" in fig.layout.title.text
    none = per_label_figure(multi_run.per_label(threshold=0.999))
    assert list(none.data[0].text) == ["n/a (0/0)"] * 3 and list(none.data[0].y) == [0, 0, 0]


def test_the_dataset_page_draws_a_multilabel_run(multi_set, tmp_path, monkeypatch):
    pytest.importorskip("streamlit.testing.v1")
    import json

    from streamlit.testing.v1 import AppTest

    from test_app import ROOT

    root = tmp_path / "runs"
    interpret.analyze_dataset(colour_handle(3, LABELS, task="multilabel"), multi_set, out=root / "colours",
                              name="colour labels", created_by="ada@example.com")
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(root))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    at = AppTest.from_file(str(ROOT / "pages" / "6_Dataset.py"), default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.segmented_control(key="w_ds_source").set_value("stored").run()
    assert list(at.dataframe[0].value["run"]) == ["colour labels"]
    at.button(key="ds_open_stored").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Exact match"] == "50.0%" and metrics["Images"] == "6" and "Accuracy" not in metrics
    figs = {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    assert "ds_confusion" not in figs
    prec, rec = figs["ds_per_label"]["data"]
    assert prec["y"] == pytest.approx([1.0, 2 / 3, 1.0]) and rec["y"] == pytest.approx([0.75, 1.0, 2 / 3])
    assert any("threshold of 0.50" in c.value for c in at.caption)
    where = figs["ds_where"]
    assert len([d for d in where["data"] if d["type"] == "heatmap"]) == 3  # red, green, blue
    at.slider(key="w_ds_threshold").set_value(0.95).run()  # sigmoid(5) = 0.993 is still above
    assert not at.exception
    prec = json.loads([c for c in at.get("plotly_chart") if c.key == "ds_per_label"][0].proto.spec)["data"][0]
    assert prec["y"] == pytest.approx([1.0, 2 / 3, 1.0])


def test_the_description_of_a_multilabel_run_says_precision_and_recall_or_na(multi_run):
    text = multi_run.describe()
    assert "Exact match (every label right) 50.0% on 6 images." in text
    assert "'green': precision 66.7%, recall 100.0% at a threshold of 0.50 (2 present, 3 predicted)." in text
    assert "nan" not in text.lower()
