"""The parameters of pythd's methods, read as pyth-agent reads them, with errors that say what was wrong.

Numbers follow the agent (``serde_this_or_that`` 0.5): an integer, a numeric
string, a float rounded half away from zero, and ``null`` or ``""`` as 0. A
client's value is quoted in an error only as far as it is a scalar, so a value
nested a thousand deep costs nothing to describe.
"""

from __future__ import annotations

import math

import orjson

from ..accounts import parse_key
from ..model import Status
from .json_types import json_type

_SHOWN_CHARS = 60
_STATUSES = frozenset(s.value for s in Status)


class ParamError(ValueError):
    """A parameter is missing or malformed; the message is the error's text."""


def shown(value: object) -> str:
    """A client's value for an error message: a scalar in JSON (a long string cut short), a container by its type."""
    if isinstance(value, str):
        cut = value[:_SHOWN_CHARS]
        return orjson.dumps(cut).decode() + ("..." if len(value) > len(cut) else "")
    if value is None or isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return json_type(value)


def named(method: str, params: object, names: tuple[str, ...]) -> dict[str, object]:
    """Named params as a dict, from an object or (in field order) an array; extra keys are ignored."""
    if params is None or params == []:
        raise ParamError(f"invalid params: {method} needs {', '.join(names)}")
    if isinstance(params, list):
        if len(params) > len(names):
            raise ParamError(f"invalid params: {method} takes {len(names)} ({', '.join(names)}), got {len(params)}")
        params = dict(zip(names, params, strict=False))
    if not isinstance(params, dict):
        raise ParamError(f"invalid params: must be an object or an array, got {json_type(params)}")
    missing = [name for name in names if name not in params]
    if missing:
        raise ParamError(f"invalid params: missing {', '.join(repr(n) for n in missing)}")
    return params


def account(value: object) -> str:
    """A base58 account key."""
    try:
        parse_key(value)
    except ValueError as exc:
        raise ParamError(f"invalid params: {exc}") from None
    assert isinstance(value, str)
    return value


def integer(name: str, value: object, low: int, high: int) -> int:
    """A mantissa (``price`` or ``conf``) as pyth-agent takes it."""
    number: int | None = None
    if value is None or value == "":
        number = 0
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float):
        number = _rounded(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            try:
                number = _rounded(float(value))
            except ValueError:
                number = None
    if number is None:
        raise ParamError(f"invalid params: {name} must be an integer (the value scaled by 10^price_exponent), "
                         f"got {shown(value)}")
    if not low <= number <= high:
        raise ParamError(f"invalid params: {name} {number} is out of range [{low}, {high}]")
    return number


def status(value: object) -> Status:
    if isinstance(value, str) and value in _STATUSES:
        return Status(value)
    raise ParamError(f"invalid params: status {shown(value)}: expected one of {', '.join(s.value for s in Status)}")


def _rounded(value: float) -> int:
    """Rust's ``f64::round``: half away from zero (Python's ``round`` goes to even); ``ValueError`` if not finite."""
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    whole = math.floor(value)
    fraction = value - whole  # exact for every float
    return int(whole) + (1 if fraction > 0.5 or (fraction == 0.5 and value > 0) else 0)
