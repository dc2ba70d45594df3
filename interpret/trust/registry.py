"""The trust measures' registry: every measure declared once, with what it measures,
its paper, what it costs in forwards and whether it reports progress, modelled on the
methods' registry (:mod:`interpret.methods.registry`).

The CLI (``python -m interpret trust``), the Trust panel and the report read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ..errors import InputError
from ..methods.registry import Cost

__all__ = ["MeasureSpec", "measure", "measures", "get_measure", "Cost"]

#: what a measure looks at, for people
KINDS = {
    "faithfulness": "does the map point at what the model actually uses? (perturbation tests)",
    "randomisation": "does the map depend on what the model learned? (weight randomisation)",
    "agreement": "do several methods tell the same story?",
    "localisation": "does the map point at a region a person marked?",
}


@dataclass(frozen=True)
class MeasureSpec:
    """One measure: ``name`` (id), ``label``, ``kind`` (a key of :data:`KINDS`),
    ``measures`` (one sentence for people), ``paper`` (URL) and ``citation``;
    ``cost(handle, params) -> Cost`` in images through the model before it runs;
    ``heavy``: it goes through the server's compute gate; ``progress``: it takes
    ``progress(done, total)`` and stops on :class:`interpret.Cancelled`;
    ``higher_is_better``: the direction of its headline number."""

    name: str
    label: str
    kind: str
    measures: str
    paper: str
    citation: str
    heavy: bool = False
    progress: bool = False
    higher_is_better: bool = True
    cost: Callable[[Any, Dict[str, Any]], Cost] = field(default=lambda handle, params: Cost(0, 0),
                                                        repr=False, compare=False)
    fn: Optional[Callable] = field(default=None, repr=False, compare=False)

    def estimate(self, handle=None, **params) -> Cost:
        """What the measure will cost with ``params`` (its keyword arguments)."""
        return self.cost(handle, params)


_REGISTRY: Dict[str, MeasureSpec] = {}


def measure(name: str, **meta):
    """Decorator: register the public function of a measure with its metadata."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"measure {name} registered twice")
        if meta.get("kind") not in KINDS:
            raise ValueError(f"bad kind for measure {name}")
        _REGISTRY[name] = MeasureSpec(name=name, fn=fn, **meta)
        return fn

    return deco


def _load_all() -> None:
    from . import agreement, faithfulness, localization, road, sanity  # noqa: F401  (they register)


def measures() -> List[MeasureSpec]:
    """Every trust measure, in the order the Trust panel shows them."""
    _load_all()
    order = list(KINDS)
    return sorted(_REGISTRY.values(), key=lambda s: order.index(s.kind))


def get_measure(name: str) -> MeasureSpec:
    _load_all()
    if name not in _REGISTRY:
        raise InputError(f"Unknown trust measure '{name}'. Available: {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]
