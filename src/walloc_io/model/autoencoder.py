"""The WaLLoC network: packet transform -> linear encoder -> companding -> decoder -> inverse."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .. import quality
from ..config import CodecConfig
from ..transform import PacketTransform
from .bottleneck import Companding, LaplaceRate
from .decoder import BlockPrecision, Decoder, conv


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
            config.linear_kernel,
        )
        self.rate = LaplaceRate(config.latent_channels)

    def analyse(self, x: torch.Tensor) -> torch.Tensor:
        """Companded, unquantised latents (real-valued, within ``+-max_symbol + 1/2``)."""
        return self.companding(self.encoder(self.transform(x)))

    def synthesise(self, y: torch.Tensor, clamp: bool = True,
                   reduced: BlockPrecision | None = None,
                   inverse: Callable[[torch.Tensor], torch.Tensor] | None = None
                   ) -> torch.Tensor:
        """Quantised (or noisy) latents -> signal in ``[-1/2, 1/2]`` (``clamp=False``: the
        network's output as is, for a caller that adds a boundary part first;
        ``reduced``: the decoder's residual blocks in a narrower dtype, see
        :class:`Decoder`; ``inverse``: the inverse packet transform to use instead of
        ``self.transform.inverse``, e.g. :class:`~walloc_io.model.analysis.NativeSynthesis`
        when decoding on the CPU)."""
        bands = self.decoder(self.companding.inverse(y), reduced)
        x = (inverse or self.transform.inverse)(bands)
        return x.clamp(-0.5, 0.5) if clamp else x

    def grid(self, step: float | torch.Tensor, ndim: int, like: torch.Tensor
             ) -> float | torch.Tensor:
        """The quantisation step of every latent for global ``step`` (a float, or one per
        item): the float itself without rate allocation (``config.step_gains``), else a
        tensor broadcasting against latents of ``ndim`` dimensions, one step per channel."""
        cfg = self.config
        if not cfg.step_gains:
            if isinstance(step, float):
                return step
            step = torch.as_tensor(step, dtype=like.dtype, device=like.device)
            return step.reshape(-1, *(1,) * (ndim - 1)) if step.ndim else step
        s = step.detach().cpu().double().numpy() if torch.is_tensor(step) else np.float64(step)
        steps = quality.channel_steps(s, cfg.step_gains, cfg.latent_channels)
        t = torch.from_numpy(steps.reshape(-1, cfg.latent_channels))
        return t.to(dtype=like.dtype, device=like.device).reshape(*t.shape, *(1,) * (ndim - 2))

    def max_symbol(self, step: float = 1.0) -> int:
        """Largest code magnitude of any channel on global ``step`` (the tables' alphabet)."""
        cfg = self.config
        steps = quality.channel_steps(step, cfg.step_gains, cfg.latent_channels)
        return max(quality.max_symbol_at(float(s), self.companding.amplitude) for s in steps)

    def encode_latents(self, x: torch.Tensor, step: float = 1.0) -> torch.Tensor:
        """Integer codes: companded latents rounded on a grid of ``step`` (1: the integers;
        see :mod:`walloc_io.quality`; per channel with rate allocation)."""
        if step == 1.0 and not self.config.step_gains:
            return self.companding.quantise(self.analyse(x), noisy=False).to(torch.int32)
        z = self.encoder(self.transform(x))
        grid = self.grid(float(step), z.ndim, z)
        y = (self.companding.amplitude / grid) * torch.erf(z / math.sqrt(2))
        return torch.round(y).to(torch.int32)

    def decode_latents(self, latents: torch.Tensor, step: float | torch.Tensor = 1.0,
                       clamp: bool = True, reduced: BlockPrecision | None = None,
                       inverse: Callable[[torch.Tensor], torch.Tensor] | None = None
                       ) -> torch.Tensor:
        """Integer codes (times their quantisation ``step``, a scalar or one per item, per
        channel with rate allocation) -> signals in ``[-1/2, 1/2]`` (``clamp``, ``reduced``,
        ``inverse``: see :meth:`synthesise`)."""
        dtype = next(self.decoder.parameters()).dtype
        y = latents.to(dtype)
        if not (isinstance(step, float) and step == 1.0) or self.config.step_gains:
            y = y * self.grid(step, y.ndim, y)
        return self.synthesise(y, clamp, reduced, inverse)

    def forward(self, x: torch.Tensor, step: torch.Tensor | float = 1.0,
                clamp: bool = True) -> TrainOutput:
        """Training/validation pass; ``step``: quantisation step per item ``(N,)`` or one
        for all (variable-rate training for the quality knob); ``clamp=False`` leaves the
        reconstruction unclamped, for a caller that adds a part back before clamping (the
        boundary split's smooth part, as the codec does)."""
        y = self.analyse(x)
        grid = self.grid(step if torch.is_tensor(step) else float(step), y.ndim, y)
        y = self.companding.quantise(y, noisy=self.training, step=grid)
        return TrainOutput(self.synthesise(y, clamp), self.rate(y, grid))
