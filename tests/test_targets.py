"""What is explained (issue 19): interpret.targets on segmentation, multi-label, binary
and regression models.  Numbers, never downloads: random-init torchvision and tiny
Hugging Face models, small fixed-weight nets and a tiny segmenter trained in the test.

* agreement with pytorch-grad-cam (SemanticSegmentationTarget, BinaryClassifierOutputTarget);
* hand-computed region scores and input gradients;
* a region given in the photo's pixels lands on the right model-input pixels;
* localisation of a clicked segment on a synthetic task;
* no silent wrong answers (no softmax over one logit; multi-label sigmoids);
* the trust curves start at the target's own probability.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import interpret
from interpret import InputError, Preprocessing, targets

pytestmark = pytest.mark.usefixtures("single_thread")


def pearson(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


# ----------------------------------------------------------------------------------
# models


def deeplab(num_classes: int = 4) -> nn.Module:
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                            num_classes=num_classes).eval()


class Unwrap(nn.Module):
    """pytorch-grad-cam wants a tensor out: torchvision's segmenters return {'out': ...}."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


def small_cnn(outputs: int, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flat", nn.Flatten()),
            ("fc", nn.Linear(16, outputs))])).eval()


SEG_PRE = Preprocessing((64, 64), None)


@pytest.fixture(scope="module")
def seg():
    return interpret.load_model(deeplab(), preprocessing=SEG_PRE, labels=["sky", "road", "car", "tree"])


@pytest.fixture(scope="module")
def x64():
    g = torch.Generator().manual_seed(3)
    return torch.randn(1, 3, 64, 64, generator=g)


# ----------------------------------------------------------------------------------
# agreement with pytorch-grad-cam


def test_region_gradcam_equals_pytorch_grad_cams_semantic_segmentation_target(seg, x64, model_state):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    layer = "backbone.12"  # a spatial layer well before the head (4 x 4 at 64 px)
    pred = interpret.predict(seg, x64)
    cls = pred.classes[0].index
    mask = np.zeros((64, 64), bool)
    mask[8:40, 16:56] = True
    before = model_state.snapshot(seg.module)
    e = interpret.explain(seg, x64, "gradcam", layer=layer, target=targets.region(cls, mask=mask))
    model_state.assert_unchanged(before, seg.module)
    module = Unwrap(copy.deepcopy(seg.module))
    with GradCAM(module, [dict(module.named_modules())["m." + layer]]) as cam:
        ref = cam(x64.clone(), targets=[SemanticSegmentationTarget(cls, mask.astype(np.float32))])[0]
    r = pearson(e.heatmap, ref)
    print(f"\nregion Grad-CAM vs pytorch-grad-cam: r = {r:.5f}")
    assert r > 0.99
    assert e.explained.region is not None and int(e.explained.region.sum()) == int(mask.sum())


