"""Reference patches (``interpret.reference_patches``) and dataset concepts
(``dataset_concepts``) on a vision transformer, by AttnLRP on the block's output tokens
(:func:`interpret.concepts.vit.layer_relevance`), batched over the photos, on a tiny timm
ViT with every parameter random (``test_attnlrp.randomised``):

* (a) each stored share equals, photo by photo, :func:`interpret.concepts`'s share of
  that channel for the photo's own predicted class (the same AttnLRP relevance summed
  over every token, over the sum of the absolute relevances of all channels), to 1e-5;
* (b) a channel's reference photos are the top ones by that share, in that order;
* (c) a reference patch's box holds the pixels of the patch token where the channel's
  relevance is largest (computed here independently, photo by photo);
* (d) lifecycle: the shared model untouched, also after a Cancelled mid-set;
* (e) dataset mode: each class's concepts are the mean share over its photos;
* the stored table is read back from disk unchanged, without running the model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import interpret
from interpret import Cancelled, Preprocessing
from interpret.concepts import vit as V
from interpret.concepts.dataset import dataset_concepts

import tiny_models as tm
from test_attnlrp import randomised, timm_vit

pytestmark = pytest.mark.usefixtures("single_thread")

N = 10  # photos; batch_size 4 makes three batches, the last one short


def photos(n: int = N, seed: int = 5):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (tm.VIT_SIZE, tm.VIT_SIZE, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def setup():
    model = randomised(timm_vit(), seed=2)
    handle = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    ims = photos()
    layer = V.default_layer(handle)
    # the per-photo loop: concepts() of every channel for the photo's own predicted class
    preds, shares, argmax = [], [], []
    for im in ims:
        top = interpret.predict(handle, im, top_k=1)[0].index
        cs = interpret.concepts(handle, im, layer=layer, target=top, k=64)
        assert len(cs.channel_relevance) == 32
        preds.append(top)
        shares.append(cs.channel_relevance / np.abs(cs.channel_relevance).sum())
        argmax.append(token_argmax(handle, im, layer, top))
    return handle, ims, layer, np.array(preds), np.stack(shares), np.stack(argmax)


def token_argmax(handle, im, layer, target):
    """Per channel, the flat index (on the patch grid) of the patch token where
    activation x AttnLRP gradient of ``target``'s logit is largest, on a copy of the rules'
    copy with a plain forward hook (independent of ``layer_relevance``)."""
    import copy

    from interpret.attention import layout
    from interpret.methods import attnlrp as A

    twin = copy.deepcopy(A.attnlrp_copy(handle))
    seen = {}
    twin.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.setdefault("a", o))
    x = handle.preprocess(im).detach().requires_grad_(True)
    with torch.enable_grad():
        out = twin(x)
        a = seen["a"]
        (g,) = torch.autograd.grad(out[0, target], [a])
    rel = (a.detach() * g).double()[0, layout(handle).prefix:]  # patch tokens x C
    return rel.argmax(0).numpy()


def test_vit_reference_shares_equal_concepts_photo_by_photo(setup):
    handle, ims, layer, preds, shares, _ = setup
    table = interpret.reference_patches(handle, ims, batch_size=4)
    assert table.layer == layer and table.composite == "attnlrp" and table.map_size == (4, 4)
    np.testing.assert_array_equal(table.classes, preds)
    assert table.share.shape == (N, 32)
    np.testing.assert_allclose(table.share, shares, atol=1e-5, rtol=0)
    # spot-check against concepts(..., channels=[c]) itself (its .relevance is the share)
    for i in (0, N - 1):
        for c in (0, 17):
            (one,) = interpret.concepts(handle, ims[i], layer=layer, target=int(preds[i]), channels=[c])
            assert table.share[i, c] == pytest.approx(one.relevance, abs=1e-5)


def test_vit_reference_photos_are_the_top_ones_by_share_and_patches_hold_the_top_token(setup):
    handle, ims, layer, preds, shares, argmax = setup
    table = interpret.reference_patches(handle, ims, batch_size=4)
    np.testing.assert_array_equal(table.argmax, argmax)
    checked = 0
    for c in range(32):
        refs = table.patches(c, n=3)
        positive = np.sort(shares[:, c][shares[:, c] > 0])[::-1][:3]
        np.testing.assert_allclose([r.relevance for r in refs], positive, atol=1e-5)
        for r in refs:
            assert shares[r.index, c] == pytest.approx(r.relevance, abs=1e-5)
            y, x = divmod(int(argmax[r.index, c]), 4)
            assert r.position == (y, x)
            left, top, right, bottom = r.box
            # the token's own 8 x 8 pixels lie in the box; the box spans 3 tokens a side
            assert left <= 8 * x and 8 * x + 8 <= right and top <= 8 * y and 8 * y + 8 <= bottom
            assert (right - left, bottom - top) == (24, 24) and r.patch.size == (24, 24)
            checked += 1
    assert checked > 32  # many channels have positive photos
    # the names' "most relevant on photos the model calls ...": the predicted classes of the top photos
    c = int(np.argmax(shares.max(0)))
    order = np.argsort(-shares[:, c], kind="stable")[:4]
    assert table.where(c, 4) == tuple(int(preds[i]) for i in order if shares[i, c] > 0)


@pytest.mark.parametrize("y, x, want", [(0, 0, (0, 0, 24, 24)), (1, 2, (8, 0, 32, 24)),
                                        (3, 3, (8, 8, 32, 32)), (2, 1, (0, 8, 24, 32))])
def test_vit_token_box_is_three_tokens_around_the_token_inside_the_photo(setup, y, x, want):
    assert V.token_box(setup[0], y, x, (4, 4)) == want


def test_vit_reference_table_is_stored_and_read_back_without_running_the_model(setup, tmp_path, monkeypatch):
    handle, ims, layer, _, shares, _ = setup
    pre = Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE)
    first = interpret.reference_patches(interpret.load_model(handle.module, preprocessing=pre), ims,
                                        batch_size=4, store=tmp_path)
    assert len(list(tmp_path.glob("refs-*.npz"))) == 1
    np.testing.assert_allclose(first.share, shares, atol=1e-5, rtol=0)
    fresh = interpret.load_model(handle.module, preprocessing=pre)  # another request: nothing cached

    def boom(*a, **k):
        raise AssertionError("the model was run")

    monkeypatch.setattr(V, "layer_relevance", boom)
    again = interpret.reference_patches(fresh, ims, batch_size=4, store=tmp_path)
    np.testing.assert_array_equal(again.share, first.share)
    np.testing.assert_array_equal(again.argmax, first.argmax)
    assert again.composite == "attnlrp" and again.map_size == (4, 4)


def test_vit_dataset_concepts_are_each_classs_mean_share(setup):
    handle, ims, layer, _, _, _ = setup
    targets = [i % 3 for i in range(N)]
    got = dataset_concepts(handle, ims, targets, k=4, batch_size=4)
    # the per-photo loop for the classes given
    per = []
    for im, t in zip(ims, targets):
        cs = interpret.concepts(handle, im, layer=layer, target=t, k=64)
        per.append(cs.channel_relevance / np.abs(cs.channel_relevance).sum())
    per = np.stack(per)
    np.testing.assert_allclose(got.table.share, per, atol=1e-5, rtol=0)
    assert len(got.by_class) == 3
    for cls, n, top in got.by_class:
        mean = per[np.array(targets) == cls].mean(0)
        assert n == targets.count(cls)
        assert [c for c, _ in top] == list(np.argsort(-mean, kind="stable")[:4])
        np.testing.assert_allclose([s for _, s in top], np.sort(mean)[::-1][:4], atol=1e-5)


def test_vit_dataset_region_concepts_split_the_patch_tokens_in_the_box(setup):
    """A region covering the whole photo holds every patch token's relevance: its share of
    the photo's relevance is the patch tokens' part (the class token's is outside any box)."""
    from interpret.concepts.dataset import Region

    handle, ims, layer, _, _, _ = setup
    got = dataset_concepts(handle, ims[:2], [0, 1], regions=[Region("all", (0, 1), (0, 0, 1, 1))], batch_size=1)
    (reg,) = got.regions
    want = []
    for i, t in enumerate((0, 1)):
        grid, extra, _ = _one(handle, ims[i], layer, t)
        per = grid.sum((1, 2)) + extra
        want.append(grid.sum() / np.abs(per).sum())
    assert reg.relevance_share == pytest.approx(float(np.mean(want)), abs=1e-6)


def _one(handle, im, layer, t):
    from interpret.handle import session

    with session(handle, exclusive=True):
        grid, extra, _ = V.layer_relevance(handle, handle.preprocess(im), layer, torch.tensor([t]))
    return grid[0].numpy(), extra[0].numpy(), None


def test_vit_reference_patches_leave_the_model_unchanged_also_after_cancel(model_state):
    model = randomised(timm_vit(), seed=3)
    handle = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    before = model_state.snapshot(model)
    ims = photos(6, seed=9)
    seen = []

    def cancel(done, total):
        seen.append((done, total))
        if done >= 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        interpret.reference_patches(handle, ims, batch_size=2, progress=cancel)
    assert seen == [(2, 6)]  # progress per batch; stopped after the first
    model_state.assert_unchanged(before, model)
    with pytest.raises(Cancelled):
        dataset_concepts(handle, ims, [0] * 6, batch_size=2, progress=cancel)
    model_state.assert_unchanged(before, model)
    table = interpret.reference_patches(handle, ims, batch_size=2)
    table.patches(0)
    dataset_concepts(handle, ims, [1] * 6, batch_size=4)
    model_state.assert_unchanged(before, model)


def test_vit_set_entries_check_their_input():
    handle = interpret.load_model(timm_vit(), preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    with pytest.raises(interpret.InputError, match="Unknown LRP composite 'nope'"):
        interpret.reference_patches(handle, photos(2), composite="nope")
    with pytest.raises(interpret.InputError, match="tokens x C output"):
        interpret.reference_patches(handle, photos(2), layer="patch_embed.proj")
    with pytest.raises(interpret.InputError, match="class index is out of range"):
        dataset_concepts(handle, photos(2), [0, 99])


def test_the_dataset_page_draws_a_vits_class_concepts_as_the_backend_computes_them(tmp_path, monkeypatch):
    """Issue 21: the Dataset page's per-class concepts on a ViT (was: a refusal note):
    the same classes, channels and shares as ``dataset_concepts`` on the run's photos."""
    pytest.importorskip("streamlit.testing.v1")
    from safetensors.torch import save_file
    from streamlit.testing.v1 import AppTest

    from interpret.dataset import synthetic as syn
    from interpret.model_folder import read_model_folder
    from test_app import ROOT
    from ui import compute
    from ui import concepts as cx

    models = tmp_path / "models"
    models.mkdir()
    save_file({k: v.contiguous() for k, v in timm_vit().state_dict().items()}, str(models / "vit.safetensors"))
    kw = ", ".join(f"{k} = {v}" for k, v in tm.VIT_KW.items())
    (models / "models.toml").write_text(
        f'[[model]]\nname = "Tiny ViT"\nfile = "vit.safetensors"\nfactory = "tiny_models:timm_model"\n'
        f'kwargs = {{ name = "vit_tiny_patch16_224", {kw} }}\nresize = {tm.VIT_SIZE}\ncrop = {tm.VIT_SIZE}\n')
    monkeypatch.setenv("INTERPRET_MODEL_FOLDER", str(models))
    monkeypatch.setenv("INTERPRET_DATASET_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (entry,) = read_model_folder(str(models))
    handle = entry.load()
    folder = syn.write_folder(tmp_path / "set", per_class=2, seed=3)
    r = interpret.analyze_dataset(handle, folder, out=tmp_path / "runs" / "small", batch_size=8, name="small",
                                  methods=("attnlrp",),
                                  class_map={"disc": "class 0", "marked": "class 1", "square": "class 2"})
    compute.results.clear()
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "6_Dataset.py"), default_timeout=240)
        at.query_params.update({"model": "team:Tiny ViT"})
        at.run()
        at.segmented_control(key="w_ds_source").set_value("stored").run()
        at.button(key="ds_open_stored").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert not [i.value for i in at.info if "cannot be computed" in i.value]
        assert at.selectbox(key="w_cx_dataset_layer").value == V.default_layer(handle)
        at.button(key="cx_dataset_btn").click().run()
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
        shown = [d.value for d in at.dataframe if "concept" in d.value.columns][0]
    finally:
        compute.results.clear()
    paths, targets = cx.run_photos(r, [])
    images = [interpret.load_image(r.image_bytes(p)) for p in paths]
    want = dataset_concepts(handle, images, targets, layer=V.default_layer(handle), k=3)
    assert want.table.composite == "attnlrp"
    rows = [(handle.label(c), f"channel {ch}", s) for c, _, top in want.by_class for ch, s in top]
    assert list(zip(shown["class"], shown["concept"])) == [(a, b) for a, b, _ in rows]
    np.testing.assert_allclose(shown["share"].astype(float), [s for _, _, s in rows], rtol=1e-4, atol=1e-6)
    assert shown["patch 1"].notna().sum() >= 1
    assert any("AttnLRP (Achtibat et al. 2024)" in c.value for c in at.caption)
