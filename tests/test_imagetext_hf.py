"""Hugging Face image models beside the classifiers (issue 20), built tiny in the test
(no download):

* a ``Dinov2Model`` folder is an embedding model (task "embedding") whose output is the
  model's own pooled output (the final norm's class token); ``targets.similar_to`` scores
  the cosine similarity computed here; Grad-CAM and the attention methods give maps on its
  blocks, attention rollout equal to a rollout of the attention matrices the model itself
  returns (``output_attentions=True``), computed here;
* a ``CLIPModel`` folder's image tower runs attention rollout, transformer attribution
  and LeGrad on a text prompt, each equal to the paper's formula computed here from the
  attention matrices (and their gradients) the model itself returns;
* a ``SiglipModel`` folder's tower pools its tokens with an attention-pooling head: rollout
  and transformer attribution are refused with the reason, LeGrad runs through that head
  and equals the formula computed here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import interpret
from interpret import Preprocessing, targets

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("single_thread")

ATTENTION = ("attention_rollout", "transformer_attribution", "legrad")


def _eager(model):
    """The same weights computing attention with the explicit softmax, so that the model
    returns its attention matrices (the one we explain keeps its own implementation)."""
    model.config._attn_implementation = "eager"
    for m in model.modules():
        if hasattr(m, "config") and hasattr(m.config, "_attn_implementation"):
            m.config._attn_implementation = "eager"
    return model


def _rollout(attentions):
    """Abnar & Zuidema (2020), Sec. 3: per block the mean over heads, 0.5 A + 0.5 I, rows
    renormalised; R = Ã_L ... Ã_1; the class token's row over the patches."""
    n = attentions[0].shape[-1]
    r = torch.eye(n, dtype=torch.float64)
    for a in attentions:
        f = 0.5 * a[0].double().mean(0) + 0.5 * torch.eye(n, dtype=torch.float64)
        r = (f / f.sum(-1, keepdim=True)) @ r
    return r[0, 1:]


# ----------------------------------------------------------------------------------
# DINOv2 from a folder: an embedding model


@pytest.fixture(scope="module")
def dinov2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dinov2")
    cfg = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, image_size=56, patch_size=14)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.Dinov2Model(cfg).eval()
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def photos():
    g = torch.Generator().manual_seed(3)
    return torch.rand(1, 3, 56, 56, generator=g), torch.rand(1, 3, 56, 56, generator=g)


def test_a_dinov2_folder_loads_as_an_embedding_model_giving_its_pooled_class_token(dinov2, photos):
    folder, model = dinov2
    h = interpret.load_model(str(folder), preprocessing=Preprocessing((56, 56), None))
    assert h.task == "embedding" and h.info.labels is None
    assert h.tokens.prefix_tokens == 1 and tuple(h.tokens.grid) == (4, 4)
    assert h.info.suggested_layer == "model.encoder.layer.1.norm1"
    x, _ = photos
    with torch.no_grad():
        out = model(pixel_values=x)
        want = out.last_hidden_state[0, 0]  # the final norm's class token
    emb = interpret.predict(h, x)
    assert emb.size == 32 and np.allclose(emb.vector, want.numpy(), atol=1e-5)
    assert np.allclose(emb.vector, out.pooler_output[0].numpy(), atol=1e-6)


def test_a_zipped_dinov2_folder_uploaded_is_an_embedding_model_too(dinov2, photos):
    """What the upload form sends: the folder's files in a zip, read by content."""
    import io
    import zipfile

    folder, model = dinov2
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"dino/{f.name}")
    h = interpret.load_model(buf.getvalue(), preprocessing=Preprocessing((56, 56), None))
    assert h.task == "embedding" and h.name == "dino"
    x, _ = photos
    with torch.no_grad():
        want = model(pixel_values=x).pooler_output[0]
    assert np.allclose(interpret.predict(h, x).vector, want.numpy(), atol=1e-5)


def test_dinov2_similar_to_is_the_cosine_and_gradcam_and_the_attention_methods_give_maps(dinov2, photos, model_state):
    folder, model = dinov2
    h = interpret.load_model(str(folder), preprocessing=Preprocessing((56, 56), None))
    x, ref = photos
    with torch.no_grad():
        want = float(F.cosine_similarity(model(pixel_values=x).pooler_output,
                                         model(pixel_values=ref).pooler_output)[0])
    before = model_state.snapshot(model)
    for method in ("gradcam",) + ATTENTION:
        assert interpret.get_method(method).unavailable(h) is None, method
        e = interpret.explain(h, x, method, target=targets.similar_to(ref, "ref.png"))
        assert np.isfinite(e.heatmap).all() and float(np.ptp(e.heatmap)) > 0.1, method  # a map, not flat
        if method != "attention_rollout":  # rollout is class-independent: no score
            assert e.score == pytest.approx(want, abs=1e-5), method
    model_state.assert_unchanged(before, model)