def test_five_region_cams_agree_with_pytorch_grad_cam_and_grad_cam_pp_only_where_mean_is_sum(seg, x64):
    """Grad-CAM, XGrad-CAM, LayerCAM and HiResCAM do not depend on the score's scale, so
    our mean over the region and pytorch-grad-cam's sum give the same maps; Grad-CAM++'s
    weights (Chattopadhay et al. 2018, eq. 19) do, so it agrees exactly only where the
    mean is the sum: a one-pixel region."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    layer = "backbone.12"
    cls = interpret.predict(seg, x64).classes[0].index
    big = np.zeros((64, 64), bool)
    big[8:40, 16:56] = True
    one = np.zeros((64, 64), bool)
    one[20, 30] = True
    module = Unwrap(copy.deepcopy(seg.module))
    peers = {"gradcam": GradCAM, "xgradcam": XGradCAM, "layercam": LayerCAM, "hirescam": HiResCAM,
             "gradcam_plus_plus": GradCAMPlusPlus}
    rs = {}
    for name, cls_ in peers.items():
        for what, mask in (("big", big), ("one", one)):
            e = interpret.explain(seg, x64, name, layer=layer, target=targets.region(cls, mask=mask))
            with cls_(module, [dict(module.named_modules())["m." + layer]]) as cam:
                ref = cam(x64.clone(), targets=[SemanticSegmentationTarget(cls, mask.astype(np.float32))])[0]
            rs[name, what] = pearson(e.heatmap, ref)
    print("\n" + ", ".join(f"{n}/{w}: {r:.4f}" for (n, w), r in rs.items()))
    for (name, what), r in rs.items():
        if name != "gradcam_plus_plus" or what == "one":
            assert r > 0.99, (name, what, r)


@pytest.mark.parametrize("sign,category", [(+1, 1), (-1, 0)])
def test_binary_map_equals_binary_classifier_output_target(sign, category, x64):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget

    h = interpret.load_model(small_cnn(1), preprocessing=Preprocessing(64, 64))
    assert h.task == "binary"
    e = interpret.explain(h, x64, "gradcam", layer="relu1", target=targets.output(0, sign=sign))
    module = copy.deepcopy(h.module)
    with GradCAM(module, [module.relu1]) as cam:
        ref = cam(x64.clone(), targets=[BinaryClassifierOutputTarget(category)])[0]
    r = pearson(e.heatmap, ref)
    print(f"\nbinary Grad-CAM (sign {sign:+d}) vs pytorch-grad-cam category {category}: r = {r:.5f}")
    assert r > 0.99
    assert e.heatmap.max() > 0


# ----------------------------------------------------------------------------------
# hand-computed values


class PixelSegmenter(nn.Module):
    """logits[c, i, j] = sum_k W[c, k] x[k, i, j] + b[c]: a 1 x 1 convolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.0, 3.0]])[:, :, None, None])
            self.conv.bias.copy_(torch.tensor([0.1, -0.2]))

    def forward(self, x):
        return self.conv(x)


def test_region_score_and_input_gradient_by_hand():
    h = interpret.load_model(PixelSegmenter().eval(), preprocessing=Preprocessing((2, 2), None))
    assert h.task == "segmentation"
    x = torch.tensor([[[[1.0, 0.0], [2.0, 1.0]],      # channel 0
                       [[0.0, 1.0], [1.0, 0.0]],      # channel 1
                       [[1.0, 1.0], [0.0, 2.0]]]])    # channel 2
    mask = np.array([[True, True], [False, True]])
    # class 1 logits: 0.5 x0 - x1 + 3 x2 - 0.2 at (0,0) (0,1) (1,1): 3.3, 1.8, 6.3; mean 11.4 / 3
    e = interpret.explain(h, x, "saliency", target=targets.region(1, mask=mask))
    assert e.score == pytest.approx(11.4 / 3, abs=1e-5)
    # d mean / d x[k, i, j] = W[1, k] / 3 inside the region, 0 outside
    g = e.attribution[0].numpy()
    want = np.zeros((3, 2, 2))
    for k, w in enumerate((0.5, -1.0, 3.0)):
        want[k][mask] = w / 3
    np.testing.assert_allclose(g, want, atol=1e-6)
    # rather than class 0: x0 + 2 x1 - x2 + 0.1 there: 0.1, 1.1, -0.9 -> mean diff (11.4 - 0.3) / 3
    e2 = interpret.explain(h, x, "saliency", target=targets.region(1, mask=mask, contrast=0))
    assert e2.score == pytest.approx((11.4 - 0.3) / 3, abs=1e-5)
    # mask None: the pixels the model assigns to class 1 (all but (1,0), where class 0
    # has 4.1 against -0.2)
    logits = h.module(x)[0]
    own = (logits.argmax(0) == 1).numpy()
    np.testing.assert_array_equal(own, mask)
    e3 = interpret.explain(h, x, "saliency", target=targets.region(1))
    assert torch.equal(e3.explained.region, torch.from_numpy(own))
    assert e3.score == pytest.approx(float(logits[1][torch.from_numpy(own)].mean()), abs=1e-5)


