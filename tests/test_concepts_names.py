"""The names a team gives concepts: kept in the model's concept store (per model, layer
and channel; cleaned and bounded), carried as ``.name`` by ``interpret.concepts``
results, shown escaped wherever a concept is named (the Concepts page, the report, the
Dataset page's tables); an unnamed concept goes by its channel and, when the reference
patches are known, the classes the model gives their photos (a table of cases)."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import Preprocessing
from interpret.concepts import ConceptSet, concept_label, concept_names, concept_sentence
from interpret.concepts.crp import Concept, ReferenceTable
from interpret.concepts.store import MAX_NAME, clean_name, load_names, names_path

pytestmark = pytest.mark.usefixtures("single_thread")

HOSTILE = "<img src=x onerror=alert(1)>"
BOLD = "**bold**"
PHOTO = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def tiny(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(8, 8, 3, padding=1)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()), ("fc", nn.Linear(8, 3)),
        ])).eval()


def handle_of(module):
    return interpret.load_model(module, preprocessing=Preprocessing(32, 32), labels=["tabby", "dog", "car"],
                                name="tiny")


# -- the store ---------------------------------------------------------------------------

def test_a_name_round_trips_through_the_concept_store_to_a_fresh_handle(tmp_path):
    module = tiny()
    h = handle_of(module)
    assert interpret.name_concept(h, "conv2", 5, "striped fur", store=tmp_path) == "striped fur"
    assert interpret.name_concept(h, "conv1", 2, "edge", store=tmp_path) == "edge"
    assert len(list(tmp_path.glob("names-*.json"))) == 1
    assert not list(tmp_path.glob(".*tmp*"))  # written to a temporary name, then renamed
    fresh = handle_of(module)  # another process's view: nothing in memory
    assert concept_names(fresh) == {}
    assert concept_names(fresh, store=tmp_path) == {("conv2", 5): "striped fur", ("conv1", 2): "edge"}
    assert concept_names(fresh, "conv2", store=tmp_path) == {("conv2", 5): "striped fur"}
    # the results carry it: every channel of conv2 asked for, only channel 5 named
    cs = interpret.concepts(fresh, PHOTO, layer="conv2", channels=range(8), store=tmp_path)
    assert {c.channel: c.name for c in cs} == {c: ("striped fur" if c == 5 else None) for c in range(8)}
    # a rename and a removal, read back from the file again
    interpret.name_concept(fresh, "conv2", 5, "fur", store=tmp_path)
    interpret.name_concept(fresh, "conv1", 2, "   ", store=tmp_path)
    assert concept_names(handle_of(module), store=tmp_path) == {("conv2", 5): "fur"}
    # a cached result is named anew: the name is not frozen into the cache
    again = interpret.concepts(fresh, PHOTO, layer="conv2", channels=range(8), store=tmp_path)
    assert again[5].name == "fur"
    # another process (another handle) renames it: the first handle reads the newer name
    interpret.name_concept(handle_of(module), "conv2", 5, "stripes", store=tmp_path)
    assert concept_names(fresh, store=tmp_path) == {("conv2", 5): "stripes"}
    # other weights do not inherit the names (keyed by the model's content)
    assert concept_names(handle_of(tiny(seed=1)), store=tmp_path) == {}


def test_a_name_without_a_store_is_kept_with_the_handle_for_this_process():
    h = handle_of(tiny())
    interpret.name_concept(h, "conv2", 3, "eye")
    assert concept_names(h) == {("conv2", 3): "eye"}
    cs = interpret.concepts(h, PHOTO, layer="conv2", channels=[3, 4])
    assert [c.name for c in cs] == ["eye", None]
    # the public contract of the results is unchanged
    assert [c.channel for c in cs] == [3, 4] and cs[0].heatmap.shape == (32, 32)
    assert isinstance(cs[0].relevance, float)


@pytest.mark.parametrize("raw, kept", [
    ("striped fur", "striped fur"),
    ("  striped \t\n fur  ", "striped fur"),          # white space made one space
    ("striped\u202efur", "stripedfur"),               # a bidirectional override removed
    ("eye\x00\x07\x1b[31m", "eye[31m"),                # control characters removed
    ("a\u2028b", "a b"),                              # a line separator is white space
    (HOSTILE, HOSTILE),                               # kept as typed: escaped where shown
    ("x" * MAX_NAME, "x" * MAX_NAME),
    ("", None), ("   \n", None), (None, None),        # blank: no name
])
def test_a_name_is_cleaned_of_control_characters_and_white_space(raw, kept):
    assert clean_name(raw) == kept


@pytest.mark.parametrize("raw, message", [
    ("x" * (MAX_NAME + 1), f"at most {MAX_NAME} characters; this one has {MAX_NAME + 1}"),
    (42, "A concept's name is text; got int."),
])
def test_a_name_too_long_or_not_text_is_an_input_error(raw, message):
    with pytest.raises(interpret.InputError, match=message):
        clean_name(raw)


def test_naming_a_channel_or_layer_that_does_not_exist_is_an_input_error(tmp_path):
    h = handle_of(tiny())
    with pytest.raises(interpret.InputError, match="Channel 8 is out of range: layer 'conv2' has 8 channels"):
        interpret.name_concept(h, "conv2", 8, "x", store=tmp_path)
    with pytest.raises(interpret.InputError, match="A channel is a whole number"):
        interpret.name_concept(h, "conv2", 1.5, "x", store=tmp_path)
    with pytest.raises(interpret.InputError):
        interpret.name_concept(h, "conv9", 1, "x", store=tmp_path)
    assert concept_names(h, store=tmp_path) == {}


def test_an_edited_names_file_is_cleaned_again_and_a_foreign_one_ignored(tmp_path):
    h = handle_of(tiny())
    fp = h.fingerprint()
    path = names_path(tmp_path, fp)
    path.write_text(json.dumps({"format": "interpret-concepts-names/1", "model": fp, "names": {
        "conv2": {"1": "fur\x1b\n", "2": "y" * (MAX_NAME + 5), "x": "bad channel", "-1": "negative"},
        "conv1": "not a mapping"}}))
    assert load_names(tmp_path, fp) == {("conv2", 1): "fur"}
    path.write_text(json.dumps({"format": "interpret-concepts-names/1", "model": "another", "names": {
        "conv2": {"1": "fur"}}}))
    assert load_names(tmp_path, fp) == {}
    path.write_text("{not json")
    assert load_names(tmp_path, fp) == {}
    # naming over a file that cannot be read would lose what it holds: refused, file kept
    with pytest.raises(interpret.InputError, match="cannot be read, so no name is changed"):
        interpret.name_concept(h, "conv2", 1, "fur", store=tmp_path)
    assert path.read_text() == "{not json"


# -- words -------------------------------------------------------------------------------

@pytest.mark.parametrize("channel, name, where, want", [
    (12, "striped fur", ["tabby"], "striped fur"),     # a name wins
    (12, None, [], "channel 12"),                      # no reference patches known
    (12, "", [], "channel 12"),
    (12, None, ["tabby"], "channel 12, most relevant on photos the model calls tabby"),
    (12, None, ["tabby", "tabby", "tabby"], "channel 12, most relevant on photos the model calls tabby"),
    (12, None, ["tabby", "tiger cat", "tabby"],
     "channel 12, most relevant on photos the model calls tabby or tiger cat"),
    # the most frequent first; a tie goes to the class of the more relevant patch
    (3, None, ["dog", "tabby", "tabby"], "channel 3, most relevant on photos the model calls tabby or dog"),
    (3, None, ["dog", "tabby"], "channel 3, most relevant on photos the model calls dog or tabby"),
    (3, None, ["dog", "tabby", "car", "car"],
     "channel 3, most relevant on photos the model calls car, dog or others"),
])
def test_an_unnamed_concept_is_described_by_the_classes_of_its_reference_photos(channel, name, where, want):
    assert concept_label(channel, name, where) == want


@pytest.mark.parametrize("shares, want", [
    ([("striped fur", 0.41), ("eye", 0.18)], "tabby here rests mostly on striped fur (41%) and eye (18%)."),
    ([("channel 12, most relevant on photos the model calls tabby", 0.41), ("eye", 0.18), ("channel 3", 0.05)],
     "tabby here rests mostly on channel 12, most relevant on photos the model calls tabby (41%); eye (18%); "
     "and channel 3 (5%)."),
    ([("channel 12, most relevant on photos the model calls tabby", 0.41), ("eye", 0.18)],
     "tabby here rests mostly on channel 12, most relevant on photos the model calls tabby (41%) and eye (18%)."),
    ([("a", 0.1), ("b", 0.05)], "tabby here is spread over many concepts; the largest are a (10%) and b (5%)."),
])
def test_described_concepts_are_listed_with_semicolons(shares, want):
    assert concept_sentence("tabby", shares) == want


def test_where_gives_the_classes_of_a_channels_reference_photos_and_nothing_for_a_fixed_target():
    share = np.array([[0.5, 0.1], [0.2, -0.3], [0.9, 0.0], [0.0, 0.4]])
    table = ReferenceTable(layer="conv2", names=("a", "b", "c", "d"), share=share,
                           argmax=np.zeros((4, 2), np.int64), classes=np.array([0, 1, 2, 1]), map_size=(4, 4),
                           composite="epsilon_plus_flat", seconds=0.0)
    # channel 0: photos c (0.9), a (0.5), b (0.2); d has no positive share there
    assert table.where(0) == (2, 0, 1)
    assert table.where(0, n=2) == (2, 0)
    assert table.where(1) == (1, 0)  # d (0.4), a (0.1); b's share is negative, c's zero
    fixed = ReferenceTable(layer="conv2", names=("a", "b", "c", "d"), share=share,
                           argmax=np.zeros((4, 2), np.int64), classes=np.array([0, 0, 0, 0]), map_size=(4, 4),
                           composite="epsilon_plus_flat", seconds=0.0, target="0")
    assert fixed.where(0) == ()
    with pytest.raises(interpret.InputError, match="Channel 2 is out of range"):
        table.where(2)


# -- the report ------------------------------------------------------------------------

def named_set(label: str, items) -> ConceptSet:
    concepts = []
    for i, (ch, s, name) in enumerate(items):
        heat = np.zeros((32, 32), np.float32)
        heat[i * 4:(i + 1) * 4, :4] = s
        concepts.append(Concept(channel=ch, relevance=s, value=s, heatmap=heat, name=name))
    rel = np.zeros(16)
    for ch, s, _ in items:
        rel[ch] = s
    return ConceptSet(layer="conv2", target=None, target_label=label, score=1.0, total=float(rel.sum()),
                      channel_relevance=rel, concepts=tuple(concepts), composite="epsilon_plus_flat",
                      canonizers=(), seconds=0.0)


def section(html: str) -> str:
    return html.split("<h2>What the decision rests on</h2>", 1)[1].split("<h2>", 1)[0]


@pytest.mark.parametrize("plain", [True, False])
def test_the_report_names_concepts_by_the_teams_names_escaped(plain):
    from interpret.report import report_html

    h = handle_of(tiny())
    e = interpret.explain(h, PHOTO, "gradcam", layer="conv2", target=0)
    cs = named_set("tabby", [(12, 0.41, "striped fur"), (7, 0.18, HOSTILE), (3, 0.05, BOLD), (1, 0.02, None)])
    part = section(report_html(h, PHOTO, [e], steps=4, plain=plain, concepts=cs))
    assert "<img src=x" not in part and "<b>bold</b>" not in part and "<i>bold</i>" not in part
    assert "&lt;img src=x onerror=alert(1)&gt;" in part or "&#60;img src=x onerror=alert(1)&#62;" in part
    if plain:
        assert ("<p class='sentence'><i>tabby</i> here rests mostly on striped fur (41%), "
                "&#60;img src=x onerror=alert(1)&#62; (18%) and &#42;&#42;bold&#42;&#42; (5%).</p>") in part
        assert "Bright where striped fur counts for <i>tabby</i>; it carries 41% of what this layer weighs." in part
        assert "Bright where channel 1 counts for <i>tabby</i>" in part  # unnamed: its channel
    else:
        assert ("<p class='sentence'>tabby here rests mostly on striped fur (41%), "
                "&lt;img src=x onerror=alert(1)&gt; (18%) and **bold** (5%).</p>") in part
        assert '<div class="muted">striped fur: 41% of the layer\'s relevance</div>' in part
        assert '<div class="muted">channel 1: 2% of the layer\'s relevance</div>' in part


# -- the app ---------------------------------------------------------------------------

@pytest.fixture
def fresh_results():
    """The app's shared result cache emptied before and after (reference patches computed
    here must not show in another test's page, as after a server start)."""
    pytest.importorskip("streamlit.testing.v1")
    from ui import compute

    compute.results.clear()
    yield
    compute.results.clear()


