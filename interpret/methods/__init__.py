"""Attribution methods and their registry."""

from .common import Cancelled, Context, Result
from .registry import FAMILIES, MethodSpec, Param, get_method, methods

__all__ = ["Cancelled", "Context", "Result", "FAMILIES", "MethodSpec", "Param", "get_method", "methods"]
