"""Array chunks <-> one self-describing WaLLoC chunk record. Imports no zarr or numcodecs.

A chunk of an N-d array holds a batch of signals in its trailing axes: ``(..., C, H, W)``
for image codecs and ``(..., C, T)`` for audio codecs (or ``(..., H, W, C)`` / ``(..., T, C)``
with ``channel_last``). Leading axes are a batch; every item becomes one ``.wlc`` stream,
and the streams of a chunk are stored together with the chunk's shape and dtype, so a
chunk decodes without outside metadata (a Zarr format-2 compressor only ever sees bytes).

Record layout (little-endian)::

    magic "WLCK" | version u8 | flags u8 | dtype u8 | ndim u8 | shape u32 x ndim
    | items u32 | stream lengths u32 x items | streams | [mask bytes u32 | zlib(packbits)]

flags: bit 0 channel-last layout, bit 1 a NaN mask follows. Floats are normalised per item
and channel (the range travels in each stream's header). NaN policy: ``nan="raise"``
(default) rejects chunks with NaN; ``nan="mask"`` stores where the NaNs were, encodes them
as a smooth fill from the finite values around them (:func:`walloc_io.signal.fill_nan`; the
mean of the item-channel's finite values before walloc-io 0.3), and puts NaN back on decode.
Inf is always rejected. With ``max_abs_error`` every finite value decodes within the bound.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import bitstream
from ..errors import BitstreamError, InputError

if TYPE_CHECKING:
    from ..codec import Codec
    from ..config import CodecConfig

MAGIC = b"WLCK"
VERSION = 1
DTYPES = bitstream.DTYPES  # one dtype table for the stream and the chunk record
NAN_POLICIES = ("raise", "mask")
_CHANNEL_LAST, _MASK = 1, 2
_HEAD = struct.Struct("<4sBBBB")
MAX_ITEMS = 1 << 24


class ChunkLayoutError(InputError):
    """An array's shape, chunking or dtype cannot be stored with this codec."""


@dataclass(frozen=True)
class ChunkRecord:
    """A parsed chunk record: what it holds, without running the codec."""

    shape: tuple[int, ...]
    dtype: str
    channel_last: bool
    streams: list[bytes]
    mask: np.ndarray | None  # bool, ``shape``, True where the input was NaN


def check_layout(config: CodecConfig, chunk_shape, dtype, channel_last: bool = False) -> None:
    """Raise :class:`ChunkLayoutError` unless chunks of ``chunk_shape`` and ``dtype`` can be
    stored: enough axes, all ``C`` channels in each chunk, each signal axis >= ``2**levels``."""
    dtype = np.dtype(dtype).name
    if dtype not in DTYPES:
        raise ChunkLayoutError(f"walloc stores {', '.join(DTYPES)} arrays, not {dtype}")
    nd = config.signal_ndim + 1
    chunk_shape = tuple(int(n) for n in chunk_shape)
    layout = _layout(config, channel_last)
    if len(chunk_shape) < nd:
        raise ChunkLayoutError(f"codec {config.name} needs arrays of at least {nd} axes "
                               f"{layout}, got chunks of shape {chunk_shape}")
    channels, axes = _split(chunk_shape[-nd:], channel_last)
    if channels != config.channels:
        raise ChunkLayoutError(
            f"codec {config.name} needs all {config.channels} channels in every chunk "
            f"(layout {layout}); chunks of shape {chunk_shape} hold {channels}"
            + ("" if channel_last else "; pass channel_last=True for channel-last arrays"))
    factor = 2 ** config.levels
    if any(n < factor for n in axes):
        raise ChunkLayoutError(f"chunk signal axes {axes} too small for codec {config.name}: "
                               f"each needs >= {factor} samples (J={config.levels})")


def encode_chunk(codec: Codec, chunk: np.ndarray, *, channel_last: bool = False,
                 nan: str = "raise", sample_rate: int = 0, quality: int | None = None,
                 max_abs_error: float | None = None) -> bytes:
    """One array chunk -> one chunk record (all items in one batched encoder call).
    ``max_abs_error``: every finite value decodes within it (float chunks; NaN positions
    stored by the mask are exempt)."""
    chunk = np.asarray(chunk)
    if nan not in NAN_POLICIES:
        raise InputError(f"nan must be one of {NAN_POLICIES}, got {nan!r}")
    check_layout(codec.config, chunk.shape, chunk.dtype, channel_last)
    items = _items(chunk, codec.config, channel_last)
    mask, skip = None, None
    if chunk.dtype.kind == "f":
        finite = np.isfinite(items)
        if not finite.all():
            if np.isinf(items).any():
                raise InputError("chunk contains Inf: WaLLoC cannot store it")
            if nan == "raise":
                raise InputError(f"chunk contains {int((~finite).sum())} NaN values "
                                 "(use nan='mask' to store a mask and fill them)")
            skip = list(~finite)
            items, mask = _fill_nan(items), _to_chunk_layout(~finite, chunk.shape, channel_last)
    streams = codec.encode_batch(list(items), sample_rate=sample_rate, quality=quality,
                                 max_abs_error=max_abs_error, skip=skip)
    return pack(ChunkRecord(chunk.shape, chunk.dtype.name, channel_last, streams, mask))


