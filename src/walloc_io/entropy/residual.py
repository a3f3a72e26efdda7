"""The error-bounded residual: every finite decoded value within ``eps`` of the input.

``Codec.encode(x, max_abs_error=eps)`` codes the WaLLoC latents as usual, runs the decoder
on them (as every decoder will), and adds an integer residual on a grid of ``step``:

    decoded = cast(prediction + k * step),   k = round((x - prediction) / step)

with ``step = 2 * (eps - margin)`` (``2 * (eps - ulp)`` without the network's prediction).
``prediction`` is the float64 reconstruction the decoder network gives; ``margin``
(``MARGIN`` of each channel's span, ~4e-6) absorbs the last-bit differences a float32
network shows between thread counts, batch sizes or CPUs (measured here: at most 3.3e-7 of
the span; ``tests/test_error_bound.py`` checks it stays below a quarter of the margin). The
encoder then checks every value *after* the final cast to the output dtype; a value the
grid cannot hold within ``eps`` (an outlier beyond ``MAX_RADIUS`` steps, or a bound below
the dtype's resolution) is stored exactly. When ``eps`` is so small that the margin would
eat half of it, the prediction is dropped (``prediction = 0``: plain uniform quantisation of
``x``, no network in the loop, exact on every machine). When more than ``RAW_SHARE`` of the
values would be stored exactly (a bound at the dtype's resolution), the body holds the
signal itself, zlib-compressed (flags bit 1): lossless, and never more than ~the raw size.

The integers ``k`` are first predicted from their causal neighbours (per stream the best of
raw, left-, up- or planar-difference, as for the latents: what the network's reconstruction
leaves is spatially correlated), then entropy-coded with the native rANS coder, split into
``BINS`` context bins by the latent energy ``sum |code|`` of each value's latent position
(what the decoder already knows, exactly): detailed regions get wide residuals, smooth ones
narrow. Each bin is one two-sided geometric distribution, its ratio quantised to 16 bits and
its tables built with integer arithmetic only, so both sides build the same tables anywhere.
For 2-D signals a second coding is tried too (flags bit 2): each channel's integers split
into their four 2x2 polyphase planes, coded in the order (0,0), (1,1), (0,1), (1,0) with the
latent coder's own machinery, so every plane's contexts are the local magnitudes of the
planes already decoded, i.e. of its decoded spatial neighbours (a causal neighbourhood, as
in lossless image coders), each context a two-sided geometric law fitted to this stream.
A third coding (flags bit 3) predicts by multilevel interpolation, as SZ3 does: the
integers at a coarse stride first, then level by level and axis by axis every remaining one
from its decoded neighbours along that axis (cubic where four exist, else linear, in exact
integer arithmetic), the residuals grouped by level and by the gap between the two nearest
neighbours (an edge indicator the decoder knows). The encoder codes the field against the
network's reconstruction and against nothing (the grid alone, as SZ-style predictive
quantisers do), each all three ways, and keeps the smallest.

Extension body (little-endian)::

    eps f64 | step f64 | flags u8 (bit 0: prediction used; bit 1: raw)
    | bins u8 (0 for raw)
    raw: zlib(signal, output dtype, little-endian); else:
    | mode u8 (walloc_io.entropy.predict) | offset f64 (the grid's origin without prediction)
    | per bin: theta u16, radius u16, payload bytes u32 | payloads
    polyphase (flags bit 2) instead of the bins: max symbol u16 | per channel: theta u16 x
    (PHASES x CONTEXTS) of the core laws, theta u16 x PHASES of the tails, payload bytes u32
    | payloads
    | exact count u32 | exact flat indices u32 x n | exact values (output dtype) x n
"""

from __future__ import annotations

import functools
import math
import numbers
import struct
import zlib

import numpy as np

from ..errors import BitstreamError, InputError
from .native import LatentCoder
from .tables import EntropyTables, core_radius, quantise_counts

