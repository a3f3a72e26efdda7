"""WaLLoC-encoded Zarr arrays as Dask arrays: latent views and batched decoding::

    lat = walloc_io.open_latents("photos.zarr")                   # int32 latents, no decoder run
    x = walloc_io.decode_array("photos.zarr", chunks_per_task=16)  # signals, 16 chunks per call

Both read each chunk's stored bytes directly (undoing any bytes-to-bytes codec such as the
default Zstd), so a latent view never runs the decoder network, and a decoding task gathers
``chunks_per_task`` chunks along the first axis and decodes all their items in one batched
tensor call on the worker's device (CUDA when present and ``device="auto"``). The model is
cached once per worker process. Works with Dask's threaded scheduler and dask.distributed;
pass a path (reopened in each worker) rather than an in-memory store to a cluster.

Latent axes: ``(..., L, *ceil(axes / 2**J))``, channel axis replaced by the L latent
channels (still last with ``channel_last``). Chunks along signal axes must then be whole
multiples of ``2**J`` (or span the axis) so the latents of neighbouring chunks tile.
"""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..codecs.chunk import ChunkLayoutError, decode_chunks, encode_chunk
from ..codecs.options import ChunkCodecOptions
from ..errors import InputError


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


def _stored(source) -> StoredArray:
    if isinstance(source, StoredArray):
        return source
    if isinstance(source, (str, Path)):
        return _opened(str(source))
    return StoredArray(source)


def _block_task(stored: StoredArray, coords_list: list[tuple[int, ...]], to: str,
                device: str, dequantise: bool) -> np.ndarray:
    """Decode a run of chunks (consecutive along axis 0) in one batched call."""
    codec = stored.codec(device)
    records = stored.records(coords_list)
    if to == "latents":
        records = [stored.fill_record if r is None else r for r in records]
    present = [r for r in records if r is not None]
    decoded = iter(decode_chunks(codec, present, to=to) if present else [])
    parts = [stored.fill_chunk() if r is None else next(decoded) for r in records]
    block = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
    if to == "latents" and dequantise:
        block = codec.dequantise(block)
    return block


def _build(source, to: str, chunks_per_task: int, device: str, dequantise: bool = False):
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    stored = _stored(source)
    config = stored.codec("cpu").config
    nd = config.signal_ndim + 1
    ndim = len(stored.shape)
    if ndim < nd:
        raise ChunkLayoutError(f"array of shape {stored.shape} has fewer than {nd} axes")
    channel_axis = ndim - 1 if stored.channel_last else ndim - nd
    signal_axes = [a for a in range(ndim - nd, ndim) if a != channel_axis]
    f = 2 ** config.levels
    if to == "latents":
        for a in signal_axes:
            if stored.chunks[a] % f and stored.chunks[a] < stored.shape[a]:
                raise ChunkLayoutError(
                    f"latent view needs chunks along signal axes in multiples of {f} "
                    f"(J={config.levels}); axis {a} has chunks of {stored.chunks[a]}")
    group = chunks_per_task if ndim > nd else 1
    grid = stored.grid
    # Extents of each output block along each axis.
    per_axis: list[list[int]] = []
    for a in range(ndim):
        n, c = stored.shape[a], stored.chunks[a]
        if a == 0 and group > 1:
            sizes = [min(c * group, n - s) for s in range(0, n, c * group)]
        else:
            sizes = [min(c, n - s) for s in range(0, n, c)]
        if to == "latents" and a == channel_axis:
            sizes = [config.latent_channels]
        elif to == "latents" and a in signal_axes:
            sizes = [math.ceil(s / f) for s in sizes]
        per_axis.append(sizes)
    name = f"walloc-{to}-" + tokenize(stored.source if isinstance(stored.source, str) else id(stored),
                                      to, chunks_per_task, device, dequantise)
    dsk = {}
    for block in itertools.product(*(range(len(s)) for s in per_axis)):
        first = block[0] * group if group > 1 else block[0]
        coords_list = [(i, *block[1:]) for i in range(first, min(first + group, grid[0]))]
        if to == "latents":  # the channel axis has one block: chunk coordinate 0
            coords_list = [tuple(0 if a == channel_axis else c for a, c in enumerate(co))
                           for co in coords_list]
        want = tuple(per_axis[a][b] for a, b in enumerate(block))
        dsk[(name, *block)] = (_crop, (_block_task, stored, coords_list, to, device, dequantise),
                               want)
    dtype = (np.float32 if dequantise else np.int32) if to == "latents" else stored.dtype
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[])
    return da.Array(graph, name, chunks=tuple(tuple(s) for s in per_axis), dtype=dtype)


def _crop(block: np.ndarray, want: tuple[int, ...]) -> np.ndarray:
    return block[tuple(slice(0, n) for n in want)]


def open_latents(source, *, dequantise: bool = False, chunks_per_task: int = 8):
    """A WaLLoC-encoded Zarr array (path or ``zarr.Array``) as a Dask array of its integer
    latents (``int32``), or of dequantised floats (``float32``, the linear encoder's output
    before companding) with ``dequantise=True``. Only entropy decoding runs, never the
    decoder network: each task reads ``chunks_per_task`` chunks along axis 0 concurrently
    and entropy-decodes all their streams in one native call."""
    return _build(source, "latents", chunks_per_task, "cpu", dequantise)


def decode_array(source, *, to: str = "signal", chunks_per_task: int = 8, device: str = "auto"):
    """A WaLLoC-encoded Zarr array decoded lazily by Dask: each task decodes
    ``chunks_per_task`` chunks along axis 0 in one batched call on ``device``."""
    if to not in ("signal", "latents"):
        raise InputError(f"to must be 'signal' or 'latents', got {to!r}")
    return _build(source, to, chunks_per_task, device)
