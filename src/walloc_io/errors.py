"""Exceptions. Every error walloc-io raises on bad input is a :class:`WallocError`, which is
a :class:`ValueError`, so callers that already guard against bad values keep working."""


class WallocError(ValueError):
    """Base class of walloc-io's errors.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> codec = walloc_io.load_codec("gray-16x", device="cpu")
    >>> try:
    ...     codec.encode(np.zeros((3, 64, 64), np.uint8))  # three channels for a gray codec
    ... except ValueError as e:  # every WallocError is a ValueError
    ...     print(type(e).__name__)
    InputError
    """


class InputError(WallocError):
    """The signal handed to ``encode`` cannot be coded (rank, channels, dtype, size, NaN/Inf),
    or an argument is out of its domain.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> walloc_io.load_codec("gray-16x", device="cpu").encode(np.full((1, 32, 32), np.nan))
    Traceback (most recent call last):
    ...
    walloc_io.errors.InputError: ...
    """


class BitstreamError(WallocError):
    """A ``.wlc`` stream is malformed: bad magic, truncated, checksum mismatch, bad fields.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> codec = walloc_io.load_codec("gray-16x", device="cpu")
    >>> blob = codec.encode(np.zeros((1, 32, 32), np.uint8))
    >>> codec.decode(blob[:-3])
    Traceback (most recent call last):
    ...
    walloc_io.errors.BitstreamError: ...
    """


class ModelMismatchError(WallocError):
    """A stream was made by a different model than the one asked to decode it.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> blob = walloc_io.load_codec("rgb-16x", device="cpu").encode(np.zeros((3, 32, 32), np.uint8))
    >>> walloc_io.load_codec("rgb-4x", device="cpu").decode(blob)
    Traceback (most recent call last):
    ...
    walloc_io.errors.ModelMismatchError: stream was made by model ...
    """


class PresetError(WallocError):
    """A preset name or codec directory cannot be resolved or is incomplete.

    Examples
    --------
    >>> import walloc_io
    >>> walloc_io.load_codec("rgb-99x")
    Traceback (most recent call last):
    ...
    walloc_io.errors.PresetError: no preset or codec directory 'rgb-99x'; presets: ...
    """
