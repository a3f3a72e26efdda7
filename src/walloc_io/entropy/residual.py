"""The error-bounded residual: every finite decoded value within ``eps`` of the input.

``Codec.encode(x, max_abs_error=eps)`` codes the WaLLoC latents as usual, runs the decoder
on them (as every decoder will), and adds an integer residual on a grid of ``step``:

    decoded = cast(prediction + k * step),   k = round((x - prediction) / step)

with ``step = 2 * (eps - margin)``. ``prediction`` is the float64 reconstruction the decoder
network gives; ``margin`` (``MARGIN`` of each channel's span, ~4e-6) absorbs the last-bit
differences a float32 network shows between thread counts, batch sizes or CPUs (measured
here: at most 3.3e-7 of the span; ``tests/test_error_bound.py`` checks it stays below a
quarter of the margin). The
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
The encoder codes the field both ways, against the network's reconstruction and against
nothing (the grid alone, as SZ-style predictive quantisers do), and keeps the smaller.

Extension body (little-endian)::

    eps f64 | step f64 | flags u8 (bit 0: prediction used; bit 1: raw) | prediction crc32 u32
    | bins u8 (0 for raw)
    raw: zlib(signal, output dtype, little-endian); else:
    | mode u8 (walloc_io.entropy.predict) | offset f64 (the grid's origin without prediction)
    | per bin: theta u16, radius u16, payload bytes u32 | payloads
    | exact count u32 | exact flat indices u32 x n | exact values (output dtype) x n
"""

from __future__ import annotations

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
_HEAD = struct.Struct("<ddBIB")
_MODE = struct.Struct("<Bd")
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
    weights = [1 << 62]
    for _ in range(radius):
        weights.append(weights[-1] * theta >> 16)
    # at most 2**29 each, so sums of up to 2 * RADIUS_LIMIT + 1 of them, times the 2**16 of
    # quantise_counts, stay inside int64
    w = np.array(weights, dtype=np.int64) >> 33
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
           norm: np.ndarray | None, skip: np.ndarray | None = None) -> tuple[bytes, int]:
    """The extension body for signal ``x`` (float ``(C, *shape)``), the decoder's float64
    ``prediction``, bound ``eps``, context ``bins``; ``skip``: values not to bound (NaN
    positions, restored by the caller). Returns ``(body, crc of the prediction)``: the
    smaller of the bodies with and without the network's prediction."""
    x64 = x.astype(np.float64)
    spans = _spans(norm, x.shape[0], x.ndim - 1)
    margin = float(np.max(spans)) * MARGIN
    crc = zlib.crc32(np.ascontiguousarray(prediction, dtype="<f8").tobytes())
    finite = x64 if skip is None else x64[~skip]
    offset = float(np.min(finite)) if finite.size else 0.0
    bodies = [_body(x, x64, np.full_like(x64, offset), eps, eps, bins, skip, 0, 0, offset)]
    if eps > 4 * margin:  # else the drift margin would eat the bound: the grid alone
        bodies.append(_body(x, x64, prediction, eps, 2 * (eps - margin), bins, skip, 1, crc,
                            0.0))
    body = min(bodies, key=len)
    return body, crc if body[16] & 1 else 0


def _body(x: np.ndarray, x64: np.ndarray, pred: np.ndarray, eps: float, step: float,
          bins: np.ndarray, skip: np.ndarray | None, flags: int, crc: int,
          offset: float) -> bytes:
    """One candidate body: residual integers against ``pred`` on a grid of ``step``."""
    from . import predict

    with np.errstate(over="ignore", invalid="ignore"):
        k = np.rint((x64 - pred) / step)
    k = np.where(np.isfinite(k), k, 0)
    if skip is not None:
        k[skip] = 0
    k = np.clip(k, -MAX_RADIUS - 1, MAX_RADIUS + 1).astype(np.int64)
    decoded = (pred + k * step).astype(x.dtype)
    bad = np.abs(decoded.astype(np.float64) - x64) > eps
    bad |= np.abs(k) > MAX_RADIUS
    if skip is not None:
        bad &= ~skip
    if bad.mean() > RAW_SHARE:
        raw = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<")).tobytes()
        return _HEAD.pack(eps, step, 2, 0, 0) + zlib.compress(raw, 6)
    k[bad] = 0
    if skip is not None:  # masked values: continue their neighbours (cheapest to predict)
        k[skip] = 0
    modes = predict.modes_for(x.ndim - 1, True)
    costs = [sum(int(np.abs(predict.residual(k[c], m)).sum()) for c in range(k.shape[0]))
             for m in modes]
    mode = modes[int(np.argmin(costs))]
    r = np.stack([predict.residual(k[c], mode) for c in range(k.shape[0])]).astype(np.int64)
    parts = [_HEAD.pack(eps, step, flags, crc, BINS), _MODE.pack(mode, offset)]
    payloads = []
    for b in range(BINS):
        rb = r[bins == b]
        radius = int(np.abs(rb).max()) if rb.size else 0
        theta = fit_theta(rb)
        payload = LatentCoder(geometric_tables(theta, max(radius, 1))).encode(
            rb.astype(np.int32)[None]) if rb.size else b""
        parts.append(_BIN.pack(theta, max(radius, 1), len(payload)))
        payloads.append(payload)
    exact = np.flatnonzero(bad.ravel()).astype("<u4")
    values = x.ravel()[exact].astype(x.dtype.newbyteorder("<"))
    parts += payloads + [struct.pack("<I", exact.size), exact.tobytes(), values.tobytes()]
    return b"".join(parts)


def decode(body: bytes, prediction: np.ndarray, bins: np.ndarray, dtype: str,
           norm: np.ndarray | None) -> np.ndarray:
    """The bounded signal from the decoder's float64 ``prediction`` and the extension body."""
    if len(body) < _HEAD.size:
        raise BitstreamError("residual extension truncated")
    eps, step, flags, crc, n_bins = _HEAD.unpack_from(body)
    if not (math.isfinite(eps) and math.isfinite(step) and eps > 0 and 0 < step <= 2 * eps):
        raise BitstreamError(f"residual extension has an invalid bound {eps!r} / step {step!r}")
    if flags == 2 and n_bins == 0:
        return _raw(body[_HEAD.size:], prediction.shape, dtype)
    if n_bins != BINS or flags > 1 or len(body) < _HEAD.size + _MODE.size:
        raise BitstreamError(f"residual extension with {n_bins} bins / flags {flags}")
    from . import predict

    mode, offset = _MODE.unpack_from(body, _HEAD.size)
    if mode not in predict.modes_for(prediction.ndim - 1, True) or not math.isfinite(offset):
        raise BitstreamError(f"residual extension: invalid mode {mode} / offset {offset!r}")
    at = _HEAD.size + _MODE.size
    heads = []
    for _ in range(BINS):
        if at + _BIN.size > len(body):
            raise BitstreamError("residual extension truncated")
        heads.append(_BIN.unpack_from(body, at))
        at += _BIN.size
    use_prediction = bool(flags & 1)  # the crc is the encoder's prediction's, for diagnosis:
    # decoders differ from it in the last bits (thread counts, batch sizes, CPUs), which the
    # margin absorbs (measured: <= 3.3e-7 of the range, a tenth of MARGIN)
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
    k = np.stack([predict.reconstruct(k[c], mode) for c in range(len(k))])
    if np.abs(k).max(initial=0) > MAX_RADIUS:
        raise BitstreamError("residual extension: residual beyond its radius (corrupt)")
    pred = prediction if use_prediction else np.full_like(prediction, offset)
    out = (pred + k * step).astype(dtype)
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