def test_a_box_in_photo_pixels_lands_on_the_right_model_input_pixels():
    # photo 32 x 16 (w x h); resize the shorter side to 8 -> 16 x 8; centre crop 4 x 4:
    # the crop keeps resized columns 6..9 and rows 2..5, i.e. photo columns 12..19, rows 4..11
    h = interpret.load_model(PixelSegmenter().eval(), preprocessing=Preprocessing(8, 4))
    photo = Image.new("RGB", (32, 16), (200, 30, 30))
    x = h.preprocess(photo)
    t = targets.resolve(h, targets.region(1, mask=(12, 4, 16, 8)), x, photo_size=(32, 16))
    want = np.zeros((4, 4), bool)
    want[0:2, 0:2] = True  # photo (12..16, 4..8) -> resized (6..8, 2..4) -> crop (0..2, 0..2)
    np.testing.assert_array_equal(t.region.numpy(), want)
    # the same as an H x W mask in the photo's pixels
    m = np.zeros((16, 32), bool)
    m[8:12, 16:20] = True  # -> resized rows 4..5, cols 8..9 -> crop rows 2..3, cols 2..3
    t2 = targets.resolve(h, targets.region(1, mask=m), x, photo_size=(32, 16))
    want2 = np.zeros((4, 4), bool)
    want2[2:4, 2:4] = True
    np.testing.assert_array_equal(t2.region.numpy(), want2)
    # a box wholly outside the crop is refused, with why
    with pytest.raises(InputError, match="outside the part of the photo"):
        targets.resolve(h, targets.region(1, mask=(0, 0, 6, 16)), x, photo_size=(32, 16))
    # and through explain with a photo: the same pixels
    e = interpret.explain(h, photo, "saliency", target=targets.region(1, mask=(12, 4, 16, 8)))
    np.testing.assert_array_equal(e.explained.region.numpy(), want)


# ----------------------------------------------------------------------------------
# localisation on a synthetic task the model learns in seconds


def _scene(rng: np.random.Generator, size: int = 32):
    """Noise with a red square and a blue square that do not overlap; per-pixel labels
    0 background, 1 red, 2 blue."""
    img = rng.normal(0.5, 0.15, (size, size, 3)).clip(0, 1)
    lab = np.zeros((size, size), np.int64)
    while True:
        a = rng.integers(0, size - 9, 2)
        b = rng.integers(0, size - 9, 2)
        if abs(int(a[0]) - int(b[0])) >= 10 or abs(int(a[1]) - int(b[1])) >= 10:
            break
    for (r, c), colour, k in ((a, (0.9, 0.1, 0.1), 1), (b, (0.1, 0.1, 0.9), 2)):
        img[r:r + 8, c:c + 8] = colour
        lab[r:r + 8, c:c + 8] = k
    return img.astype(np.float32), lab


def _tiny_segmenter() -> nn.Module:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 16, 3, padding=1)), ("relu1", nn.ReLU()),
        ("conv2", nn.Conv2d(16, 16, 3, padding=1)), ("relu2", nn.ReLU()),
        ("head", nn.Conv2d(16, 3, 1))]))


