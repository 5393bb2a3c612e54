"""Silence C-level prints (PyBullet announces its build on stderr and "argv[0]=" on stdout at
every connection).

`kinema ... --json` promises one JSON object on the last line of stdout, an error is one line on
stderr, and a person reading a table has no use for either banner. Python's streams are flushed
first, so nothing of ours is lost; only what C code writes while the block runs goes to
/dev/null. Python exceptions raised inside the block propagate as usual.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    fds = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fds.append(stream.fileno())
        except (AttributeError, OSError, ValueError):  # captured or replaced: leave it
            pass
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "wb") as null:
            for fd in fds:
                os.dup2(null.fileno(), fd)
            try:
                yield
            finally:
                # C stdio buffers stdout when it is a pipe: flush what the library printed
                # into /dev/null now, or it would surface at exit, after our JSON line.
                _libc_fflush()
                for fd, keep in zip(fds, saved, strict=True):
                    os.dup2(keep, fd)
    finally:
        for keep in saved:
            os.close(keep)


def _libc_fflush() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to flush (unusual platforms)
        pass
