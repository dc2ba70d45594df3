"""The Concepts page on a vision transformer (AppTest, no browser): a tiny random-init
timm ViT from a server's model folder.  Its concepts are traced by AttnLRP
(:mod:`interpret.concepts.vit`): the page shows the same channels and shares as
:func:`interpret.concepts` for the same photo, block and class, offers the blocks'
output tokens as layers, hides zennit's rules, offers reference patches (AttnLRP), refuses discovered concepts
with a sentence (an info, not an error), and names a concept of a token layer."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit.testing.v1")

import interpret  # noqa: E402
import tiny_models as tm  # noqa: E402
from interpret.concepts import vit as V  # noqa: E402
from interpret.concepts.store import concept_names  # noqa: E402
from test_app import no_errors, page  # noqa: E402
from test_attnlrp import timm_vit  # noqa: E402

CONCEPTS = "pages/7_Concepts.py"
NAME = "Tiny ViT"


@pytest.fixture
def vit_folder(tmp_path, monkeypatch):
    """A model folder holding a tiny timm ViT (every parameter random), its factory
    the tests' own ``tiny_models.timm_model``; the concept store in ``tmp_path``; the
    app's result cache emptied before and after."""
    from safetensors.torch import save_file

    from ui import compute

    save_file({k: v.contiguous() for k, v in timm_vit().state_dict().items()}, str(tmp_path / "vit.safetensors"))
    kw = ", ".join(f"{k} = {v}" for k, v in tm.VIT_KW.items())
    (tmp_path / "models.toml").write_text(
        f'[[model]]\nname = "{NAME}"\nfile = "vit.safetensors"\nfactory = "tiny_models:timm_model"\n'
        f'kwargs = {{ name = "vit_tiny_patch16_224", {kw} }}\nresize = {tm.VIT_SIZE}\ncrop = {tm.VIT_SIZE}\n')
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(tmp_path))
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))  # the concept store's folder
    compute.results.clear()
    yield tmp_path
    compute.results.clear()


def the_vit(folder):
    from interpret.model_folder import read_model_folder

    (entry,) = read_model_folder(str(folder))
    return entry.load()


def captions(at) -> list:
    return [im.caption for el in at.get("image") for im in el.proto.imgs if im.caption]


def shown(cs) -> list:
    """The captions the page draws for ``cs``, in the order AppTest reads them: the
    page lays the concepts out in 3 columns (concept i in column i % 3), read column by column."""
    want = [f"{c.name or f'channel {c.channel}'}: {c.relevance:.0%} of the layer's relevance" for c in cs]
    return [w for col in range(3) for w in want[col::3]]


def infos(at) -> list:
    return [i.value for i in at.info]


def test_the_concepts_page_on_a_vit_shows_the_attnlrp_concepts_interpret_concepts_finds(vit_folder):
    from ui.samples import DEFAULT_SAMPLE, sample

    at = page(CONCEPTS, {"model": f"team:{NAME}"})
    at.run()
    no_errors(at)
    handle = the_vit(vit_folder)
    assert V.covers(handle)
    layer = V.default_layer(handle)
    # the layer picker offers the blocks' output tokens, the suggested block chosen
    picker = at.selectbox(key="w_cx_vit_layer")
    assert picker.options and all("tokens×channels 17×32" in o for o in picker.options)
    assert picker.value == layer == "blocks.0"
    # no zennit composite for a ViT; the caption says AttnLRP
    assert not [s for s in at.selectbox if s.key == "w_cx_composite"]
    assert any("AttnLRP, Achtibat et al. 2024" in c.value for c in at.caption)
    assert not any("EpsilonPlusFlat" in c.value for c in at.caption)

    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    top = interpret.predict(handle, photo, top_k=1)[0].index
    cs = interpret.concepts(handle, photo, layer=layer, target=top, k=6)
    assert cs.composite == "attnlrp"
    caps = [c for c in captions(at) if "of the layer's relevance" in c]
    assert caps == shown(cs)

    # reference patches are offered (AttnLRP, issue 21); discovered concepts: a sentence (info)
    said = " ".join(infos(at))
    assert "Reference patches cannot be computed" not in said
    assert "Discovered concepts are not offered for a vision transformer" in said
    assert [b for b in at.button if b.key == "cx_refs_btn"]
    assert not [b for b in at.button if b.key == "cx_discover_btn"]
    # TCAV (Captum's, on the block's flattened tokens) stays offered
    assert "Does the model use your concept?" in [h.value for h in at.subheader]