@pytest.fixture(scope="module")
def trained_segmenter():
    rng = np.random.default_rng(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = _tiny_segmenter()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(150):
            batch = [_scene(rng) for _ in range(16)]
            x = torch.from_numpy(np.stack([b[0] for b in batch])).permute(0, 3, 1, 2)
            y = torch.from_numpy(np.stack([b[1] for b in batch]))
            x = (x - 0.5) / 0.25
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    h = interpret.load_model(net, preprocessing=Preprocessing((32, 32), None, (0.5,) * 3, (0.25,) * 3),
                             labels=["background", "red", "blue"])
    return h, float(loss)


@pytest.mark.parametrize("method", ["gradcam", "hirescam", "saliency"])
def test_a_clicked_segment_puts_the_maps_mass_on_that_shape(trained_segmenter, method):
    h, loss = trained_segmenter
    rng = np.random.default_rng(123)
    inside_own, inside_other = [], []
    for _ in range(4):
        img, lab = _scene(rng)
        photo = Image.fromarray((img * 255).astype(np.uint8))
        seg = interpret.predict(h, photo)
        r, c = np.argwhere(lab == 1)[27]  # a pixel inside the red square: the click
        t = seg.segment_at(c + 0.5, r + 0.5)
        assert t.index == 1
        kw = {"layer": "relu2"} if method != "saliency" else {}
        e = interpret.explain(h, photo, method, target=t, **kw)
        m = e.heatmap.astype(np.float64)
        inside_own.append(m[lab == 1].sum() / m.sum())
        inside_other.append(m[lab == 2].sum() / m.sum())
    own, other = float(np.mean(inside_own)), float(np.mean(inside_other))
    print(f"\n{method}: training loss {loss:.3f}; mass on the clicked red square {own:.2f} "
          f"(it covers 6% of the photo), on the blue square {other:.2f}")
    # the red square is 64 of 1024 pixels (6%); a map blind to the click would put
    # about 6% of its mass on each square; we ask for most of it on the clicked one
    # and several times less on the other
    assert own > 0.5 and own > 5 * other


# ----------------------------------------------------------------------------------
# no silent wrong answers


def test_one_logit_model_is_binary_and_never_shows_a_softmax(x64):
    h = interpret.load_model(small_cnn(1), preprocessing=Preprocessing(64, 64))
    assert h.task == "binary"
    logit = float(h.module(x64)[0, 0])
    (p,) = interpret.predict(h, x64)
    assert p.probability == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-6)
    assert p.probability != pytest.approx(1.0)
    with pytest.raises(InputError, match="softmax over one class"):
        interpret.load_model(small_cnn(1), preprocessing=Preprocessing(64, 64), task="classification")
    r = interpret.load_model(small_cnn(1), preprocessing=Preprocessing(64, 64), task="regression")
    (v,) = interpret.predict(r, x64)
    assert v.probability is None and v.value == pytest.approx(logit, abs=1e-6)


def test_multilabel_probabilities_are_independent_sigmoids(x64):
    h = interpret.load_model(small_cnn(5, seed=2), preprocessing=Preprocessing(64, 64), task="multilabel")
    logits = h.module(x64)[0].detach()
    preds = interpret.predict(h, x64, top_k=None)
    got = {p.index: p.probability for p in preds}
    for i in range(5):
        assert got[i] == pytest.approx(float(torch.sigmoid(logits[i])), abs=1e-6)
    assert abs(sum(got.values()) - 1.0) > 1e-3  # not a softmax
    assert [p.probability for p in preds] == sorted(got.values(), reverse=True)
    e = interpret.explain(h, x64, "gradcam", layer="relu2", target=2)
    assert isinstance(e.explained, targets.LabelTarget) and e.score == pytest.approx(float(logits[2]), abs=1e-5)


def test_a_task_that_does_not_fit_the_output_is_refused_with_its_shape():
    with pytest.raises(InputError, match=r"not a map per pixel"):
        interpret.load_model(small_cnn(3), preprocessing=Preprocessing(64, 64), task="segmentation")
    with pytest.raises(InputError, match=r"per pixel.*\(1, 4, 64, 64\)"):
        interpret.load_model(deeplab(), preprocessing=SEG_PRE, task="classification")
    with pytest.raises(InputError, match="binary model returns one logit"):
        interpret.load_model(small_cnn(3), preprocessing=Preprocessing(64, 64), task="binary")
    with pytest.raises(InputError, match="Unknown task"):
        interpret.load_model(small_cnn(3), preprocessing=Preprocessing(64, 64), task="panoptic")


def test_targets_that_do_not_fit_the_task_are_refused(seg, x64):
    with pytest.raises(InputError, match="does not fit a segmentation model"):
        interpret.explain(seg, x64, "gradcam", target=targets.classes(1))
    h = interpret.load_model(small_cnn(3), preprocessing=Preprocessing(64, 64))
    with pytest.raises(InputError, match="does not fit a classifier"):
        interpret.explain(h, x64, "gradcam", target=targets.region(1))
    with pytest.raises(InputError, match="no pixel of this photo"):
        absent = next(i for i in range(4) if i not in {c.index for c in interpret.predict(seg, x64).classes})
        interpret.explain(seg, x64, "gradcam", target=targets.region(absent))


# ----------------------------------------------------------------------------------
# segmentation models and their predictions