def test_dinov2_attention_rollout_equals_the_rollout_of_the_models_own_attention(dinov2, photos):
    folder, model = dinov2
    h = interpret.load_model(str(folder), preprocessing=Preprocessing((56, 56), None))
    x, ref = photos
    eager = _eager(transformers.Dinov2Model.from_pretrained(str(folder), attn_implementation="eager").eval())
    with torch.no_grad():
        attn = eager(pixel_values=x, output_attentions=True).attentions
    assert len(attn) == 2 and attn[0].shape == (1, 2, 17, 17)
    e = interpret.explain(h, x, "attention_rollout", target=targets.similar_to(ref))
    got = e.attribution.double().flatten()
    assert torch.allclose(got, _rollout(attn), atol=1e-6)


# ----------------------------------------------------------------------------------
# CLIP and SigLIP towers from folders: the attention methods


def _tokenizer(words):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


WORDS = ["[PAD]", "[UNK]", "a", "red", "square", "blue", "circle", "photo", "of", "dog"]
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
              image_size=32, patch_size=8)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    fast = _tokenizer(WORDS)
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=0,
                         bos_token_id=0, eos_token_id=1),
        vision_config=VISION, projection_dim=16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.CLIPModel(cfg).eval()
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_resize": True, "size": {"shortest_edge": 32}, "do_center_crop": True,
        "crop_size": {"height": 32, "width": 32}, "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "resample": 3}))
    return folder, model, fast


@pytest.fixture(scope="module")
def x32():
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))


def _clip_recorded(folder, fast, x, prompt):
    """The eager CLIP's attention matrices and block outputs for ``x`` (in the graph), and
    the text prompt's unit embedding and logit scale."""
    model = _eager(transformers.CLIPModel.from_pretrained(str(folder), attn_implementation="eager").eval())
    with torch.no_grad():
        t = model.get_text_features(**fast([prompt], return_tensors="pt", padding=True))
        t = t if isinstance(t, torch.Tensor) else t.pooler_output
    t = F.normalize(t, dim=-1)[0]
    out = model.vision_model(pixel_values=x, output_attentions=True, output_hidden_states=True)
    return model, out, t, float(model.logit_scale.detach().exp())


def _clip_score(model, tokens, t, scale):
    """The prompt's zero-shot logit from a block's tokens: the tower's own pooling."""
    emb = model.visual_projection(model.vision_model.post_layernorm(tokens[:, 0]))
    return scale * (F.normalize(emb, dim=-1) @ t).sum()


def test_hf_clip_tower_runs_the_attention_methods(clip, x32, model_state):
    folder, model, _ = clip
    h = interpret.load_model(str(folder), prompts=["a red square", "a blue circle"])
    before = model_state.snapshot(model)
    for method in ATTENTION:
        assert interpret.get_method(method).unavailable(h) is None, method
        e = interpret.explain(h, x32, method, target=targets.text("a dog"))
        assert e.heatmap.shape == (32, 32) and np.isfinite(e.heatmap).all(), method
        assert float(np.ptp(e.heatmap)) > 0.1, method
    model_state.assert_unchanged(before, model)


def test_a_zipped_clip_folder_uploaded_is_an_image_text_model_with_its_tokenizer(clip, x32):
    """What the upload form sends: before, a zipped CLIP folder went to the classifier
    loader, which refused it (or built a random classification head)."""
    import io
    import zipfile

    folder, model, fast = clip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"tiny_clip/{f.name}")
    prompts = ["a red square", "a blue circle"]
    h = interpret.load_model(buf.getvalue(), prompts=prompts)
    assert h.task == "image-text" and h.name == "tiny_clip"
    with torch.no_grad():
        out = model(pixel_values=x32, **fast(prompts, return_tensors="pt", padding=True))
    got = [p.probability for p in sorted(interpret.predict(h, x32, top_k=None), key=lambda p: p.index)]
    assert np.allclose(got, out.logits_per_image.softmax(-1)[0].numpy(), atol=1e-5)


def test_hf_clip_rollout_equals_the_rollout_of_its_own_attention(clip, x32):
    folder, _, fast = clip
    h = interpret.load_model(str(folder), prompts=["a red square", "a blue circle"])
    _, out, _, _ = _clip_recorded(folder, fast, x32, "a dog")
    assert len(out.attentions) == 3 and out.attentions[0].shape == (1, 2, 17, 17)
    e = interpret.explain(h, x32, "attention_rollout")
    assert torch.allclose(e.attribution.double().flatten(), _rollout([a.detach() for a in out.attentions]),
                          atol=1e-6)


