"""Objectives for activation maximization, with algebra (after Lucent's ``objectives``).

An :class:`Objective` maps the activations of one forward pass to a scalar **to be
maximised**.  Objectives compose::

    from interpret.features import channel, diversity
    obj = channel("_blocks.10", 7) + 0.5 * diversity("_blocks.10")
    obj = channel("_blocks.10", 7) - channel("_blocks.10", 3)   # 7 but not 3

(Lucent's objectives are losses, to be minimised, so its diversity term is
*subtracted*; here everything is a reward, so diversity is *added*.)

Each primitive also declares the layers it reads and checks itself against a model
(unknown layer, channel or class out of range) before any optimisation runs.
"""

from __future__ import annotations

import numbers
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..handle import ModelHandle
from ._common import as_maps, map_shape, tap_for

__all__ = ["Objective", "Activations", "channel", "unit", "layer_objective",
           "class_logit", "diversity"]


class Activations:
    """What an objective reads: ``acts[layer]`` is the layer's output as B x C x h x w
    maps (token outputs on their grid, vectors as 1 x 1 maps); ``acts.logits`` B x K."""

    def __init__(self, handle: ModelHandle, tensors: Dict[str, torch.Tensor],
                 logits: Optional[torch.Tensor]):
        self._handle = handle
        self._tensors = tensors
        self._logits = logits
        self._maps: Dict[str, torch.Tensor] = {}

    def __getitem__(self, layer: str) -> torch.Tensor:
        if layer not in self._maps:
            if layer not in self._tensors:
                raise InputError(f"Layer '{layer}' was not recorded in this forward pass.")
            self._maps[layer] = as_maps(self._handle, self._tensors[layer], f"Layer '{layer}'")
        return self._maps[layer]

    @property
    def logits(self) -> torch.Tensor:
        if self._logits is None:
            raise InputError("The class scores were not computed in this forward pass.")
        return self._logits

    @property
    def batch(self) -> int:
        if self._logits is not None:
            return int(self._logits.shape[0])
        return int(next(iter(self._tensors.values())).shape[0])


Check = Callable[[ModelHandle, int], None]


class Objective:
    """A scalar to maximise, computed from :class:`Activations`.

    ``layers``: the layers it reads; ``logits``: whether it reads the class scores;
    ``checks``: callables ``(handle, batch)`` raising :class:`InputError` for a model
    it cannot apply to; ``name``: a readable description.  Supports ``+``, ``-``,
    unary ``-``, and ``*`` / ``/`` by a number (``sum()`` of objectives works too)."""

    def __init__(self, fn: Callable[[Activations], torch.Tensor], name: str,
                 layers: Sequence[str] = (), logits: bool = False,
                 checks: Sequence[Check] = ()):
        self.fn = fn
        self.name = name
        self.layers: Tuple[str, ...] = tuple(dict.fromkeys(layers))
        self.logits = bool(logits)
        self.checks: Tuple[Check, ...] = tuple(checks)

    def __call__(self, acts: Activations) -> torch.Tensor:
        return self.fn(acts)

    def check(self, handle: ModelHandle, batch: int = 1) -> None:
        """Raise :class:`InputError` if this objective cannot run on ``handle``."""
        for layer in self.layers:
            tap_for(handle, layer)
        for c in self.checks:
            c(handle, batch)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    # -- algebra -------------------------------------------------------------------
    def _combine(self, other: "Objective", fn, name: str) -> "Objective":
        return Objective(fn, name, self.layers + other.layers, self.logits or other.logits,
                         self.checks + other.checks)

    def __add__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            if other == 0:
                return self
            c = float(other)
            return Objective(lambda a: self.fn(a) + c, f"{self.name} + {c:g}", self.layers,
                             self.logits, self.checks)
        if not isinstance(other, Objective):
            return NotImplemented
        return self._combine(other, lambda a: self.fn(a) + other.fn(a), f"{self.name} + {other.name}")

    def __radd__(self, other):
        return self.__add__(other)  # addition commutes; also makes sum([...]) work

    def __sub__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return self.__add__(-float(other))
        if not isinstance(other, Objective):
            return NotImplemented
        return self._combine(other, lambda a: self.fn(a) - other.fn(a),
                             f"{self.name} - {_paren(other.name)}")

    def __rsub__(self, other):
        return (-self).__add__(other)

    def __neg__(self):
        return Objective(lambda a: -self.fn(a), f"-{_paren(self.name)}", self.layers,
                         self.logits, self.checks)

    def __mul__(self, other):
        if not isinstance(other, numbers.Real) or isinstance(other, bool):
            return NotImplemented
        c = float(other)
        return Objective(lambda a: c * self.fn(a), f"{c:g} * {_paren(self.name)}", self.layers,
                         self.logits, self.checks)

    def __rmul__(self, other):
        return self.__mul__(other)

    def __truediv__(self, other):
        if not isinstance(other, numbers.Real) or isinstance(other, bool):
            return NotImplemented
        if other == 0:
            raise InputError("Cannot divide an objective by zero.")
        return self.__mul__(1.0 / float(other))


def _paren(name: str) -> str:
    return f"({name})" if (" + " in name or " - " in name) else name