def test_segmentation_prediction_at_the_photos_size(seg):
    photo = Image.fromarray((np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8))
    s = interpret.predict(seg, photo)
    assert isinstance(s, interpret.Segmentation)
    assert s.mask.shape == (48, 80) and s.probabilities.shape == (4, 48, 80)
    assert sum(c.share for c in s.classes) == pytest.approx(1.0)
    assert sum(c.pixels for c in s.classes) == 48 * 80
    np.testing.assert_allclose(s.probabilities.sum(0), 1.0, atol=1e-5)
    # the mask is the argmax of the model's own output, resized onto the photo
    out = seg.module(seg.preprocess(photo))["out"][0].argmax(0)
    resized = np.asarray(Image.fromarray(out.numpy().astype(np.uint8)).resize((80, 48), Image.NEAREST))
    assert (resized == s.mask).mean() > 0.97


def test_hugging_face_segformer_logits_are_upsampled_to_the_input(tmp_path, x64):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    cfg = SegformerConfig(num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1],
                          hidden_sizes=[8, 16], patch_sizes=[7, 3], strides=[4, 2],
                          num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
                          num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = SegformerForSemanticSegmentation(cfg).eval()
    m.save_pretrained(tmp_path / "seg")
    h = interpret.load_model(str(tmp_path / "seg"), preprocessing=Preprocessing((64, 64), None))
    assert h.task == "segmentation" and h.labels == ["a", "b", "c"]
    assert h.output_shape == (1, 3, 64, 64)  # the model's own logits are 16 x 16
    s = interpret.predict(h, x64)
    assert s.mask.shape == (64, 64)
    e = interpret.explain(h, x64, "gradcam", target=s.classes[0].index)
    assert e.heatmap.shape == (64, 64) and np.isfinite(e.heatmap).all()


def test_torchvision_segmentation_architectures_by_name_without_downloads(tmp_path, x64):
    h = interpret.load_model("torchvision:lraspp_mobilenet_v3_large", weights=None,
                             preprocessing=SEG_PRE)
    assert h.task == "segmentation" and len(h.labels) == 21 and h.labels[0] == "__background__"
    net = deeplab(num_classes=4)
    torch.save(net.state_dict(), tmp_path / "seg.pth")
    h2 = interpret.load_model(tmp_path / "seg.pth", arch="torchvision:deeplabv3_mobilenet_v3_large",
                              preprocessing=SEG_PRE)
    assert h2.task == "segmentation" and h2.num_classes == 4
    with torch.no_grad():
        want = net(x64)["out"]
    np.testing.assert_allclose(interpret.predict(h2, x64).scores.numpy(), want.numpy(), atol=1e-5)


def test_an_onnx_segmentation_graph_is_a_segmentation_model(tmp_path, trained_segmenter):
    import warnings

    h, _ = trained_segmenter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(h.module, (torch.zeros(1, 3, 32, 32),), str(tmp_path / "seg.onnx"))
        program.save(str(tmp_path / "one.onnx"), external_data=False)
    o = interpret.load_model(str(tmp_path / "one.onnx"), preprocessing=h.preprocessing,
                             labels=["background", "red", "blue"])
    assert o.task == "segmentation"
    img, lab = _scene(np.random.default_rng(5))
    photo = Image.fromarray((img * 255).astype(np.uint8))
    a, b = interpret.predict(h, photo), interpret.predict(o, photo)
    np.testing.assert_array_equal(a.mask, b.mask)
    r, c = np.argwhere(lab == 1)[5]
    e = interpret.explain(o, photo, "saliency", target=b.segment_at(c + 0.5, r + 0.5))
    m = e.heatmap.astype(np.float64)
    assert m[lab == 1].sum() / m.sum() > 0.5


# ----------------------------------------------------------------------------------
# the trust curves follow the target


