"""Decoder networks at latent resolution: a linear path plus an optional residual CNN."""

from __future__ import annotations

import torch
from torch import nn


def conv(ndim: int, cin: int, cout: int, kernel: int = 1) -> nn.Module:
    cls = nn.Conv2d if ndim == 2 else nn.Conv1d
    return cls(cin, cout, kernel, padding=kernel // 2, padding_mode="replicate" if kernel > 1 else "zeros")


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

    ``linear`` is the PCA-like inverse of the encoder; the residual network, whose last
    layer starts at zero, learns what a linear decoder cannot (texture, de-quantisation).
    """

    def __init__(
        self, ndim: int, latent: int, packet: int, hidden: int, blocks: int, kernel: int,
        attention: bool,
    ) -> None:
        super().__init__()
        self.linear = conv(ndim, latent, packet)
        self.residual: nn.Module | None = None
        if blocks > 0:
            tail = conv(ndim, hidden, packet)
            for param in tail.parameters():  # weight and bias: the residual starts at zero
                nn.init.zeros_(param)
            layers = [conv(ndim, latent, hidden, kernel), nn.GELU()]
            layers += [ResidualBlock(ndim, hidden, kernel, attention) for _ in range(blocks)]
            self.residual = nn.Sequential(*layers, nn.GELU(), tail)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.linear(z)
        return out if self.residual is None else out + self.residual(z)
