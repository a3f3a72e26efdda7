"""Exceptions. Every error walloc-io raises on bad input is a :class:`WallocError`, which is
a :class:`ValueError`, so callers that already guard against bad values keep working."""


class WallocError(ValueError):
    """Base class of walloc-io's errors."""


class InputError(WallocError):
    """The signal handed to ``encode`` cannot be coded (rank, channels, dtype, size, NaN/Inf)."""


class BitstreamError(WallocError):
    """A ``.wlc`` stream is malformed: bad magic, truncated, checksum mismatch, bad fields."""


class ModelMismatchError(WallocError):
    """A stream was made by a different model than the one asked to decode it."""


class PresetError(WallocError):
    """A preset name or codec directory cannot be resolved or is incomplete."""
