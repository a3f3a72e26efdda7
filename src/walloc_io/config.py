"""Codec configuration: a frozen dataclass that round-trips through JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from .errors import PresetError
from .quality import check_gains

MODALITIES = ("image", "audio")
ENTROPY_MODELS = ("histogram", "predictive", "contextual")


@dataclass(frozen=True)
class CodecConfig:
    """Everything that defines a WaLLoC codec's architecture (not its trained numbers).

    Parameters
    ----------
    name : str
        Preset or user-chosen name (informational).
    modality : {"image", "audio"}
        Images are 2D signals ``(C, H, W)``; audio is 1D ``(C, T)``.
    channels : int
        Signal channels the codec was trained on (3 for RGB, 2 for stereo, N for N bands).
    levels : int
        Wavelet packet depth J; each signal axis is split into ``2**levels`` bands.
    latent_channels : int
        Output channels of the linear encoder.
    latent_bits : int
        Latents are companded into ``2**latent_bits - 1`` integer levels around zero.
    decoder_channels, decoder_blocks, decoder_kernel : int
        Width, residual-block count and kernel size of the decoder network at latent
        resolution. ``decoder_blocks=0`` makes a purely linear decoder.
    decoder_attention : bool
        Add squeeze-and-excitation channel attention to each residual block.
    linear_kernel : int
        Kernel size (odd) of the decoder's linear path along every axis: 1 (every model
        before walloc-io 0.12) decodes each latent position alone; more lets the linear path
        see neighbouring positions (mono-16x version 5 is that path alone, 9 taps, fitted in
        closed form: :meth:`walloc_io.training.decoder.DecoderTrainer.fit_linear`).
    entropy_model : {"histogram", "predictive", "contextual"}
        ``histogram``: one frozen table per latent channel. ``predictive``: per channel, the
        better of raw, left-, up- or planar-difference coding (chosen when tables are frozen),
        each symbol's table chosen by the energy of the channels coded before it.
        ``contextual`` (walloc-io 0.8): ``predictive`` whose contexts also see the channel's
        own causal neighbours (the tables carry their weight).
    step_gains : tuple of tuples of int
        Rate allocation: each latent channel's quantisation step relative to the quality's,
        in sixteenths of an octave, at each :data:`walloc_io.quality.GAIN_KNOTS` quality
        (fitted after training; empty: one step for every channel).

    Examples
    --------
    >>> c = CodecConfig(levels=3, latent_channels=12)
    >>> c.dimensionality_reduction
    16.0
    >>> CodecConfig.from_json(c.to_json()) == c
    True
    """

    name: str = "custom"
    modality: str = "image"
    channels: int = 3
    levels: int = 3
    latent_channels: int = 12
    latent_bits: int = 8
    decoder_channels: int = 64
    decoder_blocks: int = 4
    decoder_kernel: int = 3
    decoder_attention: bool = False
    entropy_model: str = "predictive"
    step_gains: tuple[tuple[int, ...], ...] = ()
    linear_kernel: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.modality not in MODALITIES:
            problems.append(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.entropy_model not in ENTROPY_MODELS:
            problems.append(f"entropy_model must be one of {ENTROPY_MODELS}")
        if not 2 <= self.latent_bits <= 12:
            problems.append(f"latent_bits must be in [2, 12], got {self.latent_bits}")
        for field in ("channels", "levels", "latent_channels"):
            if getattr(self, field) < 1:
                problems.append(f"{field} must be >= 1")
        if self.decoder_blocks < 0 or self.decoder_kernel % 2 == 0:
            problems.append("decoder_blocks must be >= 0 and decoder_kernel odd")
        if self.linear_kernel < 1 or self.linear_kernel % 2 == 0:
            problems.append(f"linear_kernel must be odd and >= 1, got {self.linear_kernel}")
        object.__setattr__(self, "step_gains", tuple(tuple(r) for r in self.step_gains))
        problems += check_gains(self.step_gains, self.latent_channels)
        if problems:
            raise PresetError("invalid codec config: " + "; ".join(problems))

    @property
    def signal_ndim(self) -> int:
        return 2 if self.modality == "image" else 1

    @property
    def packet_channels(self) -> int:
        return self.channels * (2 ** self.levels) ** self.signal_ndim

    @property
    def dimensionality_reduction(self) -> float:
        return self.packet_channels / self.latent_channels

    @property
    def max_symbol(self) -> int:
        """Largest latent magnitude: latents lie in ``[-max_symbol, max_symbol]``."""
        return 2 ** (self.latent_bits - 1) - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields; ``step_gains`` only when set and ``linear_kernel`` only when
        not 1, so a config without rate allocation (every model before walloc-io 0.5) or
        without a wider linear path (every model before 0.12) keeps its JSON, hence its
        fingerprint."""
        d = dataclasses.asdict(self)
        if self.linear_kernel == 1:
            del d["linear_kernel"]
        if not self.step_gains:
            del d["step_gains"]
        else:
            d["step_gains"] = [list(r) for r in self.step_gains]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise PresetError(f"unknown codec config keys: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> CodecConfig:
        return cls.from_dict(json.loads(text))
