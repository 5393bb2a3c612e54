"""argparse pieces shared by the commands: one-line errors, checked number types, and flags
derived from a dataclass's fields and attribute docstrings.

Torch-free: importing this module imports nothing from agents (see kinema/cli.py).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import decimal
import functools
import inspect
import sys
import textwrap
import types
import typing
from collections.abc import Callable
from typing import Any


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: 'kinema train: error: argument --steps: ...'."""

    def error(self, message: str) -> typing.NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _parse(text: str, cast: Callable[[str], Any], noun: str, expected: str) -> Any:
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}; expected {expected}") from None


def _exact_int(text: str) -> int:
    """int(text), or the exact integer a decimal or scientific form names: '1e6' -> 1000000
    (read as a decimal, never through a float, so '1e23' is 10^23 exactly); '2.5' is refused."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        d = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        raise ValueError(text) from None
    if not d.is_finite() or d != d.to_integral_value() or abs(d.adjusted()) > 100:
        raise ValueError(text)
    return int(d)


def integer(text: str) -> int:
    """An integer flag's value: '42', '-1' or an integral '1e6'."""
    return int(_parse(text, _exact_int, "an integer", "an integer"))


def positive_int(text: str) -> int:
    v = _parse(text, _exact_int, "an integer", "a positive integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not positive; expected a positive integer")
    return int(v)


def nonneg_float(text: str) -> float:
    v = _parse(text, float, "a number", "a number >= 0")
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{v} is negative; expected a number >= 0")
    return v


def positive_float(text: str) -> float:
    v = nonneg_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("0 is not positive; expected a number > 0")
    return v


# -- flags from a dataclass -----------------------------------------------------------------------
@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass and its dataclass bases: the string literal
    written right under each field, as one line."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        (node,) = ast.parse(textwrap.dedent(inspect.getsource(klass))).body
        assert isinstance(node, ast.ClassDef)
        for stmt, after in zip(node.body, node.body[1:], strict=False):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[stmt.target.id] = " ".join(after.value.value.split())
    return docs


def flag(name: str) -> str:
    """The command-line spelling of a field: eval_every -> --eval-every."""
    return "--" + name.replace("_", "-")


def _scalar(tp: Any) -> Any:
    """`int | None` -> int: the type a flag's value converts to (absent stays None)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def field_help(f: dataclasses.Field[Any], doc: str) -> str:
    """A field's docstring, with its default when the docstring does not mention one."""
    text = doc.rstrip(".")
    default = f.default
    if default is not dataclasses.MISSING and default is not None and "default" not in doc:
        text += f" (default {default})"
    return text.replace("%", "%%")  # argparse %-formats help


def add_dataclass_options(
    parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = (),
    positive: Callable[[str], int] = positive_int,
) -> list[str]:
    """One `--field-name` flag per field of `cls` (but `skip`), typed from its annotation and
    helped by its docstring; metadata `positive` picks `positive`, `metavar` names the value.

    Every flag defaults to None, so what is not given stays for presets and saved configs to
    fill. Returns the field names, in declaration order.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    names = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.name not in docs:
            raise TypeError(f"{cls.__name__}.{f.name} has no docstring to be its --help")
        tp = _scalar(hints[f.name])
        kwargs: dict[str, Any] = {"help": field_help(f, docs[f.name]), "default": None}
        if f.metadata.get("metavar"):
            kwargs["metavar"] = f.metadata["metavar"]
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif tp is int:
            kwargs["type"] = positive if f.metadata.get("positive") else integer
        elif tp in (float, str):
            kwargs["type"] = tp
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line form for {tp!r}")
        parser.add_argument(flag(f.name), dest=f.name, **kwargs)
        names.append(f.name)
    return names
