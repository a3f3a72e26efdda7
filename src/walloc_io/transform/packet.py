"""Wavelet packet transform (CDF 9/7, periodization, full tree) for 1D and 2D signals in torch.

Channel order follows repeating a one-level split ``levels`` times, each split producing
``(L, H)`` (1D) or ``(LL, LH, HL, HH)`` = pywt's ``(cA, cH, cV, cD)`` (2D) per channel,
channel-major. That is the order of pytorch-wavelets' ``DWTForward(J=1)`` applied J times,
so published WaLLoC checkpoints map onto this transform without permutation.
"""

from __future__ import annotations

import math
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


def _wrap(x: torch.Tensor, start: int, length: int, dim: int = -1) -> torch.Tensor:
    """``x.index_select(dim, (start + arange(length)) % n)`` from slices, in one copy.

    ``length`` always exceeds ``n - start % n`` here (filters are longer than one tap), so
    the result is a ``torch.cat`` of views: contiguous, with no gather.
    """
    n, pos, pieces = x.shape[dim], start % x.shape[dim], []
    while length > 0:
        take = min(n - pos, length)
        pieces.append(x.narrow(dim, pos, take))
        length, pos = length - take, 0
    return torch.cat(pieces, dim)


def _circular_conv(x: torch.Tensor, weight: torch.Tensor, offset: int) -> torch.Tensor:
    """``y[:, o, k] = sum_{i, j} weight[o, i, j] x[:, i, (k + j + offset) mod n]``."""
    return F.conv1d(_wrap(x, offset, x.shape[-1] + weight.shape[-1] - 1), weight)


def _polyphase(x: torch.Tensor, dim: int, block: int, offset: int, taps: int) -> torch.Tensor:
    """Polyphase view of axis ``dim`` with circular extension, in one copy.

    ``x[..., n, ...] -> out[..., block, m + taps - 1, ...]`` (``m = n / block``) where
    ``out[..., i, j, ...] = x[..., ((j + offset) mod m) * block + i, ...]``: the phases become
    channels for a convolution along the blocks, without a separate pad or transpose.
    """
    m = x.shape[dim] // block
    blocks = x.reshape(*x.shape[:dim], m, block, *x.shape[dim + 1:]).movedim(dim + 1, dim)
    return _wrap(blocks, offset, m + taps - 1, dim + 1)


def _conv_along(p: torch.Tensor, dim: int, weight: torch.Tensor) -> torch.Tensor:
    """Convolve the polyphase tensor ``p`` (phases at ``dim``, blocks at ``dim + 1``)."""
    lead, trail = p.shape[:dim], p.shape[dim + 2:]
    rows, rest = math.prod(lead), math.prod(trail)
    if rest == 1:
        y = F.conv1d(p.reshape(rows, p.shape[dim], -1), weight)
    else:
        y = F.conv2d(p.reshape(rows, p.shape[dim], -1, rest), weight.unsqueeze(-1))
    return y.reshape(*lead, weight.shape[0], -1, *trail)


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

    def _axis_forward(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Packet split of axis ``dim``: ``(..., N, ...) -> (..., bands, N / bands, ...)``."""
        for i, depth in enumerate(self.stages):
            weight = getattr(self, f"analysis{i}").to(x.dtype)
            p = _polyphase(x, dim + i, 2 ** depth, self.offsets[i][0], weight.shape[-1])
            x = _conv_along(p, dim + i, weight)
        shape = x.shape
        return x.reshape(*shape[:dim], self.factor, *shape[dim + len(self.stages):])

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
        n, c, f = x.shape[0], x.shape[1], self.factor
        if self.ndim == 1:
            return self._axis_forward(x, 2).reshape(n, c * f, -1)
        h, w = x.shape[2] // f, x.shape[3] // f
        y = self._axis_forward(self._axis_forward(x, 2), 4)  # (n, c, ph, h', pw, w')
        y = y.permute(0, 1, 2, 4, 3, 5).reshape(n, c * f * f, h, w)  # (c, ph, pw) layout
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