def test_the_dataset_tables_name_concepts_by_the_teams_names_as_plain_text():
    from interpret.concepts.dataset import DatasetConcepts, Region, RegionConcepts
    from ui import concepts as cx

    h = handle_of(tiny())
    share = np.array([[0.6, 0.3], [0.5, 0.2]])
    table = ReferenceTable(layer="conv2", names=("a", "b"), share=share, argmax=np.zeros((2, 2), np.int64),
                           classes=np.array([0, 0]), map_size=(4, 4), composite="epsilon_plus_flat", seconds=0.0,
                           _images=(PHOTO, PHOTO), _handle=h, target="the targets given")
    region = RegionConcepts(Region("corner", (0, 1), (0, 0, 0.5, 0.5)), 2, 0.3, ((1, 0.7), (0, 0.3)))
    result = DatasetConcepts(layer="conv2", table=table, by_class=tuple(table.by_class(k=2)), regions=(region,),
                             seconds=0.0)
    by_class, by_flag = cx.dataset_rows(h, result, named={0: HOSTILE})
    assert [r["concept"] for r in by_class] == [HOSTILE, "channel 1"]  # raw: a cell never renders markup
    assert [r["concept"] for r in by_flag] == ["channel 1", HOSTILE]


def test_the_concepts_page_shows_a_hostile_name_escaped_and_names_a_concept(tmp_path, monkeypatch, fresh_results):
    pytest.importorskip("streamlit.testing.v1")
    from test_app import no_errors, page
    from ui.samples import DEFAULT_SAMPLE, sample

    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))  # the concept store's folder
    store = tmp_path / "runs" / "concepts"
    handle = interpret.load_model()
    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    layer = interpret.default_layer(handle)
    top = interpret.predict(handle, photo, top_k=1)[0].index
    cs = interpret.concepts(handle, photo, layer=layer, target=top, k=3)
    first, second = cs[0].channel, cs[1].channel
    interpret.name_concept(handle, layer, first, HOSTILE, store=store)
    interpret.name_concept(handle, layer, second, BOLD, store=store)

    at = page("pages/7_Concepts.py")
    at.run()
    at.number_input(key="w_cx_k").set_value(3).run()
    no_errors(at)
    caps = [im.caption for el in at.get("image") for im in el.proto.imgs if im.caption]
    assert f"&#60;img src=x onerror=alert(1)&#62;: {cs[0].relevance:.0%} of the layer's relevance" in caps
    assert f"&#42;&#42;bold&#42;&#42;: {cs[1].relevance:.0%} of the layer's relevance" in caps
    markdown = " ".join(m.value for m in at.markdown)
    assert "<img" not in markdown and "**bold**" not in markdown
    assert "&#60;img src=x onerror=alert(1)&#62; (" in markdown

    # naming the third concept on the page stores it for the model, layer and channel
    third = cs[2].channel
    key = f"w_cx_name_{layer}_{third}"
    at.text_input(key=key).input("  striped\n fur ")
    forms = [b for b in at.button if b.label == "Save the name"]
    assert len(forms) == 3
    form = [b for b in forms if b.form_id == f"form_cx_name_{layer}_{third}"][0]
    form.click().run()
    no_errors(at)
    assert concept_names(interpret.load_model(), layer, store=store)[(layer, third)] == "striped fur"
    caps = [im.caption for el in at.get("image") for im in el.proto.imgs if im.caption]
    assert f"striped fur: {cs[2].relevance:.0%} of the layer's relevance" in caps


