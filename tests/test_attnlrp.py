"""AttnLRP (``explain(..., "attnlrp")``, Achtibat et al. ICML 2024, arXiv:2402.05602):

* the rules, written as modified gradient x input on a private copy, give the same
  relevance as the rules written out explicitly (numpy, relevance divided by
  activations, no autograd) on a one-block timm ViT with every weight and bias random;
* conservation: the input relevance plus what the rules themselves hand to non-input
  terms (biases, the class token and position embedding, the softmax rule's absorbed
  bias term of Prop. 3.1) is exactly the explained logit, on timm, torchvision and
  Hugging Face ViTs; how far the input relevance alone is from the logit is reported;
* the shared model is untouched (hooks, grads, flags, timm's ``fused_attn``, no
  instance ``forward``), also after a failure injected inside the rules.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import interpret
from interpret import Preprocessing
from interpret.methods import attnlrp as A

import tiny_models as tm

pytestmark = pytest.mark.usefixtures("single_thread")

X = torch.randn(1, 3, tm.VIT_SIZE, tm.VIT_SIZE, generator=torch.Generator().manual_seed(3))


def randomised(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Every parameter random (biases, LayerNorm affines, class token and position
    embedding too: timm and torchvision start several of them at 0 or 1, which would
    hide a rule that mishandles them)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and ("norm" in name or ".ln" in name or name.startswith("ln")):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() <= 1 or "token" in name or "pos" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
    return model.eval()


def timm_vit(**kw):
    return randomised(tm.timm_model("vit_tiny_patch16_224", **{**tm.VIT_KW, **kw}))


# ----------------------------------------------------------------------------------
# (b) the rules written out by hand


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    sd = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    u = (x - mu) / sd
    return u, sd, u * w + b


def _lin_rule(x, W, z, Rz):
    """epsilon rule, epsilon = 0: R_x_j = sum_k x_j W_kj R_k / z_k."""
    return x * ((Rz / z) @ W)


def _ln_rule(x, u, sd, w, y, Ry):
    """AttnLRP's LayerNorm (1/std constant): the affine part keeps u w of y's relevance (the
    bias absorbs the rest); u = (I - 1/N) x / sd with sd constant is linear in x."""
    Ru = u * w / y * Ry
    n = x.shape[-1]
    M = np.eye(n) - 1.0 / n  # u_i = sum_j M_ij x_j / sd
    return x / sd * ((Ru / u) @ M)


def _uniform_rule(a, b, out, Rout):
    """out = a @ b (per head), the uniform rule: each term a_ij b_jk gets
    its share a_ij b_jk / out_ik of R_out_ik, half to each factor."""
    terms = a[..., :, :, None] * b[..., None, :, :] / out[..., :, None, :] * Rout[..., :, None, :]
    return 0.5 * terms.sum(-1), 0.5 * terms.sum(-3)


def numpy_attnlrp(model, x: np.ndarray, target: int):
    """(logits, input relevance) of a one-block timm ViT by AttnLRP's rules, written
    as explicit relevance propagation in float64."""
    P = {n: p.detach().double().numpy() for n, p in model.named_parameters()}
    blk = model.blocks[0]
    H, hd, s = blk.attn.num_heads, blk.attn.head_dim, blk.attn.scale
    eps = blk.norm1.eps
    ps = model.patch_embed.proj.kernel_size[0]
    c, hh, ww = x.shape
    gy, gx = hh // ps, ww // ps
    patches = x.reshape(c, gy, ps, gx, ps).transpose(1, 3, 0, 2, 4).reshape(gy * gx, c * ps * ps)
    Wpe = P["patch_embed.proj.weight"].reshape(P["patch_embed.proj.weight"].shape[0], -1)
    zpe = patches @ Wpe.T + P["patch_embed.proj.bias"]
    t0 = np.concatenate([P["cls_token"][0], zpe], 0)
    e = t0 + P["pos_embed"][0]
    u1, sd1, n1 = _ln(e, P["blocks.0.norm1.weight"], P["blocks.0.norm1.bias"], eps)
    Wqkv = P["blocks.0.attn.qkv.weight"]
    qkv = n1 @ Wqkv.T + P["blocks.0.attn.qkv.bias"]
    N = qkv.shape[0]
    q, k, v = qkv.reshape(N, 3, H, hd).transpose(1, 2, 0, 3)  # each H x N x hd
    qs = q * s
    S = qs @ k.transpose(0, 2, 1)
    Aw = np.exp(S - S.max(-1, keepdims=True))
    Aw /= Aw.sum(-1, keepdims=True)
    C = Aw @ v
    cc = C.transpose(1, 0, 2).reshape(N, H * hd)
    Wp = P["blocks.0.attn.proj.weight"]
    o = cc @ Wp.T + P["blocks.0.attn.proj.bias"]
    r1 = e + o
    u2, sd2, n2 = _ln(r1, P["blocks.0.norm2.weight"], P["blocks.0.norm2.bias"], eps)
    W1, W2 = P["blocks.0.mlp.fc1.weight"], P["blocks.0.mlp.fc2.weight"]
    h = n2 @ W1.T + P["blocks.0.mlp.fc1.bias"]
    gh = 0.5 * h * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
    m = gh @ W2.T + P["blocks.0.mlp.fc2.bias"]
    r2 = r1 + m
    uf, sdf, nf = _ln(r2, P["norm.weight"], P["norm.bias"], model.norm.eps)
    pooled = nf[0]
    logits = pooled @ P["head.weight"].T + P["head.bias"]

    R = np.zeros_like(logits)
    R[target] = logits[target]
    R_nf = np.zeros_like(nf)
    R_nf[0] = _lin_rule(pooled, P["head.weight"], logits, R)
    R_r2 = _ln_rule(r2, uf, sdf, P["norm.weight"], nf, R_nf)
    R_r1, R_m = r1 / r2 * R_r2, m / r2 * R_r2  # a sum: shares by contribution
    R_h = _lin_rule(gh, W2, m, R_m)  # GELU: identity rule, R_h = R_gh
    R_r1 = R_r1 + _ln_rule(r1, u2, sd2, P["blocks.0.norm2.weight"], n2, _lin_rule(n2, W1, h, R_h))
    R_e, R_o = e / r1 * R_r1, o / r1 * R_r1
    R_C = _lin_rule(cc, Wp, o, R_o).reshape(N, H, hd).transpose(1, 0, 2)
    R_A, R_v = _uniform_rule(Aw, v, C, R_C)
    R_S = S * (R_A - Aw * R_A.sum(-1, keepdims=True))  # Prop. 3.1
    R_qs, R_kT = _uniform_rule(qs, k.transpose(0, 2, 1), S, R_S)
    R_qkv = np.stack([R_qs, R_kT.transpose(0, 2, 1), R_v])  # 3 x H x N x hd; q*s keeps q's relevance
    R_qkv = R_qkv.transpose(2, 0, 1, 3).reshape(N, 3 * H * hd)
    R_e = R_e + _ln_rule(e, u1, sd1, P["blocks.0.norm1.weight"], n1, _lin_rule(n1, Wqkv, qkv, R_qkv))
    R_t0 = t0 / e * R_e  # the position embedding keeps its share
    R_patches = _lin_rule(patches, Wpe, zpe, R_t0[1:])
    R_x = R_patches.reshape(gy, gx, c, ps, ps).transpose(2, 0, 3, 1, 4).reshape(c, hh, ww)
    return logits, R_x


def test_attnlrp_equals_the_rules_written_out_explicitly_on_one_block():
    """The gradient x input implementation equals AttnLRP's rules written as explicit
    relevance propagation (numpy, float64) on a one-block timm ViT with every
    parameter random: to 1e-4 of the largest relevance (measured: 4e-7)."""
    model = randomised(tm.timm_model("vit_tiny_patch16_224", img_size=8, patch_size=4, embed_dim=8,
                                     depth=1, num_heads=2, mlp_ratio=2, num_classes=3), seed=4)
    assert model.blocks[0].attn.fused_attn  # the shared model keeps its fused attention
    handle = interpret.load_model(model, preprocessing=Preprocessing(8, 8))
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    for target in (0, 2):
        e = interpret.explain(handle, x, "attnlrp", target=target)
        logits, want = numpy_attnlrp(model, x[0].double().numpy(), target)
        with torch.no_grad():
            np.testing.assert_allclose(model(x)[0].double().numpy(), logits, rtol=1e-4, atol=1e-5)
        got = e.attribution[0].double().numpy()
        err = float(np.abs(got - want).max() / np.abs(want).max())
        print(f"\ntarget {target}: max |ours - explicit| / max |explicit| = {err:.1e}")
        assert np.abs(want).max() > 1e-3
        assert err < 1e-4


# ----------------------------------------------------------------------------------
# (a) conservation


#: parameters that enter the pass as added terms (not multiplied with the input):
#: the relevance they take is ``p * dS/dp`` under gradient x input
_ADDED = ("bias", "cls_token", "class_token", "pos_embed", "pos_embedding", "position_embeddings", "reg_token",
          "dist_token")


def hf_vit():
    return randomised(tm.hf_vit())


def tv_vit():
    return randomised(tm.tv_vit())


@pytest.mark.parametrize("build", [timm_vit, tv_vit, hf_vit], ids=["timm", "torchvision", "hf"])
def test_attnlrp_relevance_accounts_exactly_for_the_explained_logit(build, monkeypatch):
    """Conservation (Achtibat et al. 2024, Sec. 3): every rule conserves relevance
    except where it hands some to a non-input term by design: a bias or added
    embedding keeps its share (epsilon rule) and Prop. 3.1's softmax rule
    absorbs ``sum R_out - sum R_in`` (the bias term of its Taylor expansion).  So the
    input relevance + those terms = the explained logit, to 1e-5 of the largest term
    (float32).  The input relevance alone is not the logit on these random models (their
    attention logits are small, and Prop. 3.1 gives a softmax input relevance in
    proportion to it): measured 0.8 to 4 times the logit, reported in
    ``extras["conservation_error"]`` and printed here."""
    model = build()
    handle = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    for target in (0, 1):
        e = interpret.explain(handle, X, "attnlrp", target=target)
        with torch.no_grad():
            logit = float(interpret.tensors.first_tensor(model(X))[0, target])
        assert e.score == pytest.approx(logit, rel=1e-5)

        leaks = []
        real = A.attention_softmax

        def recording(scores):
            out = real(scores)
            rec = {}
            scores.register_hook(lambda g: rec.__setitem__("in", g))
            out.register_hook(lambda g: rec.__setitem__("out", g))
            leaks.append((scores, out, rec))
            return out

        monkeypatch.setattr(A, "attention_softmax", recording)
        twin = A.attnlrp_copy(handle)
        added = [p for n, p in twin.named_parameters() if n.rsplit(".", 1)[-1] in _ADDED or n.endswith("bias")]
        assert added
        xin = X.clone().requires_grad_(True)
        try:
            for p in added:
                p.requires_grad_(True)
            with torch.enable_grad():
                out = interpret.tensors.first_tensor(twin(xin))
                grads = torch.autograd.grad(out[0, target], [xin] + added)
        finally:
            for p in added:
                p.requires_grad_(False)
            monkeypatch.setattr(A, "attention_softmax", real)
        r_input = float((xin * grads[0]).detach().double().sum())
        r_added = float(sum((p * g).detach().double().sum() for p, g in zip(added, grads[1:])))
        r_softmax = float(sum((o * rec["out"]).detach().double().sum() - (s * rec["in"]).detach().double().sum()
                              for s, o, rec in leaks))
        assert len(leaks) == 2  # one softmax per block, each seen by the backward
        assert r_input == pytest.approx(float(e.attribution.double().sum()), rel=1e-5, abs=1e-7)
        scale = max(abs(r_input), abs(r_added), abs(r_softmax), abs(logit))
        print(f"\n{build.__name__} target {target}: logit {logit:.5f} = input {r_input:.5f} + added terms "
              f"{r_added:.5f} + softmax rule {r_softmax:.5f} (residual {r_input + r_added + r_softmax - logit:.1e}); "
              f"conservation_error of the input alone {e.extras['conservation_error']:.3f}")
        assert abs(r_input + r_added + r_softmax - logit) < 1e-5 * scale
        assert e.extras["relevance_sum"] == pytest.approx(r_input, rel=1e-6)


def test_attnlrp_copy_computes_the_models_outputs():
    """Every replaced forward keeps the value (only gradients change): the private
    copy's logits equal the model's on timm (fused attention), torchvision
    (nn.MultiheadAttention) and Hugging Face ViTs."""
    for build in (timm_vit, tv_vit, hf_vit):
        model = build()
        handle = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
        twin = A.attnlrp_copy(handle)
        first = interpret.tensors.first_tensor
        with torch.no_grad():
            want, got = first(model(X)), first(twin(X))
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
        assert sum("forward" in vars(m) for m in twin.modules()) >= 3


# ----------------------------------------------------------------------------------
# (c) lifecycle


@pytest.mark.parametrize("build", [timm_vit, tv_vit], ids=["timm", "torchvision"])
def test_attnlrp_leaves_the_model_untouched_also_after_a_failure(build, model_state, monkeypatch):
    """The rules live on a private copy: the shared model keeps its hooks, grads,
    flags, timm's ``fused_attn``, its class forwards (no instance ``forward``) and
    weights, also when the rules fail midway; the next run gives the same map."""
    model = build()
    fused = {n: m.fused_attn for n, m in model.named_modules() if hasattr(m, "fused_attn")}
    handle = interpret.load_model(model, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    before = model_state.snapshot(model)
    first = interpret.explain(handle, X, "attnlrp", target=1)
    model_state.assert_unchanged(before, model)

    def boom(*a, **k):
        raise RuntimeError("boom: injected failure inside the attention rule")

    monkeypatch.setattr(A, "attend", boom)
    with pytest.raises(RuntimeError, match="boom"):
        interpret.explain(handle, X, "attnlrp", target=1)
    monkeypatch.undo()
    model_state.assert_unchanged(before, model)
    assert {n: m.fused_attn for n, m in model.named_modules() if hasattr(m, "fused_attn")} == fused
    assert not any("forward" in vars(m) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    twin = A.attnlrp_copy(handle)
    assert twin is not model and all(p is not q for p, q in zip(twin.parameters(), model.parameters()))
    again = interpret.explain(handle, X, "attnlrp", target=1)
    torch.testing.assert_close(again.attribution, first.attribution)


def test_attnlrp_is_offered_on_vits_and_refused_elsewhere():
    """CNNs and Swin (windowed attention) are refused with the reason; a ViT with a
    module the rules do not cover (a GLU MLP) is refused by name."""
    cnn = interpret.load_model(tm.tv_resnet(), preprocessing=Preprocessing(tm.SIZE, tm.SIZE))
    assert "attnlrp" not in [m.name for m in interpret.methods(cnn)]
    with pytest.raises(interpret.InputError, match="vision transformer"):
        interpret.explain(cnn, torch.zeros(1, 3, tm.SIZE, tm.SIZE), "attnlrp")
    vit = interpret.load_model(timm_vit(), preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    assert "attnlrp" in [m.name for m in interpret.methods(vit)]
    from timm.layers import SwiGLUPacked

    glu = tm.timm_model("vit_tiny_patch16_224", mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU, **tm.VIT_KW)
    h = interpret.load_model(glu, preprocessing=Preprocessing(tm.VIT_SIZE, tm.VIT_SIZE))
    why = interpret.get_method("attnlrp").unavailable(h)
    assert why is not None and "GluMlp" in why


# ----------------------------------------------------------------------------------
# (d) the map localises the evidence on a task a tiny ViT learns in seconds


def _stripes_batch(n: int, g: torch.Generator):
    """Noise images with one striped 8 x 8 patch at a random grid cell (class 0:
    horizontal stripes, 1: vertical) and a flat bright distractor square in another."""
    x = 0.3 * torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    cells = torch.randint(0, 16, (n, 2), generator=g)
    horizontal = (torch.arange(8) % 4 < 2).float()[:, None].expand(8, 8)
    for i in range(n):
        a, b = cells[i].tolist()
        b = (a + 1) % 16 if a == b else b
        (ya, xa), (yb, xb) = divmod(a, 4), divmod(b, 4)
        pattern = horizontal if y[i] == 0 else horizontal.T
        x[i, :, ya * 8:ya * 8 + 8, xa * 8:xa * 8 + 8] = 2 * pattern - 1
        x[i, :, yb * 8:yb * 8 + 8, xb * 8:xb * 8 + 8] = 0.8
        cells[i, 1] = b
    return x, y, cells[:, 0]


def test_attnlrp_puts_the_relevance_on_the_stripes_the_model_learnt():
    """A tiny timm ViT (2 blocks, 8-pixel patches) learns the stripes' orientation in
    300 Adam steps (about 3 s; test accuracy 99.6 %).  On 40 test images the stripes'
    cell (1/16 of the image) holds most of the positive AttnLRP relevance: median 83 %,
    at least 44 % on every image (training seeds 0, 1, 2, on 40 images of another
    draw: medians 70, 61, 81 %; input x gradient there: 39, 60, 31 %).  Bars: a median
    over 50 % (8x chance) and no image under 20 % (3x chance)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        import timm

        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8,
                                  embed_dim=32, depth=2, num_heads=2, num_classes=2)
        opt = torch.optim.Adam(model.parameters(), 3e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(300):
            xb, yb, _ = _stripes_batch(64, g)
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval().zero_grad(set_to_none=True)
    x, y, cell = _stripes_batch(40, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert float((model(x).argmax(1) == y).float().mean()) > 0.95
    handle = interpret.load_model(model, preprocessing=Preprocessing(32, 32))
    fractions = []
    for i in range(len(x)):
        e = interpret.explain(handle, x[i:i + 1], "attnlrp", target=int(y[i]))
        pos = e.attribution[0].sum(0).clamp(min=0)
        r, c = divmod(int(cell[i]), 4)
        fractions.append(float(pos[r * 8:r * 8 + 8, c * 8:c * 8 + 8].sum() / pos.sum()))
    print(f"\nshare of positive relevance on the stripes: median {np.median(fractions):.2f}, "
          f"min {min(fractions):.2f} (chance 0.06)")
    assert np.median(fractions) > 0.5
    assert min(fractions) > 0.2
