"""What every benchmark writes: its BENCHMARKS.md section (the text between its two markers),
its results JSON, and the machine line."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any


def machine(*details: str) -> str:
    """'<arch>, <n> CPU cores, <details>...': the machine a result was measured on."""
    return ", ".join([platform.machine(), f"{os.cpu_count()} CPU cores", *details])


def publish(out: Any, results: Path | None, markdown: Path | None,
            write_section: Callable[[Path, str], None], report: Callable[[Any], str], *,
            indent: int = 1) -> None:
    """Write the results JSON and the markdown section, each only when its path is given."""
    if results is not None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(out, indent=indent) + "\n")
    if markdown is not None:
        write_section(markdown, report(out))


def write_section(path: Path, begin: str, end: str, title: str, body: str) -> None:
    """Replace the text between `begin` and `end` in `path` (and nothing else); when the markers
    are absent, append a `## title` section holding them."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n" + block + "\n"
    path.write_text(text)
