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

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..codecs.chunk import ChunkLayoutError, decode_chunks
from ..codecs.stored import StoredArray, stored_array
from ..errors import InputError


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
        block = codec.dequantise(block, stored.options.quality)
    return block


def _build(source, to: str, chunks_per_task: int, device: str, dequantise: bool = False):
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    stored = stored_array(source)
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
    dsk: dict[Any, Any] = {}
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


def _arrays(source):
    """A WaLLoC array as is, or the group ``walloc convert`` writes: its ``signals`` array, or
    ``{name: array}`` for its ``items/`` (items may differ in size, so one Dask array each)."""
    import zarr

    if isinstance(source, (str, Path)):
        node = zarr.open(str(source), mode="r")
        prefix = str(source).rstrip("/")
    else:
        node, prefix = source, None
    if not isinstance(node, zarr.Group):
        return source
    if "signals" in node:
        return f"{prefix}/signals" if prefix else node["signals"]
    if "items" in node:
        names = sorted(node["items"].array_keys())
        return {n: f"{prefix}/items/{n}" if prefix else node["items"][n] for n in names}
    raise InputError(f"{source}: a Zarr group without 'signals' or 'items' (not a walloc convert "
                     "output); pass one of its arrays")


def _each(source, build):
    arrays = _arrays(source)
    return {n: build(a) for n, a in arrays.items()} if isinstance(arrays, dict) else build(arrays)


def open_latents(source, *, dequantise: bool = False, chunks_per_task: int = 8):
    """A WaLLoC-encoded Zarr array (path or ``zarr.Array``) as a Dask array of its integer
    latents (``int32``), or of dequantised floats (``float32``, the linear encoder's output
    before companding) with ``dequantise=True``. Only entropy decoding runs, never the
    decoder network: each task reads ``chunks_per_task`` chunks along axis 0 concurrently
    and entropy-decodes all their streams in one native call.

    The group ``walloc convert`` writes works too: its ``signals`` array gives one Dask
    array, its ``items/`` a ``{name: Dask array}`` dict (items may differ in size).

    Parameters
    ----------
    source : str, Path, zarr.Array or zarr.Group
        A WaLLoC-encoded array (plain or sharded), or a ``walloc convert`` group.
    dequantise : bool
        Floats before companding instead of integer latents.
    chunks_per_task : int
        Zarr chunks along axis 0 per Dask block (1: one block per chunk).

    Examples
    --------
    >>> import numpy as np, zarr, walloc_io
    >>> arr = zarr.create_array(zarr.storage.MemoryStore(), shape=(4, 3, 64, 96),
    ...                         chunks=(2, 3, 64, 96), dtype="uint8", serializer={
    ...                             "name": "walloc", "configuration": {"preset": "rgb-16x"}})
    >>> arr[:] = np.random.default_rng(0).integers(0, 256, arr.shape, dtype=np.uint8)
    >>> lat = walloc_io.open_latents(arr)
    >>> lat.shape, lat.dtype.name
    ((4, 12, 8, 12), 'int32')
    >>> lat[1].compute().max() <= 127
    np.True_
    """
    return _each(source, lambda a: _build(a, "latents", chunks_per_task, "cpu", dequantise))


def decode_array(source, *, to: str = "signal", chunks_per_task: int = 8, device: str = "auto"):
    """A WaLLoC-encoded Zarr array decoded lazily by Dask: each task decodes
    ``chunks_per_task`` chunks along axis 0 in one batched call on ``device``. Accepts the
    group ``walloc convert`` writes as :func:`open_latents` does.

    Examples
    --------
    >>> import tempfile, numpy as np, zarr, walloc_io
    >>> path = tempfile.mkdtemp() + "/photos.zarr"
    >>> a = zarr.create_array(path, shape=(4, 1, 32, 32), chunks=(1, 1, 32, 32), dtype="uint8",
    ...                       serializer={"name": "walloc", "configuration": {"preset": "gray-16x"}})
    >>> a[:] = 128
    >>> lazy = walloc_io.decode_array(path, chunks_per_task=2, device="cpu")
    >>> lazy.shape, lazy.dtype, lazy.numblocks
    ((4, 1, 32, 32), dtype('uint8'), (2, 1, 1, 1))
    >>> bool(abs(lazy.mean().compute() - 128) < 2)
    True
    """
    if to not in ("signal", "latents"):
        raise InputError(f"to must be 'signal' or 'latents', got {to!r}")
    return _each(source, lambda a: _build(a, to, chunks_per_task, device))
