"""The Features page's embedding on segmentation models (issue 19: "Activations and
Features work unchanged on these models").

A segmentation head takes a dict of backbone features, so "the input of the last module
that ran" (the classifier fallback) is not a tensor: the embedding of a torchvision
LR-ASPP or DeepLabV3 failed with "Layer 'classifier' does not output a tensor".  For a
segmentation model the default features are now the input of the head's last
convolution (the 1x1 class convolution), averaged over positions.  Each test computes
those features independently, with a plain forward hook on the layer, and compares
numbers.  A classifier's default is unchanged (ResNet-18: the input of ``fc``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models import resnet18
from torchvision.models.segmentation import (deeplabv3_mobilenet_v3_large,
                                             lraspp_mobilenet_v3_large)

import interpret
from interpret import Preprocessing

pytestmark = pytest.mark.usefixtures("single_thread")

SIZE = 64


def photos():
    """Three small photos that differ (noise, a gradient, a bright square on dark)."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    ramp = np.repeat(np.linspace(0, 255, SIZE, dtype=np.uint8)[None, :, None], SIZE, 0)
    ramp = np.repeat(ramp, 3, 2)
    square = np.full((SIZE, SIZE, 3), 20, np.uint8)
    square[16:48, 16:48] = (230, 200, 40)
    return [noise, ramp, square]


