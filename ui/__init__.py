"""Streamlit drawing helpers shared by app.py and pages/ (no maths: see interpret/)."""

from .errors import guard
from .page import PageContext, class_format, class_labels, finish, plain, setup

__all__ = ["guard", "PageContext", "class_format", "class_labels", "finish", "plain", "setup"]