def test_the_vit_page_finds_reference_patches_by_attnlrp_as_the_backend_does(vit_folder):
    """Issue 21: the button finds the reference patches of the sample set on the ViT's
    block; under each concept, its patches' shares are the backend's table's."""
    from ui.samples import DEFAULT_SAMPLE, sample

    at = page(CONCEPTS, {"model": f"team:{NAME}"})
    at.run()
    (btn,) = [b for b in at.button if b.key == "cx_refs_btn"]
    btn.click().run()
    no_errors(at)
    handle = the_vit(vit_folder)
    layer = V.default_layer(handle)
    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    top = interpret.predict(handle, photo, top_k=1)[0].index
    cs = interpret.concepts(handle, photo, layer=layer, target=top, k=6)
    import json

    import numpy as np

    stored = list((vit_folder / "runs").rglob("refs-*.npz"))
    assert len(stored) == 1  # kept in the concept store, keyed with "attnlrp"
    with np.load(stored[0], allow_pickle=False) as z:
        assert json.loads(str(z["meta"]))["composite"] == V.COMPOSITE and json.loads(str(z["meta"]))["layer"] == layer
        share = z["share"]
    # a concept's patches: its top 4 photos by share, only those where it is evidence for
    want = [[f"{v:.0%}" for v in np.sort(share[:, c.channel])[::-1][:4] if v > 0] for c in cs]
    got = [[im.caption for im in el.proto.imgs] for el in at.get("image") if len(el.proto.imgs) and
           all(im.caption.endswith("%") and "relevance" not in im.caption for im in el.proto.imgs)]
    assert got and sorted(got) == sorted(w for w in want if w)