def test_trust_curves_start_at_the_targets_own_probability(seg, x64):
    pred = interpret.predict(seg, x64)
    cls = pred.classes[0].index
    e = interpret.explain(seg, x64, "gradcam", target=targets.region(cls))
    f = interpret.faithfulness(seg, x64, e, steps=4, seeds=1)
    out = seg.module(x64)["out"].detach()
    p = torch.softmax(out, 1)[0, cls][e.explained.region].mean()
    assert f.probability == pytest.approx(float(p), abs=1e-5)
    assert f.deletion[0] == pytest.approx(float(p), abs=1e-5)
    h = interpret.load_model(small_cnn(1), preprocessing=Preprocessing(64, 64))
    logit = float(h.module(x64)[0, 0])
    for sign in (1, -1):
        eb = interpret.explain(h, x64, "gradcam", layer="relu2", target=targets.output(0, sign=sign))
        fb = interpret.faithfulness(h, x64, eb, steps=4, seeds=1)
        assert fb.probability == pytest.approx(1 / (1 + np.exp(-sign * logit)), abs=1e-5)
    ml = interpret.load_model(small_cnn(4, seed=1), preprocessing=Preprocessing(64, 64), task="multilabel")
    el = interpret.explain(ml, x64, "gradcam", layer="relu2", target=targets.label(3))
    fl = interpret.faithfulness(ml, x64, el, steps=4, seeds=1)
    assert fl.probability == pytest.approx(float(torch.sigmoid(ml.module(x64)[0, 3])), abs=1e-5)


def test_trust_curves_of_a_regressor_are_in_its_value_never_a_percentage(x64):
    """Issue 19: the curves follow the target, "the value for a regressor" (they were
    refused with an InputError before): they start at the model's own value, the areas
    and the sentence are in the value's unit, and the verdict's yardstick is the value's
    change from the photo to the reference image."""
    from interpret import words
    from interpret.figures import faithfulness_figure
    from interpret.trust.faithfulness import FAITHFUL_MARGIN, RANDOM_MARGIN, SPREAD_FACTOR

    h = interpret.load_model(small_cnn(1), preprocessing=Preprocessing(64, 64), task="regression",
                             labels=["age"])
    v = float(h.module(x64)[0, 0])
    for sign in (1, -1):
        e = interpret.explain(h, x64, "gradcam", layer="relu2", target=targets.output(0, sign=sign))
        f = interpret.faithfulness(h, x64, e, steps=4, seeds=2)
        assert f.unit == "value" and f.sign == sign
        assert f.probability == pytest.approx(sign * v, abs=1e-5)
        assert f.deletion[0] == pytest.approx(sign * v, abs=1e-5)
        assert f.insertion[-1] == pytest.approx(sign * v, abs=1e-5)
        assert f.insertion[0] == pytest.approx(f.deletion[-1]) == pytest.approx(f.baseline_probability)
        # the yardstick: |value(photo) - value(reference)|, and the levels by hand
        scale = abs(f.probability - f.baseline_probability)
        assert f.scale == pytest.approx(scale)
        ins = next(ev for ev in f.evidence if ev.name == "insertion")
        gain = f.insertion_auc - f.random_insertion_auc
        want = ("counts" if gain > max(FAITHFUL_MARGIN * scale, SPREAD_FACTOR * f.random_insertion_auc_std)
                else "nil" if gain <= max(RANDOM_MARGIN * scale, SPREAD_FACTOR * f.random_insertion_auc_std)
                else "slight")
        assert ins.level == want
        # the sentence quotes the areas in the value's unit, never a percentage
        a, b = words.values(f.insertion_auc, f.random_insertion_auc)
        assert f"{a} on average along the way; random maps of the same coarseness give {b}" in f.sentence
        assert "%" not in f.sentence and "point" not in f.sentence
        assert ("minus the value of" in f.sentence) == (sign < 0)
        assert f.sentence.startswith(f"Explained: what {'raises' if sign > 0 else 'lowers'} the value of age.")
        assert f.as_dict()["unit"] == "value"
        fig = faithfulness_figure(f)
        np.testing.assert_allclose(fig.data[0].y, f.deletion)
        assert fig.layout.yaxis.ticksuffix == "" and "%{y:.4g}<extra>" in fig.data[0].hovertemplate


