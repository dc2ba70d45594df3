"""DeepLIFT with the Rescale rule (Shrikumar et al. 2017), computed by Captum."""

from __future__ import annotations

import warnings

from torch import nn

from ..errors import InputError
from ..layers import list_layers
from .common import BASELINES, Context, Result, baseline
from .registry import Cost, Param, method


def _cost(handle, layer, params) -> Cost:
    # Captum runs the image and the reference in one batch, then both again for the
    # convergence delta
    return Cost(4, 2)


class _ScoreModule(nn.Module):
    """Wraps the model so DeepLift sees one output per sample (target or contrast)."""

    def __init__(self, ctx: Context):
        super().__init__()
        self.model = ctx.handle.module
        self._score_of = ctx.score_of

    def forward(self, x):
        return self._score_of(self.model(x))[:, None]


_NONLINEAR = (nn.ReLU, nn.ReLU6, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softmax,
              nn.SiLU, nn.GELU, nn.MaxPool2d, nn.Hardswish)


@method("deeplift", label="DeepLIFT (Rescale)", family="path", needs_layer=False,
        params=(Param("baseline", "Reference image", "choice", "black", choices=BASELINES),),
        speed="fast", heatmap="abs_sum", exclusive=True, order=30, cost=_cost,
        paper="https://arxiv.org/abs/1704.02685",
        description="Contributions relative to a reference image, propagated with the "
                    "Rescale rule; needs each activation module used once.")
def deeplift(ctx: Context) -> Result:
    from captum.attr import DeepLift

    handle = ctx.handle
    if handle.scripted or not any(isinstance(m, _NONLINEAR) for m in handle.module.modules()):
        # Captum's DeepLIFT works through hooks on activation modules; without any (a
        # TorchScript model, or activations called as functions) it silently returns
        # gradient x (input - reference) instead of DeepLIFT.
        raise InputError(
            f"DeepLIFT cannot run on '{handle.name}': it has no activation modules that "
            "can be hooked (a TorchScript model, or activations called as functions). "
            "Use Integrated Gradients instead."
        )
    modules = dict(handle.module.named_modules())
    reused = [i.name for i in list_layers(handle)
              if i.calls > 1 and isinstance(modules[i.name], _NONLINEAR)]
    if reused:
        raise InputError(
            f"DeepLIFT cannot run on '{handle.name}': its activation module(s) "
            f"{', '.join(reused[:3])} are used several times in one forward, which Captum's "
            "DeepLIFT does not support. Use Integrated Gradients instead."
        )
    # Captum installs hooks that every thread would see: explain() holds the model's
    # writer lock for this method (``exclusive``).
    wrapper = _ScoreModule(ctx)
    x = ctx.x.detach().clone()
    base = baseline(ctx, ctx.params["baseline"])
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
    return Result(attribution=attr.detach().cpu(),
                  extras={"convergence_delta": float(delta.abs().max())})
