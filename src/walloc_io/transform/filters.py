"""CDF 9/7 (``bior4.4``) filters and the block-circulant kernels of a packet stage.

The reference here is deliberately plain numpy in float64: one level of the periodized
discrete wavelet transform, aligned sample-for-sample with ``pywt.dwt(x, "bior4.4",
mode="periodization")``. :func:`stage_kernels` composes ``s`` such levels over the full
packet tree and reads off the equivalent block-circulant convolution, which is what the
torch transform runs (one multi-channel convolution per stage instead of ``s`` levels of
single-channel ones, roughly twice as fast on CPU).
"""

from __future__ import annotations

from functools import cache

import numpy as np

# Taps as PyWavelets 1.x defines ``bior4.4`` (tests compare against pywt directly).
DEC_LO = np.array([
    0.0, 0.03782845550726404, -0.023849465019556843, -0.11062440441843718,
    0.37740285561283066, 0.8526986790088938, 0.37740285561283066,
    -0.11062440441843718, -0.023849465019556843, 0.03782845550726404,
])
DEC_HI = np.array([
    -0.0, -0.06453888262869706, 0.04068941760916406, 0.41809227322161724,
    -0.7884856164055829, 0.41809227322161724, 0.04068941760916406,
    -0.06453888262869706, -0.0, 0.0,
])
REC_LO = np.array([
    0.0, -0.06453888262869706, -0.04068941760916406, 0.41809227322161724,
    0.7884856164055829, 0.41809227322161724, -0.04068941760916406,
    -0.06453888262869706, 0.0, 0.0,
])
REC_HI = np.array([
    0.0, -0.03782845550726404, -0.023849465019556843, 0.11062440441843718,
    0.37740285561283066, -0.8526986790088938, 0.37740285561283066,
    0.11062440441843718, -0.023849465019556843, -0.03782845550726404,
])
_FWD_SHIFT = 4  # pywt periodization: cA[k] = sum_j dec_lo[F-1-j] x[(2k + j - 4) mod N]
_INV_SHIFT = 5  # x[n] = sum_j rec[F-1-j] up(c)[(n + j - 5) mod N], even-phase upsampling


def _wrap(x: np.ndarray, left: int, length: int) -> np.ndarray:
    n = x.shape[-1]
    return x[..., (np.arange(length) - left) % n]


def analysis_level(x: np.ndarray) -> np.ndarray:
    """One periodized DWT level along the last axis: ``(..., N) -> (..., 2, N/2)``."""
    n, taps = x.shape[-1], len(DEC_LO)
    xp = _wrap(x, _FWD_SHIFT, n + taps - 2)
    win = np.lib.stride_tricks.sliding_window_view(xp, taps, axis=-1)[..., ::2, :]
    return np.stack([win @ DEC_LO[::-1], win @ DEC_HI[::-1]], axis=-2)


def synthesis_level(c: np.ndarray) -> np.ndarray:
    """Inverse of :func:`analysis_level`: ``(..., 2, N/2) -> (..., N)``."""
    half, taps = c.shape[-1], len(REC_LO)
    up = np.zeros(c.shape[:-1] + (2 * half,))
    up[..., 0::2] = c
    up = _wrap(up, _INV_SHIFT, 2 * half + taps - 1)
    win = np.lib.stride_tricks.sliding_window_view(up, taps, axis=-1)
    return win[..., 0, :, :] @ REC_LO[::-1] + win[..., 1, :, :] @ REC_HI[::-1]


def packet_analysis(x: np.ndarray, levels: int) -> np.ndarray:
    """Full packet tree along the last axis: ``(..., N) -> (..., 2**levels, N / 2**levels)``.

    Band ``b`` is the path of low/high choices, first level most significant, which is the
    channel-major order of repeating a one-level split ``levels`` times.
    """
    y = x[..., None, :]
    for _ in range(levels):
        y = analysis_level(y)  # (..., bands, 2, half)
        y = y.reshape(y.shape[:-3] + (-1, y.shape[-1]))
    return y


def packet_synthesis(y: np.ndarray, levels: int) -> np.ndarray:
    """Inverse of :func:`packet_analysis`."""
    for _ in range(levels):
        y = y.reshape(y.shape[:-2] + (-1, 2, y.shape[-1]))
        y = synthesis_level(y)
    return y[..., 0, :]


@cache
def stage_kernels(levels: int) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Block-circulant form of a ``levels``-deep packet stage along one axis.

    With ``B = 2**levels`` and the signal cut into blocks of ``B`` samples (``xb[p, k] =
    x[B*k + p]``), the stage is ``y[b, k] = sum_{p, j} A[b, p, j] xb[p, k + j + a]`` and its
    inverse ``xb[p, k] = sum_{b, j} S[p, b, j] y[b, k + j + s]`` (indices modulo the block
    count). Returns ``(A, a, S, s)``; ``a`` and ``s`` are the (negative) left offsets.
    """
    block = 2 ** levels
    nblocks = 32  # > support of the composite filters in blocks, so nothing aliases
    k0 = nblocks // 2
    eye = np.eye(block * nblocks)
    fwd = packet_analysis(eye, levels)  # [input sample n, band b, block k]
    inv = packet_synthesis(eye.reshape(-1, block, nblocks), levels)  # [(b, k), sample n]
    fwd_taps = fwd[:, :, k0].reshape(nblocks, block, block)  # [block, p, b]
    inv_taps = inv.reshape(block, nblocks, nblocks, block)[:, :, k0, :]  # [b, block, p]
    a, a_end = _support(np.abs(fwd_taps).sum(axis=(1, 2)))
    s, s_end = _support(np.abs(inv_taps).sum(axis=(0, 2)))
    analysis = fwd_taps[a:a_end].transpose(2, 1, 0)  # [b, p, j]
    synthesis = inv_taps[:, s:s_end].transpose(2, 0, 1)  # [p, b, j]
    return analysis.copy(), a - k0, synthesis.copy(), s - k0


def _support(weight: np.ndarray) -> tuple[int, int]:
    nonzero = np.flatnonzero(weight > 1e-14)
    return int(nonzero[0]), int(nonzero[-1]) + 1