MARGIN = 2.0 ** -18  # of each channel's span: the float32 decoder drift the bound tolerates
MAX_RADIUS = 4095  # residual magnitudes beyond this many steps are stored exactly
RADIUS_LIMIT = 4 * MAX_RADIUS  # after planar prediction (two differences)
ENERGY_EDGES = np.array([1, 2, 3, 5, 8, 13, 21, 34, 55])  # latent energy -> bin
BINS = len(ENERGY_EDGES) + 1
RAW_SHARE = 0.25
_HEAD = struct.Struct("<ddBB")
_MODE = struct.Struct("<Bd")
POLYPHASE = 4
PHASE_ORDER = (0, 3, 1, 2)  # (0,0), (1,1), (0,1), (1,0): each plane sees decoded neighbours
PHASE_THRESHOLDS = np.array([0, 1, 2, 3, 5, 7, 10, 14, 20, 28, 40, 56, 80, 113, 160])
PHASE_CONTEXTS = len(PHASE_THRESHOLDS) + 1
PHASE_RADIUS = 2047  # larger residuals go to exact storage in the polyphase coding
_BIN = struct.Struct("<HHI")
_THETA_ONE = 1 << 16


def check_bound(eps, dtype: str) -> float:
    """``eps`` as a positive finite float for a float signal, else an :class:`InputError`."""
    if np.dtype(dtype).kind != "f":
        raise InputError(f"max_abs_error applies to float signals; this one is {dtype} "
                         "(integer data needs a lossless codec, or cast it to float)")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise InputError(f"max_abs_error must be a positive number, got {eps!r}")
    value = float(eps)
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"max_abs_error must be a positive finite number, got {eps!r}")
    return value


def geometric_tables(theta: int, radius: int) -> EntropyTables:
    """One-channel tables for ``P(k) ~ (theta / 2**16) ** |k|`` on ``[-radius, radius]``,
    from integer arithmetic only (the same integers on every machine)."""
    # at most 2**29 each, so sums of up to 2 * RADIUS_LIMIT + 1 of them, times the 2**16 of
    # quantise_counts, stay inside int64
    w = _weights(theta, radius)
    e = core_radius(radius)
    mags = np.abs(np.arange(-e, e + 1))
    core = w[mags]
    if e < radius:
        tail = w[e + 1:]
        escape = tail.sum()
        core = np.concatenate([[escape], core, [escape]])
        tails = (quantise_counts(tail),)
    else:
        tails = (np.zeros(0, np.int32),)
    freq = ((quantise_counts(core),),)
    return EntropyTables(radius, (freq,), (np.zeros(0, np.int64),), (0,), 16, (tails,))


def fit_theta(k: np.ndarray) -> int:
    """The 16-bit ratio of the two-sided geometric law with the mean magnitude of ``k``."""
    m = float(np.abs(k).mean()) if k.size else 0.0
    theta = (math.sqrt(1 + m * m) - 1) / m if m > 0 else 0.0
    return int(min(_THETA_ONE - 1, max(1, round(theta * _THETA_ONE))))


def energy_bins(codes: np.ndarray, factor: int, shape: tuple[int, ...], channels: int
                ) -> np.ndarray:
    """The context bin of every signal value ``(C, *shape)``: its latent position's energy."""
    energy = np.abs(codes.astype(np.int64)).sum(axis=0)
    bins = np.searchsorted(ENERGY_EDGES, energy, side="right").astype(np.uint8)
    for axis in range(bins.ndim):
        bins = np.repeat(bins, factor, axis=axis)
    bins = bins[tuple(slice(0, n) for n in shape)]
    return np.broadcast_to(bins, (channels, *shape))


def _spans(norm: np.ndarray | None, channels: int, nd: int) -> np.ndarray:
    spans = np.ones(channels) if norm is None else np.asarray(norm, np.float64)[:, 1]
    return spans.reshape((-1,) + (1,) * nd)


