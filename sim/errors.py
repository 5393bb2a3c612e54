"""Errors raised by the simulation layer, worded for a person at a terminal."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists the closest known names."""

    def __init__(self, kind: str, name: str, choices: Iterable[str]) -> None:
        choices = sorted(choices)
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(choices)}"
        super().__init__(f"unknown {kind} {name!r}; {hint}")
        self.name = name
        self.close = close

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain sentence
        return str(self.args[0])


class SimulationUnstable(RuntimeError):
    """The physics produced a non-finite state."""
