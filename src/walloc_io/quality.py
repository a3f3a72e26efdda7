"""The quality knob: one model, many rates. Imports nothing heavy.

A stream coded at quality ``q`` (an integer in 1..100, higher = more bits and higher
fidelity) rounds the companded latents on a grid of step ``2 ** ((50 - q) / 25)`` instead
of the integers: ``q = 50`` (and ``None``) is the preset's design point (step 1), ``q = 100``
a step of 1/4 (about 2 bits more per latent), ``q = 1`` a step of ~3.9. The decoder
multiplies the integer codes by the step before its network; everything else is the same
model. Symbols of quality ``q`` are coded with the frozen tables of the *rung* at or above
it (:data:`RUNGS`; fitted on training latents at the rung's step, stored in the codec
directory's ``ladder.npz``), so any ``q`` between rungs costs a little more than a rung.

Above the knob's range lie the *floor rungs* (:data:`FLOOR_RUNGS`, steps 0.19 and 1/8):
only ``quality=None`` reaches them, when the rate floor lifts a signal the design point
starves (smooth, dark, low-contrast photos) past ``q = 100``; streams record them like any
quality. A codec's ladder may hold their tables (walloc-io 0.4 and later).

Examples
--------
>>> from walloc_io.quality import step, rung, check_quality
>>> step(50), step(100), round(step(1), 3)
(1.0, 0.25, 3.891)
>>> rung(42), rung(50), rung(91), check_quality(50), check_quality(None)
(50, 50, 100, None, None)
"""

from __future__ import annotations

import math
import numbers

from .errors import InputError

DESIGN = 50  # the quality of the preset's own tables (step 1)
RUNGS = (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)  # tables fitted at these qualities
TOP = RUNGS[-1]  # the knob's highest quality; above it only the floor rungs
FLOOR_RUNGS = (110, 125)  # beyond the knob: reached only by the default quality's rate floor
STORED = range(1, FLOOR_RUNGS[-1] + 1)  # qualities a stream may record


def check_quality(quality) -> int | None:
    """``None`` or an integer 1..100 -> the stored quality (``None`` for the design point,
    which ``q = 50`` is); anything else is an :class:`~walloc_io.InputError`."""
    if quality is None:
        return None
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral):
        raise InputError(f"quality must be an integer in 1..100 or None, got {quality!r}")
    q = int(quality)
    if not 1 <= q <= TOP:
        raise InputError(f"quality must be in 1..100 (50: the preset's design point), got {q}")
    return None if q == DESIGN else q


def step(quality: int | None) -> float:
    """Quantisation step of the companded latents at ``quality`` (1.0 at the design point)."""
    return 1.0 if quality is None else 2.0 ** ((DESIGN - quality) / 25)


def rung(quality: int | None) -> int:
    """The ladder rung whose tables code ``quality``: the first at or above it (its step is
    no coarser, so its alphabet holds every symbol ``quality`` can produce)."""
    q = DESIGN if quality is None else quality
    return next(r for r in RUNGS + FLOOR_RUNGS if r >= q)


def is_floor(quality: int | None) -> bool:
    """Whether a stored quality is above the knob (a floor rung's, coded with the tables
    the floor ladder id covers)."""
    return quality is not None and quality > TOP


def max_symbol(quality: int | None, amplitude: float) -> int:
    """Largest code magnitude at ``quality`` for companding amplitude ``amplitude``
    (``round(amplitude / step)``; at the design point the model's ``max_symbol``)."""
    return max_symbol_at(step(quality), amplitude)


def max_symbol_at(grid: float, amplitude: float) -> int:
    """Largest code magnitude on a grid of step ``grid``."""
    return int(math.floor(amplitude / grid + 0.5))