def test_the_set_entries_take_a_vit_by_attnlrp_and_the_page_tells_a_vit_apart():
    from interpret.concepts.dataset import dataset_concepts
    from ui import concepts as cx

    handle = interpret.load_model(timm_vit(), preprocessing=interpret.Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    photo = tm_photo().resize((tm.VIT_SIZE, tm.VIT_SIZE))
    # issue 21: no refusal any more; the page passes "attnlrp", the backend reports it
    refs = interpret.reference_patches(handle, [photo, photo], composite=V.COMPOSITE)
    assert refs.composite == V.COMPOSITE and refs.layer == V.default_layer(handle)
    data = dataset_concepts(handle, [photo, photo], [0, 1])
    assert data.table.composite == V.COMPOSITE and [c for c, _, _ in data.by_class] == [0, 1]
    assert cx.vit_layers(handle) is not None
    # a CNN, or a Swin (windowed attention: no AttnLRP rules here), is not taken for a ViT:
    # the page keeps its zennit path (or LRP's refusal) there
    assert cx.vit_layers(interpret.load_model(tm.small_cnn())) is None
    swin = interpret.load_model(tm.timm_swin(), preprocessing=interpret.Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    assert cx.vit_layers(swin) is None


def test_the_vit_page_follows_the_block_chosen_and_names_a_token_concept(vit_folder):
    from ui.samples import DEFAULT_SAMPLE, sample

    at = page(CONCEPTS, {"model": f"team:{NAME}"})
    at.run()
    at.selectbox(key="w_cx_vit_layer").select("blocks.1").run()
    at.number_input(key="w_cx_k").set_value(3).run()
    no_errors(at)
    handle = the_vit(vit_folder)
    photo = interpret.load_image(sample(DEFAULT_SAMPLE).path)
    top = interpret.predict(handle, photo, top_k=1)[0].index
    cs = interpret.concepts(handle, photo, layer="blocks.1", target=top, k=3)
    caps = [c for c in captions(at) if "of the layer's relevance" in c]
    assert caps == shown(cs)

    # naming a concept of the token layer on the page keeps it in the store and shows it
    ch = cs[1].channel
    at.text_input(key=f"w_cx_name_blocks.1_{ch}").input("red patch")
    form = [b for b in at.button if b.label == "Save the name" and b.form_id == f"form_cx_name_blocks.1_{ch}"][0]
    form.click().run()
    no_errors(at)
    store = vit_folder / "runs" / "concepts"
    assert concept_names(handle, "blocks.1", store=store) == {("blocks.1", ch): "red patch"}
    assert f"red patch: {cs[1].relevance:.0%} of the layer's relevance" in captions(at)
    # and interpret.concepts carries the name for that channel only
    named = interpret.concepts(handle, photo, layer="blocks.1", target=top, k=3, store=store)
    assert [c.name for c in named] == [None, "red patch", None]


def test_name_concept_takes_a_vit_token_layer_and_round_trips(tmp_path):
    handle = interpret.load_model(timm_vit(), preprocessing=interpret.Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    assert interpret.name_concept(handle, "blocks.0", 31, " stripes ", store=tmp_path) == "stripes"
    assert concept_names(handle, "blocks.0", store=tmp_path) == {("blocks.0", 31): "stripes"}
    # C is the tokens' last axis (32 here): channel 32 is out of range, with the count
    with pytest.raises(interpret.InputError, match="layer 'blocks.0' has 32 channels"):
        interpret.name_concept(handle, "blocks.0", 32, "x", store=tmp_path)


# -- the CLI and the report on a ViT ---------------------------------------------------


def vit224():
    """A tiny random timm ViT at the default 224 input (a pickle keeps no preprocessing:
    the CLI reads it at 224)."""
    return tm.timm_model("vit_tiny_patch16_224", embed_dim=32, depth=2, num_heads=2)


def test_the_cli_traces_a_vits_concepts_by_attnlrp_and_names_one(tmp_path, capsys):
    import json

    import torch
    from PIL import Image

    from interpret.cli import main
    from interpret.models import load_model

    net = vit224()
    torch.save(net, tmp_path / "vit.pt")
    photo = Image.radial_gradient("L").convert("RGB").resize((224, 224))
    photo.save(tmp_path / "p.png")
    model = ["--model", str(tmp_path / "vit.pt"), "--allow-untrusted"]  # our own pickle, written above
    store = ["--store", str(tmp_path / "store")]
    assert main(["concepts", "top", str(tmp_path / "p.png"), "--k", "3", "--json"] + model + store) == 0
    got = json.loads(capsys.readouterr().out)
    # loaded as the CLI loads it (a pickle's preprocessing: ImageNet's, not timm's config)
    cs = interpret.concepts(load_model(str(tmp_path / "vit.pt"), allow_untrusted=True),
                            interpret.load_image(tmp_path / "p.png"), k=3)
    assert got["composite"] == "attnlrp" and got["layer"] == "blocks.0" == cs.layer
    assert [c["channel"] for c in got["concepts"]] == [c.channel for c in cs]
    assert [c["share"] for c in got["concepts"]] == pytest.approx([c.relevance for c in cs], abs=1e-9)
    ch = cs[0].channel
    assert main(["concepts", "name", "--layer", "blocks.0", "--channel", str(ch), "edges"] + model + store) == 0
    capsys.readouterr()
    assert main(["concepts", "top", str(tmp_path / "p.png"), "--k", "3"] + model + store) == 0
    out = capsys.readouterr().out
    assert "(AttnLRP, Achtibat et al. 2024)" in out and "LRP attnlrp" not in out
    assert f"channel {ch:5d}: {cs[0].relevance:7.1%} of the layer's relevance (edges)" in out
    # reference patches take a ViT too (issue 21; was: refused)
    (tmp_path / "refs").mkdir()
    photo.save(tmp_path / "refs" / "a.png")
    assert main(["concepts", "top", str(tmp_path / "p.png"), "--references", str(tmp_path / "refs")] + model) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_the_report_says_a_vits_concepts_are_attnlrps():
    from interpret.report import report_html

    handle = interpret.load_model(vit224())
    photo = interpret.load_image(tm_photo())
    cs = interpret.concepts(handle, photo, k=2)
    e = interpret.explain(handle, photo, "attnlrp", target=cs.target.index)
    page_ = report_html(handle, photo, [e], steps=2, concepts=cs)
    section = page_[page_.index("What the decision rests on"):]
    assert "(AttnLRP; Achtibat et al. 2024)" in section and "LRP attnlrp" not in section
    assert f"channel {cs[0].channel}: {cs[0].relevance:.0%} of the layer's relevance" in section
    plain = report_html(handle, photo, [e], steps=2, plain=True, concepts=cs)
    assert "What the decision rests on" in plain


def tm_photo():
    from PIL import Image

    return Image.radial_gradient("L").convert("RGB").resize((224, 224))
