"""The Dataset page's "Class names" control (issue 17): the set's class names (folder
names) are mapped to the model's labels on the page, and the message about names that
match no label points to that control (before, it said "class_map=... (--class-map)",
options the page did not have)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

import interpret  # noqa: E402
from interpret.dataset.sources import ClassName, class_names  # noqa: E402
from test_app import ROOT  # noqa: E402

from ui import dataset as ds  # noqa: E402

PAGE = str(ROOT / "pages" / "6_Dataset.py")
SAMPLE = ROOT / "assets" / "dataset_sample"


@pytest.fixture
def odd_set(tmp_path) -> Path:
    """3 tabby photos in "kitten/", 3 espresso photos in "espresso/", 2 mopeds in "mopeds/"."""
    root = tmp_path / "set"
    for src, name, n in (("tabby", "kitten", 3), ("espresso", "espresso", 3), ("moped", "mopeds", 2)):
        (root / name).mkdir(parents=True)
        for p in sorted((SAMPLE / src).glob("*.jpg"))[:n]:
            shutil.copy(p, root / name / p.name)
    return root


def test_class_names_lists_every_name_with_its_match_and_close_labels(odd_set):
    labels = interpret.load_model().labels
    got = class_names(odd_set, labels)
    assert [(c.name, c.index) for c in got] == [("espresso", labels.index("espresso")), ("kitten", None),
                                                ("mopeds", None)]
    assert got[2].close[0] == "moped"
    mapped = class_names(odd_set, labels, class_map={"kitten": "tabby"})
    assert mapped[1].index == labels.index("tabby")


@pytest.mark.parametrize("names,says", [
    ([ClassName("kitten", None, ("mitten", "kite"))],
     "1 class name of this set matches no label of the model: *kitten* (did you mean *mitten* or *kite*?). "
     "Choose its label under **Class names** above, or leave its images out there."),
    ([ClassName("a", None), ClassName("b", None, ("bee",))],
     "2 class names of this set match no label of the model: *a*, *b* (did you mean *bee*?). Choose their "
     "label under **Class names** above, or leave their images out there."),
    ([ClassName("<b>x", None)], "*&#60;b&#62;x*"),   # a visitor's folder name, escaped
    ([], ""),
])
def test_unmapped_message_table(names, says):
    assert says in ds.unmapped_message(names) if says else ds.unmapped_message(names) == ""


def test_unmapped_message_counts_the_names_it_does_not_show():
    names = [ClassName(f"n{i}", None) for i in range(11)]
    assert "*n7* and 3 more." in ds.unmapped_message(names)


def test_folder_names_are_mapped_on_the_page_and_the_message_points_there(odd_set, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERPRET_IMAGE_FOLDER", str(odd_set))
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=240).run()
    at.segmented_control(key="w_ds_source").set_value("folder").run()
    assert not at.exception, [e.value for e in at.exception]
    box = [e for e in at.expander if e.label.startswith("Class names")]
    assert box and box[0].label.endswith("(1 of 3 match)")
    warning = " ".join(w.value for w in at.warning)
    assert "2 class names of this set match no label" in warning and "under **Class names** above" in warning
    assert "class_map" not in warning and "--class-map" not in warning
    at.button(key="ds_start_btn").click().run()
    assert any("under **Class names** above" in e.value for e in at.error)     # nothing ran
    assert not any(m.label == "Images" for m in at.metric)

    labels = interpret.load_model().labels
    kitten, mopeds = (at.selectbox(key=_key(n)) for n in ("kitten", "mopeds"))
    assert kitten.value == ds.CHOOSE and kitten.options[:2] == [ds.CHOOSE, ds.LEAVE_OUT]
    kitten.select("tabby")
    mopeds.select(ds.LEAVE_OUT)
    at.run()
    assert not any("match no label" in w.value for w in at.warning)
    at.button(key="ds_start_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "6"                              # the mopeds left out
    out = Path(at.session_state["ds_run"])
    table = interpret.open_dataset(out).table()
    assert sorted(set(table["label"])) == ["espresso", "tabby"]
    assert (table["label"] == "tabby").sum() == 3 and set(table.loc[table["label"] == "tabby", "path"].str[:7]) == {"kitten/"}
    assert labels.index("tabby") in set(table["label_index"])


def _key(name: str) -> str:
    import hashlib

    return "w_ds_map_" + hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
