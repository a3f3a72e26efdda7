"""Argument types and the parser class of the ``walloc`` command line."""

from __future__ import annotations

import argparse
import re
import sys

DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|auto)$")


def positive_int(text: str) -> int:
    """An integer >= 1 (worker counts, task sizes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def quality(text: str) -> int:
    """An integer 1..100 (walloc_io.quality; 50 is the codec's design point)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer 1..100, got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected an integer 1..100, got {value}")
    return value


def share(text: str) -> float:
    """A probability 0..1 (the share of training crops an augmentation touches)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number 0..1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a number 0..1, got {value}")
    return value


def device(text: str) -> str:
    """cpu, cuda, cuda:N or auto."""
    if not DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or auto, got {text!r}")
    return text


class Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2 (argparse prints the usage too)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)
