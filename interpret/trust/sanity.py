"""The model-parameter randomisation test (Adebayo et al. 2018, "Sanity Checks for
Saliency Maps", NeurIPS, arXiv:1810.03292, section 3.1): re-initialise the model's
layers one after the other, from the output down ("cascading randomisation"), and see
whether the map changes.  A map that survives the destruction of everything the model
learned cannot be explaining what the model learned; guided backpropagation is the
paper's example (it behaves like an edge detector, Fig. 2).

Always on a **deep copy** of the model: the shared one is never touched (its weights
and buffers are hashed before and after, and a difference is an error).  Each layer is
re-initialised with its own default initialisation (PyTorch's ``reset_parameters``:
Kaiming-uniform weights, batch-norm statistics reset), drawn from a private
``torch.Generator`` seeded with ``seed + 1`` for every module, as Quantus's ``MPRT``
does with the global generator; the fully randomised copy is therefore weight for
weight the model Quantus's MPRT ends with, without touching any global random state.

Similarity is measured between the original heatmap and the randomised one with
Spearman's rank correlation (the paper's main measure, Fig. 4) and SSIM (Wang et al.
2004; the paper's Fig. 4 too).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..errors import InputError, Progress, report
from ..hooks import private_copy
from ..methods.registry import Cost
from ._common import _pearson, rankdata, ssim
from .registry import measure

__all__ = ["SanityCheck", "ModelRandomisation", "sanity_check", "randomisation_units",
           "randomise", "randomise_module", "parameter_hash", "SANITY_THRESHOLD"]

#: ``passed`` when the mean rank correlation over the cascade is below this.  Why the
#: mean over the cascade, not the end point alone: on the bundled model, once every
#: layer down to the stem is random (batch-norm statistics reset included), even guided
#: backpropagation's map has lost most of its structure (Spearman 0.04-0.33 on the
#: sample photos), while with only the top blocks random it is untouched (0.99-1.00):
#: the paper's finding is the shape of the whole curve (Adebayo et al., Fig. 4), which
#: the mean summarises (Quantus's ``MPRT(return_average_correlation=True)``).  Why 0.5:
#: a rank correlation of 0.5 means the randomised maps keep, on average, a quarter of
#: the variance of the original's pixel order (rho^2).  Measured at 224 x 224 on the
#: cat, espresso and cat-and-cup photos (docs/trust.md): guided backpropagation 0.70 to
#: 0.76 (fails), saliency 0.27 to 0.38 and Grad-CAM -0.29 to -0.17 (pass; a negative
#: mean is a map that the random weights reverse, which is a change too).
SANITY_THRESHOLD = 0.5


def parameter_hash(module: nn.Module) -> str:
    """A content hash of every parameter and buffer of ``module`` (names, shapes,
    dtypes, values)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in list(module.named_parameters()) + list(module.named_buffers()):
        v = t.detach().cpu().contiguous()
        h.update(name.encode() + str(v.dtype).encode() + str(tuple(v.shape)).encode())
        if v.numel():
            h.update(v.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _owns_state(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False)) or any(
        b.is_floating_point() for b in m.buffers(recurse=False))


def randomisation_units(module: nn.Module, granularity: str = "blocks") -> List[str]:
    """The names of what one cascade step re-initialises, bottom (input) first.

    ``"blocks"``: the model's top-level children that hold parameters, with plain
    containers (``nn.Sequential``, ``nn.ModuleList``) opened one level or more, so a
    ResNet gives ``conv1, bn1, layer1.0, layer1.1, ..., fc`` and EfficientNet-Lite0
    ``_conv_stem, _bn0, _blocks.0, ..., _blocks.15, _conv_head, _bn1, _fc``.
    ``"modules"``: every module that owns parameters itself (each convolution,
    normalisation and linear layer), Quantus's MPRT granularity."""
    if granularity == "modules":
        return [n for n, m in module.named_modules() if n and _owns_state(m)]
    if granularity != "blocks":
        raise InputError(f"layers must be 'blocks', 'modules', a number or a list of names; got {granularity!r}.")
    out: List[str] = []

    def visit(prefix: str, m: nn.Module) -> None:
        kids = [(n, c) for n, c in m.named_children() if any(True for _ in c.parameters())]
        for name, child in kids:
            full = f"{prefix}{name}"
            container = isinstance(child, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) and len(child) > 1
            # a wrapper (the only child holding parameters, with children of its own) is
            # opened too, so that a wrapped model has the blocks of the model inside
            wrapper = (len(kids) == 1 and not any(True for _ in m.parameters(recurse=False))
                       and any(True for _ in child.children()) and not isinstance(
                           child, (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase)))
            if (container or wrapper) and not any(True for _ in child.parameters(recurse=False)):
                visit(f"{full}.", child)
            else:
                out.append(full)

    if any(True for _ in module.parameters(recurse=False)):
        out.append("")  # parameters of the model itself (a ViT's class token, say)
    visit("", module)
    return out


