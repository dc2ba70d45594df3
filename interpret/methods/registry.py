"""The method registry: every method is declared once, with everything the app, the
CLI, :func:`interpret.explain` and the test matrix need to know about it.

A method is a function ``fn(ctx: Context) -> Result`` registered with
``@method(...)`` in a module of this package; :func:`methods` imports every module
here, so adding a method is adding one file (and its line in the README's table).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..errors import InputError


@dataclass(frozen=True)
class Family:
    """A group of methods: ``label`` (long, for help texts) and ``short`` (for a pill)."""

    id: str
    label: str
    short: str


FAMILIES: Dict[str, Family] = {f.id: f for f in (
    Family("cam", "Class activation maps (gradient)", "CAMs"),
    Family("activation", "Activations", "Activations"),
    Family("cam_free", "Class activation maps (gradient-free)", "Gradient-free CAMs"),
    Family("gradient", "Input gradients", "Input gradients"),
    Family("path", "Path and perturbation", "Path & perturbation"),
    Family("transformer", "Vision-transformer methods (attention)", "Transformers"),
)}

#: speed classes, with the sentence a person reads
SPEEDS = {
    "instant": "reuses the single recorded forward/backward pass",
    "fast": "a few forward/backward passes",
    "slow": "many forward passes (seconds to minutes on a CPU)",
}

#: what a method reads from the recorded pass (see :mod:`interpret.capture`)
USES = {
    "layer": "the layer's activation and gradient (the capture, backward to the layer only)",
    "input": "the input gradient (the capture, backward to the input)",
    "maps": "the layer's activation (a forward alone)",
    "own": "passes of its own",
}


@dataclass(frozen=True)
class Cost:
    """What a method will cost before it runs: ``forwards`` (images through the
    model), ``batches`` (passes), and a ``note`` for people."""

    forwards: int
    batches: int
    note: str = ""
    channels: Optional[int] = None

    def as_dict(self) -> Dict[str, Any]:
        d = {"forwards": self.forwards, "batches": self.batches}
        if self.note:
            d["note"] = self.note
        if self.channels is not None:
            d["channels"] = self.channels
        return d


def one_pass(handle, layer, params) -> Cost:
    return Cost(1, 1)


@dataclass(frozen=True)
class Param:
    """A method parameter: ``kind`` is 'int', 'float', 'choice' or 'bool'."""

    name: str
    label: str
    kind: str
    default: Any
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Tuple[Any, ...] = ()
    help: str = ""

    def validate(self, value):
        if self.kind == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
            if isinstance(value, bool):
                return value
            raise InputError(f"Parameter '{self.name}' must be true or false, not {value!r}.")
        if self.kind == "choice":
            if value not in self.choices:
                raise InputError(
                    f"Parameter '{self.name}' must be one of {', '.join(map(str, self.choices))}; "
                    f"got {value!r}."
                )
            return value
        try:
            num = int(value) if self.kind == "int" else float(value)
            if self.kind == "int" and float(value) != num:
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(f"Parameter '{self.name}' must be {'an integer' if self.kind == 'int' else 'a number'}; got {value!r}.") from None
        if (self.min is not None and num < self.min) or (self.max is not None and num > self.max):
            raise InputError(
                f"Parameter '{self.name}' = {num} is out of range [{self.min}, {self.max}]."
            )
        return num


@dataclass(frozen=True)
class MethodSpec:
    """Everything known about one method.

    * ``name``, ``label``, ``family`` (a key of :data:`FAMILIES`), ``paper``, ``description``;
    * ``params``: its :class:`Param` s, with defaults and ranges; ``preview``: smaller
      settings for a quick look (and the test matrix);
    * ``speed``: 'instant', 'fast' or 'slow' (:data:`SPEEDS`); ``cost``: a function
      ``(handle, layer, params) -> Cost`` estimating the work before it runs;
    * ``uses``: what it reads from the recorded pass (:data:`USES`); methods using
      "layer", "input" or "maps" share one recorded pass per image and layer;
    * ``needs_layer``: it explains a layer; ``accepts_layer``: it takes one without
      needing it (saliency shares the CAMs' capture when given their layer);
    * ``contrastive``: it depends on the class (and so takes a contrast class);
    * ``progress``: it reports progress and can be cancelled;
    * ``exclusive``: it installs hooks every thread would see, so it runs alone;
    * ``heatmap``: how its raw attribution is drawn (:data:`interpret.scaling.HEATMAP_RULES`);
    * ``applies``: ``(handle) -> None`` when it can run on a model, or the reason it cannot;
    * ``order``: its place within the family in lists (lower first).
    """

    name: str
    label: str
    family: str
    needs_layer: bool
    params: Tuple[Param, ...]
    speed: str
    paper: str
    description: str = ""
    contrastive: bool = True
    exclusive: bool = False
    progress: bool = False
    uses: str = "own"
    accepts_layer: bool = False
    heatmap: str = "cam"
    preview: Mapping[str, Any] = field(default_factory=dict)
    order: int = 50
    cost: Callable[[Any, Optional[str], Dict[str, Any]], Cost] = field(default=one_pass, repr=False, compare=False)
    applies: Optional[Callable[[Any], Optional[str]]] = field(default=None, repr=False, compare=False)
    fn: Optional[Callable] = field(default=None, repr=False, compare=False)

    @property
    def family_label(self) -> str:
        return FAMILIES[self.family].label

    @property
    def family_short(self) -> str:
        return FAMILIES[self.family].short

    @property
    def shares_capture(self) -> bool:
        """Whether it reads the shared recorded pass (no passes of its own)."""
        return self.uses in ("layer", "input", "maps")

    def unavailable(self, handle) -> Optional[str]:
        """None when the method can run on ``handle``'s model, else why not."""
        return self.applies(handle) if self.applies is not None else None

    def defaults(self) -> Dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve_params(self, given: Dict[str, Any]) -> Dict[str, Any]:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise InputError(
                f"Method '{self.name}' has no parameter {', '.join(map(repr, unknown))} "
                f"(its parameters: {allowed})."
            )
        out = self.defaults()
        for k, v in given.items():
            out[k] = known[k].validate(v)
        return out

    def estimate(self, handle, layer: Optional[str], params: Dict[str, Any]) -> Cost:
        return self.cost(handle, layer, self.resolve_params(params))


_REGISTRY: Dict[str, MethodSpec] = {}
_NOT_METHODS = {"registry", "common"}


def register(spec: MethodSpec) -> MethodSpec:
    from ..scaling import HEATMAP_RULES

    if spec.name in _REGISTRY:
        raise ValueError(f"method {spec.name} registered twice")
    if spec.family not in FAMILIES or spec.speed not in SPEEDS or spec.uses not in USES:
        raise ValueError(f"bad family/speed/uses for {spec.name}")
    if spec.heatmap not in HEATMAP_RULES:
        raise ValueError(f"bad heatmap rule for {spec.name}")
    spec.resolve_params(dict(spec.preview))  # the preview settings must be valid
    _REGISTRY[spec.name] = spec
    return spec


def method(name: str, **meta):
    """Decorator: ``@method("gradcam", label=..., family=..., ...)`` (fields of
    :class:`MethodSpec`)."""

    def deco(fn):
        register(MethodSpec(name=name, fn=fn, **meta))
        return fn

    return deco


_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    pkg = importlib.import_module(__name__.rsplit(".", 1)[0])  # this package

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name not in _NOT_METHODS and not info.name.startswith("_"):
            importlib.import_module(f"{pkg.__name__}.{info.name}")
    _loaded = True


def methods(handle=None) -> List[MethodSpec]:
    """Every registered method, by family then registration order; with ``handle``,
    only those that can run on that model."""
    _load_all()
    order = {f: i for i, f in enumerate(FAMILIES)}
    specs = sorted(_REGISTRY.values(), key=lambda s: (order[s.family], s.order))
    if handle is not None:
        specs = [s for s in specs if s.unavailable(handle) is None]
    return specs


def get_method(name: str) -> MethodSpec:
    _load_all()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(
            f"Unknown method '{name}'.{hint} Available: {', '.join(_REGISTRY)}."
        )
    return _REGISTRY[name]
