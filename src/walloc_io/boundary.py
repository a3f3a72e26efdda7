"""Boundary handling for the periodised transform: the periodic-plus-smooth split.

The wavelet packet transform is periodised, so it sees an image as a torus: the bottom row
is the top row's neighbour and the last column the first's. Where they differ (sky above,
ground below) it sees a step edge along every border, which costs bits and, at low rates,
leaves a dark or bright line along the edges and ringing into the image.

Moisan's decomposition (*Periodic plus smooth image decomposition*, J. Math. Imaging Vis.
2011) writes an image ``u = p + s``: ``s`` is the smooth (harmonic inside) image whose wrap
jumps equal ``u``'s, ``p = u - s`` is periodic without border steps. ``s`` is determined by
the jumps alone: ``u[-1, :] - u[0, :]`` (one per column) and ``u[:, -1] - u[:, 0]`` (one per
row). walloc-io codes ``p`` with WaLLoC and sends a coarse version of the jumps as side
information (block means over :data:`BLOCK` samples on a grid of :data:`DELTA`, periodic
linear interpolation between block centres, deltas deflated): typically 80-250 bytes for a
768x512 RGB photo. The decoder rebuilds ``s`` exactly as the encoder did (the same float64
arithmetic on the same integers) and adds it to the network's output. Whatever of the jumps
the block means miss stays in ``p``, where WaLLoC codes it as before.

Only 2-D signals whose (padded) axes all reach :data:`MIN_SIZE` get the split; for smaller
ones the side information would cost more than the border steps. Imports numpy and zlib
only.

Body of the stream extension (see :mod:`walloc_io.bitstream`)::

    log2 block u8 | log2 (1 / delta) u8 | deflated int16 LE: per channel the deltas of the
    quantised block means of the column jumps (ceil(W / block)), then of the row jumps
    (ceil(H / block))

Examples
--------
>>> import numpy as np
>>> from walloc_io import boundary
>>> y, x = np.mgrid[0:256, 0:256] / 255.0
>>> u = (0.8 * y - 0.4)[None]               # a vertical ramp: a big step at the wrap
>>> body, s = boundary.split(u)
>>> p = u - s                               # what the codec codes
>>> bool(abs(p[0, -1] - p[0, 0]).max() < 0.01), bool(abs(u[0, -1] - u[0, 0]).max() > 0.7)
(True, True)
>>> np.array_equal(boundary.smooth(body, 1, (256, 256)), s)
True
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from .errors import BitstreamError

MIN_SIZE = 256  # every axis at least this (after padding) for the split to be used
BLOCK = 32  # jump samples per block mean
DELTA = 1 / 128  # quantisation step of the block means, in the codec's unit range
_HEAD = struct.Struct("<BB")


def applies(shape: tuple[int, ...]) -> bool:
    """Whether a signal of padded axes ``shape`` is coded with the split."""
    return len(shape) == 2 and min(shape) >= MIN_SIZE


def split(u: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Unit-range image ``(C, H, W)`` -> (the extension body, the smooth part ``s`` the
    decoder will rebuild from it, float32); the codec codes ``u - s``."""
    u = np.asarray(u, dtype=np.float64)
    c, h, w = u.shape
    codes = [_quantise(u[:, -1, :] - u[:, 0, :]), _quantise(u[:, :, -1] - u[:, :, 0])]
    deltas = np.concatenate([np.diff(k, axis=1, prepend=0) for k in codes], axis=1)
    # unit-range input: jumps within +-1, block means within +-128 steps, deltas +-256: int16
    body = _HEAD.pack(BLOCK.bit_length() - 1, round(1 / DELTA).bit_length() - 1) + zlib.compress(
        deltas.astype("<i2").tobytes(), 9)
    return body, _smooth(codes[0], codes[1], BLOCK, DELTA, h, w)


