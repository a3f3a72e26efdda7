"""Frozen integer frequency tables: fitted once after training, stored with the weights.

Encoding and decoding only ever read these integers (as exact dyadic fractions
``freq / 2**precision``), so a stream decodes bit-exactly on any machine and device.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..quality import is_floor
from . import predict
from .context import Contexts, bins, causal_sum, fit_thresholds, lookup_table

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
CAUSAL_WEIGHT = 8  # the contextual model's weight of same-channel causal neighbours
ESCAPE = 15  # core alphabet radius: larger residuals are an escape symbol plus a tail symbol


def core_radius(radius: int) -> int:
    """Radius of the core alphabet for residuals in ``[-radius, radius]``."""
    return min(ESCAPE, radius)


def core_size(radius: int) -> int:
    """Symbols in the core alphabet: the whole range, or ``[ESC-, -e .. e, ESC+]``."""
    e = core_radius(radius)
    return 2 * e + 1 if e == radius else 2 * e + 3


def split_escapes(values: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Residuals -> (core symbols, tail symbols of the escaped ones in flat order).

    With core radius ``e < radius`` the core alphabet is ``[ESC-, -e .. e, ESC+]`` (``2e + 3``
    symbols) and an escaped ``v`` also sends ``|v| - e - 1``; otherwise the core is the whole
    alphabet and there are no tails.
    """
    e = core_radius(radius)
    if e == radius:
        return values + radius, np.zeros(0, values.dtype)
    core = np.clip(values, -e - 1, e + 1) + e + 1
    escaped = values[np.abs(values) > e]
    return core, np.abs(escaped) - e - 1


def count_escapes(core: np.ndarray, radius: int) -> int:
    """How many core symbols (from :func:`split_escapes`) are escapes with a tail symbol."""
    e = core_radius(radius)
    return 0 if e == radius else int(np.count_nonzero(np.abs(core - (e + 1)) > e))


def join_escapes(core: np.ndarray, tails: np.ndarray, radius: int) -> np.ndarray:
    """Inverse of :func:`split_escapes` (``tails`` in the flat order of the escapes)."""
    e = core_radius(radius)
    if e == radius:
        return core - radius
    values = core - (e + 1)
    escaped = np.abs(values) > e
    values[escaped] = np.sign(values[escaped]) * (tails + e + 1)
    return values


