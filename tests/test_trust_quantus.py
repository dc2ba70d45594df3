"""Our trust measures against Quantus 0.6 (a reference only, as pytorch-grad-cam is for
the CAMs), on the same model, input and attribution: pixel flipping, region
perturbation, relevance mass and the pointing game (MPRT: tests/test_trust_sanity.py).

Quantus 0.6 imports and runs with our torch 2.14 and numpy 2.4, except its
``calculate_auc`` (``np.trapz``, removed in numpy 2.4): the curves are compared, and
their areas computed with ``np.trapezoid``.

Tolerances: curves 1e-5 in probability (measured 1.5e-6: the same images, in batches
of 4 here and of 1 in Quantus, so float sums differ in the last digits); masses 1e-6
(Quantus sums float32 maps in float32; measured 5e-9); the pointing game exactly.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import interpret
from interpret.trust._common import order_of

pytestmark = pytest.mark.usefixtures("single_thread")
quantus = pytest.importorskip("quantus")


@pytest.fixture(scope="module")
def setup96(lite0, chelsea):
    x = F.interpolate(lite0.preprocess(chelsea), size=(96, 96), mode="bilinear", align_corners=False)
    e = interpret.explain(lite0, x, "gradcam")
    # a map with distinct values (its rank), so that both tools remove the same pixels
    hm = ((e.heatmap.size - 1 - order_of(e.heatmap)) / e.heatmap.size).astype(np.float32)
    black = float(lite0.preprocessing.normalize(torch.zeros(1, 3, 1, 1))[0, 0, 0, 0])
    return x, e, hm, black


def _quiet():
    w = warnings.catch_warnings()
    w.__enter__()
    warnings.simplefilter("ignore")
    return w


def test_deletion_curve_equals_quantus_pixel_flipping(lite0, setup96):
    x, e, hm, black = setup96
    # Quantus flips features_in_step values of the map broadcast over the 3 colour
    # channels (a pixel's three values are tied, so every multiple of 3 is whole pixels)
    # and asks that H * W be a multiple of it: 18 steps of 512 pixels at 96 x 96
    n, steps = hm.size, 18
    ours = interpret.faithfulness(lite0, x, hm, steps=steps, baseline="constant", seeds=1, target=e.target)
    w = _quiet()
    try:
        metric = quantus.PixelFlipping(features_in_step=3 * n // steps, normalise=False, abs=False,
                                       perturb_baseline=black, disable_warnings=True)
        curve = metric(model=copy.deepcopy(lite0.module), x_batch=x.numpy(), y_batch=np.array([e.target]),
                       a_batch=hm[None, None], channel_first=True, softmax=True, device="cpu")[0]
    finally:
        w.__exit__(None, None, None)
    assert len(curve) == steps
    np.testing.assert_allclose(ours.deletion[1:], curve, atol=1e-5)  # measured 1.5e-6
    auc = np.trapezoid(np.r_[ours.probability, curve], ours.fractions)
    assert ours.deletion_auc == pytest.approx(auc, abs=1e-5)


def test_deletion_by_patches_equals_quantus_region_perturbation(lite0, setup96):
    x, e, _, black = setup96
    ps, side = 24, 96 // 24
    sums = e.heatmap.reshape(side, ps, side, ps).sum(axis=(1, 3))  # Quantus orders patches by sum
    patch_map = np.kron(sums, np.ones((ps, ps))).astype(np.float32)
    ours = interpret.faithfulness(lite0, x, patch_map, steps=side * side, baseline="constant",
                                  seeds=1, target=e.target)
    w = _quiet()
    try:
        metric = quantus.RegionPerturbation(patch_size=ps, regions_evaluation=side * side, order="morf",
                                            normalise=False, abs=False, perturb_baseline=black,
                                            disable_warnings=True)
        drops = metric(model=copy.deepcopy(lite0.module), x_batch=x.numpy(), y_batch=np.array([e.target]),
                       a_batch=e.heatmap[None, None], channel_first=True, softmax=True, device="cpu")[0]
    finally:
        w.__exit__(None, None, None)
    np.testing.assert_allclose(ours.probability - ours.deletion[1:], drops, atol=1e-5)  # measured 1.4e-6


def test_relevance_mass_and_pointing_game_equal_quantus(lite0, cat_cup_composite):
    c = cat_cup_composite
    x = lite0.preprocess(c.image)
    w = _quiet()
    try:
        for target, mask in (("espresso", c.cup_mask), ("Egyptian cat", c.cat_mask), ("espresso", c.cat_mask)):
            e = interpret.explain(lite0, c.image, "gradcam", target=target)
            loc = interpret.localization(e.heatmap, mask)
            kw = dict(model=None, x_batch=x.numpy(), y_batch=np.array([e.target]),
                      a_batch=e.heatmap[None, None], s_batch=mask[None, None].astype(float),
                      channel_first=True)
            mass = quantus.RelevanceMassAccuracy(disable_warnings=True)(**kw)[0]
            hit = quantus.PointingGame(disable_warnings=True)(**kw)[0]
            assert loc.mass == pytest.approx(mass, abs=1e-6)  # Quantus sums in float32
            assert loc.hit == bool(hit)
            rows, cols = np.nonzero(mask)
            box = (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            assert np.array_equal(interpret.trust.box_mask(mask.shape, box), mask)
    finally:
        w.__exit__(None, None, None)
