"""Wavelet packet transform (CDF 9/7, periodization, full tree) for 1D and 2D signals in torch.

Channel order follows repeating a one-level split ``levels`` times, each split producing
``(L, H)`` (1D) or ``(LL, LH, HL, HH)`` = pywt's ``(cA, cH, cV, cD)`` (2D) per channel,
channel-major. That is the order of pytorch-wavelets' ``DWTForward(J=1)`` applied J times,
so published WaLLoC checkpoints map onto this transform without permutation.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .filters import stage_kernels

MAX_STAGE_LEVELS = 3  # deeper stages make wide, sparse kernels; 3 is the CPU sweet spot


def _stages(levels: int) -> list[int]:
    full, rest = divmod(levels, MAX_STAGE_LEVELS)
    return [MAX_STAGE_LEVELS] * full + ([rest] if rest else [])


@lru_cache(maxsize=64)
def _interleave_order(channels: int, levels: int) -> torch.Tensor:
    """Map ``(c, h_path, w_path)`` layout to the recursive ``(c, f1, ..., fJ)`` order."""
    bands = 2 ** levels
    c, ph, pw = np.meshgrid(np.arange(channels), np.arange(bands), np.arange(bands), indexing="ij")
    target = c * 4 ** levels
    for lev in range(levels):
        shift = levels - 1 - lev
        hb, wb = (ph >> shift) & 1, (pw >> shift) & 1
        target = target + (hb + 2 * wb) * 4 ** shift
    order = np.empty(target.size, dtype=np.int64)
    order[target.ravel()] = np.arange(target.size)
    return torch.from_numpy(order)


def _circular_conv(x: torch.Tensor, weight: torch.Tensor, offset: int) -> torch.Tensor:
    """``y[:, o, k] = sum_{i, j} weight[o, i, j] x[:, i, (k + j + offset) mod n]``."""
    n, taps = x.shape[-1], weight.shape[-1]
    index = (torch.arange(n + taps - 1, device=x.device) + offset) % n
    return F.conv1d(x.index_select(-1, index), weight)


class PacketTransform(nn.Module):
    """Full wavelet packet transform of depth ``levels`` over the last ``ndim`` axes.

    Parameters
    ----------
    ndim : {1, 2}
        Number of signal axes: ``(N, C, T)`` for 1, ``(N, C, H, W)`` for 2.
    levels : int
        Depth J; each signal axis must be divisible by ``2**levels``.

    Examples
    --------
    >>> t = PacketTransform(ndim=2, levels=2)
    >>> x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    >>> y = t(x)
    >>> tuple(y.shape)
    (1, 48, 4, 4)
    >>> bool(torch.allclose(t.inverse(y), x))
    True
    """

    def __init__(self, ndim: int, levels: int) -> None:
        super().__init__()
        if ndim not in (1, 2) or levels < 1:
            raise ValueError(f"need ndim in (1, 2) and levels >= 1, got {ndim=}, {levels=}")
        self.ndim, self.levels, self.stages = ndim, levels, _stages(levels)
        self.offsets: list[tuple[int, int]] = []
        for i, depth in enumerate(self.stages):
            ana, ana_off, syn, syn_off = stage_kernels(depth)
            self.register_buffer(f"analysis{i}", torch.from_numpy(ana), persistent=False)
            self.register_buffer(f"synthesis{i}", torch.from_numpy(syn), persistent=False)
            self.offsets.append((ana_off, syn_off))

    @property
    def factor(self) -> int:
        """Down-sampling factor per signal axis, ``2**levels``."""
        return 2 ** self.levels

    def packet_channels(self, channels: int) -> int:
        return channels * self.factor ** self.ndim

    def _axis_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(R, N) -> (R, bands, N / bands)`` along the last axis, stage by stage."""
        for i, depth in enumerate(self.stages):
            block, (offset, _) = 2 ** depth, self.offsets[i]
            rows, n = x.shape[0], x.shape[-1]
            xb = x.reshape(-1, n // block, block).transpose(1, 2)
            weight = getattr(self, f"analysis{i}").to(x.dtype)
            x = _circular_conv(xb, weight, offset).reshape(rows, -1, n // block)
            x = x.reshape(-1, n // block) if i + 1 < len(self.stages) else x
        return x.reshape(-1, self.factor, x.shape[-1])

    def _axis_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_axis_forward`: ``(R, bands, M) -> (R, bands * M)``."""
        rows = y.shape[0]
        for i in reversed(range(len(self.stages))):
            block, (_, offset) = 2 ** self.stages[i], self.offsets[i]
            m = y.shape[-1]
            yb = y.reshape(-1, block, m)
            weight = getattr(self, f"synthesis{i}").to(y.dtype)
            y = _circular_conv(yb, weight, offset).transpose(1, 2).reshape(-1, m * block)
            y = y.reshape(rows, -1, m * block)
        return y.reshape(rows, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, x.shape[2:])
        if self.ndim == 1:
            n, c, t = x.shape
            return self._axis_forward(x.reshape(n * c, t)).reshape(n, -1, t // self.factor)
        n, c, h, w = x.shape
        f = self.factor
        y = self._axis_forward(x.reshape(-1, w))  # (n c h, pw, w')
        y = y.reshape(n, c, h, f, w // f).permute(0, 1, 3, 4, 2)  # (n, c, pw, w', h)
        y = self._axis_forward(y.reshape(-1, h))  # (n c pw w', ph, h')
        y = y.reshape(n, c, f, w // f, f, h // f).permute(0, 1, 4, 2, 5, 3)
        y = y.reshape(n, c * f * f, h // f, w // f)  # (c, ph, pw) layout
        return y.index_select(1, self._order(c, y.device))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        f = self.factor
        if self.ndim == 1:
            n, pc, t = y.shape
            return self._axis_inverse(y.reshape(-1, f, t)).reshape(n, pc // f, t * f)
        n, pc, h, w = y.shape
        c = pc // (f * f)
        y = torch.empty_like(y).index_copy_(1, self._order(c, y.device), y)
        y = y.reshape(n, c, f, f, h, w).permute(0, 1, 3, 5, 2, 4)  # (n, c, pw, w', ph, h')
        x = self._axis_inverse(y.reshape(-1, f, h)).reshape(n, c, f, w, h * f)
        x = x.permute(0, 1, 4, 2, 3)  # (n, c, H, pw, w')
        return self._axis_inverse(x.reshape(-1, f, w)).reshape(n, c, h * f, w * f)

    def _order(self, channels: int, device: torch.device) -> torch.Tensor:
        return _interleave_order(channels, self.levels).to(device)

    def _check(self, x: torch.Tensor, spatial: tuple[int, ...]) -> None:
        if x.ndim != self.ndim + 2:
            raise ValueError(f"expected a {self.ndim + 2}-d batch, got shape {tuple(x.shape)}")
        if any(s % self.factor for s in spatial):
            raise ValueError(f"signal axes {tuple(spatial)} must be multiples of {self.factor}")
