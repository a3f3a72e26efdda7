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

*Rate allocation* (walloc-io 0.5): a codec may give each latent channel its own step,
``step(q) * 2 ** gain_c(q)``, with ``gain_c`` piecewise linear between :data:`GAIN_KNOTS`
(its config's ``step_gains``, sixteenths of an octave). The gains are fitted so every channel
buys distortion at the same price per bit (equal slopes), which a single step does not: at
``q = 1`` the block-mean channels of ``rgb-4x`` paid ten times what the others did.

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
from collections.abc import Sequence

import numpy as np

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


GAIN_KNOTS = (1, 25, 50, 75, 100, 125)  # qualities at which a codec's step gains are given
GAIN_UNIT = 16  # gains are integers in sixteenths of an octave (exact in JSON, everywhere)
GAIN_LIMIT = 32  # |gain| <= 2 octaves


def channel_steps(step_: float | np.ndarray, gains: Sequence[Sequence[int]], channels: int
                  ) -> np.ndarray:
    """Per-channel steps for global step(s) ``step_`` (a float, or one per item): float64
    ``(channels,)`` or ``(N, channels)``. ``gains``: the config's ``step_gains`` (one row of
    ``channels`` integers per :data:`GAIN_KNOTS` entry; empty: every channel gets the step).

    >>> channel_steps(1.0, (), 2)
    array([1., 1.])
    >>> g = [[-16, 16]] * len(GAIN_KNOTS)
    >>> channel_steps(step(100), g, 2)
    array([0.125, 0.5  ])
    """
    s = np.asarray(step_, dtype=np.float64)
    if not len(gains):
        return np.broadcast_to(s[..., None], (*s.shape, channels)).copy()
    table = np.asarray(gains, dtype=np.float64) / GAIN_UNIT  # (knots, channels)
    knots = np.array([math.log2(step(q)) for q in GAIN_KNOTS])[::-1]  # ascending log2 step
    t = np.log2(s)
    g = np.stack([np.interp(t, knots, table[::-1, c]) for c in range(channels)], axis=-1)
    return s[..., None] * np.exp2(g)


def check_gains(gains: Sequence[Sequence[int]], channels: int) -> list[str]:
    """Problems with a config's ``step_gains`` (empty list: fine): one row of ``channels``
    integers within :data:`GAIN_LIMIT` per knot, and every channel's step no coarser at a
    higher quality (so a rung's tables hold every symbol of the qualities below it)."""
    if not len(gains):
        return []
    rows = [list(r) for r in gains]
    if len(rows) != len(GAIN_KNOTS) or any(len(r) != channels for r in rows):
        return [f"step_gains must be {len(GAIN_KNOTS)} rows of {channels} integers"]
    if any(not isinstance(v, numbers.Integral) or isinstance(v, bool) or abs(v) > GAIN_LIMIT
           for r in rows for v in r):
        return [f"step_gains must be integers within +-{GAIN_LIMIT}"]
    for (qa, ra), (qb, rb) in zip(zip(GAIN_KNOTS, rows), zip(GAIN_KNOTS[1:], rows[1:])):
        # log2 step falls by (qb - qa) / 25 octaves; a gain may not rise faster
        if any((b - a) * 25 > (qb - qa) * GAIN_UNIT for a, b in zip(ra, rb)):
            return [f"step_gains make a channel's step coarser from q={qa} to q={qb}"]
    return []


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
