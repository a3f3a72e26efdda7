"""The ``.wlc`` container: a self-describing, checksummed WaLLoC stream. Imports no torch.

Layout (little-endian)::

    magic        4s   b"WLOC"
    version      u8   1 (walloc-io 0.1: constriction ANS, uint32 words), 2 (native rANS) or
                      3 (2 plus the extension list below)
    modality     u8   0 image (2D), 1 audio (1D)
    entropy      u8   entropy model id (0 histogram, 1 predictive)
    dtype        u8   index into DTYPES
    fingerprint  16s  model fingerprint (weights + tables + config)
    channels     u16  signal channels C
    sample_rate  u32  Hz for audio, 0 when not applicable
    shape        u32 x ndim   original signal size per axis
    padding      u16 x ndim   samples added per axis (end side) before coding
    latent_ch    u16  latent channels
    latent_shape u32 x ndim
    norm_kind    u8   0: fixed dtype range; 1: per-channel (offset f64, scale f64) x C
    [norm]       f64 x 2C
    [extensions] version 3 only: count u8, then per extension tag u8 | length u32 | bytes.
                 Tag 1, quality: quality u8 (1..125, not 50; above 100 the floor rungs)
                 | ladder u32 (the first four bytes of the quality ladder's digest, see
                 :mod:`walloc_io.quality`).
                 Tag 2, error bound: the residual that holds every finite value within
                 ``max_abs_error`` (see :mod:`walloc_io.entropy.residual`).
                 Tag 3, boundary: the jumps of the periodic-plus-smooth split; the
                 latents code the periodic part (see :mod:`walloc_io.boundary`).
                 An unknown tag is refused (its meaning may matter for decoding).
    payload_len  u32
    payload      payload_len bytes: entropy-coded latents (version 1: uint32 words of
                 constriction's ANS; version 2: uint16 words of the native rANS coder)
    crc32        u32  CRC-32 of every byte before it

``read_header`` validates all of it without touching the payload's meaning; ``unpack``
additionally requires that every byte was consumed.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from . import quality as _quality
from .errors import BitstreamError

MAGIC = b"WLOC"
FORMAT_VERSION = 2  # what this release writes for streams without extensions (as 0.2.0)
EXTENDED_VERSION = 3  # what it writes for streams with extensions (a quality, ...)
READ_VERSIONS = (1, 2, 3)  # what it reads: every version ever written, forever
EXT_QUALITY, EXT_RESIDUAL, EXT_BOUNDARY = 1, 2, 3
_QUALITY = struct.Struct("<BI")
MODALITIES = ("image", "audio")
ENTROPY_MODELS = ("histogram", "predictive", "contextual")  # "contextual": 0.8
DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
NORM_RANGE, NORM_AFFINE = 0, 1
# Like Pillow's MAX_IMAGE_PIXELS: streams (and chunk records) declaring more signal values
# than this are refused before anything is allocated. 2**28 values is e.g. 3 x 9459 x 9459
# or 8 stereo hours at 48 kHz. Raise it with ``walloc_io.bitstream.MAX_ELEMENTS = n`` or
# the environment variable WALLOC_MAX_ELEMENTS.
MAX_ELEMENTS = int(os.environ.get("WALLOC_MAX_ELEMENTS", 1 << 28))

_FIXED = struct.Struct("<4sBBBB16sHI")


@dataclass(frozen=True)
class Header:
    """Everything a stream says about itself (see the module docstring for the layout).

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> blob = walloc_io.load_codec("gray-16x", device="cpu").encode(np.zeros((1, 30, 40), np.uint8))
    >>> h = walloc_io.read_header(blob)
    >>> h.dtype, h.array_shape, h.padding, h.latent_shape
    ('uint8', (1, 30, 40), (2, 0), (4, 5))
    >>> walloc_io.read_header(blob) == h and hash(walloc_io.read_header(blob)) == hash(h)
    True
    """

    modality: str
    entropy_model: str
    dtype: str
    fingerprint: str  # 32 hex digits
    channels: int
    shape: tuple[int, ...]  # signal axes only; the full array is (channels, *shape)
    padding: tuple[int, ...]
    latent_channels: int
    latent_shape: tuple[int, ...]
    normalisation: np.ndarray | None  # (C, 2) offset, scale; None for the dtype range
    sample_rate: int = 0
    version: int = FORMAT_VERSION
    quality: int | None = None  # None: the design point (see walloc_io.quality)
    ladder: int = 0  # digest prefix of the quality ladder the stream was coded with
    residual: bytes | None = None  # the error-bounded residual (walloc_io.entropy.residual)
    boundary: bytes | None = None  # the periodic-plus-smooth split's jumps (walloc_io.boundary)

    @property
    def extended(self) -> bool:
        """Whether the stream needs format 3 (it carries extensions)."""
        return self.quality is not None or self.residual is not None or self.boundary is not None

    @property
    def max_abs_error(self) -> float | None:
        """The stream's guaranteed bound on every finite value's error (None: no bound)."""
        return None if self.residual is None or len(self.residual) < 8 else float(
            struct.unpack_from("<d", self.residual)[0])

    @property
    def ndim(self) -> int:
        return 1 if self.modality == "audio" else 2

    @property
    def array_shape(self) -> tuple[int, ...]:
        return (self.channels, *self.shape)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Header):
            return NotImplemented
        a = {k: v for k, v in self.__dict__.items() if k != "normalisation"}
        b = {k: v for k, v in other.__dict__.items() if k != "normalisation"}
        na, nb = self.normalisation, other.normalisation
        same_norm = (na is None and nb is None) or (
            na is not None and nb is not None and np.array_equal(na, nb))
        return a == b and same_norm

    def __hash__(self) -> int:
        norm = None if self.normalisation is None else tuple(
            float(v) for v in np.asarray(self.normalisation, dtype=np.float64).ravel())
        fields = tuple(v for k, v in self.__dict__.items() if k != "normalisation")
        return hash((fields, norm))


def pack(header: Header, payload: bytes) -> bytes:
    """Serialise ``header`` and ``payload`` into one stream ending in its CRC-32."""
    fp = bytes.fromhex(header.fingerprint)
    nd = header.ndim
    parts = [
        _FIXED.pack(MAGIC, header.version, MODALITIES.index(header.modality),
                    ENTROPY_MODELS.index(header.entropy_model), DTYPES.index(header.dtype), fp,
                    header.channels, header.sample_rate),
        struct.pack(f"<{nd}I{nd}HH{nd}I", *header.shape, *header.padding,
                    header.latent_channels, *header.latent_shape),
    ]
    if header.normalisation is None:
        parts.append(struct.pack("<B", NORM_RANGE))
    else:
        norm = np.asarray(header.normalisation, dtype="<f8").reshape(header.channels, 2)
        parts += [struct.pack("<B", NORM_AFFINE), norm.tobytes()]
    if header.version >= EXTENDED_VERSION:
        extensions = []
        if header.quality is not None:
            extensions.append((EXT_QUALITY, _QUALITY.pack(header.quality, header.ladder)))
        if header.residual is not None:
            extensions.append((EXT_RESIDUAL, header.residual))
        if header.boundary is not None:
            extensions.append((EXT_BOUNDARY, header.boundary))
        parts.append(struct.pack("<B", len(extensions)))
        parts += [struct.pack("<BI", tag, len(body)) + body for tag, body in extensions]
    elif header.extended:
        raise ValueError(f"format {header.version} cannot carry extensions")
    parts += [struct.pack("<I", len(payload)), payload]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(blob: bytes) -> tuple[Header, bytes]:
    """Parse and verify a whole stream; returns its header and payload."""
    header, payload, end = _parse(_as_bytes(blob))
    if end != len(blob):
        raise BitstreamError(f"{len(blob) - end} trailing bytes after the checksum")
    return header, payload


def read_header(blob: bytes) -> Header:
    """The :class:`Header` of a ``.wlc`` stream, verified (checksum included), no torch needed.

    Examples
    --------
    >>> import walloc_io
    >>> walloc_io.read_header(b"not a stream")
    Traceback (most recent call last):
    ...
    walloc_io.errors.BitstreamError: not a WaLLoC stream (bad magic b'not ')
    """
    return unpack(blob)[0]


def peek_fingerprint(blob: bytes) -> str:
    """The model fingerprint a stream claims, unverified (no checksum pass): a cache key
    for loaders that verify the whole stream when they decode it."""
    return _FIXED.unpack_from(blob)[5].hex() if len(blob) >= _FIXED.size else ""


def _as_bytes(blob: bytes) -> bytes:
    if isinstance(blob, (bytearray, memoryview)):
        return bytes(blob)
    if isinstance(blob, np.ndarray):
        return blob.tobytes()
    if not isinstance(blob, bytes):
        raise BitstreamError(f"expected bytes, got {type(blob).__name__}")
    return blob


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise BitstreamError(f"stream truncated at byte {self.pos} (needs {size} more)")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values


def _parse(data: bytes) -> tuple[Header, bytes, int]:
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError(f"not a WaLLoC stream (bad magic {data[:4]!r})")
    r = _Reader(data)
    _, version, modality, entropy, dtype, fp, channels, rate = r.take(_FIXED.format)
    if version not in READ_VERSIONS:
        raise BitstreamError(f"unsupported format version {version} (this reader: "
                             f"{', '.join(map(str, READ_VERSIONS))})")
    for name, value, options in (("modality", modality, MODALITIES),
                                 ("entropy model", entropy, ENTROPY_MODELS),
                                 ("dtype", dtype, DTYPES)):
        if value >= len(options):
            raise BitstreamError(f"unknown {name} code {value}")
    nd = 1 if MODALITIES[modality] == "audio" else 2
    fields = r.take(f"<{nd}I{nd}HH{nd}I")
    shape, padding = tuple(fields[:nd]), tuple(fields[nd:2 * nd])
    latent_channels, latent_shape = fields[2 * nd], tuple(fields[2 * nd + 1:])
    (norm_kind,) = r.take("<B")
    if norm_kind not in (NORM_RANGE, NORM_AFFINE):
        raise BitstreamError(f"unknown normalisation kind {norm_kind}")
    norm = None
    if norm_kind == NORM_AFFINE:
        norm = np.array(r.take(f"<{2 * channels}d"), dtype=np.float64).reshape(channels, 2)
    quality, ladder, residual, boundary = None, 0, None, None
    if version >= EXTENDED_VERSION:
        (count,) = r.take("<B")
        seen = set()
        for _ in range(count):
            tag, size = r.take("<BI")
            if tag in seen:
                raise BitstreamError(f"stream repeats extension {tag}")
            seen.add(tag)
            if tag in (EXT_RESIDUAL, EXT_BOUNDARY):
                if r.pos + size > len(data):
                    raise BitstreamError(f"stream truncated: extension {tag} needs {size} bytes")
                if tag == EXT_RESIDUAL:
                    residual = data[r.pos:r.pos + size]
                else:
                    boundary = data[r.pos:r.pos + size]
                r.pos += size
                continue
            if tag != EXT_QUALITY or size != _QUALITY.size:
                raise BitstreamError(f"unknown stream extension {tag} ({size} bytes): "
                                     "written by a newer walloc-io?")
            quality, ladder = r.take(_QUALITY.format)
            if quality not in _quality.STORED or quality == _quality.DESIGN:
                raise BitstreamError(f"stream quality {quality} is out of range")
    (length,) = r.take("<I")
    if r.pos + length + 4 > len(data):
        raise BitstreamError(f"stream truncated: payload needs {length} bytes, "
                             f"{max(0, len(data) - r.pos - 4)} present")
    payload = data[r.pos : r.pos + length]
    r.pos += length
    (crc,) = r.take("<I")
    if zlib.crc32(data[: r.pos - 4]) != crc:
        raise BitstreamError("checksum mismatch: the stream is corrupt")
    header = Header(MODALITIES[modality], ENTROPY_MODELS[entropy], DTYPES[dtype], fp.hex(),
                    channels, shape, padding, latent_channels, latent_shape, norm, rate, version,
                    quality, ladder, residual, boundary)
    _check_fields(header)
    return header, payload, r.pos


def _check_fields(h: Header) -> None:
    if h.channels < 1 or h.latent_channels < 1:
        raise BitstreamError("stream declares zero channels")
    if min(h.shape) < 1 or min(h.latent_shape) < 1:
        raise BitstreamError(f"stream declares an empty signal {h.shape} / latents {h.latent_shape}")
    elements = h.channels * math.prod(h.shape)  # Python ints: no overflow
    if elements > MAX_ELEMENTS:
        raise BitstreamError(f"stream declares {elements} signal values {h.array_shape}, more than "
                             f"walloc_io.bitstream.MAX_ELEMENTS = {MAX_ELEMENTS} (raise it, or set "
                             "WALLOC_MAX_ELEMENTS, to decode larger signals)")
    if any(p >= n + p or p > 1 << 12 for n, p in zip(h.shape, h.padding)):
        raise BitstreamError(f"stream padding {h.padding} is implausible for shape {h.shape}")
    if h.normalisation is not None:
        _check_normalisation(h.normalisation, h.dtype)


def _check_normalisation(norm: np.ndarray, dtype: str) -> None:
    """Offsets and spans must be finite, spans >= 0, and every restored value representable
    in the stream's dtype (a forged header must not decode to Inf or wrap around)."""
    if not np.all(np.isfinite(norm)):
        raise BitstreamError("stream normalisation is not finite")
    low, span = norm[:, 0], norm[:, 1]
    if np.any(span < 0):
        raise BitstreamError("stream normalisation has a negative span")
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    lo, hi = float(info.min), float(info.max)
    with np.errstate(over="ignore"):  # a forged pair near the float64 limit: top is Inf
        top = low + span
    if np.any(low < lo) or np.any(top > hi) or not np.all(np.isfinite(top)):
        raise BitstreamError(f"stream normalisation {norm.tolist()} leaves the range of {dtype}")