def decode_chunks(codec: Codec, records: list[bytes], *, to: str = "signal") -> list[np.ndarray]:
    """Chunk records -> arrays; every item of every record goes through one batched decode
    (one tensor call per latent shape). ``to="latents"`` returns integer latents in the
    record's layout (see :func:`latent_chunk_shape`) without running the decoder network."""
    parsed = [unpack(r) for r in records]
    streams = [s for p in parsed for s in p.streams]
    if to not in ("signal", "latents"):
        raise InputError(f"to must be 'signal' or 'latents', got {to!r}")
    # streams of an earlier version of the codec (a store written before its preset was
    # retrained, whose metadata predates recorded fingerprints) decode with that version
    by_model: dict[str, list[int]] = {}
    for i, s in enumerate(streams):
        by_model.setdefault(bitstream.peek_fingerprint(s), []).append(i)
    out: list = [None] * len(streams)
    for fingerprint, index in by_model.items():
        model = codec.for_fingerprint(fingerprint) if fingerprint else codec
        batch = [streams[i] for i in index]
        decoded = model.decode_batch(batch) if to == "signal" else \
            model.decode_latents_batch(batch)
        for i, y in zip(index, decoded):
            out[i] = y
    arrays, at = [], 0
    for p in parsed:
        items, at = out[at:at + len(p.streams)], at + len(p.streams)
        arrays.append(_assemble(p, items, codec.config, to))
    return arrays


def decode_chunk(codec: Codec, record: bytes, *, to: str = "signal") -> np.ndarray:
    return decode_chunks(codec, [record], to=to)[0]


def latent_chunk_shape(config: CodecConfig, shape, channel_last: bool = False) -> tuple[int, ...]:
    """Shape of the latents of a chunk (or array) of ``shape``: ``(..., L, *ceil(axes/2**J))``,
    or ``(..., *ceil(axes/2**J), L)`` with ``channel_last`` (the array's own layout)."""
    nd = config.signal_ndim + 1
    _, axes = _split(tuple(shape[-nd:]), channel_last)
    f = 2 ** config.levels
    latent_axes = tuple(math.ceil(n / f) for n in axes)
    if channel_last:
        return (*shape[:-nd], *latent_axes, config.latent_channels)
    return (*shape[:-nd], config.latent_channels, *latent_axes)


# -- record format ----------------------------------------------------------------------------
def pack(rec: ChunkRecord) -> bytes:
    flags = (_CHANNEL_LAST if rec.channel_last else 0) | (_MASK if rec.mask is not None else 0)
    parts = [_HEAD.pack(MAGIC, VERSION, flags, DTYPES.index(rec.dtype), len(rec.shape)),
             struct.pack(f"<{len(rec.shape)}I", *rec.shape),
             struct.pack(f"<I{len(rec.streams)}I", len(rec.streams), *map(len, rec.streams)),
             *rec.streams]
    if rec.mask is not None:
        packed = zlib.compress(np.packbits(rec.mask.ravel()).tobytes(), 6)
        parts += [struct.pack("<I", len(packed)), packed]
    return b"".join(parts)


