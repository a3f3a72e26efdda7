"""The native latent coder of stream format 2: frozen integer tables in, words out.

:class:`LatentCoder` owns everything the C kernel (``_rans.c``) needs, derived once from
:class:`~walloc_io.entropy.EntropyTables`: the frequencies as stacked integer arrays (they
reach the coder as the integers they are: no float probabilities, no foreign quantiser),
fixed-point code lengths for the encoder's choice of prediction mode, and the context
lookup tables. One call codes a whole stream; :meth:`LatentCoder.decode_many` decodes a
batch of same-shape streams in one call with the GIL released.

The procedure is that of format 1 (per-channel prediction modes sent first, channels in the
tables' order, contexts from the box-summed magnitudes of earlier channels, escape + tail
symbols) with two changes that make it a tight scalar loop: symbols are coded in raster
order inside a channel (format 1 grouped them by context for vectorised constriction
calls) and each escape's tail symbol follows it at once. Tables with a
``neighbour_weight`` (the ``"contextual"`` entropy model) also condition each symbol on
its causal neighbours in the same channel
(see :func:`~walloc_io.entropy.context.causal_sum`). The coder is rANS with two
interleaved 32-bit states, 16-bit words and the tables' own 16-bit precision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import BitstreamError
from .tables import ESCAPE, EntropyTables, core_radius, core_size

assert ESCAPE == 15, "the kernel's core alphabet radius is 15"

COST_SCALE = 1 << 12  # fixed-point code lengths: the mode choice is integer and reproducible
TOO_SHORT = 100  # try_decode_many's code for a payload refused before decoding


def _size(payload) -> int:
    return memoryview(payload).nbytes


def _kernel():
    try:
        from . import _rans
    except ImportError as exc:  # pragma: no cover - a broken install, not a user error
        raise ImportError(
            "walloc_io's native latent coder (walloc_io.entropy._rans) is not built; "
            "reinstall the package (pip install -e . builds it with the system C compiler)"
        ) from exc
    return _rans


class PackedTables(NamedTuple):
    """Stacked integer arrays of one set of tables (what the kernel is built from)."""

    freq: np.ndarray  # int32 (C, M, K, S): core tables, padded (S: largest core alphabet)
    tail: np.ndarray  # int32 (C, M, T): escaped magnitudes (uniform where a mode has none)
    cost: np.ndarray  # int32 (C, M, K, S): code lengths * COST_SCALE, rounded
    tail_cost: np.ndarray  # int32 (C, M, T)
    lut: np.ndarray  # uint8 (C, L): energy -> context per channel
    lut_len: np.ndarray  # int32 (C,)
    order: np.ndarray  # int32 (C,)
    radius: np.ndarray  # int32 (M,)


def _code_lengths(freq: np.ndarray, precision: int) -> np.ndarray:
    bits = precision - np.log2(np.maximum(freq, 1).astype(np.float64))
    return np.rint(bits * COST_SCALE).astype(np.int32)


def pack(tables: EntropyTables) -> PackedTables:
    """Stack ``tables`` into the kernel's integer arrays (contexts padded to the widest)."""
    if tables.precision != 16:
        raise ValueError(f"the native coder needs 16-bit tables, got {tables.precision}-bit")
    channels, modes = tables.channels, tables.modes
    radius = np.array([tables.radius(m) for m in range(modes)], dtype=np.int32)
    stride = max(core_size(int(r)) for r in radius)
    tail_stride = max([int(r) - core_radius(int(r)) for r in radius] + [1])
    contexts = max(len(t) + 1 for t in tables.thresholds)
    freq = np.zeros((channels, modes, contexts, stride), dtype=np.int32)
    tail = np.zeros((channels, modes, tail_stride), dtype=np.int32)
    for c in range(channels):
        for m in range(modes):
            per = tables.frequencies[c][m]
            for k in range(contexts):  # contexts a channel never selects copy its first table
                f = per[k] if k < len(per) else per[0]
                freq[c, m, k, : f.size] = f
            t = tables.tails[c][m]  # a mode without escapes: one certain (unused) tail symbol
            tail[c, m, : t.size] = t if t.size else [1 << tables.precision]
    luts = [tables.lookup(c) for c in range(channels)]
    lut = np.zeros((channels, max(len(u) for u in luts)), dtype=np.uint8)
    for c, u in enumerate(luts):
        lut[c, : len(u)] = u
    return PackedTables(freq, tail, _code_lengths(freq, tables.precision),
                        _code_lengths(tail, tables.precision), lut,
                        np.array([len(u) for u in luts], dtype=np.int32),
                        np.array(tables.order, dtype=np.int32), radius)


def _plane(shape: Sequence[int]) -> tuple[int, int]:
    """``(C, h, w)`` or ``(C, t)`` latents -> the kernel's ``(h, w)`` (``(1, t)`` for 1D)."""
    spatial = tuple(int(n) for n in shape[1:])
    if len(spatial) == 1:
        return 1, spatial[0]
    if len(spatial) == 2:
        return spatial
    raise BitstreamError(f"latents must have 1 or 2 signal axes, got shape {tuple(shape)}")


