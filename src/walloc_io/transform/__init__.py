"""Wavelet packet transform: CDF 9/7 (``bior4.4``) with periodization, 1D and 2D."""

from .packet import PacketTransform

__all__ = ["PacketTransform"]
