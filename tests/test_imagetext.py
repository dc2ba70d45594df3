"""Image-text (CLIP-style) models: zero-shot probabilities equal the model's own
``softmax(logit_scale * image . text^T)``; a text target's score is its zero-shot logit
(minus the contrast's), for any prompt; its Grad-CAM equals pytorch-grad-cam's with a
cosine-similarity target and its ViT reshape transform; the prompts are the labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import interpret
from interpret import InputError, targets

from imagetext_models import tiny_clip, tokenizer

pytestmark = pytest.mark.usefixtures("single_thread")

PROMPTS = ["a red square", "a blue circle", "a photo of noise"]


@pytest.fixture(scope="module")
def clip():
    return tiny_clip()


@pytest.fixture(scope="module")
def handle(clip):
    return interpret.load_model(clip, prompts=PROMPTS)


@pytest.fixture(scope="module")
def x():
    return torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def _by_hand(clip, x, prompts):
    """The zero-shot logits as open_clip's README computes them."""
    with torch.no_grad():
        img = F.normalize(clip.encode_image(x), dim=-1)
        txt = F.normalize(clip.encode_text(tokenizer()(prompts)), dim=-1)
        return clip.logit_scale.exp() * img @ txt.T


def test_prompts_make_an_image_text_model_whose_labels_are_the_prompts(handle, clip):
    assert handle.task == "image-text"
    assert handle.labels == PROMPTS and handle.num_classes == 3
    assert handle.info.suggested_layer == "visual.transformer.resblocks.1.ln_1"
    # the image tower is the module: the text tower is not among its layers
    names = [n for n, _ in handle.module.named_modules()]
    assert not any("token_embedding" in n or n.startswith("transformer") for n in names)
    # a model built without a preprocess_cfg: open_clip's own default (OpenAI's mean/std)
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    assert handle.preprocessing.mean == pytest.approx(OPENAI_DATASET_MEAN)
    assert handle.preprocessing.std == pytest.approx(OPENAI_DATASET_STD)
    assert handle.input_size == (64, 64)


def test_zero_shot_probabilities_equal_softmax_of_scaled_cosines(handle, clip, x):
    probs = torch.softmax(_by_hand(clip, x, PROMPTS), dim=-1)[0]
    preds = interpret.predict(handle, x, top_k=None)
    assert [p.label for p in preds] == [PROMPTS[i] for i in torch.argsort(probs, descending=True)]
    for p in preds:
        assert p.probability == pytest.approx(float(probs[p.index]), abs=1e-5)
        assert p.task == "image-text"
    assert sum(p.probability for p in preds) == pytest.approx(1.0, abs=1e-5)


def test_a_text_target_scores_its_zero_shot_logit_for_any_prompt(handle, clip, x):
    z = _by_hand(clip, x, PROMPTS + ["a dog", "a cat"])[0]
    with torch.no_grad():
        emb = handle.module(x)
    listed = targets.resolve(handle, targets.text("a blue circle"), x)
    assert float(listed.score(emb)[0]) == pytest.approx(float(z[1]), rel=1e-4)
    assert float(listed.probability(emb)[0]) == pytest.approx(float(torch.softmax(z[:3], 0)[1]), abs=1e-5)
    by_index = targets.resolve(handle, 1, x)
    assert by_index.key == listed.key
    unlisted = targets.resolve(handle, targets.text("a dog", contrast="a cat"), x)
    assert float(unlisted.score(emb)[0]) == pytest.approx(float(z[3] - z[4]), rel=1e-4, abs=1e-5)
    assert float(unlisted.probability(emb)[0]) == pytest.approx(float(torch.sigmoid(z[3] - z[4])), abs=1e-5)
    alone = targets.resolve(handle, targets.text("a dog"), x)  # joins the prompts for its probability
    assert float(alone.probability(emb)[0]) == pytest.approx(
        float(torch.softmax(torch.stack([z[0], z[1], z[2], z[3]]), 0)[3]), abs=1e-5)
    # no target: the top prompt
    top = targets.resolve(handle, None, x)
    assert top.index == PROMPTS[int(z[:3].argmax())]


def test_explanations_name_the_prompt_and_score_it(handle, clip, x):
    e = interpret.explain(handle, x, "gradcam", target=targets.text("a dog", contrast="a cat"))
    z = _by_hand(clip, x, ["a dog", "a cat"])[0]
    assert e.score == pytest.approx(float(z[0] - z[1]), rel=1e-4, abs=1e-5)
    assert e.target_label == "a dog" and e.contrast_label == "a cat"
    assert e.explained.describe() == "the prompt “a dog” rather than “a cat”"


@pytest.mark.parametrize("prompt,contrast,expected", [
    ("a cat", None, "the prompt “a cat”"),
    ("a cat", "a dog", "the prompt “a cat” rather than “a dog”"),
    ("**bold** <b>x</b>", None, "the prompt “&#42;&#42;bold&#42;&#42; &#60;b&#62;x&#60;/b&#62;”"),
    ("a", "[link](javascript:x)", "the prompt “a” rather than “&#91;link&#93;(javascript&#58;x)”"),
])
def test_a_prompts_sentence_escapes_what_the_visitor_typed(prompt, contrast, expected):
    s = targets.text(prompt, contrast).sentence()
    assert s == expected
    assert "<b>" not in s and "**" not in s and "](" not in s