# ----------------------------------------------------------------------------------
# checks shared by the primitives


def _check_channel(layer: str, c: int) -> Check:
    def check(handle: ModelHandle, batch: int) -> None:
        n, _ = map_shape(handle, layer)
        if not 0 <= c < n:
            raise InputError(
                f"Channel {c} is out of range: layer '{layer}' has {n} channels (0-{n - 1})."
            )
    return check


def _check_batch_index(b: Optional[int]) -> Check:
    def check(handle: ModelHandle, batch: int) -> None:
        if b is not None and not 0 <= b < batch:
            raise InputError(
                f"Batch index {b} is out of range: the optimisation has {batch} image"
                f"{'s' if batch != 1 else ''} (0-{batch - 1})."
            )
    return check


def _as_index(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be a whole number; got {value!r}.")
    return int(value)


def _select(t: torch.Tensor, b: Optional[int]) -> torch.Tensor:
    return t if b is None else t[b:b + 1]


# ----------------------------------------------------------------------------------
# primitives


def channel(layer: str, c: int, batch: Optional[int] = None) -> Objective:
    """The mean activation of channel ``c`` of ``layer`` over all positions (Olah et
    al. 2017, "channel" objective), averaged over the images of the batch, or for the
    image ``batch`` only."""
    c = _as_index("A channel", c)
    b = None if batch is None else _as_index("A batch index", batch)

    def fn(acts: Activations) -> torch.Tensor:
        return _select(acts[layer], b)[:, c].mean()

    tag = "" if b is None else f", batch={b}"
    return Objective(fn, f"channel('{layer}', {c}{tag})", [layer],
                     checks=[_check_channel(layer, c), _check_batch_index(b)])


def unit(layer: str, c: int, y: Optional[int] = None, x: Optional[int] = None,
         batch: Optional[int] = None) -> Objective:
    """One neuron: channel ``c`` of ``layer`` at map position (``y``, ``x``); the centre
    of the map when not given (the map size depends on the image size)."""
    c = _as_index("A channel", c)
    y = None if y is None else _as_index("A row", y)
    x = None if x is None else _as_index("A column", x)
    b = None if batch is None else _as_index("A batch index", batch)

    def fn(acts: Activations) -> torch.Tensor:
        m = _select(acts[layer], b)
        h, w = m.shape[-2:]
        yy = h // 2 if y is None else y
        xx = w // 2 if x is None else x
        if not (0 <= yy < h and 0 <= xx < w):
            raise InputError(
                f"Position ({yy}, {xx}) is outside the {h}x{w} map of layer '{layer}' at this "
                f"image size (rows 0-{h - 1}, columns 0-{w - 1})."
            )
        return m[:, c, yy, xx].mean()

    pos = "centre" if y is None and x is None else f"{y}, {x}"
    return Objective(fn, f"unit('{layer}', {c}, {pos})", [layer],
                     checks=[_check_channel(layer, c), _check_batch_index(b)])


def layer_objective(layer: str, batch: Optional[int] = None) -> Objective:
    """The whole layer: the mean squared activation over channels and positions
    (DeepDream's objective, Mordvintsev et al. 2015)."""
    b = None if batch is None else _as_index("A batch index", batch)

    def fn(acts: Activations) -> torch.Tensor:
        return _select(acts[layer], b).pow(2).mean()

    return Objective(fn, f"layer('{layer}')", [layer], checks=[_check_batch_index(b)])


def class_logit(index: int, batch: Optional[int] = None) -> Objective:
    """The logit (pre-softmax score) of class ``index``.  Maximising the logit rather
    than the probability avoids making the image merely unlike every other class
    (Simonyan et al. 2014, section 2)."""
    index = _as_index("A class index", index)
    b = None if batch is None else _as_index("A batch index", batch)

    def check(handle: ModelHandle, batch_n: int) -> None:
        n = handle.num_classes
        if not 0 <= index < n:
            raise InputError(f"Class index {index} is out of range: this model has {n} classes (0-{n - 1}).")

    def fn(acts: Activations) -> torch.Tensor:
        return _select(acts.logits, b)[:, index].mean()

    return Objective(fn, f"class_logit({index})", logits=True,
                     checks=[check, _check_batch_index(b)])


def diversity(layer: str) -> Objective:
    """How different the images of a batch are at ``layer``: minus the mean pairwise
    cosine similarity of their Gram matrices (style, Gatys et al. 2015), as in Olah et
    al. 2017, "Diversity" (Lucid's and Lucent's ``diversity``, with the sign flipped
    because objectives here are maximised).  Zero for a batch of one; at most 0."""

    def fn(acts: Activations) -> torch.Tensor:
        m = acts[layer]
        n = m.shape[0]
        if n < 2:
            return m.sum() * 0.0
        flat = m.reshape(n, m.shape[1], -1)
        grams = torch.bmm(flat, flat.transpose(1, 2)).reshape(n, -1)
        grams = F.normalize(grams, p=2, dim=1)
        sim = grams @ grams.t()
        return -(sim.sum() - sim.diagonal().sum()) / n

    return Objective(fn, f"diversity('{layer}')", [layer])
