"""The raw side of a WaLLoC-encoded Zarr array: its codec options and stored chunk records.

Latent views, Dask decoding and the torch dataset read chunk records through this (undoing
any bytes-to-bytes codec after walloc, such as the default Zstd) so that only entropy
decoding runs. Imports zarr lazily, and no Dask or torch.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .chunk import encode_chunk
from .options import ChunkCodecOptions


class StoredArray:
    """A WaLLoC-encoded Zarr array: its codec settings and raw chunk records."""

    def __init__(self, source: Any) -> None:
        import zarr

        self.source = str(source) if isinstance(source, (str, Path)) else source
        array = zarr.open_array(self.source, mode="r") if isinstance(self.source, str) else source
        self.array = array
        meta = array.metadata
        self.shape, self.dtype = tuple(array.shape), np.dtype(array.dtype)
        self.chunks = tuple(array.chunks)
        config, self.bytes_codecs = _walloc_options(meta)
        self.options = ChunkCodecOptions.from_config(config)
        self.channel_last = self.options.channel_last

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if isinstance(self.source, str):
            state["array"] = None  # reopened by path in the worker
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.array is None:
            import zarr

            self.array = zarr.open_array(self.source, mode="r")

    def codec(self, device: str = "cpu"):
        return self.options.load(device)

    @property
    def grid(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / c) for n, c in zip(self.shape, self.chunks))

    def record(self, coords: tuple[int, ...]) -> bytes | None:
        """The stored chunk record at ``coords`` (None where zarr stored nothing)."""
        return self.records([coords])[0]

    def records(self, coords_list: list[tuple[int, ...]]) -> list[bytes | None]:
        """The stored records of many chunks, fetched concurrently in one event-loop call."""
        import asyncio

        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        a = self.array._async_array
        prototype = default_buffer_prototype()

        async def one(coords):
            buf = await (a.store_path / a.metadata.encode_chunk_key(coords)).get(prototype=prototype)
            if buf is None:
                return None
            spec = a.metadata.get_chunk_spec(coords, a.config, prototype)
            for c in reversed(self.bytes_codecs):
                (buf,) = await c.decode([(buf, spec)])
            return buf.to_bytes()

        async def gather():
            return await asyncio.gather(*(one(c) for c in coords_list))

        return list(sync(gather()))

    def fill_chunk(self) -> np.ndarray:
        """A chunk holding only the fill value (what zarr does not store)."""
        fill = self.array.metadata.fill_value
        return np.full(self.chunks, 0 if fill is None else fill, self.dtype)

    @functools.cached_property
    def fill_record(self) -> bytes:
        """The record such a chunk would have had: its latents are the fill value's."""
        return encode_chunk(self.codec(), self.fill_chunk(), channel_last=self.channel_last)


def _walloc_options(meta) -> tuple[dict, list]:
    from ..codecs.numcodec import WallocCodec
    from ..codecs.zarr3 import WallocZarrCodec

    if getattr(meta, "zarr_format", 3) == 2:
        if isinstance(meta.compressor, WallocCodec) and not meta.filters:
            return meta.compressor.get_config(), []
        raise InputError(f"not a WaLLoC-encoded Zarr array (compressor {meta.compressor!r}, "
                         f"filters {meta.filters!r})")
    codecs = list(meta.codecs)
    for i, c in enumerate(codecs):
        if isinstance(c, WallocZarrCodec):
            if i:
                raise InputError("array-to-array codecs before walloc are not supported here")
            return c.to_dict()["configuration"], codecs[i + 1:]
    names = [c.to_dict().get("name") for c in codecs]
    raise InputError(f"not a WaLLoC-encoded Zarr array (codecs {names})")


@functools.lru_cache(maxsize=32)
def _opened(source: str) -> StoredArray:
    return StoredArray(source)


def stored_array(source) -> StoredArray:
    """A path (opened once per process), a zarr array or a StoredArray as a StoredArray."""
    if isinstance(source, StoredArray):
        return source
    if isinstance(source, (str, Path)):
        return _opened(str(source))
    return StoredArray(source)
