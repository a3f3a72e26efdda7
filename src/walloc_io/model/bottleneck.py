"""Entropy bottleneck: Gaussian-CDF companding, noisy/rounded quantisation, a rate proxy.

Training uses additive uniform noise in the companded domain (a differentiable stand-in for
rounding) and a per-channel Laplace density as the rate term. At inference latents are
rounded to integers in ``[-max_symbol, max_symbol]``; the bits actually spent come from the
frozen integer tables of :mod:`walloc_io.entropy`, not from this density.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_EPS = 1e-3


class Companding(nn.Module):
    """``y = 2M (Phi(z) - 1/2)`` with ``M = 2**(bits-1) - 1 + 1/2 - eps``, and its inverse.

    Rounding ``y`` then gives integers in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``.
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.max_symbol = 2 ** (bits - 1) - 1
        self.amplitude = self.max_symbol + 0.5 - _EPS

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.erf(z / math.sqrt(2))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y = y.clamp(-self.max_symbol, self.max_symbol)
        return math.sqrt(2) * torch.erfinv(y / self.amplitude)

    def quantise(self, y: torch.Tensor, noisy: bool, step: torch.Tensor | float = 1.0
                 ) -> torch.Tensor:
        """Uniform noise (training) or rounding (inference) on a grid of ``step`` (a scalar
        or one per item, see :mod:`walloc_io.quality`), kept inside the symbol range."""
        if noisy:
            y = y + torch.empty_like(y).uniform_(-0.5, 0.5) * step
            return y.clamp(-self.max_symbol, self.max_symbol)
        return (torch.round(y / step) * step).clamp(-self.max_symbol, self.max_symbol)


class LaplaceRate(nn.Module):
    """Differentiable bits estimate: a learned Laplace density per latent channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.full((channels,), 2.0))

    def forward(self, y: torch.Tensor, step: torch.Tensor | float = 1.0) -> torch.Tensor:
        """Total bits of ``y`` (``(N, C, ...)``, noisy values on a grid of ``step``, a scalar
        or ``(N, 1, ...)``) under the density: the mass of each value's bin."""
        shape = (1, -1) + (1,) * (y.ndim - 2)
        loc, scale = self.loc.view(shape), self.log_scale.exp().view(shape)
        half = 0.5 * step
        upper, lower = self._cdf(y + half, loc, scale), self._cdf(y - half, loc, scale)
        prob = (upper - lower).clamp_min(1e-9)
        return -torch.log2(prob).sum()

    @staticmethod
    def _cdf(v: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        d = (v - loc) / scale
        return 0.5 + 0.5 * torch.sign(d) * (1 - torch.exp(-d.abs()))
