"""Context selection: which frozen table codes each latent symbol.

Channels are decoded in a fixed order (least energetic first). A symbol's context is the
quantised local energy of the channels already decoded: the sum of their residual
magnitudes over a 3x3 (2D) or 3-sample (1D) window at the same position, cut by per-channel
integer thresholds fitted on training latents. Edges and texture show up in every channel
at once, so this predicts a symbol's spread without looking at the channel being decoded,
which keeps decoding fully vectorised: the contexts of a whole channel are known before
any of its symbols is decoded. Integer arithmetic throughout, so it is bit-exact anywhere.
"""

from __future__ import annotations

import numpy as np


def local_energy(magnitude: np.ndarray) -> np.ndarray:
    """Box sum over a 3-wide window along every axis (edges replicated), int64."""
    out = magnitude.astype(np.int64)
    for axis in range(out.ndim):
        n = out.shape[axis]
        padded = np.concatenate([out[_at(axis, slice(0, 1))], out,
                                 out[_at(axis, slice(n - 1, n))]], axis=axis)
        out = (padded[_at(axis, slice(0, n))] + padded[_at(axis, slice(1, n + 1))]
               + padded[_at(axis, slice(2, n + 2))])
    return out


def _at(axis: int, index: slice) -> tuple[slice, ...]:
    return (slice(None),) * axis + (index,)


def lookup_table(thresholds: np.ndarray) -> np.ndarray:
    """uint8 context of every energy ``0 ..= thresholds[-1] + 1``: ``sum(energy > t)``.

    Larger energies share the last entry (see :func:`bins`); indexing this table is several
    times faster than a binary search per symbol.
    """
    top = int(thresholds[-1]) + 1 if len(thresholds) else 0
    return np.searchsorted(thresholds, np.arange(top + 1), side="left").astype(np.uint8)


def bins(energy: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Context index per symbol from a :func:`lookup_table`, as uint8."""
    return lut[np.minimum(energy, len(lut) - 1)]


def fit_thresholds(energies: list[np.ndarray], contexts: int) -> np.ndarray:
    """Up to ``contexts - 1`` thresholds on a log-spaced ladder ``0, 1, 2, 3, 5, 7, 10, ...``.

    Log spacing keeps separate contexts for exactly-flat and barely-busy neighbourhoods (where
    a symbol is almost surely 0), which quantiles of mostly textured training data would
    merge; rungs above the 99th percentile of training energy are dropped (too rare to fit).
    """
    values = np.concatenate([e.ravel() for e in energies])
    if values.size == 0 or contexts < 2:
        return np.zeros(0, dtype=np.int64)
    ladder = np.unique(np.floor(1.41 ** np.arange(64)).astype(np.int64) - 1)
    top = np.quantile(values, 0.99, method="lower")
    return ladder[ladder < top][: contexts - 1]


class Contexts:
    """Running state while channels are coded in order: the summed magnitudes so far."""

    def __init__(self, spatial: tuple[int, ...]) -> None:
        self.total = np.zeros(spatial, dtype=np.int64)

    def energy(self) -> np.ndarray:
        return local_energy(self.total)

    def add(self, residual: np.ndarray) -> None:
        self.total += np.abs(residual)
