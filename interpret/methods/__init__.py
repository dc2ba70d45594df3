"""Attribution methods and their registry: one module per method (or per small family
sharing a template), each registering itself with :func:`registry.method`."""

from ..errors import Cancelled
from .common import Context, Result
from .registry import FAMILIES, SPEEDS, Cost, Family, MethodSpec, Param, get_method, methods

__all__ = ["Cancelled", "Context", "Result", "FAMILIES", "SPEEDS", "Cost", "Family",
           "MethodSpec", "Param", "get_method", "methods"]