@pytest.mark.parametrize("ev, sign, want", [
    ([("insertion", 2.5, 1.25, "counts"), ("gap", 0.75, 0.0, "counts")], 1,
     "Showing the photo back in the map's order, most important pixels first, gives the value of "
     "\u201c*age*\u201d 2.5 on average along the way; random maps of the same coarseness give 1.25: "
     "clearly more than random maps. Showing first minus hiding first (the areas of the two curves, "
     "in the value's unit): 0.75 for the map, 0 for random maps: clearly more than random maps. "
     "Every measure is clearly better than random maps: the map is faithful to the model."),
    ([("insertion", -3.0001, -3.0002, "nil"), ("gap", 0.0, 0.0, "nil")], -1,
     "Showing the photo back in the map's order, most important pixels first, gives minus the value "
     "of \u201c*age*\u201d -3.0001 on average along the way; random maps of the same coarseness give "
     "-3.0002: no more than a random map reaches by chance. Showing first minus hiding first (the "
     "areas of the two curves, in the value's unit): 0 for the map, 0 for random maps: no more than a "
     "random map reaches by chance. No measure is more than a random map reaches by chance: the map "
     "is no better than random."),
])
def test_trust_sentence_of_a_value_quotes_numbers_in_its_unit(ev, sign, want):
    from interpret import words

    evidence = [words.Evidence(*e) for e in ev]
    verdict = "faithful" if ev[0][3] == "counts" else "no better than random"
    assert words.trust_sentence(verdict, evidence, "age", unit="value", sign=sign) == want
    named = words.trust_sentence(verdict, evidence, "age", unit="value", sign=sign,
                                 target_sentence="what raises the value of age")
    assert named == "Explained: what raises the value of age. " + want


@pytest.mark.parametrize("hit, mass, area, want", [
    (True, 0.75, 0.2, "On the segment explained (the pixels the model calls *road*): the map's hottest "
     "point is **inside** it, and **75%** of the map lies on it, more than a uniform map would put "
     "there (the segment is 20% of the photo). The other **25%** lies on context outside the segment: "
     "that is how much the explanation says the model relies on what surrounds it."),
    (False, 0.1, 0.3, "On the segment explained (the pixels the model calls *road*): the map's hottest "
     "point is **outside** it, and **10%** of the map lies on it, less than a uniform map would put "
     "there (the segment is 30% of the photo). The other **90%** lies on context outside the segment: "
     "that is how much the explanation says the model relies on what surrounds it."),
    (True, 0.5, 0.5, "On the segment explained (the pixels the model calls *road*): the map's hottest "
     "point is **inside** it, and **50%** of the map lies on it, as much as a uniform map would put "
     "there (the segment is 50% of the photo). The other **50%** lies on context outside the segment: "
     "that is how much the explanation says the model relies on what surrounds it."),
])
def test_segment_localization_sentence_says_mass_on_the_segment_and_context_outside(hit, mass, area, want):
    from interpret import words

    assert words.segment_localization(hit, mass, area, "the pixels the model calls *road*") == want


@pytest.mark.parametrize("a, b, want", [(2.5, 1.25, ("2.5", "1.25")), (2.5, 2.4999, ("2.5", "2.4999")),
                                        (0.0, 0.0, ("0", "0")), (1234567.0, 1234568.0, ("1234567", "1234568")),
                                        (-0.000123, 0.5, ("-0.000123", "0.5"))])
def test_values_show_enough_digits_to_tell_two_values_apart(a, b, want):
    from interpret import words

    assert words.values(a, b) == want


def test_localisation_measures_read_the_segment_explained(trained_segmenter):
    h, _ = trained_segmenter
    img, lab = _scene(np.random.default_rng(7))
    photo = Image.fromarray((img * 255).astype(np.uint8))
    seg = interpret.predict(h, photo)
    r, c = np.argwhere(lab == 2)[10]
    e = interpret.explain(h, photo, "gradcam", layer="relu2", target=seg.segment_at(c + 0.5, r + 0.5))
    own = interpret.localization(e)  # the segment's own region
    mask = e.explained.region.numpy()
    m = e.heatmap.astype(np.float64)
    assert own.mass == pytest.approx(m[mask].sum() / m.sum(), rel=1e-6)
    assert own.mass > 0.5
    with pytest.raises(InputError, match="no region of its own"):
        interpret.localization(interpret.explain(h, photo, "gradcam", layer="relu2",
                                                 target=targets.region(1)).heatmap)


