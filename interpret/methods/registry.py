"""The method registry: every method is declared once, with the metadata the app,
the CLI and the test matrix read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import InputError

FAMILIES = {
    "cam": "Class activation maps (gradient)",
    "cam_free": "Class activation maps (gradient-free)",
    "gradient": "Input gradients",
    "path": "Path and perturbation",
    "activation": "Activations",
}

COSTS = {
    "instant": "reuses the single captured forward/backward pass",
    "fast": "a few forward/backward passes",
    "slow": "many forward passes (seconds to minutes on a CPU)",
}


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
    """Metadata of one method.  ``cost`` is 'instant', 'fast' or 'slow'."""

    name: str
    label: str
    family: str
    needs_layer: bool
    params: Tuple[Param, ...]
    cost: str
    paper: str
    description: str = ""
    contrastive: bool = True
    exclusive: bool = False  # installs hooks every thread would see: run alone
    fn: Optional[Callable] = field(default=None, repr=False, compare=False)

    @property
    def family_label(self) -> str:
        return FAMILIES[self.family]

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


_REGISTRY: Dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"method {spec.name} registered twice")
    if spec.family not in FAMILIES or spec.cost not in COSTS:
        raise ValueError(f"bad family/cost for {spec.name}")
    _REGISTRY[spec.name] = spec
    return spec


def method(name: str, **meta):
    """Decorator: ``@method("gradcam", label=..., family=..., ...)``."""

    def deco(fn):
        register(MethodSpec(name=name, fn=fn, **meta))
        return fn

    return deco


def methods() -> List[MethodSpec]:
    """Every registered method, in a stable display order."""
    from . import cam, gradients, captum_methods  # noqa: F401  (registration)

    return list(_REGISTRY.values())


def get_method(name: str) -> MethodSpec:
    methods()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(
            f"Unknown method '{name}'.{hint} Available: {', '.join(_REGISTRY)}."
        )
    return _REGISTRY[name]
