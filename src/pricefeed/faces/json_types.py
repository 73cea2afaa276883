"""How error messages name the JSON type a client sent instead of the one expected."""

from __future__ import annotations

import reprlib

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 60, 60


def json_type(value: object) -> str:
    """``an array``, ``a string``, ``null``, …: the JSON type of a decoded value, for an error message."""
    return {list: "an array", dict: "an object", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def describe(value: object) -> str:
    """A short, bounded rendering of a client's value for an error message.

    Never a plain ``repr``: a value nested a thousand deep would recurse past
    Python's limit, and a huge one would make a huge error.
    """
    if isinstance(value, str):
        return _SHORT.repr(value)
    if isinstance(value, list | dict):
        return f"{json_type(value)} {_SHORT.repr(value)}"
    return _SHORT.repr(value)