def unpack(data) -> ChunkRecord:
    """Parse a chunk record; any inconsistency is a :class:`BitstreamError`."""
    buf = memoryview(data if isinstance(data, bytes) else np.frombuffer(data, np.uint8).tobytes())
    try:
        magic, version, flags, code, ndim = _HEAD.unpack_from(buf, 0)
        if magic != MAGIC:
            raise BitstreamError("not a walloc chunk record (bad magic)")
        if version != VERSION or flags & ~(_CHANNEL_LAST | _MASK) or code >= len(DTYPES) or not ndim:
            raise BitstreamError(f"unsupported walloc chunk record (version {version}, "
                                 f"flags {flags}, dtype code {code}, ndim {ndim})")
        at = _HEAD.size
        shape = struct.unpack_from(f"<{ndim}I", buf, at)
        at += 4 * ndim
        size = math.prod(shape)
        if size > bitstream.MAX_ELEMENTS:
            raise BitstreamError(f"chunk record declares {size} values {tuple(shape)}, more than "
                                 f"walloc_io.bitstream.MAX_ELEMENTS = {bitstream.MAX_ELEMENTS}")
        (count,) = struct.unpack_from("<I", buf, at)
        if count > MAX_ITEMS or (count == 0 and size):
            raise BitstreamError(f"chunk record of shape {tuple(shape)} claims {count} items")
        lengths = struct.unpack_from(f"<{count}I", buf, at + 4)
        at += 4 + 4 * count
        streams = []
        for n in lengths:
            if at + n > len(buf):
                raise BitstreamError("chunk record is truncated")
            streams.append(bytes(buf[at:at + n]))
            at += n
        mask = None
        if flags & _MASK:
            (n,) = struct.unpack_from("<I", buf, at)
            expected = (size + 7) // 8  # inflate at most this much: no zlib bomb gets through
            inflate = zlib.decompressobj()
            raw = inflate.decompress(bytes(buf[at + 4:at + 4 + n]), expected + 1)
            if len(raw) != expected or inflate.unconsumed_tail or not inflate.eof:
                raise BitstreamError("chunk record's NaN mask has the wrong size")
            bits = np.frombuffer(raw, np.uint8)
            mask = np.unpackbits(bits, count=size).astype(bool).reshape(shape)
            at += 4 + n
        if at != len(buf):
            raise BitstreamError(f"chunk record has {len(buf) - at} trailing bytes")
    except (struct.error, zlib.error) as exc:
        raise BitstreamError(f"corrupt walloc chunk record: {exc}") from exc
    return ChunkRecord(tuple(shape), DTYPES[code], bool(flags & _CHANNEL_LAST), streams, mask)


# -- helpers ------------------------------------------------------------------------------------
def _layout(config: CodecConfig, channel_last: bool) -> str:
    axes = "H, W" if config.signal_ndim == 2 else "T"
    return f"(..., {axes}, C)" if channel_last else f"(..., C, {axes})"


def _split(signal_shape: tuple[int, ...], channel_last: bool) -> tuple[int, tuple[int, ...]]:
    if channel_last:
        return signal_shape[-1], signal_shape[:-1]
    return signal_shape[0], signal_shape[1:]


def _items(chunk: np.ndarray, config: CodecConfig, channel_last: bool) -> np.ndarray:
    """``(N, C, *axes)`` view/copy of the chunk's items, channel-first."""
    nd = config.signal_ndim + 1
    x = chunk.reshape(-1, *chunk.shape[-nd:])
    return np.moveaxis(x, -1, 1) if channel_last else x


def _to_chunk_layout(items: np.ndarray, shape: tuple[int, ...], channel_last: bool) -> np.ndarray:
    x = np.moveaxis(items, 1, -1) if channel_last else items
    return np.ascontiguousarray(x).reshape(shape)


def _fill_nan(items: np.ndarray) -> np.ndarray:
    """NaN -> a smooth fill from the finite values around them (see signal.fill_nan)."""
    from ..signal import fill_nan

    return np.stack([fill_nan(item) for item in items]) if len(items) else items


def _assemble(rec: ChunkRecord, items: list[np.ndarray], config: CodecConfig, to: str) -> np.ndarray:
    nd = config.signal_ndim + 1
    lead = rec.shape[:-nd]
    if len(items) != math.prod(lead):  # prod(()) == 1: a record of one signal
        raise BitstreamError(f"chunk record of shape {rec.shape} holds {len(items)} streams")
    if not items:  # an empty batch, (0, C, H, W): nothing was coded
        shape = latent_chunk_shape(config, rec.shape, rec.channel_last) if to == "latents" else rec.shape
        return np.zeros(shape, np.int32 if to == "latents" else rec.dtype)
    if len({(i.shape, i.dtype) for i in items}) > 1:
        raise BitstreamError(f"chunk record of shape {rec.shape} holds streams of different shapes")
    stacked = np.stack(items)  # (N, C or L, *axes), channel-first as the codec works
    if to == "latents":
        shape = latent_chunk_shape(config, rec.shape, rec.channel_last)
        return _to_chunk_layout(stacked, shape, rec.channel_last)
    _, axes = _split(rec.shape[-nd:], rec.channel_last)
    if stacked.shape[2:] != axes or stacked.dtype.name != rec.dtype:
        raise BitstreamError(f"chunk record streams decode to {stacked.shape[1:]} "
                             f"{stacked.dtype}, not {rec.shape} {rec.dtype}")
    out = _to_chunk_layout(stacked, rec.shape, rec.channel_last)
    if rec.mask is not None:
        out = np.where(rec.mask, np.nan, out).astype(out.dtype)
    return out