@dataclass(frozen=True)
class EntropyTables:
    """Frozen integer tables: ``frequencies[c][mode][context]`` for latent channel ``c``.

    ``order`` is the channel coding order; ``thresholds[c]`` has one integer fewer than
    there are contexts. A channel offers ``len(frequencies[c])`` prediction modes (4 for
    predictive 2D, 2 for 1D, only RAW for the histogram model); the encoder picks one per
    stream and channel. Each table covers the core alphabet (see :func:`split_escapes`);
    ``tails[c][m]`` codes the magnitude of escaped residuals (empty when nothing escapes).
    Small core alphabets keep the decoder's table search short. ``neighbour_weight`` > 0 is
    the contextual model: a symbol's context is then looked up from its box energy plus
    that weight times :func:`~walloc_io.entropy.context.causal_sum` of the channel's own
    residual magnitudes (0: the predictive or histogram model of format 2).
    """

    max_symbol: int
    frequencies: tuple[tuple[tuple[np.ndarray, ...], ...], ...]
    thresholds: tuple[np.ndarray, ...] = ()
    order: tuple[int, ...] = ()
    precision: int = PRECISION
    tails: tuple[tuple[np.ndarray, ...], ...] = ()
    neighbour_weight: int = 0
    _models: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.frequencies)
        if not self.order:
            object.__setattr__(self, "order", tuple(range(n)))
        if not self.thresholds:
            object.__setattr__(self, "thresholds", tuple(np.zeros(0, np.int64) for _ in range(n)))
        if not self.tails:
            empty = np.zeros(0, np.int32)
            object.__setattr__(self, "tails", tuple(tuple(empty for _ in per_c)
                                                    for per_c in self.frequencies))

    @property
    def channels(self) -> int:
        return len(self.frequencies)

    @property
    def modes(self) -> int:
        """Number of prediction modes offered per channel."""
        return len(self.frequencies[0])

    def radius(self, mode: int) -> int:
        return predict.alphabet_radius(mode, self.max_symbol)

    def _categorical(self, key: tuple, freq: np.ndarray):
        if key not in self._models:
            import constriction

            probs = freq.astype(np.float64) / (1 << self.precision)  # exact dyadic values
            self._models[key] = constriction.stream.model.Categorical(probs, perfect=False)
        return self._models[key]

    def model(self, channel: int, mode: int, context: int):
        """constriction model for one core table (built once per process; not pickled)."""
        return self._categorical((channel, mode, context), self.frequencies[channel][mode][context])

    def models(self, channel: int, mode: int) -> list:
        """The core models of one channel and mode, indexed by context."""
        key = ("models", channel, mode)
        if key not in self._models:
            self._models[key] = [self.model(channel, mode, k)
                                 for k in range(len(self.frequencies[channel][mode]))]
        return self._models[key]

    def tail_model(self, channel: int, mode: int):
        """constriction model for the escaped magnitudes of one channel and mode."""
        return self._categorical(("tail", channel, mode), self.tails[channel][mode])

    def lookup(self, channel: int) -> np.ndarray:
        """Energy -> context lookup table of one channel (energies clipped to its end)."""
        key = ("lut", channel)
        if key not in self._models:
            self._models[key] = lookup_table(self.thresholds[channel])
        return self._models[key]

    def cost(self, channel: int, mode: int, context: int) -> np.ndarray:
        """Bits of each residual ``-r ..= r`` under one table, escapes and tails included.

        Float; used only by the encoder to choose modes, never by the coder itself.
        """
        key = ("cost", channel, mode, context)
        if key not in self._models:
            r = self.radius(mode)
            core, _ = split_escapes(np.arange(-r, r + 1), r)
            bits = self.precision - np.log2(self.frequencies[channel][mode][context][core])
            e = core_radius(r)
            if e < r:
                tail = self.precision - np.log2(self.tails[channel][mode])
                magnitude = np.abs(np.arange(-r, r + 1))
                bits[magnitude > e] += tail[magnitude[magnitude > e] - e - 1]
            self._models[key] = bits
        return self._models[key]

    def bits(self, channel: int, mode: int, contexts: np.ndarray, symbols: np.ndarray) -> float:
        """Bits that ``symbols`` (alphabet indices) in ``contexts`` cost under ``mode``'s tables.

        A gather from the tables' stacked code lengths; the encoder uses it to choose a
        prediction mode per channel.
        """
        key = ("costs", channel, mode)
        if key not in self._models:
            self._models[key] = np.concatenate([self.cost(channel, mode, k)
                                                for k in range(len(self.thresholds[channel]) + 1)])
        size = 2 * self.radius(mode) + 1
        return float(self._models[key][contexts.astype(np.intp) * size + symbols].sum())

    def __eq__(self, other: object) -> bool:
        """Value semantics: the same integers (what :meth:`digest` hashes), caches aside."""
        if not isinstance(other, EntropyTables):
            return NotImplemented
        return self.digest() == other.digest()

    def __hash__(self) -> int:
        return hash(self.digest())

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
                if self.tails[c][m].size:
                    arrays[f"tail{c}_{m}"] = self.tails[c][m].astype("<i4")
        if self.neighbour_weight:  # absent for format 2's models: their digests stay
            arrays["nbw"] = np.array([self.neighbour_weight], dtype="<i4")
        return arrays

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        # Any: mypy checks ``**`` values against ``allow_pickle: bool`` as well as ``**kwds``
        arrays: dict[str, Any] = self._arrays()
        np.savez_compressed(buf, **arrays)
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
    def load(cls, path: str | Path | io.BytesIO) -> EntropyTables:
        with np.load(path) as z:
            max_symbol, precision, channels, modes = (int(v) for v in z["meta"])
            thresholds = tuple(z[f"thr{c}"].astype(np.int64) for c in range(channels))
            freqs = tuple(tuple(tuple(z[f"freq{c}_{m}"].astype(np.int32))
                                for m in range(modes)) for c in range(channels))
            order = tuple(int(o) for o in z["order"])
            empty = np.zeros(0, np.int32)
            tails = tuple(tuple(z[f"tail{c}_{m}"].astype(np.int32) if f"tail{c}_{m}" in z else empty
                                for m in range(modes)) for c in range(channels))
            weight = int(z["nbw"][0]) if "nbw" in z.files else 0
        tables = cls(max_symbol, freqs, thresholds, order, precision, tails, weight)
        tables.validate()
        return tables

    def validate(self) -> None:
        if sorted(self.order) != list(range(self.channels)):
            raise ValueError("channel order is not a permutation")
        if not 0 <= self.neighbour_weight <= 256:
            raise ValueError(f"neighbour weight {self.neighbour_weight} out of range 0..256")
        for c in range(self.channels):
            if len(self.frequencies[c]) != self.modes:
                raise ValueError(f"channel {c} offers a different number of modes")
            for m, per_mode in enumerate(self.frequencies[c]):
                if len(per_mode) != len(self.thresholds[c]) + 1:
                    raise ValueError(f"channel {c}: thresholds and tables disagree")
                r = self.radius(m)
                sized = [(f, core_size(r)) for f in per_mode]
                if core_radius(r) < r:
                    sized.append((self.tails[c][m], r - core_radius(r)))
                if any(f.size != size or f.min() < 1 or int(f.sum()) != 1 << self.precision
                       for f, size in sized):
                    raise ValueError(f"channel {c} has an invalid frozen table")


