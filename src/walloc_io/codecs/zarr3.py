"""WaLLoC as a Zarr v3 array-to-bytes codec named ``"walloc"``.

Registered through the ``zarr.codecs`` entry point::

    zarr.create_array(store, shape=(100, 3, 512, 512), chunks=(8, 3, 256, 256), dtype="uint8",
                      serializer={"name": "walloc", "configuration": {"preset": "rgb-16x"}})

and arrays reopen in any process with walloc-io installed. Layout, dtypes and the NaN
policy are those of :mod:`walloc_io.codecs.chunk`; a bad layout is rejected when the array
is created, before any chunk is written. Encoding and decoding run off the event loop
(``asyncio.to_thread``), and all the chunks zarr hands over in one call go through one
batched codec call: raise ``zarr.config.set({"codec_pipeline.batch_size": 64})`` to give
it more than one chunk at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.common import parse_named_configuration

from .chunk import ChunkLayoutError, check_layout, decode_chunks, encode_chunk
from .options import ChunkCodecOptions


@dataclass(frozen=True)
class WallocZarrCodec(ChunkCodecOptions, ArrayBytesCodec):
    """Zarr v3 serializer storing each chunk as WaLLoC streams (one per leading-axis item).

    Its fields are those of :class:`~walloc_io.codecs.options.ChunkCodecOptions` (the
    fingerprint is filled in when the array is created); the decoding device is not stored
    (``WALLOC_DEVICE``, default CPU).

    Examples
    --------
    >>> import json, tempfile, numpy as np, zarr
    >>> path = tempfile.mkdtemp() + "/photos.zarr"
    >>> a = zarr.create_array(path, shape=(2, 3, 64, 64), chunks=(1, 3, 64, 64), shards=(2, 3, 64, 64),
    ...                       dtype="uint8", serializer={"name": "walloc",
    ...                                                  "configuration": {"preset": "rgb-16x"}})
    >>> a[:] = 128
    >>> a[1, :, :8, :8].shape
    (3, 8, 8)
    >>> from pathlib import Path
    >>> meta = json.loads(Path(path, "zarr.json").read_text())["codecs"][0]["configuration"]["codecs"][0]
    >>> meta["name"], sorted(meta["configuration"])
    ('walloc', ['channel_last', 'fingerprint', 'nan', 'preset', 'sample_rate'])
    """

    is_fixed_size = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "fingerprint", self.resolved_fingerprint())

    @property
    def options(self) -> ChunkCodecOptions:
        return ChunkCodecOptions(**{k: getattr(self, k) for k in ChunkCodecOptions.keys()})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WallocZarrCodec:
        _, config = parse_named_configuration(data, "walloc", require_configuration=True)
        return cls(**asdict(ChunkCodecOptions.from_config(dict(config or {}))))

    def to_dict(self) -> dict[str, Any]:
        return {"name": "walloc", "configuration": self.options.to_config()}

    @property
    def codec(self):
        return self.options.load()  # per-process cache

    @property
    def config(self):
        """The codec's configuration, read without torch or weights."""
        return self.options.config()

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        native = dtype.to_native_dtype()
        if isinstance(chunk_grid, RegularChunkGrid):
            chunks = chunk_grid.chunk_shape
        else:  # pragma: no cover - zarr has only regular grids today
            chunks = shape
        check_layout(self.config, chunks, native, self.channel_last)
        self._check_bound(native)

    def _check_bound(self, native) -> None:
        if self.max_abs_error is not None and native.kind != "f":
            raise ChunkLayoutError(f"max_abs_error applies to float arrays, not {native}")

    def evolve_from_array_spec(self, array_spec: ArraySpec) -> WallocZarrCodec:
        """Checks at array creation. Zarr calls this with the array's spec, and a
        ``ShardingCodec`` with its *inner* chunk's spec (it never calls ``validate`` on the
        codecs inside), so sharded arrays are checked here like plain ones: all channels in
        every inner chunk, signal axes >= 2**J, and a NaN fill value only with nan='mask'."""
        native = array_spec.dtype.to_native_dtype()
        check_layout(self.config, array_spec.shape, native, self.channel_last)
        self._check_bound(native)
        fill = array_spec.fill_value
        if self.nan == "raise" and native.kind == "f" and fill is not None and np.isnan(fill):
            raise ChunkLayoutError("fill_value NaN with nan='raise': partial writes fill the rest "
                                   "of a chunk with NaN, which 'raise' refuses; use "
                                   "nan='mask' or another fill value")
        return self

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable-size output

    # One chunk at a time (zarr's sync path and the default batch size of 1).
    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return self._encode_many([chunk_array], [chunk_spec])[0]

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return self._decode_many([chunk_bytes], [chunk_spec])[0]

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    # Batches: every chunk of the call in one codec call.
    async def encode(self, chunks_and_specs: Iterable[tuple[NDBuffer | None, ArraySpec]]):
        return await _batched(self._encode_many, chunks_and_specs)

    async def decode(self, chunks_and_specs: Iterable[tuple[Buffer | None, ArraySpec]]):
        return await _batched(self._decode_many, chunks_and_specs)

    def _encode_many(self, arrays: list[NDBuffer], specs: list[ArraySpec]) -> list[Buffer]:
        codec, out = self.codec, []
        for arr, spec in zip(arrays, specs):
            chunk = np.asarray(arr.as_numpy_array())
            if chunk.shape != spec.shape:
                raise ChunkLayoutError(f"chunk of shape {chunk.shape}, expected {spec.shape}")
            record = encode_chunk(codec, chunk, channel_last=self.channel_last, nan=self.nan,
                                  sample_rate=self.sample_rate, quality=self.quality,
                                  max_abs_error=self.max_abs_error)
            out.append(spec.prototype.buffer.from_bytes(record))
        return out

    def _decode_many(self, buffers: list[Buffer], specs: list[ArraySpec]) -> list[NDBuffer]:
        arrays = decode_chunks(self.codec, [b.to_bytes() for b in buffers])
        out = []
        for arr, spec in zip(arrays, specs):
            native = spec.dtype.to_native_dtype()
            if arr.shape != spec.shape or arr.dtype != native:
                from ..errors import BitstreamError

                raise BitstreamError(f"chunk decodes to {arr.shape} {arr.dtype}, the array "
                                     f"expects {spec.shape} {native}")
            out.append(spec.prototype.nd_buffer.from_numpy_array(arr))
        return out


async def _batched(run, chunks_and_specs) -> list:
    """``run(chunks, specs)`` on the non-None chunks, in a thread; None stays None."""
    pairs = list(chunks_and_specs)
    todo = [i for i, (c, _) in enumerate(pairs) if c is not None]
    done = await asyncio.to_thread(run, [pairs[i][0] for i in todo], [pairs[i][1] for i in todo])
    out: list = [None] * len(pairs)
    for i, result in zip(todo, done):
        out[i] = result
    return out
