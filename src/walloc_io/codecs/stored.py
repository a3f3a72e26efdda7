"""The raw side of a WaLLoC-encoded Zarr array: its codec options and stored chunk records.

Latent views, Dask decoding and the torch dataset read chunk records through this (undoing
any bytes-to-bytes codec after walloc, such as the default Zstd) so that only entropy
decoding runs. Sharded Zarr v3 arrays work too: the record of an inner chunk is located
through its shard's index as the sharding spec lays it out (C-order ``(offset, nbytes)``
uint64 pairs, at the shard's end or start) and fetched with a byte-range read, so a latent
view never reads more of a shard than the chunks it needs. Imports zarr lazily, and no Dask
or torch.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BitstreamError, InputError
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
        self.chunks = tuple(array.chunks)  # inner chunks of a sharded array
        config, self.bytes_codecs, self.sharding = _walloc_options(meta)
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

        from zarr.abc.store import RangeByteRequest
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        meta, store = self.array.metadata, self.array.store
        prototype = default_buffer_prototype()
        shard = self.sharding
        prefix = f"{self.array.path}/" if self.array.path else ""  # arrays inside a group

        async def fetch(key: str, byte_range=None):
            return await store.get(prefix + key, prototype=prototype, byte_range=byte_range)

        indexes: dict[str, asyncio.Task] = {}  # one index read per shard, however many chunks

        async def one(coords):
            if shard is None:
                stored = coords
                buf = await fetch(meta.encode_chunk_key(coords))
            else:  # the inner chunk's slot in its shard's index, then a byte-range read
                stored = tuple(c // n for c, n in zip(coords, shard.per_shard))
                key = meta.encode_chunk_key(stored)
                if key not in indexes:
                    indexes[key] = asyncio.ensure_future(shard.index(fetch, key))
                slot = (await indexes[key]).get(tuple(c % n for c, n in zip(coords, shard.per_shard)))
                buf = None if slot is None else await fetch(
                    key, RangeByteRequest(slot[0], slot[0] + slot[1]))
            if buf is None:
                return None
            spec = meta.get_chunk_spec(stored, self.array.config, prototype)
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
        return encode_chunk(self.codec(), self.fill_chunk(), channel_last=self.channel_last,
                            quality=self.options.quality)


class ShardLayout:
    """Where inner chunk records sit in the shards of a sharded array (Zarr v3 sharding spec)."""

    def __init__(self, sharding, shard_shape: tuple[int, ...]) -> None:
        from zarr.codecs import Crc32cCodec

        inner = tuple(sharding.chunk_shape)
        self.per_shard = tuple(s // c for s, c in zip(shard_shape, inner))
        self.count = math.prod(self.per_shard)
        self.checksum = any(isinstance(c, Crc32cCodec) for c in sharding.index_codecs)
        self.at_end = str(getattr(sharding.index_location, "value", sharding.index_location)) == "end"
        self.size = 16 * self.count + (4 if self.checksum else 0)

    async def index(self, fetch, key: str) -> dict[tuple[int, ...], tuple[int, int]]:
        """``{inner coords: (offset, nbytes)}`` of the chunks present in shard ``key``."""
        from zarr.abc.store import RangeByteRequest, SuffixByteRequest

        buf = await fetch(key, SuffixByteRequest(self.size) if self.at_end
                          else RangeByteRequest(0, self.size))
        if buf is None:
            return {}
        raw = buf.to_bytes()
        if len(raw) != self.size:
            raise BitstreamError(f"shard {key}: index of {len(raw)} bytes, expected {self.size}")
        pairs = np.frombuffer(raw[: 16 * self.count], "<u8").reshape(self.count, 2)
        empty = np.iinfo(np.uint64).max
        return {tuple(int(v) for v in np.unravel_index(i, self.per_shard)): (int(o), int(n))
                for i, (o, n) in enumerate(pairs) if o != empty or n != empty}


def _walloc_options(meta) -> tuple[dict, list, ShardLayout | None]:
    from zarr.codecs import ShardingCodec

    from ..codecs.numcodec import WallocCodec
    from ..codecs.zarr3 import WallocZarrCodec

    if getattr(meta, "zarr_format", 3) == 2:
        if isinstance(meta.compressor, WallocCodec) and not meta.filters:
            return meta.compressor.get_config(), [], None
        raise InputError(f"not a WaLLoC-encoded Zarr array (compressor {meta.compressor!r}, "
                         f"filters {meta.filters!r})")
    codecs, sharding = list(meta.codecs), None
    if len(codecs) == 1 and isinstance(codecs[0], ShardingCodec):
        sharding = ShardLayout(codecs[0], tuple(meta.chunk_grid.chunk_shape))
        codecs = list(codecs[0].codecs)
    for i, c in enumerate(codecs):
        if isinstance(c, WallocZarrCodec):
            if i:
                raise InputError("array-to-array codecs before walloc are not supported here")
            return c.to_dict()["configuration"], codecs[i + 1:], sharding
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