def encode(x: np.ndarray, prediction: np.ndarray, eps: float, bins: np.ndarray,
           norm: np.ndarray | None, skip: np.ndarray | None = None,
           margin: float | None = None) -> bytes:
    """The extension body for signal ``x`` (float ``(C, *shape)``), the decoder's float64
    ``prediction``, bound ``eps``, context ``bins``; ``skip``: values not to bound (NaN
    positions, restored by the caller); ``margin``: the drift a decoder's prediction may
    show, in the signal's units (default: ``MARGIN`` of the largest channel span in
    ``norm``). Returns the smallest candidate body."""
    if x.size >= 1 << 32:
        raise InputError("signals of 2**32 values or more cannot carry an error bound")
    if skip is not None and skip.shape != x.shape:
        raise InputError(f"skip mask of shape {skip.shape} for a signal of shape {x.shape}")
    x64 = x.astype(np.float64)
    if margin is None:
        spans = _spans(norm, x.shape[0], x.ndim - 1)
        margin = float(np.max(spans)) * MARGIN
    finite = x64 if skip is None else x64[~skip]
    offset = float(np.min(finite)) if finite.size else 0.0
    # the grid alone: no drift to absorb, only the final cast's rounding (half an ulp of the
    # largest magnitude); values the cast still pushes past eps are stored exactly
    top = float(np.max(np.abs(finite))) if finite.size else 0.0
    ulp = float(np.spacing(x.dtype.type(top)))
    grid = 2 * (eps - ulp) if eps > 2 * ulp else eps
    # against the prediction: room for the drift *and* the final cast, and the check below
    # tries both ends of the drift (a decoder off by +-margin must still be within eps)
    slack = margin + ulp
    netted = 2 * (eps - slack)
    use_net = eps > 4 * slack
    bodies = [_body(x, x64, np.full_like(x64, offset), eps, grid, bins, skip, 0, offset)]
    if use_net:  # else the drift margin would eat the bound: the grid alone
        bodies.append(_body(x, x64, prediction, eps, netted, bins, skip, 1, 0.0, margin))
    if x.ndim == 3 and min(x.shape[1:]) >= 4:
        for coding in (4, 8):
            bodies.append(_body(x, x64, np.full_like(x64, offset), eps, grid, bins, skip,
                                coding, offset))
            if use_net:
                bodies.append(_body(x, x64, prediction, eps, netted, bins, skip,
                                    coding | 1, 0.0, margin))
    return min(bodies, key=len)


def _body(x: np.ndarray, x64: np.ndarray, pred: np.ndarray, eps: float, step: float,
          bins: np.ndarray, skip: np.ndarray | None, flags: int, offset: float,
          drift: float = 0.0) -> bytes:
    """One candidate body: residual integers against ``pred`` on a grid of ``step``; a value
    is stored exactly unless it decodes within ``eps`` for any prediction within ``drift``
    of ``pred`` (checked at both ends, after the cast)."""
    from . import predict

    with np.errstate(over="ignore", invalid="ignore"):
        k = np.rint((x64 - pred) / step)
    k = np.where(np.isfinite(k), k, 0)
    if skip is not None:
        k[skip] = 0
    limit = PHASE_RADIUS if flags & 12 else MAX_RADIUS
    k = np.clip(k, -limit - 1, limit + 1).astype(np.int64)
    bad = np.abs(k) > limit
    for shift in ((-drift, drift) if drift else (0.0,)):
        decoded = (pred + shift + k * step).astype(x.dtype)
        bad |= np.abs(decoded.astype(np.float64) - x64) > eps
    if skip is not None:
        bad &= ~skip
    if bad.mean() > RAW_SHARE:
        raw = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<")).tobytes()
        return _HEAD.pack(eps, step, 2, 0) + zlib.compress(raw, 6)
    k[bad] = 0
    if skip is not None:  # masked values: continue their neighbours (cheapest to predict)
        k[skip] = 0
    exact = np.flatnonzero(bad.ravel()).astype("<u4")
    values = x.ravel()[exact].astype(x.dtype.newbyteorder("<"))
    tail = [struct.pack("<I", exact.size), exact.tobytes(), values.tobytes()]
    if flags & 12:
        coded = _polyphase_encode(k) if flags & 4 else _interp_encode(k)
        return b"".join([_HEAD.pack(eps, step, flags, BINS), _MODE.pack(0, offset),
                         coded, *tail])
    modes = predict.modes_for(x.ndim - 1, True)
    by_mode = [np.stack([predict.residual(k[c], m) for c in range(k.shape[0])]) for m in modes]
    best = int(np.argmin([int(np.abs(r).sum()) for r in by_mode]))
    mode, r = modes[best], by_mode[best].astype(np.int64)
    parts = [_HEAD.pack(eps, step, flags, BINS), _MODE.pack(mode, offset)]
    payloads = []
    for b in range(BINS):
        rb = r[bins == b]
        radius = int(np.abs(rb).max()) if rb.size else 0
        theta = fit_theta(rb)
        payload = LatentCoder(geometric_tables(theta, max(radius, 1))).encode(
            rb.astype(np.int32)[None]) if rb.size else b""
        parts.append(_BIN.pack(theta, max(radius, 1), len(payload)))
        payloads.append(payload)
    return b"".join(parts + payloads + tail)