def _fan_in(t: torch.Tensor) -> int:
    return int(t.shape[1] * (t[0][0].numel() if t.dim() > 2 else 1)) if t.dim() >= 2 else int(t.numel())


def randomise_module(m: nn.Module, seed: int) -> None:
    """Re-initialise the parameters (and normalisation statistics) that ``m`` owns
    itself, as its ``reset_parameters`` would, from ``torch.Generator().manual_seed(
    seed)`` (in place: only ever call it on a copy)."""
    g = torch.Generator().manual_seed(int(seed))

    def fill(p: torch.Tensor, init) -> None:
        tmp = torch.empty(p.shape, dtype=p.dtype)
        init(tmp)
        with torch.no_grad():
            p.copy_(tmp.to(p.device))

    with torch.no_grad():
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
            # torch.nn.Conv2d.reset_parameters / nn.Linear.reset_parameters
            fill(m.weight, lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g))
            if m.bias is not None:
                fan = _fan_in(m.weight)
                bound = 1 / math.sqrt(fan) if fan > 0 else 0.0
                fill(m.bias, lambda t: nn.init.uniform_(t, -bound, bound, generator=g))
            return
        if isinstance(m, nn.modules.batchnorm._NormBase):
            m.reset_running_stats()
            if m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()
            return
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
            if getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
            return
        if isinstance(m, nn.Embedding):
            fill(m.weight, lambda t: nn.init.normal_(t, generator=g))
            return
        for p in m.parameters(recurse=False):  # anything else: Kaiming-uniform as a Linear
            if p.dim() >= 2:
                fill(p, lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g))
            else:
                bound = 1 / math.sqrt(max(1, p.numel()))
                fill(p, lambda t: nn.init.uniform_(t, -bound, bound, generator=g))


def randomise(module: nn.Module, units: Sequence[str], seed: int = 0) -> nn.Module:
    """Re-initialise every module inside each of ``units`` of ``module`` (in place: a
    copy), each with its own generator seeded ``seed + 1`` (see the module docstring);
    returns ``module``."""
    named = dict(module.named_modules())
    for unit in units:
        for sub in named[unit].modules():
            if _owns_state(sub):
                randomise_module(sub, seed + 1)
    return module


def _clear_hooks(module: nn.Module) -> None:
    """A copy made while another thread's (thread-filtered) hooks were registered
    carries copies of them: drop every hook of the copy."""
    for m in module.modules():
        for name, value in vars(m).items():
            if "hooks" in name and isinstance(value, dict):
                value.clear()