def test_text_target_gradcam_equals_pytorch_grad_cam_with_a_similarity_target(handle, clip, x, corr):
    """pytorch-grad-cam's CLIP tutorial: ``SimilarityToConceptTarget`` (the cosine of
    the model output and the concept's embedding) on the image encoder, its
    ``vit_reshape_transform`` on the last block's first norm.  Our score is the same
    cosine times the logit scale (a constant: the same normalised map)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform

    with torch.no_grad():
        concept = F.normalize(clip.encode_text(tokenizer()(["a blue circle"])), dim=-1)[0]

    class SimilarityToConceptTarget:  # as in pytorch-grad-cam's tutorial
        def __init__(self, features):
            self.features = features

        def __call__(self, model_output):
            return torch.nn.CosineSimilarity(dim=0)(model_output, self.features)

    layer = clip.visual.transformer.resblocks[-1].ln_1
    with GradCAM(model=clip.visual, target_layers=[layer],
                 reshape_transform=lambda t: vit_reshape_transform(t, 4, 4)) as cam:
        theirs = cam(input_tensor=x.clone(), targets=[SimilarityToConceptTarget(concept)])[0]
    ours = interpret.explain(handle, x, "gradcam", target=targets.text("a blue circle"))
    assert ours.layer == "visual.transformer.resblocks.1.ln_1"
    assert corr(ours.heatmap, theirs) > 0.99


def test_bad_prompts_are_refused_with_a_sentence(clip):
    with pytest.raises(InputError, match="given twice"):
        interpret.load_model(clip, prompts=["a", "a"])
    with pytest.raises(InputError, match="at most 64"):
        interpret.load_model(clip, prompts=[f"p{i}" for i in range(65)])
    with pytest.raises(InputError, match="at least one prompt"):
        interpret.load_model(clip, prompts=["  ", ""])
    h = interpret.load_model(clip, prompts=["a", "b"])
    with pytest.raises(InputError, match="out of range"):
        targets.resolve(h, targets.text(5), torch.zeros(1, 3, 64, 64))
    with pytest.raises(InputError, match="does not fit an image-text model"):
        targets.resolve(h, targets.classes(0), torch.zeros(1, 3, 64, 64))


def test_open_clip_by_name_builds_with_random_weights_offline():
    h = interpret.load_model("open_clip:ViT-B-32", weights=None, prompts=["a cat", "a dog"])
    assert h.task == "image-text" and h.input_size == (224, 224)
    assert h.info.suggested_layer == "visual.transformer.resblocks.11.ln_1"
    assert h.tokens.grid == (7, 7)
    with pytest.raises(InputError, match="no model"):
        interpret.load_model("open_clip:ViT-B-99", weights=None)


def test_pretrained_weights_missing_from_the_cache_are_not_downloaded(monkeypatch):
    from interpret.sources import open_clip as src

    monkeypatch.setenv("INTERPRET_OFFLINE", "1")
    monkeypatch.setattr(src, "_cached_weights", lambda *a: None)  # whatever this machine caches
    with pytest.raises(InputError, match="not in the local cache"):
        interpret.load_model("open_clip:ViT-B-32", weights="laion2b_s34b_b79k")


def test_attention_recomputed_on_open_clip_blocks_equals_the_blocks_own_weights(handle, clip, x):
    """Rollout, transformer attribution and LeGrad read each block's attention,
    recomputed from its queries and keys: it equals what nn.MultiheadAttention itself
    returns with need_weights=True."""
    from interpret import attention

    ap = attention.record_attention(handle, x)
    blocks = clip.visual.transformer.resblocks
    with torch.no_grad():
        z = clip.visual._embeds(x)
        for blk, ours in zip(blocks, ap.attentions):
            h = blk.ln_1(z)
            _, w = blk.attn(h, h, h, need_weights=True, average_attn_weights=False)
            assert torch.allclose(ours, w, atol=1e-5)
            z = blk(z)
    lay = attention.layout(handle)
    with torch.no_grad():  # the layout's head turns the last block's tokens into the embedding
        assert torch.allclose(lay.head(z), handle.module(x), atol=1e-5)


def test_an_open_clip_vit_runs_legrad_and_transformer_attribution_on_a_prompt(handle, x):
    for method in ("legrad", "transformer_attribution", "attention_rollout"):
        e = interpret.explain(handle, x, method, target=targets.text("a red square"))
        assert e.heatmap.shape == (64, 64) and np.isfinite(e.heatmap).all() and e.heatmap.max() > 0


def test_the_report_lists_the_prompts_as_the_models_answers(clip):
    from PIL import Image

    from interpret.report import report_html

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    h = interpret.load_model(clip, prompts=["a <b>red</b> square", "a blue circle"])
    e = interpret.explain(h, photo, "gradcam", target=targets.text("a blue circle"))
    html = report_html(h, photo, [e], steps=6)
    probs = {p.label: p.probability for p in interpret.predict(h, photo, top_k=None)}
    assert ">prompt<" in html
    assert "a &lt;b&gt;red&lt;/b&gt; square" in html or "a &#60;b&#62;red&#60;/b&#62; square" in html
    assert "<b>red</b>" not in html
    assert f"{probs['a blue circle']:.1%}" in html


def test_open_clip_is_not_imported_with_interpret():
    import subprocess
    import sys

    code = ("import sys, interpret, interpret.targets, interpret.imagetext, interpret.models; "
            "assert 'open_clip' not in sys.modules, 'open_clip imported at import time'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