def test_hf_clip_transformer_attribution_equals_chefer_eqs_5_6_from_its_own_attention(clip, x32):
    """Chefer et al. 2021, eqs. 5-6: R = I; per block Ā = E_h[(∇A ⊙ A)^+], R ← R + Ā R;
    the class token's row over the patches, with ∇A the gradient of the prompt's logit
    with respect to the attention matrices the eager model returns."""
    folder, _, fast = clip
    h = interpret.load_model(str(folder), prompts=["a red square", "a blue circle"])
    model, out, t, scale = _clip_recorded(folder, fast, x32, "a dog")
    s = _clip_score(model, out.last_hidden_state, t, scale)
    grads = torch.autograd.grad(s, out.attentions)
    r = torch.eye(17, dtype=torch.float64)
    for a, g in zip(out.attentions, grads):
        a_bar = (g[0].double() * a[0].detach().double()).clamp(min=0).mean(0)
        r = r + a_bar @ r
    e = interpret.explain(h, x32, "transformer_attribution", target=targets.text("a dog"))
    assert e.score == pytest.approx(float(s.detach()), rel=1e-5)
    assert torch.allclose(e.attribution.double().flatten(), r[0, 1:], rtol=1e-4, atol=1e-8)


def test_hf_clip_legrad_equals_the_papers_formula_from_its_own_attention(clip, x32):
    """LeGrad (Bousselham et al.), Sec. 3: per block l the gradient of that block's own
    prediction s^l (the tower's pooling on the block's output tokens, scored by the prompt)
    with respect to the block's attention, its positive part averaged over heads and rows,
    then over blocks; the patch columns."""
    folder, _, fast = clip
    h = interpret.load_model(str(folder), prompts=["a red square", "a blue circle"])
    model, out, t, scale = _clip_recorded(folder, fast, x32, "a dog")
    maps = []
    for layer in range(3):
        s = _clip_score(model, out.hidden_states[layer + 1], t, scale)
        (g,) = torch.autograd.grad(s, out.attentions[layer], retain_graph=True)
        maps.append(g[0].double().clamp(min=0).mean(0).mean(0)[1:])
    want = torch.stack(maps).mean(0)
    e = interpret.explain(h, x32, "legrad", target=targets.text("a dog"), layers=0)
    assert torch.allclose(e.attribution.double().flatten(), want, rtol=1e-4, atol=1e-9)


@pytest.fixture(scope="module")
def siglip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("siglip")
    words = ["[PAD]", "[UNK]", "a", "red", "square", "blue", "circle", "dog"]
    fast = _tokenizer(words)
    cfg = transformers.SiglipConfig(
        text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=8),
        vision_config=VISION)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.SiglipModel(cfg).eval()
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder, model, fast


def test_hf_siglip_refuses_rollout_and_transformer_attribution_with_why_and_runs_legrad(siglip, x32):
    folder, _, fast = siglip
    h = interpret.load_model(str(folder), prompts=["a red square", "a blue circle"],
                             preprocessing=Preprocessing((32, 32), None, (0.5,) * 3, (0.5,) * 3))
    for method in ("attention_rollout", "transformer_attribution"):
        why = interpret.get_method(method).unavailable(h)
        assert why is not None and "attention-pooling head" in why and "LeGrad" in why, why
        with pytest.raises(interpret.InputError, match="attention-pooling head"):
            interpret.explain(h, x32, method, target=targets.text("a dog"))
    assert interpret.get_method("legrad").unavailable(h) is None
    model = _eager(transformers.SiglipModel.from_pretrained(str(folder), attn_implementation="eager").eval())
    with torch.no_grad():
        ids = fast(["a dog"], return_tensors="pt", padding="max_length", max_length=8)
        t = model.get_text_features(input_ids=ids["input_ids"])
        t = F.normalize(t if isinstance(t, torch.Tensor) else t.pooler_output, dim=-1)[0]
    vm = model.vision_model
    out = vm(pixel_values=x32, output_attentions=True, output_hidden_states=True)
    scale, bias = float(model.logit_scale.exp()), float(model.logit_bias)
    maps = []
    for layer in range(3):
        emb = vm.head(vm.post_layernorm(out.hidden_states[layer + 1]))
        s = (scale * (F.normalize(emb, dim=-1) @ t) + bias).sum()
        (g,) = torch.autograd.grad(s, out.attentions[layer], retain_graph=True)
        maps.append(g[0].double().clamp(min=0).mean(0).mean(0))  # no class token: every column
    e = interpret.explain(h, x32, "legrad", target=targets.text("a dog"), layers=0)
    assert torch.allclose(e.attribution.double().flatten(), torch.stack(maps).mean(0), rtol=1e-4, atol=1e-9)
