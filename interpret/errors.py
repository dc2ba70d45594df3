"""The one exception type raised for bad input anywhere in :mod:`interpret`."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a person: an image, a model file, a layer name, a target.

    The message is meant to be shown as it is, in the app or on the command line,
    so it says what was wrong and, where it can, what to do instead.
    """
