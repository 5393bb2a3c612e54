"""BENCHMARKS.md sections: each benchmark owns the text between its two markers."""

from __future__ import annotations

from pathlib import Path


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
