"""Optional dependencies: import them when a feature needs them, with a message that
says which extra to install (``pip install "interpret-dashboard[<extra>]"``)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Tuple

from .errors import InputError


def require(what: str, extra: str, *modules: str) -> Tuple[ModuleType, ...]:
    """The ``modules`` (import names), imported; an :class:`InputError` saying that
    ``what`` needs them and how to install them when one is missing."""
    try:
        return tuple(importlib.import_module(m) for m in modules)
    except ImportError:
        names = " and ".join(modules)
        raise InputError(
            f"{what} need{'s' if not what.endswith('s') else ''} the {names} "
            f"package{'s' if len(modules) > 1 else ''}: pip install \"interpret-dashboard[{extra}]\"."
        ) from None
