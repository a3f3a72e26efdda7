"""Integer prediction of latents from already-decoded neighbours (lossless, vectorised).

Modes, chosen per latent channel when tables are frozen:

``RAW``     the symbol itself;
``LEFT``    difference to the left neighbour (first column raw);
``UP``      difference to the neighbour above (2D only; first row raw);
``PLANAR``  ``x - left - up + upleft`` (2D only), i.e. LEFT then UP.

Each is a chain of first differences, so the inverse is a chain of cumulative sums: decoding
stays a handful of numpy passes per channel, never a per-symbol loop.
"""

from __future__ import annotations

import numpy as np

RAW, LEFT, UP, PLANAR = 0, 1, 2, 3


def modes_for(ndim: int, predictive: bool) -> tuple[int, ...]:
    if not predictive:
        return (RAW,)
    return (RAW, LEFT) if ndim == 1 else (RAW, LEFT, UP, PLANAR)


def _axes(mode: int, ndim: int) -> tuple[int, ...]:
    return {RAW: (), LEFT: (ndim - 1,), UP: (0,), PLANAR: (ndim - 1, 0)}[mode]


def alphabet_radius(mode: int, max_symbol: int) -> int:
    """Residuals of ``mode`` lie in ``[-r, r]``; each difference doubles the range."""
    return max_symbol * 2 ** len(_axes(mode, 2))


def residual(x: np.ndarray, mode: int) -> np.ndarray:
    """Residuals of one channel ``x`` (``(h, w)`` or ``(t,)``, integer) under ``mode``."""
    r = x.astype(np.int32)
    for axis in _axes(mode, x.ndim):
        r = np.diff(r, axis=axis, prepend=np.zeros_like(np.take(r, [0], axis=axis)))
    return r


def reconstruct(r: np.ndarray, mode: int) -> np.ndarray:
    """Inverse of :func:`residual`."""
    # Partial sums are bounded by size * max|r|: int32 when that cannot wrap, else int64,
    # so no input (corrupt ones included) can overflow into a plausible-looking value.
    bound = r.size * max(int(r.max(initial=0)), -int(r.min(initial=0)))
    dtype = np.int32 if bound < 2**31 else np.int64
    x = r
    for axis in reversed(_axes(mode, r.ndim)):
        x = np.cumsum(x, axis=axis, dtype=dtype)
    return x