@dataclass(frozen=True)
class SanityCheck:
    """The cascade's result.  ``steps``: after step i, the units ``steps[i]`` and all
    before them are random (top first); ``spearman`` / ``ssim``: similarity of the
    randomised map to the original after each step; ``correlation``: Spearman after
    the full cascade; ``passed``: ``|correlation| < threshold``; ``model_hash``: the
    shared model's weights, the same before and after; ``heatmap`` /
    ``randomised_heatmap``: the original map and the one after the full cascade."""

    method: str
    layer: Optional[str]
    target: int
    target_label: str
    seed: int
    steps: Tuple[str, ...]
    spearman: Tuple[float, ...]
    ssim: Tuple[float, ...]
    correlation: float
    mean_correlation: float
    final_ssim: float
    passed: bool
    threshold: float
    model_hash: str
    heatmap: np.ndarray
    randomised_heatmap: np.ndarray
    forwards: int
    seconds: float

    @property
    def status(self) -> str:
        """"passed" or "failed"."""
        return "passed" if self.passed else "failed"

    @property
    def sentence(self) -> str:
        """The result for people."""
        if self.passed:
            return (f"Sanity check passed: with the model's weights replaced by random ones, "
                    f"the map changes (mean rank correlation {self.mean_correlation:.2f} with "
                    f"the original), so it depends on what the model learned.")
        return (f"Sanity check failed: with the model's weights replaced by random ones, the "
                f"map stays much the same (mean rank correlation {self.mean_correlation:.2f}), "
                f"so it shows the photo's structure more than what the model learned.")

    def as_dict(self) -> dict:
        return {"method": self.method, "layer": self.layer, "target": self.target,
                "target_label": self.target_label, "seed": self.seed, "steps": list(self.steps),
                "spearman": list(self.spearman), "ssim": list(self.ssim),
                "correlation": self.correlation, "mean_correlation": self.mean_correlation,
                "final_ssim": self.final_ssim,
                "passed": self.passed, "status": self.status, "threshold": self.threshold,
                "model_hash": self.model_hash, "sentence": self.sentence,
                "forwards": self.forwards, "seconds": round(self.seconds, 3)}


def _nan_to_zero(v: float) -> float:
    # a constant randomised map (no order at all) has nothing of the original left
    return 0.0 if v != v else float(v)


class ModelRandomisation:
    """The cascading randomisation test as a small callable (parameters here, one call
    on the model, input and method).

    ``layers``: None or "blocks" (every block, the full cascade), "modules" (every
    parameterised module, Quantus's granularity), an int n (the top n blocks) or a list
    of module names (randomised in that order, top first); ``seed``; ``threshold``."""

    def __init__(self, layers: Union[None, int, str, Sequence[str]] = None, seed: int = 0,
                 threshold: float = SANITY_THRESHOLD):
        if isinstance(layers, bool):
            raise InputError("layers must be 'blocks', 'modules', a number or a list of names.")
        self.layers, self.seed, self.threshold = layers, int(seed), float(threshold)

    def plan(self, module: nn.Module) -> List[str]:
        """The units of each cascade step, top (output) first."""
        lay = self.layers
        if lay is None or isinstance(lay, str):
            units = randomisation_units(module, lay or "blocks")[::-1]
        elif isinstance(lay, (int, np.integer)):
            units = randomisation_units(module, "blocks")[::-1]
            if not 1 <= int(lay) <= len(units):
                raise InputError(f"layers={lay}: this model has {len(units)} blocks to randomise "
                                 f"({', '.join(units[:4])}, ...).")
            units = units[:int(lay)]
        else:
            names = dict(module.named_modules())
            units = [str(n) for n in lay]
            bad = [n for n in units if n not in names or n == ""]
            if bad:
                raise InputError(f"The model has no module named {bad[0]!r} to randomise.")
            if not units:
                raise InputError("layers is empty: nothing to randomise.")
        return units

    def __call__(self, handle, x: torch.Tensor, method: str, layer: Optional[str], target: int,
                 contrast: Optional[int], params: dict, original: np.ndarray,
                 progress: Optional[Progress] = None) -> dict:
        from ..explain import explain
        from ..handle import ModelHandle, session
        from ..layers import list_layers

        with session(handle):
            before = parameter_hash(handle.module)
            module = private_copy(handle.module)
            steps = self.plan(handle.module)
            layers_table = tuple(list_layers(handle))
        _clear_hooks(module)
        twin = ModelHandle(module, info=handle.info)
        twin.memo("layers", lambda: layers_table)  # same architecture: no dry forward
        twin.memo("output_shape", lambda: handle.output_shape)
        total = len(steps)
        rhos, ssims, final = [], [], original
        ranks = rankdata(original)  # Spearman = Pearson on ranks: the original's once
        for i, unit in enumerate(steps):
            randomise(module, [unit], self.seed)
            e = explain(twin, x, method, layer=layer, target=target, contrast=contrast, **params)
            final = e.heatmap
            rhos.append(_nan_to_zero(_pearson(ranks, rankdata(final))))
            ssims.append(float(ssim(original, final)))
            report(progress, i + 1, total)
        with session(handle):
            after = parameter_hash(handle.module)
        if after != before:
            raise RuntimeError("The shared model's weights changed during the sanity check; "
                               "it must be left untouched (this is a bug or a concurrent writer).")
        return {"steps": tuple(steps), "spearman": tuple(rhos), "ssim": tuple(ssims),
                "final": final, "hash": before}