def fit_tables(
    latents: list[np.ndarray], max_symbol: int, predictive: bool, precision: int = PRECISION,
    contexts: int = CONTEXTS, neighbour_weight: int = 0,
) -> EntropyTables:
    """Freeze tables from training latents (integer arrays ``(C, *signal)``).

    ``predictive``: channels coded from least to most energetic; per channel, every
    prediction mode gets ``contexts`` energy-context tables, fitted on the training items
    for which that mode is the cheapest (as the encoder will choose per stream).
    Otherwise: raw symbols, one table per channel (the plain histogram model).
    ``neighbour_weight`` > 0 (predictive only): the contextual model, whose contexts also
    see the channel's own causal neighbours (see :class:`EntropyTables`).
    """
    if neighbour_weight and not predictive:
        raise ValueError("the contextual model is predictive: neighbour_weight needs predictive")
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
    # filled in coding order, keyed by channel; the tables list them by channel index
    thresholds: dict[int, np.ndarray] = {}
    freqs: dict[int, tuple[tuple[np.ndarray, ...], ...]] = {}
    tails: dict[int, tuple[np.ndarray, ...]] = {}
    state = [Contexts(x.shape[1:]) for x in latents]
    for c in order:
        energies = [s.energy() for s in state]

        def seen(i: int, m: int, c: int = c, energies: list = energies) -> np.ndarray:
            """The energy mode ``m``'s contexts see in item ``i`` (computed where used)."""
            if not neighbour_weight:
                return energies[i]
            return energies[i] + neighbour_weight * causal_sum(np.abs(residuals[i][c][m]))

        thresholds[c] = fit_thresholds([seen(i, chosen[i][c]) for i in range(len(latents))],
                                       contexts)
        lut = lookup_table(thresholds[c])
        per_mode: list[tuple[np.ndarray, ...]] = []
        per_tail: list[np.ndarray] = []
        for m, mode in enumerate(modes):
            radius = predict.alphabet_radius(mode, max_symbol)
            e = core_radius(radius)
            users = [i for i in range(len(latents)) if chosen[i][c] == m] or range(len(latents))
            counts = np.zeros((len(thresholds[c]) + 1, core_size(radius)), dtype=np.int64)
            tail_counts = np.zeros(radius - e, dtype=np.int64)
            for i in users:
                core, tail = split_escapes(residuals[i][c][m].ravel(), radius)
                np.add.at(counts, (bins(seen(i, m), lut).ravel(), core), 1)
                tail_counts += np.bincount(tail, minlength=radius - e)
            per_mode.append(tuple(quantise_counts(row, precision) for row in counts))
            per_tail.append(quantise_counts(tail_counts, precision) if e < radius
                            else np.zeros(0, np.int32))
        freqs[c], tails[c] = tuple(per_mode), tuple(per_tail)
        for i, s in enumerate(state):
            s.add(residuals[i][c][chosen[i][c]])
    by_channel = range(channels)
    return EntropyTables(max_symbol, tuple(freqs[c] for c in by_channel),
                         tuple(thresholds[c] for c in by_channel), order, precision,
                         tuple(tails[c] for c in by_channel), neighbour_weight)


def fit_model_tables(latents: list[np.ndarray], max_symbol: int, entropy_model: str,
                     neighbour_weight: int = CAUSAL_WEIGHT) -> EntropyTables:
    """:func:`fit_tables` for a codec's ``entropy_model`` (see
    :class:`~walloc_io.config.CodecConfig`); ``neighbour_weight``: the contextual model's."""
    if entropy_model not in ("histogram", "predictive", "contextual"):
        raise ValueError(f"unknown entropy model {entropy_model!r}")
    return fit_tables(latents, max_symbol, predictive=entropy_model != "histogram",
                      neighbour_weight=neighbour_weight if entropy_model == "contextual" else 0)


def _entropy(r: np.ndarray) -> float:
    counts = np.unique(r, return_counts=True)[1]
    p = counts / counts.sum()
    return float(-(counts * np.log2(p)).sum())


def save_ladder(ladder: dict[int, EntropyTables], path: str | Path) -> None:
    """Write the quality ladder (quality rung -> tables) as one ``.npz``."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = {f"q{q}": np.frombuffer(t.to_bytes(), np.uint8)
                              for q, t in sorted(ladder.items())}
    np.savez(buf, **arrays)
    Path(path).write_bytes(buf.getvalue())


def load_ladder(path: str | Path) -> dict[int, EntropyTables]:
    """Read a ladder written by :func:`save_ladder` (every table validated)."""
    with np.load(path) as z:
        return {int(k[1:]): EntropyTables.load(io.BytesIO(z[k].tobytes())) for k in z.files}


def ladder_ids(ladder: dict[int, EntropyTables]) -> tuple[int, int]:
    """(the id streams of qualities 1..100 record: that of the knob's rungs alone, so adding
    floor rungs to a ladder keeps decoding the streams coded before; the id streams of
    the floor rungs above 100 record: that of the whole ladder, 0 without floor rungs)."""
    knob = {q: t for q, t in ladder.items() if not is_floor(q)}
    return (ladder_id(knob) if knob else 0,
            ladder_id(ladder) if len(knob) < len(ladder) else 0)


def ladder_id(ladder: dict[int, EntropyTables]) -> int:
    """The first four bytes of the ladder's digest, as streams coded with it record them."""
    h = hashlib.sha256()
    for q, t in sorted(ladder.items()):
        h.update(q.to_bytes(2, "little"))
        h.update(t.digest())
    return int.from_bytes(h.digest()[:4], "little")
