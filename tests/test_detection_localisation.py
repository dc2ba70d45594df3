"""Localisation on a synthetic task learnt in seconds (issue 20): a tiny torchvision
Faster R-CNN (two-level pyramid of 16 channels at 64 pixels, single thread) trained in
the test on a red square and a blue disc on noise finds both, and the map of each
detection puts its mass inside that detection's box and not in the other's.

Measured (2026-12-06, 120 steps of Adam, batch 8, about 15 s on one thread): both
shapes found on 20/20 held-out photos at score 0.5 and IoU 0.5 with the truth (19/20
after 90 steps); Grad-CAM on the suggested layer (the pyramid) puts 0.99-1.00 of its
mass inside the explained box for most boxes and none in the other; D-RISE (300 masks
of 8 x 8 cells) about 3x a uniform map's share (a perturbation map of coarse masks
spreads its mass).  The numbers and bars are in the test's docstring.  Eigen-CAM is
not asked: it does not depend on the box (the first principal component of the layer);
Grad-CAM++ on this pyramid spreads its mass (0.02-0.07 inside) and LayerCAM puts
0.34-0.87 inside (measured, not asserted).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret import targets

pytestmark = pytest.mark.usefixtures("single_thread")

SIDE = 64
LABELS = ["background", "square", "disc"]


class Backbone(nn.Module):
    out_channels = 16

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, stride=1, padding=1)
        self.c3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)

    def forward(self, x):
        a = torch.relu(self.c2(torch.relu(self.c1(x))))
        return OrderedDict([("0", a), ("1", torch.relu(self.c3(a)))])


def build() -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    return FasterRCNN(
        Backbone(), num_classes=None, min_size=SIDE, max_size=SIDE, image_mean=[0.0] * 3, image_std=[1.0] * 3,
        rpn_anchor_generator=AnchorGenerator(((16,), (24,)), ((1.0,), (1.0,))),
        box_roi_pool=MultiScaleRoIAlign(["0", "1"], 4, 2),
        box_head=TwoMLPHead(16 * 16, 64), box_predictor=FastRCNNPredictor(64, 3),
        rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=50, rpn_pre_nms_top_n_test=100,
        rpn_post_nms_top_n_test=30, box_batch_size_per_image=64, rpn_batch_size_per_image=64,
        box_detections_per_img=10)


def sample(rng):
    """Noise in [0, 0.5], a red square and a blue disc (sides 14-19 px) that do not overlap."""
    img = rng.random((3, SIDE, SIDE)).astype(np.float32) * 0.5
    s1, s2 = rng.integers(14, 20, 2)
    while True:
        x1, y1 = rng.integers(0, SIDE - s1, 2)
        x2, y2 = rng.integers(0, SIDE - s2, 2)
        if x1 + s1 <= x2 or x2 + s2 <= x1 or y1 + s1 <= y2 or y2 + s2 <= y1:
            break
    img[:, y1:y1 + s1, x1:x1 + s1] = np.array([1, 0, 0], np.float32)[:, None, None]
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    r = s2 / 2
    disc = (xx + 0.5 - x2 - r) ** 2 + (yy + 0.5 - y2 - r) ** 2 <= r * r
    img[:, disc] = np.array([0, 0, 1], np.float32)[:, None]
    boxes = torch.tensor([[x1, y1, x1 + s1, y1 + s1], [x2, y2, x2 + s2, y2 + s2]], dtype=torch.float32)
    return torch.from_numpy(img), {"boxes": boxes, "labels": torch.tensor([1, 2])}


@pytest.fixture(scope="module")
def trained():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = build()
        m.train()
        rng = np.random.default_rng(0)
        opt = torch.optim.Adam(m.parameters(), lr=3e-3)
        for _ in range(120):
            batch = [sample(rng) for _ in range(8)]
            loss = sum(m([b[0] for b in batch], [b[1] for b in batch]).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    for p in m.parameters():
        p.grad = None
    return interpret.load_model(m, labels=LABELS,
                                preprocessing=interpret.Preprocessing((SIDE, SIDE), None, (0, 0, 0), (1, 1, 1)))


def _best(dets, label):
    own = [d for d in dets if d.index == label]
    return max(own, key=lambda d: d.score) if own else None


def test_the_tiny_detector_finds_both_shapes(trained):
    from torchvision.ops import box_iou

    found = 0
    for k in range(20):
        x, truth = sample(np.random.default_rng(100 + k))
        dets = interpret.predict(trained, x[None], threshold=0.5)
        ok = 0
        for label in (1, 2):
            d = _best(dets, label)
            if d is not None and float(box_iou(truth["boxes"][label - 1:label], torch.tensor([d.box]))) > 0.5:
                ok += 1
        found += ok == 2
    print(f"\nboth shapes found on {found}/20 held-out photos")
    assert found >= 18


def test_each_boxs_map_puts_its_mass_inside_that_box_and_not_the_other(trained):
    """Over 8 held-out photos (16 boxes).  Measured: Grad-CAM's mass inside the box
    0.07-1.00 (median 0.98; 3 disc boxes under 0.2, whose maps lie on the background
    around the disc rather than on the square), in the other box at most 0.01, the
    pointing game 15/16; D-RISE 1.9-3.4x the box's area share (mean 2.8x), more inside
    than in the other box every time.  Bars a little under those."""
    rows = []
    for seed in range(500, 508):
        x, truth = sample(np.random.default_rng(seed))
        x = x[None]
        dets = interpret.predict(trained, x, threshold=0.5)
        for label in (1, 2):
            d = _best(dets, label)
            assert d is not None, f"the {LABELS[label]} is not detected on photo {seed}"
            own, other = truth["boxes"][label - 1].tolist(), truth["boxes"][2 - label].tolist()
            area = (own[2] - own[0]) * (own[3] - own[1]) / SIDE ** 2
            cam = interpret.explain(trained, x, "gradcam", target=targets.box(d))
            drise = interpret.explain(trained, x, "drise", target=targets.box(d), masks=300, grid=8, batch_size=50)
            lc, lc_other = interpret.localization(cam.heatmap, own), interpret.localization(cam.heatmap, other)
            ld, ld_other = interpret.localization(drise.heatmap, own), interpret.localization(drise.heatmap, other)
            rows.append((lc.mass, lc_other.mass, lc.hit, ld.mass / area, ld.mass, ld_other.mass))
    cam_in, cam_out, hits, ratio, d_in, d_out = (np.array(c, dtype=float) for c in zip(*rows))
    print(f"\nGrad-CAM mass inside: {np.round(cam_in, 2).tolist()} (median {np.median(cam_in):.2f}); "
          f"in the other box: max {cam_out.max():.2f}; pointing game {int(hits.sum())}/{len(hits)}")
    print(f"D-RISE mass inside / area share: {np.round(ratio, 1).tolist()} (mean {ratio.mean():.1f}); "
          f"inside {np.round(d_in, 2).tolist()}, other {np.round(d_out, 2).tolist()}")
    assert (cam_in > cam_out).all() and cam_out.max() <= 0.05
    assert np.median(cam_in) >= 0.9 and hits.sum() >= 14
    assert (d_in > d_out).all() and ratio.min() >= 1.5 and ratio.mean() >= 2.2
