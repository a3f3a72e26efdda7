"""The WaLLoC network: packet transform -> linear encoder -> companding -> decoder -> inverse."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..config import CodecConfig
from ..transform import PacketTransform
from .bottleneck import Companding, LaplaceRate
from .decoder import Decoder, conv


class TrainOutput(NamedTuple):
    reconstruction: torch.Tensor
    bits: torch.Tensor  # rate-proxy bits for the whole batch


class WallocModel(nn.Module):
    """Signals in ``[-1/2, 1/2]``, shape ``(N, C, *signal)``, to integer latents and back.

    Workflow: train ``forward`` (noisy bottleneck, rate proxy), then freeze integer tables
    (:mod:`walloc_io.entropy`); coding uses ``encode_latents`` / ``decode_latents`` only.
    """

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        nd, packet = config.signal_ndim, config.packet_channels
        self.transform = PacketTransform(nd, config.levels)
        self.encoder = conv(nd, packet, config.latent_channels)
        self.companding = Companding(config.latent_bits)
        self.decoder = Decoder(
            nd, config.latent_channels, packet, config.decoder_channels,
            config.decoder_blocks, config.decoder_kernel, config.decoder_attention,
        )
        self.rate = LaplaceRate(config.latent_channels)

    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """Companded, unquantised latents (real-valued, within ``+-max_symbol + 1/2``)."""
        return self.companding(self.encoder(self.transform(x)))

    def synthesise(self, y: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Quantised (or noisy) latents -> signal in ``[-1/2, 1/2]`` (``clamp=False``: the
        network's output as is, for a caller that adds a boundary part first)."""
        x = self.transform.inverse(self.decoder(self.companding.inverse(y)))
        return x.clamp(-0.5, 0.5) if clamp else x

    def encode_latents(self, x: torch.Tensor, step: float = 1.0) -> torch.Tensor:
        """Integer codes: companded latents rounded on a grid of ``step`` (1: the integers;
        see :mod:`walloc_io.quality`)."""
        if step == 1.0:
            return self.companding.quantise(self.analyse(x), noisy=False).to(torch.int32)
        z = self.encoder(self.transform(x))
        y = (self.companding.amplitude / step) * torch.erf(z / math.sqrt(2))
        return torch.round(y).to(torch.int32)

    def decode_latents(self, latents: torch.Tensor, step: float | torch.Tensor = 1.0,
                       clamp: bool = True) -> torch.Tensor:
        """Integer codes (times their quantisation ``step``, a scalar or one per item) ->
        signals in ``[-1/2, 1/2]`` (``clamp``: see :meth:`synthesise`)."""
        dtype = next(self.decoder.parameters()).dtype
        y = latents.to(dtype)
        if not (isinstance(step, float) and step == 1.0):
            step = torch.as_tensor(step, dtype=dtype, device=y.device)
            y = y * step.reshape(-1, *(1,) * (y.ndim - 1)) if step.ndim else y * step
        return self.synthesise(y, clamp)

    def forward(self, x: torch.Tensor, step: torch.Tensor | float = 1.0) -> TrainOutput:
        """Training/validation pass; ``step``: quantisation step per item ``(N,)`` or one
        for all (variable-rate training for the quality knob)."""
        if torch.is_tensor(step):
            step = step.reshape(-1, *(1,) * (x.ndim - 1)).to(x.dtype)
        y = self.companding.quantise(self.analyse(x), noisy=self.training, step=step)
        return TrainOutput(self.synthesise(y), self.rate(y, step))
