"""segmentation_models_pytorch models passed as modules (issue 19): an ``smp.Unet``
(random init, a resnet18 encoder, no weights downloaded) is read as a segmentation
model, and Grad-CAM of a region equals pytorch-grad-cam's ``SemanticSegmentationTarget``
on the same layer and mask; explaining it leaves the model as it was."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import interpret
from interpret import Preprocessing, targets

smp = pytest.importorskip("segmentation_models_pytorch")

pytestmark = pytest.mark.usefixtures("single_thread")


def pearson(a, b) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.fixture(scope="module")
def unet():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return smp.Unet("resnet18", encoder_weights=None, classes=3).eval()


def test_an_smp_unet_is_a_segmentation_model(unet):
    h = interpret.load_model(unet, preprocessing=Preprocessing((64, 64), None),
                             labels=["background", "road", "car"])
    assert h.task == "segmentation" and h.num_classes == 3
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    seg = interpret.predict(h, x)
    with torch.no_grad():
        want = unet(x).argmax(1)[0].numpy()
    np.testing.assert_array_equal(seg.mask, want)
    assert sum(c.pixels for c in seg.classes) == 64 * 64


@pytest.mark.parametrize("layer", ["encoder.layer3", "decoder.blocks.2"])
def test_smp_unet_region_gradcam_equals_pytorch_grad_cams_semantic_segmentation_target(unet, layer, model_state):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    h = interpret.load_model(unet, preprocessing=Preprocessing((64, 64), None))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    mask = np.zeros((64, 64), bool)
    mask[10:42, 20:60] = True
    before = model_state.snapshot(unet)
    e = interpret.explain(h, x, "gradcam", layer=layer, target=targets.region(1, mask=mask))
    model_state.assert_unchanged(before, unet)
    module = copy.deepcopy(unet)
    with GradCAM(module, [dict(module.named_modules())[layer]]) as cam:
        ref = cam(x.clone(), targets=[SemanticSegmentationTarget(1, mask.astype(np.float32))])[0]
    r = pearson(e.heatmap, ref)
    print(f"\nsmp Unet region Grad-CAM at {layer} vs pytorch-grad-cam: r = {r:.5f}")
    assert r > 0.99
    assert int(e.explained.region.sum()) == int(mask.sum())
