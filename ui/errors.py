"""Showing errors where they happen, never as a traceback.

``with guard("the layer picker"):`` around a section of a page: an
:class:`interpret.InputError` becomes a red message at that spot (its text is written
for people); anything else is logged with its traceback on the server and shown as a
short apology, and the rest of the page still runs.  Streamlit's own control-flow
exceptions (``st.stop``, reruns) derive from ``BaseException`` and pass through.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator, Optional

import streamlit as st

import interpret
from interpret import words

log = logging.getLogger("interpret.app")


def show_input_error(message: str, where=None) -> None:
    """An InputError's message: written for people, but it may quote a visitor's file
    name, label or layer name, so it is text (interpret.words.text), not Markdown."""
    (where or st).error(words.text(message), icon=":material/error:")


def show_unexpected(what: str, where=None) -> None:
    (where or st).error(
        f"Something went wrong in {words.text(what)}. The details were logged on the server; "
        "try another setting, or reload the page.", icon=":material/sentiment_dissatisfied:")
    st.toast(f"Unexpected error in {words.text(what)}", icon=":material/error:")


@contextmanager
def guard(what: str, where=None) -> Iterator[None]:
    """Catch and show errors of one section of a page (see module docstring)."""
    try:
        yield
    except interpret.InputError as exc:
        show_input_error(str(exc), where)
    except interpret.Cancelled as exc:
        why = str(exc).strip()
        (where or st).info(words.text(why[0].upper() + why[1:] + ".") if why else "Stopped.",
                           icon=":material/stop_circle:")
    except Exception:  # noqa: BLE001 - the point: log it, show a short message, go on
        log.exception("unexpected error in %s", what)
        show_unexpected(what, where)


def error_message(exc: BaseException, what: str) -> Optional[str]:
    """The text to show for an exception caught by hand (InputError: its message)."""
    if isinstance(exc, interpret.InputError):
        return str(exc)
    log.error("unexpected error in %s", what, exc_info=exc)
    return (f"Something went wrong in {what}. The details were logged on the server; "
            "try another setting, or reload the page.")