def _cost(handle, params) -> Cost:
    per = 1
    method = params.get("method")
    if handle is not None and isinstance(method, str):
        from ..explain import estimate_cost

        per = max(1, int(estimate_cost(handle, method).get("forwards", 1)))
    n = len(ModelRandomisation(params.get("layers")).plan(handle.module)) if handle is not None else 20
    return Cost(n * per + per, n + 1, note=f"one explanation per randomised block ({n} blocks)")


@measure("sanity_check", label="Sanity check (weight randomisation)", kind="randomisation",
         measures="Whether the map changes when the model's learned weights are replaced by "
                  "random ones, layer after layer from the output down; a map that stays the "
                  "same cannot be explaining what the model learned.",
         paper="https://arxiv.org/abs/1810.03292",
         citation="Adebayo et al. 2018, Sanity Checks for Saliency Maps",
         heavy=True, progress=True, higher_is_better=False, cost=_cost)
def sanity_check(model, image, method: Any = "gradcam", layers=None, seed: int = 0, *,
                 layer: Optional[str] = None, target=None, contrast=None,
                 threshold: float = SANITY_THRESHOLD, progress: Optional[Progress] = None,
                 **params) -> SanityCheck:
    """The cascading model-parameter randomisation test of ``method`` (a registry id,
    or an :class:`~interpret.Explanation`, whose method, layer, class and parameters are
    used) on ``image``: Spearman and SSIM between the original map and the map of a deep
    copy whose top blocks are re-initialised one after the other (``layers``: see
    :class:`ModelRandomisation`), and ``passed`` when the correlation after the full
    cascade is below ``threshold``.  Heavy: one explanation per step;
    ``progress(done, total)`` reports it, raising :class:`interpret.Cancelled` stops it.
    The shared model is never changed (a parameter hash checks it)."""
    from ..explain import Explanation, as_handle, explain, input_tensor

    t0 = time.perf_counter()
    handle = as_handle(model)
    handle.check_ready()
    x = input_tensor(handle, image)
    runner = ModelRandomisation(layers, seed, threshold)
    if isinstance(method, Explanation):
        if params or layer is not None or target is not None or contrast is not None:
            raise InputError("An explanation carries its own layer, class and parameters; "
                             "pass only the explanation.")
        e = method
    else:
        e = explain(handle, x, method, layer=layer, target=target, contrast=contrast, **params)
    goal = getattr(e, "explained", None)  # the whole target (a label, an output, a region)
    out = runner(handle, x, e.method, e.layer, goal if goal is not None else e.target,
                 None if goal is not None else e.contrast, dict(e.params), e.heatmap, progress)
    rho = float(out["spearman"][-1])
    mean = float(np.mean(out["spearman"]))
    return SanityCheck(
        method=e.method, layer=e.layer, target=e.target, target_label=e.target_label,
        seed=runner.seed, steps=out["steps"], spearman=out["spearman"], ssim=out["ssim"],
        correlation=rho, mean_correlation=mean, final_ssim=float(out["ssim"][-1]),
        passed=mean < runner.threshold,
        threshold=runner.threshold, model_hash=out["hash"], heatmap=e.heatmap,
        randomised_heatmap=out["final"], forwards=len(out["steps"]),
        seconds=time.perf_counter() - t0)