class LatentCoder:
    """Entropy coder of one set of frozen tables: ``encode``, ``decode``, ``decode_many``.

    Parameters
    ----------
    tables : EntropyTables
        Frozen integer tables (16-bit precision).

    Examples
    --------
    >>> import numpy as np
    >>> from walloc_io.entropy import LatentCoder, fit_tables
    >>> rng = np.random.default_rng(0)
    >>> latents = [rng.integers(-3, 4, (2, 8, 8)) for _ in range(4)]
    >>> coder = LatentCoder(fit_tables(latents, 7, predictive=True))
    >>> words = coder.encode(latents[0])
    >>> bool((coder.decode(words, latents[0].shape) == latents[0]).all())
    True
    """

    def __init__(self, tables: EntropyTables) -> None:
        self.tables = tables
        self.packed = pack(tables)
        self._handles: dict[int, object] = {}
        # the fewest bits any symbol costs: the most probable entry of any table
        self._floor = tables.precision - math.log2(int(self.packed.freq.max()))

    def _handle(self, ndim: int):
        """The kernel's copy of the tables for ``ndim`` signal axes (the context window)."""
        if ndim not in self._handles:
            p, t = self.packed, self.tables
            self._handles[ndim] = _kernel().make_tables(
                t.channels, t.modes, p.freq.shape[2], ndim, t.max_symbol, p.order, p.radius,
                p.freq, p.tail, p.cost, p.tail_cost, p.lut, p.lut_len, p.freq.shape[3],
                p.tail.shape[2], p.lut.shape[1], t.neighbour_weight)
        return self._handles[ndim]

    def __getstate__(self) -> dict:
        return {"tables": self.tables}

    def __setstate__(self, state: dict) -> None:
        LatentCoder.__init__(self, state["tables"])

    def _shape_check(self, shape: Sequence[int]) -> tuple[int, int]:
        if int(shape[0]) != self.tables.channels:
            raise BitstreamError(f"stream has {shape[0]} latent channels, "
                                 f"model has {self.tables.channels}")
        if len(shape) == 2 and self.tables.modes > 2:
            raise BitstreamError(f"1-D latents {tuple(shape)} for a 2-D predictive model")
        return _plane(shape)

    def encode(self, latents: np.ndarray) -> bytes:
        """``(C, *signal)`` integer latents in ``[-max_symbol, max_symbol]`` -> payload bytes."""
        h, w = self._shape_check(latents.shape)
        x = np.ascontiguousarray(latents, dtype=np.int32)
        try:
            return _kernel().encode(self._handle(x.ndim - 1), x, h, w)
        except ValueError as exc:
            raise BitstreamError(f"cannot code these latents: {exc}") from None

    def decode(self, payload, shape: Sequence[int]) -> np.ndarray:
        """One payload -> ``(C, *signal)`` int32 latents (checked to the last word)."""
        return self.decode_many([payload], shape)[0]

    def decode_many(self, payloads: Sequence, shape: Sequence[int]) -> np.ndarray:
        """Same-shape payloads -> ``(N, C, *signal)`` int32 latents in one kernel call.

        Raises :class:`BitstreamError` naming the first corrupt payload.
        """
        out, codes = self.try_decode_many(payloads, shape)
        for i, code in enumerate(codes):
            if code:
                where = f"payload {i}: " if len(codes) > 1 else ""
                if code == TOO_SHORT:
                    self.check_capacity(_size(payloads[i]), shape)  # raises with the figures
                raise BitstreamError(f"{where}corrupt entropy-coded payload "
                                     f"({_kernel().error_message(code)})")
        return out

    def fits(self, payload_bytes: int, shape: Sequence[int], margin: float = 1.0) -> bool:
        """Whether a payload of this size can hold ``shape``'s latents: every symbol costs at
        least :meth:`bits_per_symbol_floor` bits (the two final 32-bit states aside)."""
        symbols = math.prod(int(n) for n in shape)
        return payload_bytes >= 8 and symbols <= margin * self.capacity(payload_bytes)

    def capacity(self, payload_bytes: int) -> float:
        """The most latent symbols a payload of this size can hold."""
        return (8 * payload_bytes + 64) / self._floor

    def check_capacity(self, payload_bytes: int, shape: Sequence[int], margin: float = 1.0) -> None:
        """Refuse a payload too short to hold ``shape``'s latents (see :meth:`fits`), so a
        forged header cannot make a few words decode into a huge array: work stays
        proportional to the payload's size."""
        if not self.fits(payload_bytes, shape, margin):
            raise BitstreamError(f"payload of {payload_bytes} bytes cannot hold "
                                 f"{math.prod(int(n) for n in shape)} latent symbols of shape "
                                 f"{tuple(shape)} (each costs >= {self._floor:.2g} bits): "
                                 "truncated or forged stream")

    def try_decode_many(self, payloads: Sequence, shape: Sequence[int]
                        ) -> tuple[np.ndarray, list[int]]:
        """Like :meth:`decode_many` but returns per-payload error codes (0: decoded;
        ``TOO_SHORT``: refused by :meth:`check_capacity` before any decoding)."""
        h, w = self._shape_check(shape)
        short = [not self.fits(_size(p), shape) for p in payloads]
        if any(short):
            payloads = [b"" if s else p for s, p in zip(short, payloads)]
        out = np.empty((len(payloads), *(int(n) for n in shape)), dtype=np.int32)
        codes = _kernel().decode_many(self._handle(len(shape) - 1), payloads, h, w, out)
        return out, [TOO_SHORT if s else c for s, c in zip(short, codes)]

    def bits_per_symbol_floor(self) -> float:
        """The fewest bits any latent symbol can cost (the most probable table entry)."""
        return self._floor
