"""Path and perturbation methods, computed by Captum.  We add bounded memory (internal
batches), batched perturbations, adaptive step counts, progress and cancellation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .common import Context, Result, grad_heatmap
from .registry import Param, method

BASELINES = ("black", "mean", "blur", "zeros")


def _baseline(ctx: Context, kind: str) -> torch.Tensor:
    x = ctx.x.detach()
    if kind == "zeros":
        return torch.zeros_like(x)
    if kind == "mean":  # the dataset mean colour: 0 after normalisation
        return torch.zeros_like(x)
    if kind == "blur":
        k = 31
        return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)
    # black: the normalised value of pixel 0
    mean = torch.tensor(ctx.handle.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(ctx.handle.std, device=x.device).view(1, 3, 1, 1)
    return ((0 - mean) / std).expand_as(x).clone()


def _counting(fn, ctx: Context, total: int):
    """Wrap a forward function to report progress once per call."""
    state = {"n": 0}

    def wrapped(batch, *args):
        out = fn(batch, *args)
        state["n"] += 1
        ctx.report(min(state["n"], total), total)
        return out

    return wrapped, state


@method("integrated_gradients", label="Integrated Gradients", family="path", needs_layer=False,
        params=(
            Param("n_steps", "Steps (maximum when adaptive)", "int", 64, 2, 1024),
            Param("adaptive", "Adaptive steps (stop when completeness error < tolerance)", "bool", True),
            Param("tolerance", "Completeness tolerance (fraction of |f(x) - f(baseline)|)", "float", 0.01, 0.0001, 0.5),
            Param("internal_batch_size", "Steps per backward pass (memory: ~60 MB per step on ResNet-50)", "int", 4, 1, 512),
            Param("baseline", "Baseline image", "choice", "black", choices=BASELINES),
        ),
        cost="slow", paper="https://arxiv.org/abs/1703.01365",
        description="Gradients integrated along a straight path from a baseline image; "
                    "the attributions add up to the score difference (completeness).")
def integrated_gradients(ctx: Context) -> Result:
    from captum.attr import IntegratedGradients

    x = ctx.x.detach()
    base = _baseline(ctx, ctx.params["baseline"])
    max_steps = int(ctx.params["n_steps"])
    bs = int(ctx.params["internal_batch_size"])
    # Adaptive: Gauss-Legendre quadrature (Captum's default) with doubling step counts,
    # stopping as soon as |sum(attr) - (f(x) - f(b))| <= tol * |f(x) - f(b)|.
    if ctx.params["adaptive"]:
        # start at 16: with fewer nodes the completeness error can be small by chance
        # while the attribution map is still far from converged
        plan, s = [], 16
        while s < max_steps:
            plan.append(s)
            s *= 2
        plan.append(max_steps)
    else:
        plan = [max_steps]
    total_batches = sum((s + bs - 1) // bs for s in plan)
    fn, state = _counting(ctx.score_fn(), ctx, total_batches)
    ig = IntegratedGradients(fn, multiply_by_inputs=True)
    with torch.no_grad():
        diff = float(ctx.scores(x) - ctx.scores(base))
    ctx.report(0, total_batches)
    attr = delta = None
    used = 0
    for steps in plan:
        attr = ig.attribute(x, baselines=base, n_steps=steps, internal_batch_size=bs,
                            method="gausslegendre")
        # Captum's return_convergence_delta=True is this same difference, but it runs
        # f(x) and f(baseline) again on every call: reuse the ``diff`` computed above
        delta = float(attr.sum()) - diff
        used = steps
        if abs(float(delta)) <= float(ctx.params["tolerance"]) * max(abs(diff), 1e-12):
            break
    ctx.report(total_batches, total_batches)
    return Result(
        attribution=attr.detach().cpu(),
        heatmap=grad_heatmap(attr, "abs_sum"),
        extras={"steps_used": used, "convergence_delta": float(delta),
                "score_difference": diff,
                "relative_error": abs(float(delta)) / max(abs(diff), 1e-12),
                "converged": abs(float(delta)) <= float(ctx.params["tolerance"]) * max(abs(diff), 1e-12)},
    )


@method("occlusion", label="Occlusion", family="path", needs_layer=False,
        params=(
            Param("window", "Window size (pixels)", "int", 64, 4, 224),
            Param("stride", "Stride (pixels)", "int", 32, 2, 224),
            Param("baseline", "Fill of the occluding patch", "choice", "black", choices=BASELINES),
            Param("batch_size", "Occluded images per forward", "int", 16, 1, 256),
        ),
        cost="slow", contrastive=True, paper="https://arxiv.org/abs/1311.2901",
        description="Covers the image patch by patch and records how much the score drops: "
                    "direct, model-agnostic, slow.")
def occlusion(ctx: Context) -> Result:
    from captum.attr import Occlusion

    x = ctx.x.detach()
    w, s = int(ctx.params["window"]), int(ctx.params["stride"])
    H, W = ctx.size
    if w > min(H, W):
        raise InputError(f"Occlusion window {w} is larger than the input ({H}x{W}).")
    n = ((H - w) // s + 1) * ((W - w) // s + 1)
    bs = int(ctx.params["batch_size"])
    total = (n + bs - 1) // bs + 1
    fn, _ = _counting(ctx.score_fn(), ctx, total)
    base = _baseline(ctx, ctx.params["baseline"])
    with torch.no_grad():
        attr = Occlusion(fn).attribute(
            x, sliding_window_shapes=(3, w, w), strides=(3, s, s), baselines=base,
            perturbations_per_eval=bs,
        )
    # positive part: the regions whose occlusion lowers the score
    return Result(attribution=attr.detach().cpu(), heatmap=grad_heatmap(attr, "sum", positive_only=True, percentile=100),
                  extras={"windows": n})


class _ScoreModule(nn.Module):
    """Wraps the model so DeepLift sees one output per sample (target or contrast)."""

    def __init__(self, model, target, contrast):
        super().__init__()
        self.model, self.target, self.contrast = model, target, contrast

    def forward(self, x):
        from ..capture import target_score
        from ..models import _first_tensor

        return target_score(_first_tensor(self.model(x)), self.target, self.contrast)[:, None]


_NONLINEAR = (nn.ReLU, nn.ReLU6, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax,
              nn.SiLU, nn.GELU, nn.MaxPool2d, nn.Hardswish)


@method("deeplift", label="DeepLIFT (Rescale)", family="path", needs_layer=False,
        params=(Param("baseline", "Reference image", "choice", "black", choices=BASELINES),),
        cost="fast", paper="https://arxiv.org/abs/1704.02685", exclusive=True,
        description="Contributions relative to a reference image, propagated with the "
                    "Rescale rule; needs each activation module used once.")
def deeplift(ctx: Context) -> Result:
    from captum.attr import DeepLift

    from ..layers import list_layers

    if ctx.handle.scripted or not any(isinstance(m, _NONLINEAR) for m in ctx.handle.module.modules()):
        # Captum's DeepLIFT works through hooks on activation modules; without any (a
        # TorchScript model, or activations called as functions) it silently returns
        # gradient x (input - reference) instead of DeepLIFT.
        raise InputError(
            f"DeepLIFT cannot run on '{ctx.handle.name}': it has no activation modules that "
            "can be hooked (a TorchScript model, or activations called as functions). "
            "Use Integrated Gradients instead."
        )
    reused = [i.name for i in list_layers(ctx.handle)
              if i.calls > 1 and isinstance(dict(ctx.handle.module.named_modules())[i.name], _NONLINEAR)]
    if reused:
        raise InputError(
            f"DeepLIFT cannot run on '{ctx.handle.name}': its activation module(s) "
            f"{', '.join(reused[:3])} are used several times in one forward, which Captum's "
            "DeepLIFT does not support. Use Integrated Gradients instead."
        )
    # Captum installs hooks that every thread would see: run alone (writer lock).
    wrapper = _ScoreModule(ctx.handle.module, ctx.target, ctx.contrast)
    x = ctx.x.detach().clone()
    base = _baseline(ctx, ctx.params["baseline"])
    # (explain() holds the handle's writer lock for this method: spec.exclusive)
    import warnings

    # Captum stores each activation module's tensors as module.input / .output and
    # deletes them only in the module's backward hook: a forward that fails midway (or
    # a module off the gradient path) leaves them on the caller's model.  Remove them.
    scratch = ("input", "output", "input_ref")
    had = {(id(m), a) for m in wrapper.modules() for a in scratch if a in vars(m)}
    try:
        with warnings.catch_warnings():
            # Captum warns that it sets hooks and requires_grad on *our copy* of the input
            warnings.simplefilter("ignore", UserWarning)
            attr, delta = DeepLift(wrapper).attribute(x, baselines=base, target=0,
                                                      return_convergence_delta=True)
    except (RuntimeError, AssertionError, AttributeError) as exc:
        raise InputError(f"DeepLIFT cannot run on this model: {str(exc).splitlines()[0]}") from None
    finally:
        for m in wrapper.modules():
            for a in scratch:
                if a in vars(m) and (id(m), a) not in had:
                    delattr(m, a)
    return Result(attribution=attr.detach().cpu(), heatmap=grad_heatmap(attr, "abs_sum"),
                  extras={"convergence_delta": float(delta.abs().max())})