# ----------------------------------------------------------------------------------
# keys and words


def test_keys_tell_targets_apart_and_are_stable():
    a, b = targets.classes(3), targets.label(3)
    assert a.key != b.key and targets.classes(3).key == a.key
    assert targets.output(0, 1).key != targets.output(0, -1).key
    assert targets.classes(3, contrast=1).key != a.key
    # two regions of one class are two targets (the caches must not mix them up)
    m1, m2 = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    m1[0, 0], m2[1, 1] = True, True
    assert targets.region(1, mask=m1) != targets.region(1, mask=m2)
    assert targets.region(1, mask=m1).key != targets.region(1, mask=m2).key
    assert targets.region(1, mask=(0, 0, 2, 2)).key != targets.region(1, mask=(0, 0, 3, 2)).key
    assert targets.region(1, mask=m1.copy()) == targets.region(1, mask=m1)
    with pytest.raises(InputError, match="sign"):
        targets.output(0, sign=2)
    with pytest.raises(InputError, match="x1 > x0"):
        targets.region(1, mask=(5, 5, 2, 9))


@pytest.mark.parametrize("target,labels,plain,page", [
    (targets.classes(1), ["cat", "dog"], "the class dog", "the class dog"),
    (targets.classes(1, contrast=0), ["cat", "dog"], "the class dog rather than cat",
     "the class dog rather than cat"),
    (targets.label(0), ["**<b>x</b>**"], "the label **<b>x</b>**",
     "the label " + targets.escape("**<b>x</b>**")),
    (targets.output(0, 1), ["tumour"], "what raises the probability of tumour",
     "what raises the probability of tumour"),
    (targets.output(0, -1), ["tumour"], "what lowers the probability of tumour",
     "what lowers the probability of tumour"),
    (targets.region(2), None, "the pixels the model calls class 2", "the pixels the model calls class 2"),
    (targets.region("road", mask=(0, 0, 4, 4)), None, "the class road inside the chosen box",
     "the class road inside the chosen box"),
    (targets.region(0, mask=np.ones((2, 2), bool), contrast=1), ["a_b", "[c](u)"],
     "the class a_b over the chosen region, rather than [c](u)",
     "the class " + targets.escape("a_b") + " over the chosen region, rather than " + targets.escape("[c](u)")),
])
def test_target_sentences(target, labels, plain, page):
    assert target.describe(labels) == plain
    assert target.sentence(labels) == page


@pytest.mark.parametrize("label", ["**<b>x</b>**", "<img src=x onerror=alert(1)>", "[c](javascript:u)",
                                   "_a_", "# head"])
def test_visitor_labels_never_format_a_sentence(label):
    for t in (targets.classes(0), targets.label(0), targets.output(0), targets.region(0, contrast=0)):
        s = t.sentence([label])
        assert "<" not in s and "](" not in s and "**" not in s.replace("\\*", "")
        assert targets.escape(label) in s


def test_regression_words_say_value():
    t = targets.OutputTarget(0, None, -1, True)
    assert t.describe(["age"]) == "what lowers the value of age" and t.unit == "value"


def test_a_regions_trust_curves_are_titled_as_the_mean_over_the_region(seg, x64):
    """The curves of a region target are the class's mean probability over the region's
    pixels; their figure said "Probability of 'road'", as if it were one number."""
    from interpret.figures.trust import faithfulness_figure

    pred = interpret.predict(seg, x64)
    cls = pred.classes[0].index
    e = interpret.explain(seg, x64, "gradcam", target=targets.region(cls))
    f = interpret.faithfulness(seg, x64, e, steps=4, seeds=1)
    assert f.over_region
    fig = faithfulness_figure(f)
    assert fig.layout.title.text == f"Mean probability of “{seg.label(cls)}” over the region"
    assert fig.layout.yaxis.title.text == "mean probability over the region"
