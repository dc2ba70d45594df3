"""Hand-computed values of every gradient method on a tiny fixed-weight network, and the
"one capture" guarantee (the five gradient CAMs and the activation view share one
forward pass).

The network (all weights set by hand, no biases)::

    x (1x3x4x4) -> AvgPool2d(2) -> conv 1x1 (3->2) -> ReLU -> global mean -> fc (2->2)

The input is constant on each 2x2 block, so after the pooling it is, per channel::

    x0 = [[2, 2], [0, -1]]    x1 = [[0, 1], [2, 1]]    x2 = [[1, 0], [1, 3]]

conv rows k0 = (1, 0, -1), k1 = (0, 1, 1) give the pre-activations

    conv0 = x0 - x2 = [[1, 2], [-1, -4]]      conv1 = x1 + x2 = [[1, 1], [3, 4]]

and after the ReLU  A0 = [[1, 2], [0, 0]],  A1 = [[1, 1], [3, 4]]  (means 3/4 and 9/4).
fc = [[2, -1], [-1, 1]]:  logit0 = 2*3/4 - 9/4 = -0.75,  logit1 = -3/4 + 9/4 = 1.5.

For class 0 the gradient at the ReLU output is fc[0, c] / 4 everywhere:
G0 = 0.5, G1 = -0.25; at the conv output it is also masked by the ReLU:
G0 = [[.5, .5], [0, 0]], G1 = -0.25 everywhere.  Every expected value below is worked
out from these numbers in the comments; none is recomputed with torch.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import interpret
from interpret import Preprocessing

pytestmark = pytest.mark.usefixtures("single_thread")

S = 1 / 3  # recurring fraction

# ----------------------------------------------------------------------------------
# the network and its input


def tiny_net() -> nn.Module:
    net = nn.Sequential(OrderedDict([
        ("pool0", nn.AvgPool2d(2)),
        ("conv", nn.Conv2d(3, 2, 1, bias=False)),
        ("relu", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)),
        ("flat", nn.Flatten()),
        ("fc", nn.Linear(2, 2, bias=False)),
    ]))
    with torch.no_grad():
        net.conv.weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]]).view(2, 3, 1, 1))
        net.fc.weight.copy_(torch.tensor([[2.0, -1.0], [-1.0, 1.0]]))
    return net.eval()


POOLED = [
    [[2.0, 2.0], [0.0, -1.0]],
    [[0.0, 1.0], [2.0, 1.0]],
    [[1.0, 0.0], [1.0, 3.0]],
]


def blocks(m2x2) -> np.ndarray:
    """A 2x2 array of per-block values as the 4x4 array it stands for."""
    return np.kron(np.asarray(m2x2, dtype=np.float64), np.ones((2, 2)))


X = torch.tensor(np.stack([blocks(c) for c in POOLED])[None], dtype=torch.float32)

# Bilinear upsampling 2x2 -> 4x4 with half-pixel centres (align_corners=False): output
# index i samples source coordinate (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
# clamped at the borders, i.e. the weights (1, 0), (3/4, 1/4), (1/4, 3/4), (0, 1).
UP = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])


def up(m2x2) -> np.ndarray:
    return UP @ np.asarray(m2x2, dtype=np.float64) @ UP.T


@pytest.fixture(scope="module")
def net():
    return interpret.load_model(tiny_net(), preprocessing=Preprocessing(resize=None, crop=4),
                                labels=["zero", "one"], name="tiny")


def explain(net, method, **kw):
    return interpret.explain(net, X, method, **kw)


def close(actual, expected, atol=1e-6):
    a = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    np.testing.assert_allclose(a.astype(np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=1e-5, atol=atol)


# ----------------------------------------------------------------------------------
# predictions


def test_logits_of_the_tiny_net_are_the_hand_computed_ones(net):
    preds = interpret.predict(net, X, top_k=None)
    assert [p.index for p in preds] == [1, 0]
    close([preds[0].logit, preds[1].logit], [1.5, -0.75])
    # softmax of (1.5, -0.75): 1 / (1 + e^-2.25) = 0.904650
    close(preds[0].probability, 0.904650, atol=1e-5)


# ----------------------------------------------------------------------------------
# CAMs at the ReLU output (uniform gradients G0 = 0.5, G1 = -0.25)


def test_gradcam_at_relu_equals_hand_computed_map(net):
    e = explain(net, "gradcam", layer="relu", target=0)
    # weights = spatial means of G = (0.5, -0.25);
    # CAM = 0.5*[[1,2],[0,0]] - 0.25*[[1,1],[3,4]] = [[0.25, 0.75], [-0.75, -1]]
    close(e.attribution[0, 0], [[0.25, 0.75], [-0.75, -1.0]])
    close(e.extras["weights"], [0.5, -0.25])
    assert e.score == pytest.approx(-0.75)
    # heatmap: ReLU -> [[.25,.75],[0,0]], divide by the max .75 -> [[1/3, 1], [0, 0]],
    # then bilinear to 4x4; row 0 is (1/3, 1/2, 5/6, 1), row 1 = 3/4 of it, row 2 = 1/4.
    r0 = np.array([S, 0.5, 5 / 6, 1.0])
    close(e.heatmap, np.stack([r0, 0.75 * r0, 0.25 * r0, 0 * r0]), atol=1e-5)
    assert e.heatmap.dtype == np.float32


def test_gradcam_plus_plus_at_relu_equals_hand_computed_map(net):
    e = explain(net, "gradcam_plus_plus", layer="relu", target=0)
    # channel 0: g = 0.5, sum A0 = 3: alpha = g^2 / (2 g^2 + 3 g^3) = .25 / .875 = 2/7,
    # weight = 4 positions * 0.5 * 2/7 = 4/7; channel 1: relu(-0.25) = 0 -> weight 0.
    close(e.extras["weights"], [4 / 7, 0.0], atol=1e-5)
    close(e.attribution[0, 0], [[4 / 7, 8 / 7], [0.0, 0.0]], atol=1e-5)


def test_layercam_at_relu_keeps_only_positive_gradients(net):
    e = explain(net, "layercam", layer="relu", target=0)
    # relu(G0) * A0 + relu(G1) * A1 = 0.5 * [[1,2],[0,0]] + 0
    close(e.attribution[0, 0], [[0.5, 1.0], [0.0, 0.0]])


# ----------------------------------------------------------------------------------
# CAMs at the conv output (spatially varying gradients: G0 = [[.5,.5],[0,0]], G1 = -.25)


def test_gradcam_at_conv_equals_hand_computed_map(net):
    e = explain(net, "gradcam", layer="conv", target=0)
    # weights = (mean G0, mean G1) = (0.25, -0.25);
    # CAM = 0.25 * ([[1,2],[-1,-4]] - [[1,1],[3,4]]) = [[0, .25], [-1, -2]]
    close(e.extras["weights"], [0.25, -0.25])
    close(e.attribution[0, 0], [[0.0, 0.25], [-1.0, -2.0]])


def test_hirescam_at_conv_differs_from_gradcam_as_computed_by_hand(net):
    e = explain(net, "hirescam", layer="conv", target=0)
    # sum_c G_c * conv_c = [[.5, 1], [0, 0]] - .25 * [[1,1],[3,4]] = [[.25, .75], [-.75, -1]]
    close(e.attribution[0, 0], [[0.25, 0.75], [-0.75, -1.0]])


def test_xgradcam_at_conv_equals_hand_computed_map(net):
    e = explain(net, "xgradcam", layer="conv", target=0)
    # w0 = sum(G0*conv0) / sum(conv0) = (.5 + 1) / (1+2-1-4) = 1.5 / -2 = -0.75
    # w1 = sum(G1*conv1) / sum(conv1) = -0.25 * 9 / 9 = -0.25
    # CAM = -0.75*[[1,2],[-1,-4]] - 0.25*[[1,1],[3,4]] = [[-1, -1.75], [0, 2]]
    close(e.extras["weights"], [-0.75, -0.25], atol=1e-5)
    close(e.attribution[0, 0], [[-1.0, -1.75], [0.0, 2.0]], atol=1e-5)
    # heatmap: ReLU leaves only the bottom-right 2 -> [[0,0],[0,1]] -> upsampled
    close(e.heatmap, up([[0, 0], [0, 1]]), atol=1e-5)


def test_gradcam_plus_plus_at_conv_equals_hand_computed_map(net):
    e = explain(net, "gradcam_plus_plus", layer="conv", target=0)
    # channel 0: g = .5 on two cells, sum conv0 = -2: alpha = .25 / (.5 - 2 * .125) = 1,
    # weight = 2 * .5 * 1 = 1; channel 1: relu(-.25) = 0.  CAM = conv0.
    close(e.attribution[0, 0], [[1.0, 2.0], [-1.0, -4.0]], atol=1e-5)


def test_layercam_at_conv_uses_each_cells_own_gradient(net):
    e = explain(net, "layercam", layer="conv", target=0)
    # relu(G0) * conv0 = [[.5*1, .5*2], [0, 0]]; channel 1 has no positive gradient
    close(e.attribution[0, 0], [[0.5, 1.0], [0.0, 0.0]])


def test_gradcam_for_class_one_flips_the_weights(net):
    e = explain(net, "gradcam", layer="relu", target="one")
    # fc row 1 = (-1, 1): G = (-1/4, 1/4); CAM = -.25*A0 + .25*A1 = [[0, -.25], [.75, 1]]
    assert e.target == 1 and e.target_label == "one"
    close(e.attribution[0, 0], [[0.0, -0.25], [0.75, 1.0]])
    assert e.score == pytest.approx(1.5)


def test_contrastive_gradcam_uses_the_logit_difference(net):
    e = explain(net, "gradcam", layer="relu", target=0, contrast=1)
    # d(logit0 - logit1)/dA = (2 - -1, -1 - 1) / 4 = (.75, -.5);
    # CAM = .75*[[1,2],[0,0]] - .5*[[1,1],[3,4]] = [[.25, 1], [-1.5, -2]]
    close(e.extras["weights"], [0.75, -0.5])
    close(e.attribution[0, 0], [[0.25, 1.0], [-1.5, -2.0]])
    assert e.score == pytest.approx(-0.75 - 1.5)
    assert e.contrast == 1 and e.contrast_label == "one"


# ----------------------------------------------------------------------------------
# activation-only maps


def test_activation_view_is_the_channel_mean_scaled(net):
    e = explain(net, "activation", layer="relu", target=0)
    close(e.attribution[0], [[[1, 2], [0, 0]], [[1, 1], [3, 4]]])
    # mean over channels [[1, 1.5], [1.5, 2]] -> min-max -> [[0, .5], [.5, 1]]
    close(e.heatmap, up([[0, 0.5], [0.5, 1]]), atol=1e-5)
    maps = interpret.layer_maps(net, X, layer="relu")
    close(maps.maps, [[[1, 2], [0, 0]], [[1, 1], [3, 4]]])
    close(maps.channel_means, [0.75, 2.25])
    close(maps.channel_maxes, [2.0, 4.0])
    one = explain(net, "activation", layer="relu", target=0, channel=1)
    # channel 1 alone: [[1,1],[3,4]] -> [[0, 0], [2/3, 1]]
    close(one.heatmap, up([[0, 0], [2 / 3, 1]]), atol=1e-5)


def test_eigencam_is_the_first_principal_component_oriented_by_hand(net):
    e = explain(net, "eigencam", layer="relu", target=0)
    # positions as rows (A0, A1): (1,1) (2,1) (0,3) (0,4); centred by the channel means
    # (3/4, 9/4): (.25,-1.25) (1.25,-1.25) (-.75,.75) (-.75,1.75).  X^T X =
    # [[2.75, -3.75], [-3.75, 6.75]], eigenvalues 9 and 0.5; the top eigenvector is
    # (3, -5)/sqrt(34), giving projections (7, 10, -6, -11)/sqrt(34).  Oriented with the
    # activation norm per location (sqrt 2, sqrt 5, 3, 4; centred about -1.25, -0.43, 0.34,
    # 1.34): dot = -29.7/sqrt(34) < 0, so the sign flips.
    proj = np.array([[-7.0, -10.0], [6.0, 11.0]]) / np.sqrt(34)
    close(e.attribution[0, 0], proj, atol=1e-5)
    # ReLU and scale: [[0, 0], [6/11, 1]]
    close(e.heatmap, up([[0, 0], [6 / 11, 1]]), atol=1e-5)


# ----------------------------------------------------------------------------------
# input gradients

# d logit0 / d pooled-x channel k = .5 * [[1,1],[0,0]] * k0[k] - .25 * k1[k]
# (k0 = (1,0,-1), k1 = (0,1,1)), divided by 4 for each input pixel of the 2x2 block:
SAL0 = [blocks([[0.5, 0.5], [0, 0]]) / 4,
        blocks([[-0.25, -0.25], [-0.25, -0.25]]) / 4,
        blocks([[-0.75, -0.75], [-0.25, -0.25]]) / 4]


def test_saliency_equals_hand_computed_gradient(net):
    e = explain(net, "saliency", target=0)
    close(e.attribution[0], SAL0)
    # max |.| over channels: .1875 in the top blocks, .0625 in the bottom ones; scaled by
    # the 99th percentile (.1875)
    close(e.heatmap, blocks([[1, 1], [S, S]]), atol=1e-5)


def test_input_x_gradient_sums_to_the_logit(net):
    e = explain(net, "input_x_gradient", target=0)
    expected = np.stack([blocks(c) for c in POOLED]) * np.stack(SAL0)
    close(e.attribution[0], expected)
    # a bias-free ReLU network is positively homogeneous: sum x * grad = f(x) (Euler)
    assert float(e.attribution.sum()) == pytest.approx(-0.75, abs=1e-6)


def test_contrastive_saliency_is_the_gradient_of_the_logit_difference(net):
    e = explain(net, "saliency", target=0, contrast=1)
    # d(logit0 - logit1)/dA = (.75, -.5): channel k = .75*[[1,1],[0,0]]*k0[k] - .5*k1[k]
    expected = [blocks([[0.75, 0.75], [0, 0]]) / 4,
                blocks([[-0.5, -0.5], [-0.5, -0.5]]) / 4,
                blocks([[-1.25, -1.25], [-0.5, -0.5]]) / 4]
    close(e.attribution[0], expected)


def test_smoothgrad_without_noise_is_saliency(net):
    e = explain(net, "smoothgrad", target=0, samples=3, noise=0.0, batch_size=2)
    close(e.attribution[0], SAL0)
    assert e.extras["sigma"] == 0.0


def test_guided_backprop_drops_negative_gradients_at_the_relu(net):
    e = explain(net, "guided_backprop", target=0)
    # at the ReLU output G = (.5, -.25) -> clamped to (.5, 0); only channel 0 passes:
    # input channel k gets .5 * [[1,1],[0,0]] * k0[k] / 4
    close(e.attribution[0], [blocks([[0.5, 0.5], [0, 0]]) / 4,
                             np.zeros((4, 4)),
                             blocks([[-0.5, -0.5], [0, 0]]) / 4])


def test_guided_gradcam_is_guided_backprop_times_the_gradcam_heatmap(net):
    e = explain(net, "guided_gradcam", layer="relu", target=0)
    r0 = np.array([S, 0.5, 5 / 6, 1.0])
    cam = np.stack([r0, 0.75 * r0, 0.25 * r0, 0 * r0])  # test_gradcam_at_relu_...
    guided = [blocks([[0.125, 0.125], [0, 0]]), np.zeros((4, 4)), blocks([[-0.125, -0.125], [0, 0]])]
    close(e.attribution[0], [g * cam for g in guided], atol=1e-6)


def test_integrated_gradients_from_zero_equals_input_x_gradient(net):
    # Along the straight path from 0 the pre-activations scale with alpha, so the ReLU
    # pattern and the gradient are constant: IG = x * grad exactly.
    e = explain(net, "integrated_gradients", target=0, baseline="mean", adaptive=False, n_steps=4)
    expected = np.stack([blocks(c) for c in POOLED]) * np.stack(SAL0)
    close(e.attribution[0], expected, atol=1e-6)
    assert e.extras["score_difference"] == pytest.approx(-0.75)
    assert abs(e.extras["convergence_delta"]) < 1e-5


# ----------------------------------------------------------------------------------
# one capture


class ForwardCounter:
    """Counts forward calls of a module with a pre-hook removed on exit."""

    def __init__(self, module):
        self.module, self.calls = module, 0

    def __enter__(self):
        def pre(mod, inp):
            self.calls += 1

        self.handle = self.module.register_forward_pre_hook(pre)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


GRADIENT_CAMS = ["gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "hirescam", "activation"]


def test_five_gradient_cams_and_activations_share_one_forward_on_the_tiny_net():
    net = interpret.load_model(tiny_net(), preprocessing=Preprocessing(resize=None, crop=4),
                               labels=["zero", "one"])
    interpret.list_layers(net)  # the dry forward that lists layers happens once per handle
    with ForwardCounter(net.module) as count:
        maps = {m: interpret.explain(net, X, m, layer="conv", target=0).attribution for m in GRADIENT_CAMS}
        interpret.explain(net, X, "activation", layer="conv", target=0)
    assert count.calls == 1
    # the CAMs back-propagate to the layer only; the first input-gradient method records
    # the pass again with the input gradient, and the next one reuses it
    with ForwardCounter(net.module) as count:
        interpret.explain(net, X, "saliency", layer="conv", target=0)
        interpret.explain(net, X, "input_x_gradient", layer="conv", target=0)
        again = {m: interpret.explain(net, X, m, layer="conv", target=0).attribution for m in GRADIENT_CAMS}
    assert count.calls == 1
    for m in GRADIENT_CAMS:  # the layer-only and the full pass give the same CAMs
        torch.testing.assert_close(again[m], maps[m])
    # and they are different maps, not one result returned six times
    assert not torch.allclose(maps["gradcam"], maps["hirescam"])
    assert not torch.allclose(maps["hirescam"], maps["xgradcam"])


def test_five_gradient_cams_and_activations_share_one_forward_on_lite0(lite0, fresh_handle, chelsea):
    handle = fresh_handle(lite0)
    layer = interpret.default_layer(handle)
    x = handle.preprocess(chelsea)
    with ForwardCounter(handle.module) as count:
        heat = {m: interpret.explain(handle, x, m, target=281).heatmap for m in GRADIENT_CAMS}
    assert count.calls == 1
    assert all(h.shape == (224, 224) for h in heat.values())
    assert np.abs(heat["gradcam"] - heat["layercam"]).max() > 0.01
    # a different target is a different backward, hence one more capture
    with ForwardCounter(handle.module) as count:
        interpret.explain(handle, x, "gradcam", layer=layer, target=285)
    assert count.calls == 1
    # target=None: one no-grad forward for the top class, then the capture; both cached
    handle2 = fresh_handle(lite0)
    interpret.list_layers(handle2)
    with ForwardCounter(handle2.module) as count:
        for m in GRADIENT_CAMS:
            interpret.explain(handle2, x, m)
    print(f"\nforwards with target=None for 6 maps: {count.calls}")
    assert count.calls <= 2


def test_weight_update_invalidates_the_cached_capture():
    net = interpret.load_model(tiny_net(), preprocessing=Preprocessing(resize=None, crop=4),
                               labels=["zero", "one"])
    before = interpret.explain(net, X, "gradcam", layer="relu", target=0)
    with torch.no_grad():
        net.module.fc.weight[0, 0] = 4.0  # G0 = 1 now: CAM = A0 - .25*A1
    after = interpret.explain(net, X, "gradcam", layer="relu", target=0)
    close(before.attribution[0, 0], [[0.25, 0.75], [-0.75, -1.0]])
    close(after.attribution[0, 0], [[0.75, 1.75], [-0.75, -1.0]])


def test_in_place_changes_of_the_input_are_seen():
    """Preprocessed inputs and content keys are remembered between calls; a change made
    in place to the caller's tensor or photo must still give the new answer."""
    net = interpret.load_model(tiny_net(), preprocessing=Preprocessing(resize=None, crop=4),
                               labels=["zero", "one"])
    x = X.clone()
    close(interpret.explain(net, x, "gradcam", layer="relu", target=0).attribution[0, 0],
          [[0.25, 0.75], [-0.75, -1.0]])
    with torch.no_grad():
        x.mul_(2)  # no biases, ReLU and a linear head: activations double, gradients do not
    close(interpret.explain(net, x, "gradcam", layer="relu", target=0).attribution[0, 0],
          [[0.5, 1.5], [-1.5, -2.0]])

    from PIL import Image

    photo = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    first = interpret.explain(net, photo, "saliency", target=0).attribution
    photo.putpixel((0, 0), (255, 0, 0))
    second = interpret.explain(net, photo, "saliency", target=0).attribution
    fresh = interpret.load_model(tiny_net(), preprocessing=Preprocessing(resize=None, crop=4))
    expected = interpret.explain(fresh, photo.copy(), "saliency", target=0).attribution
    assert not torch.allclose(first, second)
    close(second, expected.numpy())

    from interpret.capture import tensor_key

    t = torch.zeros(3)
    k = tensor_key(t)
    assert tensor_key(t) == k == tensor_key(torch.zeros(3))
    t[0] = 1.0
    assert tensor_key(t) != k and tensor_key(t) == tensor_key(torch.tensor([1.0, 0.0, 0.0]))


