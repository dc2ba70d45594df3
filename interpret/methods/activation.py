"""The layer's feature maps themselves: class-independent, from a forward alone (or
from the capture of the same image and layer, when there is one)."""

from __future__ import annotations

from ..errors import InputError
from .common import Context, Result
from .registry import Param, method


@method("activation", label="Activations", family="activation", needs_layer=True,
        params=(Param("channel", "Channel (-1 = mean of all)", "int", -1, -1, 65535),),
        speed="instant", uses="maps", heatmap="maps", contrastive=False,
        paper="https://arxiv.org/abs/1311.2901",
        description="The layer's feature maps themselves (mean over channels, or one "
                    "channel): what the layer sees, regardless of the class.")
def activation(ctx: Context) -> Result:
    maps = ctx.maps()
    A = maps.activation[0].float()
    ch = int(ctx.params["channel"])
    if ch >= A.shape[0]:
        raise InputError(f"Channel {ch} is out of range: layer '{ctx.layer}' has {A.shape[0]} "
                         f"channels (0-{A.shape[0] - 1}).")
    m = A.mean(0) if ch < 0 else A[ch]
    return Result(attribution=maps.activation.detach().cpu(), display=m.cpu(),
                  extras={"layer_shape": tuple(A.shape)})
