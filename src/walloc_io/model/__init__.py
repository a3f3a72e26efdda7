"""Networks: linear encoder, companding bottleneck, decoder at latent resolution."""

from .autoencoder import TrainOutput, WallocModel
from .bottleneck import Companding, LaplaceRate
from .decoder import Decoder

__all__ = ["Companding", "Decoder", "LaplaceRate", "TrainOutput", "WallocModel"]
