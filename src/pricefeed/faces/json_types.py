"""How error messages name the JSON type a client sent instead of the one expected."""

from __future__ import annotations


def json_type(value: object) -> str:
    """``an array``, ``a string``, ``null``, …: the JSON type of a decoded value, for an error message."""
    return {list: "an array", dict: "an object", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)
