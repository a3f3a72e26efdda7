"""WaLLoC as a numcodecs codec (``id: "walloc"``), also a Zarr format-2 compressor.

Registered through the ``numcodecs.codecs`` entry point, so a process that never imported
walloc_io can do::

    >>> import numcodecs, numpy as np
    >>> codec = numcodecs.get_codec({"id": "walloc", "preset": "rgb-16x"})
    >>> images = np.random.default_rng(0).integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
    >>> codec.decode(codec.encode(images)).shape
    (2, 3, 64, 64)

The configuration is :class:`~walloc_io.codecs.options.ChunkCodecOptions` as JSON:
``preset`` or ``path`` (a codec directory), the model's ``fingerprint`` (filled in, so stores
stay readable when a preset is retrained or a directory moves), plus the chunk options of
:mod:`walloc_io.codecs.chunk` (``channel_last``, ``nan``, ``sample_rate``). The decoding
device is runtime state, not configuration (``device=`` or ``WALLOC_DEVICE``; default CPU).
The model is loaded lazily into a per-process cache and never pickled, so the codec ships
cheaply to Dask and DataLoader workers.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from numcodecs.abc import Codec as _NumcodecsCodec
from numcodecs.compat import ensure_bytes, ensure_ndarray_like

from ..errors import InputError
from .chunk import decode_chunk, encode_chunk
from .options import ChunkCodecOptions


class WallocCodec(_NumcodecsCodec):
    """numcodecs codec storing array chunks as WaLLoC streams (see the module docstring).

    ``encode`` takes an array whose trailing axes are one signal ``(..., C, H, W)`` /
    ``(..., C, T)`` (leading axes: a batch); ``decode`` returns it in its shape and dtype
    (lossy). Bytes that are not a WaLLoC chunk record raise :class:`BitstreamError`.

    Examples
    --------
    >>> import numpy as np
    >>> from walloc_io.codecs.numcodec import WallocCodec
    >>> codec = WallocCodec(preset="gray-16x")
    >>> chunk = np.full((2, 1, 32, 32), 100, np.uint8)  # two gray images
    >>> record = codec.encode(chunk)
    >>> back = codec.decode(record)
    >>> back.shape, back.dtype, len(record) < chunk.nbytes
    ((2, 1, 32, 32), dtype('uint8'), True)
    >>> sorted(codec.get_config())  # JSON only: no device, no loaded model
    ['channel_last', 'fingerprint', 'id', 'nan', 'preset', 'sample_rate']
    """

    codec_id = "walloc"

    def __init__(self, preset: str | None = None, path: str | None = None,
                 fingerprint: str | None = None, channel_last: bool = False, nan: str = "raise",
                 sample_rate: int = 0, quality: int | None = None,
                 max_abs_error: float | None = None, device: str | None = None) -> None:
        opts = ChunkCodecOptions(preset, path, fingerprint, channel_last, nan, sample_rate,
                                 quality, max_abs_error)
        # public attributes are the config (numcodecs' convention): options only
        self.preset, self.path, self.channel_last = opts.preset, opts.path, opts.channel_last
        self.nan, self.sample_rate, self.quality = opts.nan, opts.sample_rate, opts.quality
        self.max_abs_error = opts.max_abs_error
        self.fingerprint = opts.resolved_fingerprint()
        self._device, self._model = device, None

    @property
    def options(self) -> ChunkCodecOptions:
        return ChunkCodecOptions(self.preset, self.path, self.fingerprint, self.channel_last,
                                 self.nan, self.sample_rate, self.quality, self.max_abs_error)

    @classmethod
    def from_config(cls, config: dict) -> WallocCodec:
        return cls(**asdict(ChunkCodecOptions.from_config(config)))

    @property
    def codec(self):
        """The loaded :class:`walloc_io.Codec` (per-process cache)."""
        if self._model is None:
            self._model = self.options.load(self._device)
        return self._model

    def get_config(self) -> dict:
        return {"id": self.codec_id, **self.options.to_config()}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def encode(self, buf) -> bytes:
        arr = ensure_ndarray_like(buf)
        return encode_chunk(self.codec, np.asarray(arr), channel_last=self.channel_last,
                            nan=self.nan, sample_rate=self.sample_rate, quality=self.quality,
                            max_abs_error=self.max_abs_error)

    def decode(self, buf, out=None):
        arr = decode_chunk(self.codec, ensure_bytes(buf))
        if out is None:
            return arr
        out = ensure_ndarray_like(out)
        flat = out.reshape(-1).view(arr.dtype) if out.dtype != arr.dtype else out.reshape(-1)
        if flat.size != arr.size:
            raise InputError(f"decode out= holds {flat.size} values, chunk has {arr.size}")
        flat[...] = arr.reshape(-1)
        return out

    def __repr__(self) -> str:
        source = f"preset={self.preset!r}" if self.preset else f"path={self.path!r}"
        return f"WallocCodec({source}, channel_last={self.channel_last}, nan={self.nan!r})"
