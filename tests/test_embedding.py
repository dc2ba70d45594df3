"""Embedding models (task "embedding"): detected from a backbone without its head,
``predict`` gives the embedding, ``targets.similar_to`` scores the cosine similarity to
a reference photo's embedding and its Grad-CAM equals pytorch-grad-cam's with the
same similarity target; Hugging Face CLIP folders load with their own tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import interpret
from interpret import InputError, Preprocessing, targets

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def backbone():
    import torchvision

    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = torchvision.models.resnet18(weights=None)
    m.fc = nn.Identity()
    return m.eval()


@pytest.fixture(scope="module")
def photos():
    g = torch.Generator().manual_seed(4)
    return torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)


def test_a_torchvision_backbone_without_its_head_is_an_embedding_model(backbone, photos):
    h = interpret.load_model(backbone, preprocessing=Preprocessing((64, 64), None))
    assert h.task == "embedding"
    x, _ = photos
    emb = interpret.predict(h, x)
    with torch.no_grad():
        want = backbone(x)[0]
    assert emb.size == 512
    assert np.allclose(emb.vector, want.numpy(), atol=1e-5)
    assert emb.norm == pytest.approx(float(want.norm()), rel=1e-5)


def test_a_timm_model_with_num_classes_0_is_an_embedding_model():
    timm = pytest.importorskip("timm")
    m = timm.create_model("resnet10t", pretrained=False, num_classes=0).eval()
    assert interpret.load_model(m).task == "embedding"
    m2 = timm.create_model("resnet10t", pretrained=False, num_classes=5).eval()
    assert interpret.load_model(m2).task == "classification"


def test_similar_to_scores_the_cosine_of_the_two_embeddings(backbone, photos):
    h = interpret.load_model(backbone, preprocessing=Preprocessing((64, 64), None))
    x, ref = photos
    with torch.no_grad():
        want = float(F.cosine_similarity(backbone(x), backbone(ref))[0])
    e = interpret.explain(h, x, "gradcam", target=targets.similar_to(ref, "shoe.png"))
    assert e.score == pytest.approx(want, rel=1e-5)
    assert e.explained.unit == "value"
    assert e.explained.describe() == "what makes this photo look like the reference photo shoe.png"
    same = interpret.explain(h, x, "gradcam", target=targets.similar_to(x))
    assert same.score == pytest.approx(1.0, abs=1e-5)  # a photo is like itself
    with pytest.raises(InputError, match="similar_to"):
        interpret.explain(h, x, "gradcam")
    with pytest.raises(InputError, match="does not fit a classifier"):
        interpret.explain(interpret.load_model("torchvision:resnet18", weights=None), x, "gradcam",
                          target=targets.similar_to(ref))


def test_similar_to_gradcam_equals_pytorch_grad_cam_with_a_similarity_target(backbone, photos, corr):
    from pytorch_grad_cam import GradCAM

    h = interpret.load_model(backbone, preprocessing=Preprocessing((64, 64), None))
    x, ref = photos
    with torch.no_grad():
        concept = backbone(ref)[0]

    class SimilarityToConceptTarget:  # pytorch-grad-cam's tutorial
        def __init__(self, features):
            self.features = features

        def __call__(self, model_output):
            return torch.nn.CosineSimilarity(dim=0)(model_output, self.features)

    with GradCAM(model=backbone, target_layers=[backbone.layer4]) as cam:
        theirs = cam(input_tensor=x.clone(), targets=[SimilarityToConceptTarget(concept)])[0]
    ours = interpret.explain(h, x, "gradcam", layer="layer4", target=targets.similar_to(ref))
    assert corr(ours.heatmap, theirs) > 0.99


@pytest.mark.parametrize("name,expected", [
    (None, "what makes this photo look like the reference photo"),
    ("a.png", "what makes this photo look like the reference photo a.png"),
    ("<img src=x>", "what makes this photo look like the reference photo &#60;img src=x&#62;"),
])
def test_the_similarity_sentence_escapes_the_reference_name(name, expected):
    assert targets.similar_to(torch.zeros(1, 3, 8, 8), name).sentence() == expected


def _tiny_hf_clip(folder):
    """A tiny CLIPModel saved with a word-level tokenizer written here (no download)."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[PAD]", "[UNK]", "a", "red", "square", "blue", "circle", "photo", "of", "dog"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=0,
                         bos_token_id=0, eos_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.CLIPModel(cfg).eval()
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_resize": True, "size": {"shortest_edge": 32}, "do_center_crop": True,
        "crop_size": {"height": 32, "width": 32}, "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "resample": 3}))
    return model, fast


def test_a_hugging_face_clip_folder_gives_zero_shot_probabilities_of_its_own(tmp_path):
    model, tok = _tiny_hf_clip(tmp_path)
    prompts = ["a red square", "a blue circle"]
    h = interpret.load_model(str(tmp_path), prompts=prompts)
    assert h.task == "image-text" and h.input_size == (32, 32)
    assert h.preprocessing.mean == pytest.approx((0.5, 0.5, 0.5))
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(pixel_values=x, **tok(prompts, return_tensors="pt", padding=True))
        want = out.logits_per_image.softmax(-1)[0]
    preds = {p.label: p.probability for p in interpret.predict(h, x, top_k=None)}
    assert preds["a red square"] == pytest.approx(float(want[0]), abs=1e-5)
    assert preds["a blue circle"] == pytest.approx(float(want[1]), abs=1e-5)
    e = interpret.explain(h, x, "gradcam", target=targets.text("a dog"))
    assert np.isfinite(e.heatmap).all() and e.layer.endswith("layers.1.layer_norm1")


def test_a_hugging_face_siglip_folder_gives_each_prompts_own_sigmoid(tmp_path):
    """SigLIP was trained with a sigmoid per image-text pair: its probabilities are
    ``sigmoid(logit_scale * cos + logit_bias)``, each on its own (they need not sum to 1),
    with the text padded to the model's length as it was trained."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[PAD]", "[UNK]", "a", "red", "square", "blue", "circle"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    cfg = transformers.SiglipConfig(
        text_config=dict(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=8),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.SiglipModel(cfg).eval()
    model.save_pretrained(tmp_path)
    fast.save_pretrained(tmp_path)
    prompts = ["a red square", "a blue circle"]
    h = interpret.load_model(str(tmp_path), prompts=prompts,
                             preprocessing=Preprocessing((32, 32), None, (0.5,) * 3, (0.5,) * 3))
    assert h.task == "image-text"
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ids = fast(prompts, return_tensors="pt", padding="max_length", max_length=8)
        want = torch.sigmoid(model(pixel_values=x, input_ids=ids["input_ids"]).logits_per_image)[0]
    preds = {p.label: p.probability for p in interpret.predict(h, x, top_k=None)}
    assert preds["a red square"] == pytest.approx(float(want[0]), abs=1e-5)
    assert preds["a blue circle"] == pytest.approx(float(want[1]), abs=1e-5)
