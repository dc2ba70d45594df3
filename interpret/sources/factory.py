"""The team's own architecture code: a factory function that builds the module, named
``"package.module:function"`` (in a model folder's ``models.toml``, ``factory = ...``
with optional ``kwargs``) or given as a callable from Python
(``load_model("w.safetensors", arch=build_net)``).  The weights are then loaded with the
same safe loader as every checkpoint.

Importing a factory runs the operator's code: that is the point, and it is the
operator's configuration.  Nothing a visitor uploads is ever imported: the upload form
only offers the architectures of torchvision and timm, and a factory string is never
taken from a request.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable, Dict, Optional

from torch import nn

from ..errors import InputError

#: ``package.module:function`` (the function may be dotted: ``module:Class.build``)
SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
RESERVED = ("timm", "torchvision", "ultralytics")  # ultralytics:yolov8n.yaml is a YAML, not a function


def is_spec(arch: str) -> bool:
    """Whether ``arch`` names a factory (``pkg.mod:fn``) rather than a library's
    architecture (``resnet18``, ``torchvision:resnet18``, ``timm:convnext_tiny``,
    ``ultralytics:yolov8n.yaml``)."""
    arch = arch.strip()
    return bool(SPEC.match(arch)) and arch.split(":", 1)[0] not in RESERVED


def resolve(spec: str) -> Callable[..., nn.Module]:
    """The function a ``"package.module:function"`` string names (importing the module)."""
    spec = spec.strip()
    if not SPEC.match(spec):
        raise InputError(f"A factory must be written 'package.module:function', not {spec!r}.")
    mod_name, attr = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise InputError(
            f"Cannot import the factory module '{mod_name}' ({exc}); install the package or "
            "add its folder to PYTHONPATH on the server.") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError(f"Module '{mod_name}' has no '{attr}' (factory {spec!r}).")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InputError(f"The factory {spec!r} is not callable.")
    return obj


def label_of(fn: Callable) -> str:
    mod = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", getattr(fn, "__name__", type(fn).__name__))
    return f"{mod}:{qual}" if mod else str(qual)


def build(fn: Callable[..., nn.Module], kwargs: Optional[Dict[str, Any]] = None,
          label: Optional[str] = None) -> nn.Module:
    """``fn(**kwargs)``, checked to be an ``nn.Module`` (a factory's exception becomes
    an InputError naming it)."""
    label = label or label_of(fn)
    try:
        module = fn(**dict(kwargs or {}))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"The factory {label} failed: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    if not isinstance(module, nn.Module):
        raise InputError(f"The factory {label} returned a {type(module).__name__}, not an nn.Module.")
    return module