def test_the_cli_names_a_concept_and_top_uses_the_name(tmp_path, capsys):
    from interpret.cli import main

    torch.save(tiny(), tmp_path / "tiny.pt")
    PHOTO.save(tmp_path / "p.png")
    model = ["--model", str(tmp_path / "tiny.pt"), "--allow-untrusted"]  # our own pickle, written above
    assert main(["concepts", "top", str(tmp_path / "p.png"), "--layer", "conv2", "--k", "1", "--json"] + model) == 0
    top = json.loads(capsys.readouterr().out)["concepts"][0]
    assert top["name"] is None
    assert main(["concepts", "name", "striped\n fur", "--layer", "conv2", "--channel", str(top["channel"]),
                 "--store", str(tmp_path / "store")] + model) == 0
    assert capsys.readouterr().out.strip() == f"channel {top['channel']} of conv2: named 'striped fur'"
    assert main(["concepts", "top", str(tmp_path / "p.png"), "--layer", "conv2", "--k", "1",
                 "--store", str(tmp_path / "store")] + model) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(f"striped fur ({round(100 * top['share'])}%).")
    assert f"channel {top['channel']:5d}: " in out and "(striped fur)" in out


def test_a_result_described_by_its_reference_photos_reads_so_in_the_report():
    from interpret.report import report_html

    h = handle_of(tiny())
    share = np.zeros((4, 16))
    share[:, 12] = [0.5, 0.4, 0.3, -0.1]     # channel 12: photos 0, 1, 2 (the model: tabby, tabby, dog)
    share[:, 7] = [-0.2, 0.0, 0.0, 0.0]      # channel 7: no photo where it speaks for the class
    table = ReferenceTable(layer="conv2", names=("a", "b", "c", "d"), share=share,
                           argmax=np.zeros((4, 16), np.int64), classes=np.array([0, 0, 1, 2]), map_size=(4, 4),
                           composite="epsilon_plus_flat", seconds=0.0, _handle=h)
    cs = named_set("tabby", [(12, 0.41, None), (7, 0.18, None), (3, 0.05, "eye")]).named({("conv2", 3): "eye"}, table)
    assert cs[0].where == ("tabby", "tabby", "dog") and cs[1].where == () and cs[2].name == "eye"
    # a table of another layer says nothing about these concepts
    other = ReferenceTable(layer="conv1", names=("a",), share=share[:1], argmax=np.zeros((1, 16), np.int64),
                           classes=np.array([0]), map_size=(4, 4), composite="epsilon_plus_flat", seconds=0.0,
                           _handle=h)
    assert [c.where for c in cs.named({}, other)] == [(), (), ()]
    e = interpret.explain(h, PHOTO, "gradcam", layer="conv2", target=0)
    part = section(report_html(h, PHOTO, [e], steps=4, plain=True, concepts=cs))
    assert ("<i>tabby</i> here rests mostly on channel 12, most relevant on photos the model calls tabby or dog "
            "(41%); channel 7 (18%); and eye (5%).") in part


