"""Shared by the benchmark scripts: a Markdown report printed, and written where asked."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path | None) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        out.write_text(text)
