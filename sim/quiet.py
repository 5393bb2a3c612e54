"""Silence C-level prints to stdout (PyBullet announces its build and every connection).

`kinema ... --json` promises one JSON object on the last line of stdout, and a person reading a
table has no use for "argv[0]=". Python's sys.stdout is flushed first, so nothing of ours is
lost; only what the C library writes while the block runs goes to /dev/null.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured or replaced stdout: nothing to do
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)