def test_the_concepts_page_describes_unnamed_concepts_by_their_reference_photos(tmp_path, monkeypatch, fresh_results):
    pytest.importorskip("streamlit.testing.v1")
    from test_app import no_errors, page
    from ui.features import sample_set
    from ui.samples import DEFAULT_SAMPLE, sample
    from interpret import words

    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))
    handle = interpret.load_model()
    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    layer = interpret.default_layer(handle)
    top = interpret.predict(handle, photo, top_k=1)[0].index
    cs = interpret.concepts(handle, photo, layer=layer, target=top, k=2)
    interpret.name_concept(handle, layer, cs[1].channel, "striped fur", store=tmp_path / "runs" / "concepts")
    at = page("pages/7_Concepts.py")
    at.run()
    at.number_input(key="w_cx_k").set_value(2).run()
    at.button(key="cx_refs_btn").click().run()
    no_errors(at)
    # the same set, layer and rules as the page: the patches' photos' classes by the backend
    refs = interpret.reference_patches(handle, sample_set(), layer=layer)
    where = [handle.label(k) for k in refs.where(cs[0].channel, 4)]
    assert where, "the top concept is relevant on some sample photo"
    caps = [im.caption for el in at.get("image") for im in el.proto.imgs if im.caption]
    first = words.text(concept_label(cs[0].channel, None, where))
    assert first.startswith(f"channel {cs[0].channel}, most relevant on photos the model calls ")
    assert f"{first}: {cs[0].relevance:.0%} of the layer's relevance" in caps
    assert f"striped fur: {cs[1].relevance:.0%} of the layer's relevance" in caps  # a name wins