def _phases(plane: np.ndarray) -> np.ndarray:
    """``(h, w)`` -> ``(4, ceil(h/2), ceil(w/2))`` polyphase planes (edges replicated)."""
    h, w = plane.shape
    padded = np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")
    return np.stack([padded[i::2, j::2] for i in (0, 1) for j in (0, 1)])


def _unphase(phases: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h2, w2 = phases.shape[1:]
    out = np.empty((2 * h2, 2 * w2), phases.dtype)
    for p, (i, j) in enumerate((i, j) for i in (0, 1) for j in (0, 1)):
        out[i::2, j::2] = phases[p]
    return out[: shape[0], : shape[1]]


def _phase_tables(thetas: np.ndarray, tail_thetas: np.ndarray, max_symbol: int) -> EntropyTables:
    """Tables of the polyphase coding: per phase, mode and context a geometric law."""
    from . import predict

    modes = predict.modes_for(2, True)
    freqs, tails = [], []
    for c in range(POLYPHASE):
        per_mode, per_tail = [], []
        for m in modes:
            radius = predict.alphabet_radius(m, max_symbol)
            per_mode.append(tuple(_core(int(t), radius) for t in thetas[c]))
            per_tail.append(_tail(int(tail_thetas[c]), radius))
        freqs.append(tuple(per_mode))
        tails.append(tuple(per_tail))
    thresholds = tuple(PHASE_THRESHOLDS.astype(np.int64) for _ in range(POLYPHASE))
    return EntropyTables(max_symbol, tuple(freqs), thresholds, PHASE_ORDER, 16, tuple(tails))


@functools.lru_cache(maxsize=256)  # at most 256 x 131 KB, whatever streams ask for
def _weights(theta: int, radius: int) -> np.ndarray:
    """``floor``-iterated integer powers ``2**62 (theta / 2**16) ** j >> 33``, ``j = 0..radius``
    (the same integers everywhere; zero from the first that underflows)."""
    w = np.zeros(radius + 1, dtype=np.int64)
    value = 1 << 62
    for j in range(radius + 1):
        shifted = value >> 33
        if not shifted:
            break
        w[j] = shifted
        value = value * theta >> 16
    w.setflags(write=False)
    return w


def _core(theta: int, radius: int) -> np.ndarray:
    w = _weights(theta, radius)
    e = core_radius(radius)
    core = w[np.abs(np.arange(-e, e + 1))]
    if e < radius:
        escape = w[e + 1:].sum()
        core = np.concatenate([[escape], core, [escape]])
    return quantise_counts(core)


def _tail(theta: int, radius: int) -> np.ndarray:
    e = core_radius(radius)
    return quantise_counts(_weights(theta, radius)[e + 1:]) if e < radius else np.zeros(0, np.int32)


def _polyphase_encode(k: np.ndarray) -> bytes:
    """Every channel of ``k`` (``(C, h, w)``) as four polyphase planes: laws fitted per
    plane and context (the contexts the coder will see), then one native coder call."""
    from . import predict
    from .context import Contexts, bins, lookup_table

    max_symbol = max(1, int(np.abs(k).max(initial=0)))
    lut = lookup_table(PHASE_THRESHOLDS.astype(np.int64))
    parts, payloads = [struct.pack("<H", max_symbol)], []
    for plane in k:
        phases = _phases(plane)
        thetas = np.ones((POLYPHASE, PHASE_CONTEXTS), np.int64)
        tail_thetas = np.ones(POLYPHASE, np.int64)
        state = Contexts(phases.shape[1:])
        for c in PHASE_ORDER:
            ctx = bins(state.energy(), lut).ravel()
            residual = min((predict.residual(phases[c], m) for m in predict.modes_for(2, True)),
                           key=lambda v: int(np.abs(v).sum()))
            r = residual.ravel()
            for j in range(PHASE_CONTEXTS):
                thetas[c, j] = fit_theta(r[ctx == j])
            tail_thetas[c] = fit_theta(r)
            state.add(residual)
        tables = _phase_tables(thetas, tail_thetas, max_symbol)
        payloads.append(LatentCoder(tables).encode(phases.astype(np.int32)))
        parts.append(thetas.astype("<u2").tobytes() + tail_thetas.astype("<u2").tobytes()
                     + struct.pack("<I", len(payloads[-1])))
    return b"".join(parts + payloads)


def _polyphase_decode(body: bytes, at: int, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """Inverse of :func:`_polyphase_encode` from offset ``at``: ``(k, end offset)``."""
    if at + 2 > len(body):
        raise BitstreamError("residual extension truncated")
    (max_symbol,) = struct.unpack_from("<H", body, at)
    if not 1 <= max_symbol <= PHASE_RADIUS + 1:
        raise BitstreamError(f"residual extension: polyphase radius {max_symbol} out of range")
    at += 2
    channels, h, w = shape
    per = 2 * POLYPHASE * PHASE_CONTEXTS + 2 * POLYPHASE + 4
    heads = []
    for _ in range(channels):
        if at + per > len(body):
            raise BitstreamError("residual extension truncated")
        thetas = np.frombuffer(body, "<u2", POLYPHASE * PHASE_CONTEXTS, at).reshape(
            POLYPHASE, PHASE_CONTEXTS)
        tail_thetas = np.frombuffer(body, "<u2", POLYPHASE, at + 2 * thetas.size)
        (size,) = struct.unpack_from("<I", body, at + per - 4)
        if (thetas < 1).any() or (tail_thetas < 1).any():
            raise BitstreamError("residual extension: invalid polyphase law")
        heads.append((thetas, tail_thetas, size))
        at += per
    k = np.empty(shape, np.int64)
    phase_shape = (POLYPHASE, (h + 1) // 2, (w + 1) // 2)
    for c, (thetas, tail_thetas, size) in enumerate(heads):
        payload = body[at:at + size]
        if len(payload) != size:
            raise BitstreamError("residual extension truncated")
        at += size
        coder = LatentCoder(_phase_tables(thetas, tail_thetas, max_symbol))
        k[c] = _unphase(coder.decode(payload, phase_shape), (h, w))
    return k, at


def decode(body: bytes, prediction: np.ndarray, bins: np.ndarray, dtype: str,
           norm: np.ndarray | None) -> np.ndarray:
    """The bounded signal from the decoder's float64 ``prediction`` and the extension body."""
    if len(body) < _HEAD.size:
        raise BitstreamError("residual extension truncated")
    eps, step, flags, n_bins = _HEAD.unpack_from(body)
    if not (math.isfinite(eps) and math.isfinite(step) and eps > 0 and 0 < step <= 2 * eps):
        raise BitstreamError(f"residual extension has an invalid bound {eps!r} / step {step!r}")
    if flags == 2 and n_bins == 0:
        return _raw(body[_HEAD.size:], prediction.shape, dtype)
    if n_bins != BINS or flags not in (0, 1, 4, 5, 8, 9) or len(body) < _HEAD.size + _MODE.size:
        raise BitstreamError(f"residual extension with {n_bins} bins / flags {flags}")
    from . import predict

    mode, offset = _MODE.unpack_from(body, _HEAD.size)
    if mode not in predict.modes_for(prediction.ndim - 1, True) or not math.isfinite(offset):
        raise BitstreamError(f"residual extension: invalid mode {mode} / offset {offset!r}")
    at = _HEAD.size + _MODE.size
    if flags & 12:
        if prediction.ndim != 3:
            raise BitstreamError("residual extension: 2-D coding of a 1-D signal")
        decode = _polyphase_decode if flags & 4 else _interp_decode
        k, at = decode(body, at, prediction.shape)
        return _finish(body, at, k, prediction, flags, offset, step, dtype, None)
    heads = []
    for _ in range(BINS):
        if at + _BIN.size > len(body):
            raise BitstreamError("residual extension truncated")
        heads.append(_BIN.unpack_from(body, at))
        at += _BIN.size
    k = np.zeros(prediction.shape, np.int64)
    for b, (theta, radius, size) in enumerate(heads):
        where = bins == b
        n = int(where.sum())
        payload = body[at:at + size]
        if len(payload) != size:
            raise BitstreamError("residual extension truncated")
        at += size
        if n == 0:
            if size:
                raise BitstreamError("residual bin holds bytes but no values")
            continue
        if not 1 <= theta < _THETA_ONE or not 1 <= radius <= RADIUS_LIMIT:
            raise BitstreamError(f"residual bin {b}: invalid law ({theta}, {radius})")
        k[where] = LatentCoder(geometric_tables(theta, radius)).decode(payload, (1, n))[0]
    return _finish(body, at, k, prediction, flags, offset, step, dtype, mode)


def _finish(body: bytes, at: int, k: np.ndarray, prediction: np.ndarray, flags: int,
            offset: float, step: float, dtype: str, mode: int | None) -> np.ndarray:
    """Exact values, inverse prediction (bins coding) and the grid -> the signal."""
    from . import predict

    if at + 4 > len(body):
        raise BitstreamError("residual extension truncated")
    (n_exact,) = struct.unpack_from("<I", body, at)
    at += 4
    item = np.dtype(dtype).itemsize
    if n_exact > prediction.size or at + n_exact * (4 + item) != len(body):
        raise BitstreamError(f"residual extension: {n_exact} exact values do not fit its size")
    index = np.frombuffer(body, "<u4", n_exact, at).astype(np.int64)
    values = np.frombuffer(body, np.dtype(dtype).newbyteorder("<"), n_exact, at + 4 * n_exact)
    if n_exact and index.max() >= prediction.size:
        raise BitstreamError("residual extension: exact value index out of range")
    if n_exact and not np.isfinite(values).all():
        raise BitstreamError("residual extension: a stored value is not finite")
    if mode is not None:
        k = np.stack([predict.reconstruct(k[c], mode) for c in range(len(k))])
    if np.abs(k).max(initial=0) > MAX_RADIUS + 1:
        raise BitstreamError("residual extension: residual beyond its radius (corrupt)")
    pred = prediction if flags & 1 else np.full_like(prediction, offset)
    with np.errstate(over="ignore", invalid="ignore"):
        out = (pred + k * step).astype(dtype)
    if not np.isfinite(out).all():
        raise BitstreamError("residual extension decodes to non-finite values (corrupt)")
    out.reshape(-1)[index] = values
    return out


def _raw(data: bytes, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """The zlib-stored signal, inflated no further than its declared size."""
    size = math.prod(shape) * np.dtype(dtype).itemsize
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(data, size)
    except zlib.error as exc:
        raise BitstreamError(f"residual extension: corrupt raw signal ({exc})") from None
    if len(raw) != size or inflate.unconsumed_tail or not inflate.eof:
        raise BitstreamError("residual extension: raw signal of the wrong size")
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


# -- multilevel interpolation (flags bit 3) ------------------------------------------------
GAP_EDGES = np.array([1, 2, 4, 8, 16, 48])  # |a - b| of the two nearest neighbours -> bin
GAP_BINS = len(GAP_EDGES) + 1
LEVEL_CLASSES = 3  # finest level, the next, all coarser ones
_GROUP = struct.Struct("<HHII")


def _levels(shape: tuple[int, int]) -> int:
    return max(0, min(6, int(math.log2(max(1, min(shape)))) - 1))


def _passes(shape: tuple[int, int]):
    """``(level, axis, stride)`` of every interpolation pass, coarse to fine."""
    for level in range(_levels(shape) - 1, -1, -1):
        for axis in (0, 1):
            yield level, axis, 1 << level


def _targets(shape, axis: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a pass's targets: odd multiples of ``stride`` along
    ``axis``, multiples of ``2 stride`` (axis 0) / ``stride`` (axis 1) along the other."""
    h, w = shape
    if axis == 0:
        rows, cols = np.arange(stride, h, 2 * stride), np.arange(0, w, 2 * stride)
    else:
        rows, cols = np.arange(0, h, stride), np.arange(stride, w, 2 * stride)
    return rows, cols


def _predict(grid: np.ndarray, axis: int, stride: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Integer predictions and neighbour gaps of a pass's targets from decoded ``grid``."""
    rows, cols = _targets(grid.shape, axis, stride)
    n = grid.shape[axis]
    pos = rows if axis == 0 else cols
    take = (lambda i: grid[np.ix_(i, cols)]) if axis == 0 else (lambda i: grid[np.ix_(rows, i)])
    below = take(pos - stride)
    has_above = pos + stride < n
    above = take(np.where(has_above, pos + stride, pos - stride))
    pred = (below + above) // 2
    cubic = has_above & (pos - 3 * stride >= 0) & (pos + 3 * stride < n)
    if cubic.any():
        far_below = take(np.clip(pos - 3 * stride, 0, n - 1))
        far_above = take(np.clip(pos + 3 * stride, 0, n - 1))
        c = (9 * (below + above) - far_below - far_above) // 16
        mask = cubic[:, None] if axis == 0 else cubic[None, :]
        pred = np.where(mask, c, pred)
    gap = np.abs(below - above)
    return pred, gap, np.ix_(rows, cols)


def _group_of(level: int, gap: np.ndarray) -> np.ndarray:
    return min(level, LEVEL_CLASSES - 1) * GAP_BINS + np.searchsorted(GAP_EDGES, gap, "right")


def _anchor_grid(shape) -> tuple:
    step = 1 << _levels(shape)
    return np.ix_(np.arange(0, shape[0], step), np.arange(0, shape[1], step))


def _interp_encode(k: np.ndarray) -> bytes:
    from . import predict

    parts, payloads = [], []
    for plane in k:
        anchors = plane[_anchor_grid(plane.shape)]
        groups: list[list[np.ndarray]] = [[] for _ in range(LEVEL_CLASSES * GAP_BINS)]
        for level, axis, stride in _passes(plane.shape):
            pred, gap, where = _predict(plane, axis, stride)
            r = (plane[where] - pred).ravel()
            g = _group_of(level, gap).ravel()
            for j in np.unique(g):
                groups[j].append(r[g == j])
        streams = [predict.residual(anchors, predict.PLANAR).ravel()]
        streams += [np.concatenate(gr) if gr else np.zeros(0, np.int64) for gr in groups]
        for values in streams:
            radius = max(1, int(np.abs(values).max(initial=0)))
            theta = fit_theta(values)
            payload = LatentCoder(geometric_tables(theta, radius)).encode(
                values.astype(np.int32)[None]) if values.size else b""
            parts.append(_GROUP.pack(theta, radius, values.size, len(payload)))
            payloads.append(payload)
    return b"".join(parts + payloads)


def _interp_decode(body: bytes, at: int, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    from . import predict

    channels, h, w = shape
    n_groups = 1 + LEVEL_CLASSES * GAP_BINS
    heads = []
    for _ in range(channels * n_groups):
        if at + _GROUP.size > len(body):
            raise BitstreamError("residual extension truncated")
        heads.append(_GROUP.unpack_from(body, at))
        at += _GROUP.size
    if sum(head[2] for head in heads) != channels * h * w:
        raise BitstreamError("residual extension: interpolation groups do not cover the signal")
    k = np.empty(shape, np.int64)
    for c in range(channels):
        streams = []
        for theta, radius, count, size in heads[c * n_groups:(c + 1) * n_groups]:
            payload = body[at:at + size]
            if len(payload) != size:
                raise BitstreamError("residual extension truncated")
            at += size
            if not count:
                streams.append(np.zeros(0, np.int64))
                continue
            if not 1 <= theta < _THETA_ONE or not 1 <= radius <= RADIUS_LIMIT:
                raise BitstreamError(f"residual extension: invalid law ({theta}, {radius})")
            streams.append(LatentCoder(geometric_tables(theta, radius)).decode(
                payload, (1, count))[0].astype(np.int64))
        plane = np.zeros((h, w), np.int64)
        where = _anchor_grid((h, w))
        n_anchor = where[0].size * where[1].size
        if streams[0].size != n_anchor:
            raise BitstreamError("residual extension: wrong number of anchors")
        plane[where] = predict.reconstruct(streams[0].reshape(where[0].size, where[1].size),
                                           predict.PLANAR)
        used = [0] * n_groups
        for level, axis, stride in _passes((h, w)):
            pred, gap, where = _predict(plane, axis, stride)
            g = _group_of(level, gap).ravel()
            r = np.empty(g.size, np.int64)
            for j in np.unique(g):
                sel = g == j
                n = int(sel.sum())
                chunk = streams[1 + j][used[1 + j]:used[1 + j] + n]
                if chunk.size != n:
                    raise BitstreamError("residual extension: interpolation group too short")
                r[sel] = chunk
                used[1 + j] += n
            plane[where] = pred + r.reshape(pred.shape)
            if np.abs(plane[where]).max(initial=0) > MAX_RADIUS + 1:
                raise BitstreamError("residual extension: residual beyond its radius (corrupt)")
        k[c] = plane
    return k, at
