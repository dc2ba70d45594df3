"""Methods made for vision transformers, in numbers.

* The rules: attention rollout (Abnar & Zuidema 2020) and transformer attribution
  (Chefer et al. 2021, eqs. 5-6) on fixed 2 x 2 matrices computed by hand, LeGrad's
  aggregation likewise.
* The recording: on a 2-block, 2-head timm ViT with fixed weights (whose blocks call
  fused ``scaled_dot_product_attention``), the attention probabilities recomputed from
  the blocks' q/k projections, and d score / d attention, equal those of an explicit
  forward written out in the test; rollout and transformer attribution equal the
  rules applied by hand to them.  Hugging Face's eager attention and torchvision's
  ``need_weights`` give the same probabilities as ours.
* References: Grad-CAM on a timm ViT and a timm Swin equals pytorch-grad-cam's with
  its documented ``reshape_transform``.
* Token layouts: register tokens and a non-224 input size.
* Lifecycle: after a cancelled or failed attention method the model is unchanged.
* Localisation: on a synthetic task (a bright shape at a random place on noise,
  classified by its shape) a tiny ViT and a tiny CNN trained in the fixture put most of
  their ViT-method / CAM mass on the shape.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import interpret
from interpret import Cancelled, InputError, Preprocessing
from interpret.attention import layout, record_attention
from interpret.methods.attention_rollout import rollout
from interpret.methods.legrad import legrad_map
from interpret.methods.transformer_attribution import relevance

import tiny_models as tm

pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------------
# the rules, by hand


def test_rollout_of_two_fixed_matrices_by_hand():
    # one head, two tokens.  Ã = 0.5 A + 0.5 I (rows already sum to 1):
    #   Ã1 = [[0.75, 0.25], [0.10, 0.90]],  Ã2 = [[1.00, 0.00], [0.25, 0.75]]
    #   R = Ã2 Ã1 = [[0.75, 0.25], [0.25*0.75 + 0.75*0.10, 0.25*0.25 + 0.75*0.90]]
    #     = [[0.75, 0.25], [0.2625, 0.7375]]
    a1 = torch.tensor([[[0.5, 0.5], [0.2, 0.8]]])
    a2 = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    r = rollout([a1, a2])
    torch.testing.assert_close(r, torch.tensor([[0.75, 0.25], [0.2625, 0.7375]], dtype=torch.float64))


def test_rollout_head_fusion_and_discard_by_hand():
    # two heads; max fusion of [[.9,.1],[.3,.7]] and [[.2,.8],[.6,.4]] is [[.9,.8],[.6,.7]],
    # + I, halved: [[.95,.4],[.3,.85]]; rows renormalised: [[.95/1.35, .4/1.35], [.3/1.15, .85/1.15]]
    a = torch.tensor([[[0.9, 0.1], [0.3, 0.7]], [[0.2, 0.8], [0.6, 0.4]]])
    r = rollout([a], "max")
    want = torch.tensor([[0.95 / 1.35, 0.4 / 1.35], [0.3 / 1.15, 0.85 / 1.15]], dtype=torch.float64)
    torch.testing.assert_close(r, want)
    # min fusion [[.2,.1],[.3,.4]]; discarding the smallest quarter (one of four: 0.1)
    # leaves [[.2,0],[.3,.4]]; (F + I)/2 = [[.6,0],[.15,.7]]; rows: [[1,0],[.15/.85,.7/.85]]
    r = rollout([a], "min", discard_ratio=0.25)
    want = torch.tensor([[1.0, 0.0], [0.15 / 0.85, 0.7 / 0.85]], dtype=torch.float64)
    torch.testing.assert_close(r, want)


def test_transformer_attribution_rule_by_hand():
    # eq. 5: Ā = mean_h (∇A ⊙ A)^+ ; eq. 6: R ← R + Ā R, from R = I.
    # block 1, heads: A⊙G = [[.5*2, .5*-1], [.2*0, .8*1]] = [[1,-.5],[0,.8]] -> [[1,0],[0,.8]]
    #                      and [[.5*0, .5*1], [.2*1, .8*0]] = [[0,.5],[.2,0]]
    #   Ā1 = [[.5,.25],[.1,.4]];  R1 = I + Ā1 = [[1.5,.25],[.1,1.4]]
    # block 2, one head: A⊙G = [[1*1, 0],[.5*-2, .5*2]] -> [[1,0],[0,1]] = I
    #   R2 = R1 + I R1 = 2 R1 = [[3,.5],[.2,2.8]]
    a1 = torch.tensor([[[0.5, 0.5], [0.2, 0.8]], [[0.5, 0.5], [0.2, 0.8]]])
    g1 = torch.tensor([[[2.0, -1.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    a2 = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    g2 = torch.tensor([[[1.0, 5.0], [-2.0, 2.0]]])
    r = relevance([a1, a2], [g1, g2])
    torch.testing.assert_close(r, torch.tensor([[3.0, 0.5], [0.2, 2.8]], dtype=torch.float64))


def test_legrad_aggregation_by_hand():
    # per block: ReLU, mean over heads, mean over query rows, patch columns (prefix 1)
    # block 1: two heads [[1,-2],[3,4]], [[-1,2],[1,0]] -> ReLU [[1,0],[3,4]], [[0,2],[1,0]]
    #   head mean [[.5,1],[2,2]]; row mean [1.25, 1.5]; patch column: 1.5
    # block 2: one head [[0,6],[0,-6]] -> [[0,6],[0,0]]; row mean [0, 3]; patch: 3
    # mean over blocks: 2.25
    g1 = torch.tensor([[[1.0, -2.0], [3.0, 4.0]], [[-1.0, 2.0], [1.0, 0.0]]])
    g2 = torch.tensor([[[0.0, 6.0], [0.0, -6.0]]])
    e = legrad_map([g1, g2], prefix=1)
    torch.testing.assert_close(e, torch.tensor([2.25], dtype=torch.float64))


# ----------------------------------------------------------------------------------
# the recording, against an explicit forward


def fixed_vit() -> nn.Module:
    """2 blocks, 2 heads, 8-dim tokens, 16x16 input in 8-pixel patches (4 patches and a
    class token), weights from a fixed formula."""
    import timm

    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=16, patch_size=8,
                          embed_dim=8, depth=2, num_heads=2, mlp_ratio=2, num_classes=3).eval()
    with torch.no_grad():
        for i, (name, p) in enumerate(m.named_parameters()):
            n = p.numel()
            vals = torch.sin(torch.arange(n, dtype=torch.float32) * 0.7 + i) * 0.5
            if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
                vals = 1.0 + 0.1 * vals
            p.copy_(vals.view_as(p))
    return m


def explicit_forward(m: nn.Module, x: torch.Tensor):
    """The timm ViT's forward written out with explicit attention probabilities: returns
    (logits, [A per block], [attention context per block])."""
    z = m.norm_pre(m._pos_embed(m.patch_embed(x)))
    attns, ctxs = [], []
    for blk in m.blocks:
        h = blk.norm1(z)
        B, N, C = h.shape
        H = blk.attn.num_heads
        qkv = F.linear(h, blk.attn.qkv.weight, blk.attn.qkv.bias).reshape(B, N, 3, H, C // H)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(C // H), dim=-1)
        attns.append(a)
        ctx = a @ v
        ctxs.append(ctx)
        z = z + blk.attn.proj(ctx.transpose(1, 2).reshape(B, N, C))
        z = z + blk.mlp(blk.norm2(z))
    return m.forward_head(m.norm(z)), attns, ctxs


@pytest.fixture(scope="module")
def vit2():
    m = fixed_vit()
    return interpret.load_model(m, preprocessing=Preprocessing(16, 16), labels=["a", "b", "c"])


@pytest.fixture(scope="module")
def x16():
    return torch.sin(torch.arange(3 * 16 * 16, dtype=torch.float32) * 0.37).view(1, 3, 16, 16)


def test_recorded_attention_and_gradients_equal_an_explicit_forward(vit2, x16):
    m = vit2.module
    assert all(blk.attn.fused_attn for blk in m.blocks), "the blocks should use fused SDPA"
    logits, attns, _ = explicit_forward(m, x16)
    torch.testing.assert_close(logits, m(x16), rtol=1e-5, atol=1e-6)
    score = logits[0, 2] - logits[0, 0]
    grads = torch.autograd.grad(score, attns)
    ap = record_attention(vit2, x16, target=2, contrast=0, grads=True)
    assert ap.score == pytest.approx(float(score.detach()), rel=1e-5)
    for ours, a, g_ours, g in zip(ap.attentions, attns, ap.gradients, grads):
        torch.testing.assert_close(ours, a.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g_ours, g, rtol=1e-4, atol=1e-6)
        assert float(g.abs().max()) > 1e-4


def _rollout_by_hand(attns):
    n = attns[0].shape[-1]
    r = np.eye(n)
    for a in attns:
        f = a[0].detach().double().numpy().mean(0)
        at = 0.5 * f + 0.5 * np.eye(n)
        at = at / at.sum(1, keepdims=True)
        r = at @ r
    return r


def test_rollout_and_transformer_attribution_on_the_fixed_vit_by_hand(vit2, x16):
    logits, attns, _ = explicit_forward(vit2.module, x16)
    grads = torch.autograd.grad(logits[0, 1], attns)
    # rollout: the class token's row over the four patches, on the 2 x 2 grid
    r = _rollout_by_hand(attns)
    e = interpret.explain(vit2, x16, "attention_rollout")
    np.testing.assert_allclose(e.attribution.double().numpy().ravel(), r[0, 1:], rtol=1e-5, atol=1e-7)
    # transformer attribution, element by element
    n = attns[0].shape[-1]
    R = np.eye(n)
    for a, g in zip(attns, grads):
        a, g = a[0].detach().double().numpy(), g[0].double().numpy()
        abar = np.zeros((n, n))
        for h in range(a.shape[0]):
            abar += np.maximum(a[h] * g[h], 0) / a.shape[0]
        R = R + abar @ R
    e = interpret.explain(vit2, x16, "transformer_attribution", target=1)
    np.testing.assert_allclose(e.attribution.double().numpy().ravel(), R[0, 1:], rtol=1e-4, atol=1e-8)
    print(f"\nrollout {np.round(r[0, 1:], 4)}; transformer attribution {np.round(R[0, 1:], 5)}")
    assert np.ptp(R[0, 1:]) > 0 and np.ptp(r[0, 1:]) > 0


def test_legrad_last_block_is_the_gradient_of_the_logit(vit2, x16):
    """For the last block, s^L = head(z^L) is the model's own logit, so LeGrad's
    gradient there is the transformer-attribution gradient."""
    from interpret.attention import layer_gradients

    _, grads = layer_gradients(vit2, x16, 1, None, [1])
    ap = record_attention(vit2, x16, target=1, grads=True)
    torch.testing.assert_close(grads[0], ap.gradients[1], rtol=1e-5, atol=1e-7)
    # and the map: ReLU, head mean, row mean, patch columns
    e = interpret.explain(vit2, x16, "legrad", target=1, layers=1)
    want = ap.gradients[1][0].double().clamp(min=0).mean(0).mean(0)[1:]
    np.testing.assert_allclose(e.attribution.double().numpy().ravel(), want.numpy(), rtol=1e-5)


def test_hf_attention_equals_its_own_eager_attention(tmp_path):
    from transformers import ViTForImageClassification

    folder = tm.save_hf_folder(tm.hf_vit(), tmp_path / "hf")
    handle = interpret.load_model(folder)
    assert handle.module.config._attn_implementation == "sdpa"
    x = torch.randn(1, 3, tm.VIT_SIZE, tm.VIT_SIZE, generator=torch.Generator().manual_seed(0))
    ap = record_attention(handle, x)
    eager = ViTForImageClassification.from_pretrained(str(folder), attn_implementation="eager").eval()
    with torch.no_grad():
        ref = eager(x, output_attentions=True).attentions
    assert len(ref) == len(ap.attentions) == 2
    for ours, want in zip(ap.attentions, ref):
        torch.testing.assert_close(ours, want, rtol=1e-5, atol=1e-6)


def test_torchvision_attention_equals_need_weights():
    handle = interpret.load_model(tm.tv_vit(), preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    x = torch.randn(1, 3, tm.VIT_SIZE, tm.VIT_SIZE, generator=torch.Generator().manual_seed(0))
    ap = record_attention(handle, x)
    m = handle.module
    with torch.no_grad():
        z = m._process_input(x)
        z = torch.cat([m.class_token.expand(1, -1, -1), z], dim=1) + m.encoder.pos_embedding
        for blk, ours in zip(m.encoder.layers, ap.attentions):
            h = blk.ln_1(z)
            _, w = blk.self_attention(h, h, h, need_weights=True, average_attn_weights=False)
            torch.testing.assert_close(ours, w, rtol=1e-5, atol=1e-6)
            z = blk(z)


# ----------------------------------------------------------------------------------
# Grad-CAM against pytorch-grad-cam


def _pgc_gradcam(model, layer, x, target, reshape):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(target)])[0]


def test_gradcam_on_timm_vit_equals_pytorch_grad_cam(corr):
    from pytorch_grad_cam.utils.reshape_transforms import vit_reshape_transform

    m = tm.timm_vit()
    handle = interpret.load_model(m, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    layer = interpret.default_layer(handle)
    assert layer == "blocks.1.norm1"
    x = torch.randn(1, 3, tm.VIT_SIZE, tm.VIT_SIZE, generator=torch.Generator().manual_seed(1))
    ours = interpret.explain(handle, x, "gradcam", target=2).heatmap
    theirs = _pgc_gradcam(m, m.blocks[-1].norm1, x, 2,
                          lambda t: vit_reshape_transform(t, height=4, width=4))
    c = corr(ours, theirs)
    print(f"\nGrad-CAM timm ViT: correlation with pytorch-grad-cam {c:.6f}")
    assert c > 0.999


def test_gradcam_on_timm_swin_equals_pytorch_grad_cam(corr):
    from pytorch_grad_cam.utils.reshape_transforms import swinT_reshape_transform

    m = tm.timm_swin()
    handle = interpret.load_model(m, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    layer = interpret.default_layer(handle)
    assert layer == "layers.1"  # the last stage of timm's feature_info
    x = torch.randn(1, 3, tm.VIT_SIZE, tm.VIT_SIZE, generator=torch.Generator().manual_seed(1))
    ours = interpret.explain(handle, x, "gradcam", target=2).heatmap
    # timm >= 0.9 Swin stages output B x h x w x C; pytorch-grad-cam's documented
    # swinT_reshape_transform takes B x (h w) x C tokens: flatten the grid first
    theirs = _pgc_gradcam(m, m.layers[-1], x, 2,
                          lambda t: swinT_reshape_transform(t.flatten(1, 2), height=4, width=4))
    c = corr(ours, theirs)
    print(f"\nGrad-CAM timm Swin: correlation with pytorch-grad-cam {c:.6f}")
    assert c > 0.999


# ----------------------------------------------------------------------------------
# token layouts


def test_register_tokens_and_a_non_224_input_size():
    """A timm ViT with 4 register tokens built for 48-pixel inputs: its layout is
    5 prefix tokens before a 6 x 6 grid, and a token output maps patch p to grid cell
    (p // 6, p % 6)."""
    m = tm.timm_model("vit_tiny_patch16_224", reg_tokens=4, img_size=48, patch_size=8,
                      embed_dim=32, depth=1, num_heads=2)
    handle = interpret.load_model(m)
    assert handle.tokens.prefix_tokens == 5 and handle.tokens.grid == (6, 6)
    assert handle.input_size == (48, 48)  # from the model, not pretrained_cfg's 224
    tokens = torch.zeros(1, 5 + 36, 2)
    tokens[0, 5:, 0] = torch.arange(36, dtype=torch.float32)
    tokens[0, :5, 1] = 99.0  # the prefix must not show
    maps = handle.tokens.to_spatial(tokens)
    assert maps.shape == (1, 2, 6, 6)
    assert torch.equal(maps[0, 0], torch.arange(36, dtype=torch.float32).view(6, 6))
    assert float(maps[0, 1].abs().max()) == 0
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    for method in ("attention_rollout", "transformer_attribution", "legrad", "gradcam"):
        e = interpret.explain(handle, x, method, target=1)
        assert e.attribution.shape[-2:] == (6, 6), method


def test_vit_methods_on_deit_read_both_class_tokens():
    handle = interpret.load_model(tm.timm_deit(), preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    lay = layout(handle)
    assert lay.readout == (0, 1) and lay.prefix == 2
    x = torch.randn(1, 3, tm.VIT_SIZE, tm.VIT_SIZE, generator=torch.Generator().manual_seed(0))
    ap = record_attention(handle, x)
    r = rollout([a[0] for a in ap.attentions])
    want = r[[0, 1]].mean(0)[2:].reshape(4, 4)
    got = interpret.explain(handle, x, "attention_rollout").attribution[0, 0].double()
    torch.testing.assert_close(got, want)


def test_swin_is_not_offered_the_attention_methods():
    handle = interpret.load_model(tm.timm_swin(), preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    names = {m.name for m in interpret.methods(handle)}
    assert not names & {"attention_rollout", "transformer_attribution", "legrad"}
    assert "gradcam" in names
    why = interpret.get_method("legrad").unavailable(handle)
    assert "windows" in why


# ----------------------------------------------------------------------------------
# lifecycle


def test_cancelled_legrad_and_a_failing_forward_leave_the_model_unchanged(vit2, x16, model_state):
    before = model_state.snapshot(vit2.module)

    def cancel(done, total):
        if done >= 1:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        interpret.explain(vit2, x16, "legrad", target=1, progress=cancel)
    model_state.assert_unchanged(before, vit2.module)

    class Boom(RuntimeError):
        pass

    def explode(mod, inp, out):
        raise Boom("injected")

    fresh = interpret.ModelHandle(vit2.module, info=vit2.info)
    h = vit2.module.blocks[0].mlp.register_forward_hook(explode)
    try:
        before = model_state.snapshot(vit2.module)
        for method in ("attention_rollout", "transformer_attribution", "legrad"):
            with pytest.raises(Boom):
                interpret.explain(fresh, x16, method, target=1)
            model_state.assert_unchanged(before, vit2.module)
    finally:
        h.remove()


def test_concurrent_transformer_attributions_do_not_see_each_other(vit2, x16):
    xs = [x16 * (1 + 0.3 * i) for i in range(4)]
    want = [interpret.explain(interpret.ModelHandle(vit2.module, info=vit2.info), x,
                              "transformer_attribution", target=i % 3).attribution for i, x in enumerate(xs)]
    shared = interpret.ModelHandle(vit2.module, info=vit2.info)
    got, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(3):
                got[i] = interpret.explain(shared, xs[i], "transformer_attribution", target=i % 3).attribution
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


# ----------------------------------------------------------------------------------
# localisation on a synthetic task


SHAPE = 10  # pixels; the box is about 10% of a 32 x 32 image


def _shapes() -> torch.Tensor:
    """Three shapes of exactly 36 bright pixels each (so that only the shape, not the
    amount of brightness, tells the class): a horizontal bar, a vertical bar, a plus."""
    m = torch.zeros(3, SHAPE, SHAPE)
    m[0, 3:7, 0:9] = 1
    m[1, 0:9, 3:7] = 1
    m[2, 4:6, :] = 1
    m[2, :, 4:6] = 1
    assert m.sum((1, 2)).tolist() == [36.0] * 3
    return m


SHAPES = _shapes()


def synthetic_batch(n: int, gen: torch.Generator, size: int = 32):
    """n images: N(0, 0.5) noise, one bright shape (value 2.5) at a random place;
    label = its kind.  Returns (images, labels, (top, left) of each shape's box)."""
    x = torch.randn(n, 3, size, size, generator=gen) * 0.5
    y = torch.randint(0, 3, (n,), generator=gen)
    tl = torch.randint(0, size - SHAPE + 1, (n, 2), generator=gen)
    canvas = torch.zeros(n, size, size)
    rows = tl[:, 0, None] + torch.arange(SHAPE)
    cols = tl[:, 1, None] + torch.arange(SHAPE)
    canvas[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = SHAPES[y]
    return torch.where(canvas.bool()[:, None], torch.tensor(2.5), x), y, tl


def _train(model: nn.Module, steps: int, lr: float, seed: int) -> float:
    """AdamW with a one-cycle schedule on fresh synthetic batches of 32; returns the
    held-out accuracy on 256 images.  Leaves the model in eval mode without .grad."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    model.train()
    for _ in range(steps):
        x, y, _ = synthetic_batch(32, gen)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    x, y, _ = synthetic_batch(256, torch.Generator().manual_seed(seed + 100))
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@pytest.fixture(scope="module")
def trained():
    """A tiny CNN and a tiny ViT (2 blocks, 2 heads, 4-pixel patches: an 8 x 8 grid)
    trained for a few seconds; their handles and held-out accuracies.  (ViT init seed
    2: with seed 1 this schedule does not train in 300 steps, accuracy 0.34; the
    accuracy is asserted below, so a model that did not learn fails loudly.)"""
    import timm

    with torch.random.fork_rng():
        torch.manual_seed(0)
        cnn = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, 3))
        acc_cnn = _train(cnn, 150, 3e-3, 1)
        torch.manual_seed(2)
        vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4,
                                embed_dim=32, depth=2, num_heads=2, mlp_ratio=2, num_classes=3)
        acc_vit = _train(vit, 300, 3e-3, 2)
    pre = Preprocessing(32, 32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    return {"cnn": (interpret.load_model(cnn, preprocessing=pre), acc_cnn),
            "vit": (interpret.load_model(vit, preprocessing=pre), acc_vit)}


def _mass_on_shape(heatmap: np.ndarray, top: int, left: int, pad: int = 2) -> float:
    """Fraction of the heatmap's mass inside the shape's box (grown by ``pad`` pixels:
    maps at patch or layer resolution are upsampled, so their edges blur)."""
    box = np.zeros_like(heatmap, dtype=bool)
    box[max(0, top - pad):top + SHAPE + pad, max(0, left - pad):left + SHAPE + pad] = True
    return float(heatmap[box].sum() / (heatmap.sum() + 1e-12))


def test_vit_methods_and_cams_put_most_mass_on_the_shape(trained):
    """The box (10 px + a 2 px margin, since maps at patch or layer resolution are
    upsampled) is at most 14 x 14 = 19% of the image, so a map that ignores the shape
    gets about 0.19 of its mass there.  Attention rollout and transformer attribution on
    the ViT, and Grad-CAM, Grad-CAM++ and LayerCAM on the CNN, must put most of it
    (> 0.5, 2.6 x chance) on the shape, on average over 24 held-out images, once the
    models have learnt the task (held-out accuracy > 0.9).

    Measured, and reported but not asserted: LeGrad and Grad-CAM on the ViT's last
    norm1.  On these 2-block ViTs they range from chance to about twice chance with
    the training seed (LeGrad 0.17-0.33 on this task; its ReLU(dS/dA) is not weighted by
    the attention, unlike Chefer's, so the gradient's offset along each softmax row,
    which no change of attention can realise, decides what survives the ReLU)."""
    gen = torch.Generator().manual_seed(7)
    x, y, tl = synthetic_batch(24, gen)
    asserted = {"vit": ("attention_rollout", "transformer_attribution"),
                "cnn": ("gradcam", "gradcam_plus_plus", "layercam")}
    reported = {"vit": ("legrad", "gradcam"), "cnn": ()}
    report = {}
    for model in ("vit", "cnn"):
        handle, acc = trained[model]
        assert acc > 0.9, f"the {model} did not learn the task (accuracy {acc:.2f})"
        for method in asserted[model] + reported[model]:
            fr = []
            for i in range(len(x)):
                e = interpret.explain(handle, x[i:i + 1], method, target=int(y[i]))
                fr.append(_mass_on_shape(e.heatmap, int(tl[i, 0]), int(tl[i, 1])))
            report[(model, method)] = float(np.mean(fr))
    box = (SHAPE + 4) ** 2 / 32 ** 2
    print(f"\naccuracy: cnn {trained['cnn'][1]:.2f}, vit {trained['vit'][1]:.2f}; "
          f"box area {box:.2f} (chance)")
    for (model, method), v in report.items():
        tag = "" if method in asserted[model] else "  (reported)"
        print(f"  {model} {method:28s} mass on the shape {v:.2f}{tag}")
    for model, methods in asserted.items():
        for method in methods:
            v = report[(model, method)]
            assert v > 0.5, f"{model} {method}: only {v:.2f} of the mass on the shape"
