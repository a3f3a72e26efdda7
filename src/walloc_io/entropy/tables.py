"""Frozen integer frequency tables: fitted once after training, stored with the weights.

Encoding and decoding only ever read these integers (as exact dyadic fractions
``freq / 2**precision``), so a stream decodes bit-exactly on any machine and device.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import predict

PRECISION = 16


def quantise_counts(counts: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Histogram -> int32 frequencies summing to ``2**precision``, every symbol >= 1.

    Largest-remainder rounding in integer arithmetic, so the result is platform-independent.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total, size = 1 << precision, counts.size
    if size >= total:
        raise ValueError(f"alphabet of {size} symbols does not fit {precision}-bit tables")
    spare, mass = total - size, int(counts.sum())
    if mass == 0:
        counts, mass = np.ones(size, dtype=np.int64), size
    scaled = counts * spare
    freq, remainder = scaled // mass, scaled % mass
    short = spare - int(freq.sum())
    order = np.lexsort((np.arange(size), -remainder))  # ties: lower symbol first
    freq[order[:short]] += 1
    return (freq + 1).astype(np.int32)


def code_length(counts: np.ndarray, freq: np.ndarray, precision: int = PRECISION) -> float:
    """Bits that ``counts`` cost under ``freq`` (ideal entropy coder)."""
    return float(np.sum(counts * (precision - np.log2(freq))))


@dataclass(frozen=True)
class EntropyTables:
    """One prediction mode and one frequency table per latent channel."""

    max_symbol: int
    modes: tuple[int, ...]
    frequencies: tuple[np.ndarray, ...]
    precision: int = PRECISION
    _models: dict = field(default_factory=dict, compare=False, repr=False)

    def radius(self, channel: int) -> int:
        return predict.alphabet_radius(self.modes[channel], self.max_symbol)

    def model(self, channel: int):
        """constriction model for ``channel`` (built once; not pickled)."""
        if channel not in self._models:
            import constriction

            probs = self.frequencies[channel].astype(np.float64) / (1 << self.precision)
            self._models[channel] = constriction.stream.model.Categorical(probs, perfect=False)
        return self._models[channel]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_models"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = {f"freq{i}": f for i, f in enumerate(self.frequencies)}
        np.savez(buf, max_symbol=self.max_symbol, precision=self.precision,
                 modes=np.array(self.modes, dtype=np.int8), **arrays)
        return buf.getvalue()

    def digest(self) -> bytes:
        h = hashlib.sha256()
        h.update(np.array([self.max_symbol, self.precision, *self.modes], dtype="<i4").tobytes())
        for f in self.frequencies:
            h.update(f.astype("<i4").tobytes())
        return h.digest()

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> EntropyTables:
        with np.load(path) as z:
            modes = tuple(int(m) for m in z["modes"])
            freqs = tuple(z[f"freq{i}"].astype(np.int32) for i in range(len(modes)))
            tables = cls(int(z["max_symbol"]), modes, freqs, int(z["precision"]))
        for c, f in enumerate(tables.frequencies):
            if f.size != 2 * tables.radius(c) + 1 or f.min() < 1 or f.sum() != 1 << tables.precision:
                raise ValueError(f"table {c} in {path} is not a valid frozen table")
        return tables


def fit_tables(
    latents: list[np.ndarray], max_symbol: int, predictive: bool, precision: int = PRECISION
) -> EntropyTables:
    """Choose each channel's mode by measured code length and freeze its table.

    ``latents`` are integer arrays ``(C, *signal)`` from the training set.
    """
    channels, ndim = latents[0].shape[0], latents[0].ndim - 1
    modes, freqs = [], []
    for c in range(channels):
        best = None
        for mode in predict.modes_for(ndim, predictive):
            radius = predict.alphabet_radius(mode, max_symbol)
            counts = sum(np.bincount(predict.residual(x[c], mode).ravel() + radius,
                                     minlength=2 * radius + 1) for x in latents)
            freq = quantise_counts(counts, precision)
            bits = code_length(counts, freq, precision)
            if best is None or bits < best[0]:
                best = (bits, mode, freq)
        modes.append(best[1])
        freqs.append(best[2])
    return EntropyTables(max_symbol, tuple(modes), tuple(freqs), precision)