def calibrated(model):
    """``model`` in eval mode with its batch-norm statistics measured on random inputs:
    with the initial statistics the random-init MobileNet's features shrink to ~1e-10,
    and a comparison of such numbers would pass whatever was compared."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None   # a cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(4, 3, SIZE, SIZE) * 4 - 2)
    return model.eval()


def seeded(build, **kw):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return calibrated(build(weights=None, weights_backbone=None, **kw))


def hooked_input(model, module, xs):
    """The first input ``module`` receives when ``model`` runs on each of ``xs``
    (a plain forward pre-hook, removed afterwards)."""
    seen = []
    h = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        with torch.no_grad():
            for x in xs:
                model(x)
    finally:
        h.remove()
    return torch.cat(seen)


def check_embedding(model, layer, module, labels=None):
    handle = interpret.load_model(model, preprocessing=Preprocessing((SIZE, SIZE), None))
    imgs = photos()
    e = interpret.embed(handle, imgs)
    assert e.layer == f"{layer} (input)"
    xs = [handle.preprocess(im) for im in imgs]
    want = hooked_input(model, module, xs)
    if want.dim() == 4:
        want = want.mean(dim=(2, 3))
    assert e.features.shape == tuple(want.shape)
    scale = float(want.abs().max())
    assert scale > 1e-2   # features of a size where a wrong layer or pooling shows
    np.testing.assert_allclose(e.features, want.numpy(), rtol=1e-4, atol=1e-5 * scale)
    # the photos differ, so their features do too (the comparison is not of constants)
    assert np.abs(e.features[0] - e.features[2]).max() > 1e-2 * scale
    return handle, e, xs


def test_lraspp_embedding_is_the_pooled_input_of_the_high_resolution_class_conv():
    model = seeded(lraspp_mobilenet_v3_large, num_classes=5)
    handle, e, xs = check_embedding(model, "classifier.high_classifier",
                                    model.classifier.high_classifier)
    assert handle.task == "segmentation"
    assert e.features.shape == (3, 128)


def test_deeplabv3_embedding_is_the_pooled_input_of_the_head_class_conv():
    model = seeded(deeplabv3_mobilenet_v3_large, num_classes=4)
    handle, e, xs = check_embedding(model, "classifier.4", model.classifier[4])
    assert handle.task == "segmentation"
    assert e.features.shape == (3, 256)   # the ASPP head's 256 channels


def test_segmentation_embedding_ignores_the_auxiliary_head_that_runs_last():
    # torchvision runs aux_classifier after classifier; its input (backbone features
    # for training) is not what the mask is computed from
    model = seeded(deeplabv3_mobilenet_v3_large, num_classes=4, aux_loss=True)
    assert model.aux_classifier is not None
    check_embedding(model, "classifier.4", model.classifier[4])


def test_segmentation_embedding_predicted_class_is_the_largest_mean_pixel_probability():
    model = seeded(deeplabv3_mobilenet_v3_large, num_classes=4)
    handle, e, xs = check_embedding(model, "classifier.4", model.classifier[4])
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(x)["out"], dim=1) for x in xs]).mean(dim=(2, 3))
    conf, pred = probs.max(dim=1)
    np.testing.assert_array_equal(e.predicted, pred.numpy())
    np.testing.assert_allclose(e.probabilities, conf.numpy(), rtol=1e-4, atol=1e-6)
    assert all(0.25 <= p <= 1 for p in e.probabilities)   # the largest of 4 means


def test_classifier_default_embedding_layer_is_unchanged_resnet_fc_input():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = calibrated(resnet18(weights=None, num_classes=7))
    handle, e, xs = check_embedding(model, "fc", model.fc)
    assert handle.task == "classification"
    assert e.features.shape == (3, 512)
    with torch.no_grad():
        probs = torch.cat([torch.softmax(model(x), dim=1) for x in xs])
    np.testing.assert_allclose(e.probabilities, probs.max(dim=1).values.numpy(), rtol=1e-4)


def test_layer_maps_channel_images_and_examples_run_on_a_segmenter():
    # the Activations page's default layer and the Features page's other views, against
    # the layer's output read with a plain forward hook
    model = seeded(lraspp_mobilenet_v3_large, num_classes=5)
    handle = interpret.load_model(model, preprocessing=Preprocessing((SIZE, SIZE), None))
    layer = interpret.default_layer(handle)
    assert layer is not None
    imgs = photos()
    outs = []
    h = model.get_submodule(layer).register_forward_hook(lambda m, a, o: outs.append(o.detach().clone()))
    try:
        with torch.no_grad():
            for im in imgs:
                model(handle.preprocess(im))
    finally:
        h.remove()
    maps = interpret.layer_maps(handle, imgs[2], layer)
    np.testing.assert_allclose(maps.maps, outs[2][0].numpy(), rtol=1e-4, atol=1e-5)
    top = interpret.top_activating(handle, imgs, layer, 0, k=3)
    peaks = np.array([float(o[0, 0].max()) for o in outs])
    assert [t.index for t in top] == list(np.argsort(-peaks))
    np.testing.assert_allclose([t.score for t in top], np.sort(peaks)[::-1], rtol=1e-4, atol=1e-5)
    vis = interpret.visualize_channel(handle, layer, 0, steps=2, size=SIZE)
    assert vis.steps_done == 2 and np.isfinite(vis.trace).all()
    assert 0.0 <= float(vis.tensor.min()) and float(vis.tensor.max()) <= 1.0


def test_features_and_activations_pages_work_on_a_segmentation_model(monkeypatch):
    """The pages a person opens: the embedding of the sample photos (one point each, on
    the segmentation head's features), the channel image and examples, no error."""
    pytest.importorskip("streamlit.testing.v1")
    from test_app import SAMPLES, charts, no_errors, page
    from test_app_features import SMALL, scatter_points
    from ui import compute

    monkeypatch.setattr(compute, "pretrained_available", lambda arch: False)
    at = page("pages/5_Features.py", {"model": "torchvision:lraspp_mobilenet_v3_large", **SMALL}).run()
    no_errors(at)
    figs = charts(at)
    assert "fv_image" in figs and "top_patches" in figs
    points = scatter_points(figs["embedding"])
    assert len(points) == len(list(SAMPLES.glob("*.jpg")))
    feats = [g for g in at.get("button_group") if g.key == "w_fv_feats"]
    assert feats and "what the segmentation head sees" in feats[0].proto.options[0].content
    at = page("pages/3_Activations.py", {"model": "torchvision:lraspp_mobilenet_v3_large"}).run()
    no_errors(at)
    assert charts(at), "the Activations page draws the default layer's maps"
