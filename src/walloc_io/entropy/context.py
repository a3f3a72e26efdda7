"""Context selection: which frozen table codes each latent symbol.

Channels are decoded in a fixed order (least energetic first). A symbol's context is the
quantised local energy of the channels already decoded: the sum of their residual
magnitudes over a 3x3 (2D) or 3-sample (1D) window at the same position, cut by per-channel
integer thresholds fitted on training latents. Edges and texture show up in every channel
at once, so this predicts a symbol's spread without looking at the channel being decoded,
which keeps decoding fully vectorised: the contexts of a whole channel are known before
any of its symbols is decoded. Integer arithmetic throughout, so it is bit-exact anywhere.

The contextual model (walloc-io 0.8) adds the channel's own causal neighbours
(:func:`causal_sum`): the native coder decodes a channel symbol by symbol anyway, so the
magnitudes just decoded are known; on held-out latents this saves a few per cent of the bits
(``benchmarks/bench_context_ablation.py``).
"""

from __future__ import annotations

import numpy as np


def local_energy(magnitude: np.ndarray) -> np.ndarray:
    """Box sum over a 3-wide window along every axis (edges replicated), int32: the energy
    :class:`Contexts` gives once these magnitudes are decoded."""
    state = Contexts(magnitude.shape)
    state.add(magnitude)
    return state.energy()


TAPS_1D = 8  # the contextual model's causal window along a 1-D channel


def causal_sum(magnitude: np.ndarray) -> np.ndarray:
    """Sum over each position's causal neighbours in raster order (zero outside), int64:
    ``t-1 .. t-8`` for 1D (:data:`TAPS_1D`; an audio envelope moves slowly), left, up-left,
    up and up-right for 2D. What a sequential decoder knows of the channel it is decoding;
    the contextual model adds ``neighbour_weight`` times this to the box energy before the
    threshold lookup."""
    a = np.asarray(magnitude, dtype=np.int64)
    if a.ndim == 1:
        p, n, out = np.pad(a, (TAPS_1D, 0)), a.size, np.zeros_like(a)
        for i in range(1, TAPS_1D + 1):
            out += p[TAPS_1D - i:TAPS_1D - i + n]
        return out
    p = np.pad(a, 1)
    return p[1:-1, :-2] + p[:-2, :-2] + p[:-2, 1:-1] + p[:-2, 2:]


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
    """Context index per symbol (energies >= 0) from a :func:`lookup_table`, as uint8."""
    return np.take(lut, energy, mode="clip")


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
    """Running state while channels are coded in order: the summed magnitudes so far.

    Kept with a one-sample replicated border, so :meth:`energy` (the box sum of
    :func:`local_energy`) is a few slice additions, without re-padding per channel.
    """

    def __init__(self, spatial: tuple[int, ...]) -> None:
        self.padded = np.zeros(tuple(n + 2 for n in spatial), dtype=np.int32)
        self.interior = tuple(slice(1, n + 1) for n in spatial)
        # per axis: the three shifted windows of the box sum, and (target, source) pairs
        # that copy the outermost interior samples into the border
        self.windows = [tuple(_at(axis, slice(i, n + i)) for i in range(3))
                        for axis, n in enumerate(spatial)]
        self.edges = [pair for axis, n in enumerate(spatial)
                      for pair in ((_at(axis, slice(0, 1)), _at(axis, slice(1, 2))),
                                   (_at(axis, slice(n + 1, n + 2)), _at(axis, slice(n, n + 1))))]

    @property
    def total(self) -> np.ndarray:
        return self.padded[self.interior]

    def energy(self) -> np.ndarray:
        out = self.padded
        for lo, mid, hi in self.windows:
            out = out[lo] + out[mid] + out[hi]
        return out

    def add(self, residual: np.ndarray) -> None:
        p = self.padded
        p[self.interior] += np.abs(residual)
        for target, source in self.edges:  # in axis order, so corners follow
            p[target] = p[source]