def smooth(body: bytes, channels: int, shape: tuple[int, ...]) -> np.ndarray:
    """The smooth part ``(channels, *shape)`` (float32) an extension body describes, or a
    :class:`~walloc_io.BitstreamError` for a malformed one. Work is bounded by ``shape``:
    the body inflates to exactly the size the shape implies, or it is refused."""
    if not applies(tuple(shape)) or len(body) < _HEAD.size:
        raise BitstreamError(f"boundary extension of {len(body)} bytes is invalid for "
                             f"a signal of padded shape {tuple(shape)}")
    log_block, log_inverse = _HEAD.unpack_from(body)
    if not 1 <= log_block <= 12 or not 1 <= log_inverse <= 15:
        raise BitstreamError(f"boundary extension block 2**{log_block} / step 2**-{log_inverse} "
                             "is out of range")
    block, delta = 1 << log_block, 2.0 ** -log_inverse
    h, w = shape
    counts = (-(-w // block), -(-h // block))
    need = 2 * channels * sum(counts)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body[_HEAD.size:], need + 1)
    except zlib.error as e:
        raise BitstreamError(f"boundary extension is corrupt: {e}") from None
    if len(raw) != need or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise BitstreamError(f"boundary extension holds {len(raw)}{'+' if len(raw) > need else ''}"
                             f" bytes of jumps, expected {need}")
    deltas = np.frombuffer(raw, "<i2").astype(np.int64).reshape(channels, -1)
    columns, rows = np.cumsum(deltas[:, :counts[0]], axis=1), np.cumsum(deltas[:, counts[0]:], axis=1)
    return _smooth(columns, rows, block, delta, h, w)


def _quantise(jumps: np.ndarray) -> np.ndarray:
    """``(C, n)`` jumps -> integer block means (``ceil(n / BLOCK)`` per channel)."""
    c, n = jumps.shape
    m = -(-n // BLOCK)
    padded = np.full((c, m * BLOCK), np.nan)
    padded[:, :n] = jumps
    return np.rint(np.nanmean(padded.reshape(c, m, BLOCK), axis=2) / DELTA).astype(np.int64)


def _expand(codes: np.ndarray, block: int, delta: float, n: int) -> np.ndarray:
    """Integer block means -> jumps at every sample (periodic linear interpolation between
    the block centres)."""
    m = codes.shape[1]
    centres = np.minimum(np.arange(m) * block + (block - 1) / 2, n - 1)
    t = np.arange(n, dtype=np.float64)
    return np.stack([np.interp(t, centres, k * delta, period=n) for k in codes])


def _smooth(columns: np.ndarray, rows: np.ndarray, block: int, delta: float, h: int, w: int
            ) -> np.ndarray:
    """Moisan's smooth component (float32) for column jumps ``(C, ceil(w / block))`` and row
    jumps ``(C, ceil(h / block))``: the jumps sit on the border rows/columns only, so the
    2-D spectrum is a sum of two separable terms, and one inverse real FFT (single
    precision: the smooth part only has to be the same on both sides) gives ``s``."""
    v1, v2 = _expand(columns, block, delta, w), _expand(rows, block, delta, h)
    q, r = np.arange(h), np.arange(w // 2 + 1)
    den = 2 * np.cos(2 * np.pi * q / h)[:, None] + 2 * np.cos(2 * np.pi * r / w)[None, :] - 4
    den[0, 0] = 1.0
    # +v on row 0 and -v on row h-1: a factor 1 - exp(2 pi i q / h) per frequency (columns alike)
    a = (1 - np.exp(2j * np.pi * q / h)).astype(np.complex64)
    b = (1 - np.exp(2j * np.pi * r / w)).astype(np.complex64)
    top = np.fft.rfft(v1, axis=1).astype(np.complex64)
    left = np.fft.fft(v2, axis=1).astype(np.complex64)
    spectrum = top[:, None, :] * a[None, :, None] + left[:, :, None] * b[None, None, :]
    spectrum *= (1 / den).astype(np.float32)
    spectrum[:, 0, 0] = 0.0
    return np.fft.irfft2(spectrum, s=(h, w)).astype(np.float32)
