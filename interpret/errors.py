"""The exceptions of :mod:`interpret`, and its one progress convention.

Every long computation takes ``progress(done, total)``: it is called as the work
advances, and raising :class:`Cancelled` in it stops the work cleanly (the model is
left as it was).  :func:`report` is how the backend calls it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

#: ``progress(done, total)``; raise :class:`Cancelled` in it to stop.
Progress = Callable[[int, int], Any]


class InputError(ValueError):
    """Bad input from a person: an image, a model file, a layer name, a target.

    The message is meant to be shown as it is, in the app or on the command line,
    so it says what was wrong and, where it can, what to do instead.
    """


class Cancelled(Exception):
    """Raise this from a progress callback to stop a long computation."""


def report(progress: Optional[Progress], done: int, total: int) -> None:
    """Tell ``progress`` (if any) that ``done`` of ``total`` units are finished."""
    if progress is not None:
        progress(int(done), int(total))
