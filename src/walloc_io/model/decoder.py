"""Decoder networks at latent resolution: a linear path plus an optional residual CNN."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn


def conv(ndim: int, cin: int, cout: int, kernel: int = 1) -> nn.Module:
    cls = nn.Conv2d if ndim == 2 else nn.Conv1d
    return cls(cin, cout, kernel, padding=kernel // 2, padding_mode="replicate" if kernel > 1 else "zeros")


@dataclass(frozen=True)
class BlockPrecision:
    """Residual blocks in ``dtype`` (e.g. ``torch.bfloat16``) but those numbered in
    ``keep`` (from 0), which stay in the latents' dtype: a model whose blocks make large
    increments loses quality when they are rounded (rgb-4x's block 3)."""

    dtype: torch.dtype
    keep: tuple[int, ...] = ()


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: rescale channels by a gate computed from their global means."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.flatten(2).mean(-1)
        scale = torch.sigmoid(self.gate(mean))
        return x * scale.view(scale.shape + (1,) * (x.ndim - 2))


class ResidualBlock(nn.Module):
    def __init__(self, ndim: int, channels: int, kernel: int, attention: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(ndim, channels, channels, kernel), nn.GELU(), conv(ndim, channels, channels, kernel)
        )
        self.attention = ChannelAttention(channels) if attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attention(self.body(x))


class Decoder(nn.Module):
    """Map dequantised latents ``(N, latent, ...)`` to packet coefficients ``(N, packet, ...)``.

    ``linear`` is the PCA-like inverse of the encoder (``linear_kernel`` wide: 1 decodes
    each position alone); the residual network, whose last layer starts at zero, learns
    what a linear decoder cannot (texture, de-quantisation).
    """

    def __init__(
        self, ndim: int, latent: int, packet: int, hidden: int, blocks: int, kernel: int,
        attention: bool, linear_kernel: int = 1,
    ) -> None:
        super().__init__()
        self.linear = conv(ndim, latent, packet, linear_kernel)
        self.residual: nn.Module | None = None
        if blocks > 0:
            tail = conv(ndim, hidden, packet)
            for param in tail.parameters():  # weight and bias: the residual starts at zero
                nn.init.zeros_(param)
            layers = [conv(ndim, latent, hidden, kernel), nn.GELU()]
            layers += [ResidualBlock(ndim, hidden, kernel, attention) for _ in range(blocks)]
            self.residual = nn.Sequential(*layers, nn.GELU(), tail)
        # dtype -> (the weights' identity, cast copies of the blocks): not in the state dict
        self._cast_copies: dict[torch.dtype, tuple[tuple, list[ResidualBlock]]] = {}

    def forward(self, z: torch.Tensor, reduced: BlockPrecision | None = None) -> torch.Tensor:
        """``reduced`` (inference only): the residual blocks' convolutions in a narrower
        dtype, but for the blocks it keeps. The skip path through the blocks, the first and
        last layers and the linear path stay in ``z``'s dtype, so only each block's increment
        is rounded. What a model tolerates is measured per model
        (``scripts/check_precision.py``); see :func:`walloc_io.codec.pick_precision`."""
        out = self.linear(z)
        if self.residual is None:
            return out
        if reduced is None or reduced.dtype == z.dtype:
            return out + self.residual(z)
        h, copies, index = z, iter(self._cast_blocks(reduced.dtype)), 0
        for layer in self.residual.children():
            if isinstance(layer, ResidualBlock):
                block = next(copies)
                if index in reduced.keep:
                    h = layer(h)
                else:
                    h = h + block.attention(block.body(h.to(reduced.dtype))).to(z.dtype)
                index += 1
            else:
                h = layer(h)
        return out + h

    def _cast_blocks(self, dtype: torch.dtype) -> list[ResidualBlock]:
        """Copies of the residual blocks cast to ``dtype``, made once and remade when any
        of their weights changes (training, a state load): runtime state, not weights."""
        blocks = [m for m in self.residual.children() if isinstance(m, ResidualBlock)] \
            if self.residual is not None else []
        key = tuple((p.data_ptr(), p._version) for b in blocks for p in b.parameters())
        cached = self._cast_copies.get(dtype)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                copies = [copy.deepcopy(b).to(dtype).eval().requires_grad_(False)
                          for b in blocks]
            cached = self._cast_copies[dtype] = (key, copies)
        return cached[1]