# ----------------------------------------------------------------------------------
# Eigen-CAM's sign on real photos


@pytest.mark.parametrize("layer", ["_blocks.15", "_conv_head"])
@pytest.mark.parametrize("photo", ["coffee", "astronaut", "rocket", "composite"])
def test_eigencam_sign_agrees_with_gradcam_where_the_component_follows_the_object(
        lite0, coffee, cat_cup_composite, photo, layer):
    """The first principal component's sign is arbitrary; oriented by the activation norm
    per location it correlates positively with Grad-CAM.  Measured (Spearman, raw maps):
    espresso +0.93 at both layers (the old mean-activation rule gave -0.93: the saucer,
    not the cup), astronaut +0.60, rocket +0.54 / +0.62, the cat-and-cup composite +0.82
    / +0.75.  Not every layer and photo is like that: on chelsea the component is
    unrelated to Grad-CAM's map (|rho| < 0.11 whichever sign), and on lite0's signed
    block outputs before the last one (_blocks.10-13) the rule is not reliable."""
    from PIL import Image
    from scipy.stats import spearmanr
    from skimage import data

    image = {"coffee": coffee, "composite": cat_cup_composite.image,
             "astronaut": Image.fromarray(data.astronaut()).convert("RGB"),
             "rocket": Image.fromarray(data.rocket()).convert("RGB")}[photo]
    g = interpret.explain(lite0, image, "gradcam", layer=layer).attribution.numpy().ravel()
    e = interpret.explain(lite0, image, "eigencam", layer=layer).attribution.numpy().ravel()
    rho = spearmanr(g, e)[0]
    assert rho > 0.4, rho
