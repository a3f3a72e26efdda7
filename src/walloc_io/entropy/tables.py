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
from .context import Contexts, bins, fit_thresholds

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


CONTEXTS = 16  # tables per (latent channel, prediction mode) in the predictive model


@dataclass(frozen=True)
class EntropyTables:
    """Frozen integer tables: ``frequencies[c][mode][context]`` for latent channel ``c``.

    ``order`` is the channel coding order; ``thresholds[c]`` has one integer fewer than
    there are contexts. A channel offers ``len(frequencies[c])`` prediction modes (4 for
    predictive 2D, 2 for 1D, only RAW for the histogram model); the encoder picks one per
    stream and channel.
    """

    max_symbol: int
    frequencies: tuple[tuple[tuple[np.ndarray, ...], ...], ...]
    thresholds: tuple[np.ndarray, ...] = ()
    order: tuple[int, ...] = ()
    precision: int = PRECISION
    _models: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.frequencies)
        if not self.order:
            object.__setattr__(self, "order", tuple(range(n)))
        if not self.thresholds:
            object.__setattr__(self, "thresholds", tuple(np.zeros(0, np.int64) for _ in range(n)))

    @property
    def channels(self) -> int:
        return len(self.frequencies)

    @property
    def modes(self) -> int:
        """Number of prediction modes offered per channel."""
        return len(self.frequencies[0])

    def radius(self, mode: int) -> int:
        return predict.alphabet_radius(mode, self.max_symbol)

    def model(self, channel: int, mode: int, context: int):
        """constriction model for one table (built once per process; not pickled)."""
        key = (channel, mode, context)
        if key not in self._models:
            import constriction

            freq = self.frequencies[channel][mode][context]
            probs = freq.astype(np.float64) / (1 << self.precision)  # exact dyadic values
            self._models[key] = constriction.stream.model.Categorical(probs, perfect=False)
        return self._models[key]

    def cost(self, channel: int, mode: int, context: int) -> np.ndarray:
        """Bits per symbol of one table (float; used only by the encoder to choose modes)."""
        key = ("cost", channel, mode, context)
        if key not in self._models:
            freq = self.frequencies[channel][mode][context]
            self._models[key] = self.precision - np.log2(freq)
        return self._models[key]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_models"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {"meta": np.array([self.max_symbol, self.precision, self.channels, self.modes],
                                   dtype="<i4"),
                  "order": np.array(self.order, dtype="<i4")}
        for c in range(self.channels):
            arrays[f"thr{c}"] = self.thresholds[c].astype("<i8")
            for m, per_mode in enumerate(self.frequencies[c]):
                arrays[f"freq{c}_{m}"] = np.stack(per_mode).astype("<i4")
        return arrays

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **self._arrays())
        return buf.getvalue()

    def digest(self) -> bytes:
        h = hashlib.sha256()
        for name, array in self._arrays().items():
            h.update(name.encode())
            h.update(np.ascontiguousarray(array).tobytes())
        return h.digest()

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> EntropyTables:
        with np.load(path) as z:
            max_symbol, precision, channels, modes = (int(v) for v in z["meta"])
            thresholds = tuple(z[f"thr{c}"].astype(np.int64) for c in range(channels))
            freqs = tuple(tuple(tuple(z[f"freq{c}_{m}"].astype(np.int32))
                                for m in range(modes)) for c in range(channels))
            order = tuple(int(o) for o in z["order"])
        tables = cls(max_symbol, freqs, thresholds, order, precision)
        tables.validate()
        return tables

    def validate(self) -> None:
        if sorted(self.order) != list(range(self.channels)):
            raise ValueError("channel order is not a permutation")
        for c in range(self.channels):
            if len(self.frequencies[c]) != self.modes:
                raise ValueError(f"channel {c} offers a different number of modes")
            for m, per_mode in enumerate(self.frequencies[c]):
                if len(per_mode) != len(self.thresholds[c]) + 1:
                    raise ValueError(f"channel {c}: thresholds and tables disagree")
                for f in per_mode:
                    if (f.size != 2 * self.radius(m) + 1 or f.min() < 1
                            or int(f.sum()) != 1 << self.precision):
                        raise ValueError(f"channel {c} has an invalid frozen table")


def fit_tables(
    latents: list[np.ndarray], max_symbol: int, predictive: bool, precision: int = PRECISION,
    contexts: int = CONTEXTS,
) -> EntropyTables:
    """Freeze tables from training latents (integer arrays ``(C, *signal)``).

    ``predictive``: channels coded from least to most energetic; per channel, every
    prediction mode gets ``contexts`` energy-context tables, fitted on the training items
    for which that mode is the cheapest (as the encoder will choose per stream).
    Otherwise: raw symbols, one table per channel (the plain histogram model).
    """
    channels, ndim = latents[0].shape[0], latents[0].ndim - 1
    modes = predict.modes_for(ndim, predictive)
    if not predictive:
        contexts = 1
    residuals = [[[predict.residual(x[c], m) for m in modes] for c in range(channels)]
                 for x in latents]
    chosen = [[int(np.argmin([_entropy(r) for r in per_c])) for per_c in item]
              for item in residuals]
    energy_rank = np.argsort([sum(float(np.abs(item[c][chosen[i][c]]).sum())
                                  for i, item in enumerate(residuals)) for c in range(channels)],
                             kind="stable")
    order = tuple(int(c) for c in energy_rank) if predictive else tuple(range(channels))
    thresholds, freqs = [None] * channels, [None] * channels
    state = [Contexts(x.shape[1:]) for x in latents]
    for c in order:
        energies = [s.energy() for s in state]
        thresholds[c] = fit_thresholds(energies, contexts)
        per_mode = []
        for m, mode in enumerate(modes):
            radius = predict.alphabet_radius(mode, max_symbol)
            users = [i for i in range(len(latents)) if chosen[i][c] == m] or range(len(latents))
            counts = np.zeros((len(thresholds[c]) + 1, 2 * radius + 1), dtype=np.int64)
            for i in users:
                k = bins(energies[i], thresholds[c]).ravel()
                np.add.at(counts, (k, residuals[i][c][m].ravel() + radius), 1)
            per_mode.append(tuple(quantise_counts(row, precision) for row in counts))
        freqs[c] = tuple(per_mode)
        for i, s in enumerate(state):
            s.add(residuals[i][c][chosen[i][c]])
    return EntropyTables(max_symbol, tuple(freqs), tuple(thresholds), order, precision)


def _entropy(r: np.ndarray) -> float:
    counts = np.unique(r, return_counts=True)[1]
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())
