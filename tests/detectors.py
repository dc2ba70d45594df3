"""Small detectors built in the tests (random init, no download).

``tiny_rcnn``: a torchvision Faster R-CNN on a two-level convolutional pyramid of 8
channels at 64 pixels (so that every method runs in a fraction of a second), with
every detection kept (``box_score_thresh=0``: a random model then detects something).
``mobilenet_rcnn``: torchvision's own ``fasterrcnn_mobilenet_v3_large_320_fpn`` (its
FPN, its heads) at 128 pixels."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from PIL import Image
from torch import nn

import interpret

LABELS = ("background", "square", "disc")


class TinyPyramid(nn.Module):
    """conv-relu (stride 2) -> level '0' (8 x 32 x 32 at 64 px), conv-relu (stride 2)
    -> level '1' (8 x 16 x 16): an OrderedDict, as torchvision's FPN backbones return."""

    out_channels = 8

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        b = torch.relu(self.conv2(a))
        return OrderedDict([("0", a), ("1", b)])


def tiny_rcnn(seed: int = 0, side: int = 64, num_classes: int = 3) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = FasterRCNN(
            TinyPyramid(), num_classes=None, min_size=side, max_size=side,
            image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
            rpn_anchor_generator=AnchorGenerator(((8, 16), (16, 32)), ((1.0,), (1.0,))),
            box_roi_pool=MultiScaleRoIAlign(["0", "1"], 4, 2),
            box_head=TwoMLPHead(8 * 16, 32), box_predictor=FastRCNNPredictor(32, num_classes),
            box_score_thresh=0.0, rpn_pre_nms_top_n_test=50, rpn_post_nms_top_n_test=20,
            box_detections_per_img=10)
    return m.eval()


def mobilenet_rcnn(seed: int = 0, num_classes: int = 3, side: int = 128) -> nn.Module:
    from torchvision.models import get_model

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = get_model("fasterrcnn_mobilenet_v3_large_320_fpn", weights=None, weights_backbone=None,
                      num_classes=num_classes, box_score_thresh=0.0, min_size=side, max_size=side,
                      rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=50, box_detections_per_img=20)
    return m.eval()


def handle(module=None, side: int = 64, labels=LABELS) -> interpret.ModelHandle:
    module = module if module is not None else tiny_rcnn(side=side)
    return interpret.load_model(module, labels=list(labels),
                                preprocessing=interpret.Preprocessing((side, side), None, (0, 0, 0), (1, 1, 1)))


def photo(seed: int = 0, size=(160, 120)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype("uint8"))
