"""Strict JSON field checks for bundle contracts: each refusal is a `BundleError` of one sentence
naming the field and what was expected (JSON true is not a number, NaN is not a number)."""

from __future__ import annotations

import math
from typing import Any


class BundleError(ValueError):
    """A bundle that cannot be trusted: missing file, malformed contract, or hash mismatch."""


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def coerce(value: Any, kind: Any, nullable: bool, what: str) -> Any:
    if value is None:
        if nullable:
            return None
        raise BundleError(f"{what} is null; expected {describe(kind)}")
    if isinstance(kind, tuple):
        if not isinstance(value, list):
            raise BundleError(f"{what} is {value!r}; expected {describe(kind)}")
        return tuple(coerce(v, kind[0], False, f"{what}[{i}]") for i, v in enumerate(value))
    if not is_kind(value, kind):
        raise BundleError(f"{what} is {value!r}; expected {describe(kind)}")
    return float(value) if kind is float else value


def is_kind(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # JSON true is not a number
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def describe(kind: Any) -> str:
    if isinstance(kind, tuple):
        return f"a list of {_TYPE_WORDS[kind[0]].split(' ', 1)[1]}s"
    return _TYPE_WORDS[kind]
