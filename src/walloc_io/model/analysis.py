"""The analysis half of a :class:`WallocModel` as one C call on the CPU, and the inverse
packet transform of the synthesis half (:class:`NativeSynthesis`).

``NativeAnalysis(model).latents(batch)`` equals ``model.encode_latents`` (the same packet
transform, linear encoder, companding and rounding; PyWavelets-checked lifting instead of the
convolution form) and is several times faster. Its arithmetic is single-threaded, with a
fixed order of operations and no floating-point contraction, so a given input gives the same
latents in every process, at every torch thread count and on every x86-64 CPU. On a CUDA
device the torch path is used; the two can differ only where a latent lies within float32
rounding of a half-integer (a tie), which moves that latent by one.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from ..quality import channel_steps, max_symbol_at
from ..transform.packet import _interleave_order
from .autoencoder import WallocModel


def _kernel():
    from . import _analysis

    return _analysis


class NativeAnalysis:
    """Weights of one model laid out for the kernel: ``[latent][channel][band_h][band_w]``."""

    def __init__(self, model: WallocModel) -> None:
        cfg = model.config
        self.channels, self.levels, self.ndim = cfg.channels, cfg.levels, cfg.signal_ndim
        encoder = cast(torch.nn.Conv2d, model.encoder)  # a 1x1 Conv1d/Conv2d: weight, bias
        weight = encoder.weight.detach().to(torch.float64).cpu().numpy()
        weight = weight.reshape(weight.shape[0], -1)
        if self.ndim == 2:  # packet channel t holds the (c, band_h, band_w) flat index order[t]
            order = _interleave_order(self.channels, self.levels).numpy()
            laid = np.empty_like(weight)
            laid[:, order] = weight
            weight = laid
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)
        bias = encoder.bias if encoder.bias is not None else torch.zeros(weight.shape[0])
        self.bias = np.ascontiguousarray(bias.detach().cpu().numpy(), dtype=np.float32)
        self.amplitude = float(model.companding.amplitude)
        self.max_symbol = int(model.companding.max_symbol)
        self.latent_channels = self.bias.size
        self.gains = cfg.step_gains

    def latents(self, x: np.ndarray, step: float = 1.0) -> np.ndarray:
        """``(N, C, *signal)`` -> int32 latents ``(N, L, *signal / 2**levels)``.

        ``x`` is float32 in ``[-1/2, 1/2]``, or raw uint8, normalised inside the kernel
        exactly as :func:`walloc_io.signal.prepare` does it (``x / 255 - 1/2`` in float32).
        ``step``: the quantisation step of the companded latents (see
        :mod:`walloc_io.quality`; per channel with rate allocation): the amplitude is
        divided by it before rounding.
        """
        n, c, *spatial = x.shape
        if len(spatial) != self.ndim or c != self.channels:
            raise ValueError(f"expected (N, {self.channels}, ...) with {self.ndim} signal axes, "
                             f"got {x.shape}")
        is_u8 = x.dtype == np.uint8
        low, span = (np.zeros(c, np.float32), np.full(c, 255, np.float32)) if is_u8 else (
            np.zeros(c, np.float32), np.ones(c, np.float32))
        x = np.ascontiguousarray(x) if is_u8 else np.ascontiguousarray(x, dtype=np.float32)
        h, w = (1, spatial[0]) if self.ndim == 1 else spatial
        f = 2 ** self.levels
        out = np.empty((n, self.latent_channels, *(s // f for s in spatial)), dtype=np.int32)
        _kernel().analyse(x, int(is_u8), n, c, h, w, self.levels, self.ndim, low, span,
                          self.weight, self.bias, *self._grid(step), out)
        return out

    def _grid(self, step: float) -> tuple[np.ndarray, np.ndarray]:
        """Per channel: the amplitude over the step (float64), and the largest code (int32)."""
        steps = channel_steps(step, self.gains, self.latent_channels)
        top = [self.max_symbol if s == 1.0 else max_symbol_at(s, self.amplitude) for s in steps]
        return (np.ascontiguousarray(self.amplitude / steps, dtype=np.float64),
                np.asarray(top, dtype=np.int32))


class NativeSynthesis:
    """The inverse packet transform as one C call on the CPU: the lifting steps of
    :class:`NativeAnalysis` undone, several times faster than the convolution form of
    :meth:`PacketTransform.inverse` on a photo (which was a quarter of rgb-16x's decoding
    time). Equal to it within float32 rounding (below 1e-6 of the range), not bit for bit:
    the codec uses it to decode on the CPU, and the torch form for error-bounded streams,
    whose residual was coded against that form's reconstruction."""

    def __init__(self, channels: int, levels: int, ndim: int) -> None:
        self.channels, self.levels, self.ndim = channels, levels, ndim
        bands = channels * (2 ** levels) ** ndim
        index = np.arange(bands, dtype=np.int32)  # (c, band_h, band_w) -> torch channel
        if ndim == 2:
            index[_interleave_order(channels, levels).numpy()] = np.arange(bands, dtype=np.int32)
        self.index = index

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Packet bands ``(N, C * F**ndim, *latent)`` (CPU, float32) -> signals
        ``(N, C, *latent * F)``, ``F = 2**levels``: as ``PacketTransform.inverse``."""
        n, bands, *axes = y.shape
        if len(axes) != self.ndim or bands != self.index.size:
            raise ValueError(f"expected (N, {self.index.size}, ...) with {self.ndim} axes, "
                             f"got {tuple(y.shape)}")
        f = 2 ** self.levels
        h, w = (1, axes[0] * f) if self.ndim == 1 else (axes[0] * f, axes[1] * f)
        bands_np = np.ascontiguousarray(y.detach().to("cpu", torch.float32).numpy())
        out = np.empty((n, self.channels, h, w), dtype=np.float32)
        _kernel().synthesise(bands_np, n, self.channels, h, w, self.levels, self.ndim,
                             self.index, out)
        return torch.from_numpy(out if self.ndim == 2 else out.reshape(n, self.channels, w))
