"""Hyperspectral cubes (hundreds to thousands of bands) through a learned spectral basis.

A C-band WaLLoC codec feeds ``C * 4**J`` packet channels to one linear layer, which does not
scale to a 3681-band cube. A cube ``(B, H, W)`` is coded here in three parts:

1. a **spectral basis** learned once by PCA over training spectra (``fit_basis``, stored as a
   small directory: ``spectral.json`` + ``basis.npz``, fingerprinted): the mean spectrum and
   ``K`` orthonormal components; the cube's ``K`` component planes ``P^T (x - mean)``;
2. each component plane coded as a one-channel image by a 2-D WaLLoC codec (``field-16x``
   by default): the latents are ``K x H/8 x W/8`` whatever ``B`` is;
3. with ``max_abs_error``, the residual of the reconstruction ``P y + mean`` in the band
   domain, coded by :mod:`walloc_io.entropy.residual` as one 2-D plane ``(B, H * W)`` (its
   rows are bands, so its predictors and contexts work along the spectrum and along the
   pixel raster), every finite value within the bound.

NaN (``nan="mask"``) is filled band by band for coding and restored from a stored mask.

Record layout (little-endian)::

    magic "WLSP" | version u8 | dtype u8 | flags u8 (bit 0 mask, bit 1 residual)
    | bands u32 | height u32 | width u32 | components u16 | basis fingerprint 16s
    | stream lengths u32 x components | streams | [residual bytes u32 | residual body]
    | [mask bytes u32 | zlib(packbits(mask))] | crc32 u32 of every byte before it
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import bitstream
from .errors import BitstreamError, InputError, ModelMismatchError

MAGIC = b"WLSP"
VERSION = 1
DTYPES = ("float32", "float64")
_HEAD = struct.Struct("<4sBBBIIIH16s")


@dataclass(frozen=True)
class SpectralBasis:
    """Mean spectrum ``(B,)`` and ``K`` orthonormal components ``(B, K)`` (float64), and the
    2-D codec (preset or directory) that codes the component planes."""

    mean: np.ndarray
    components: np.ndarray
    spatial: str = "field-16x"

    @property
    def bands(self) -> int:
        return int(self.mean.size)

    @property
    def k(self) -> int:
        return int(self.components.shape[1])

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256(self.spatial.encode())
        h.update(np.ascontiguousarray(self.mean, "<f8").tobytes())
        h.update(np.ascontiguousarray(self.components, "<f8").tobytes())
        return h.hexdigest()[:32]

    def save(self, directory: str | Path) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "basis.npz", mean=self.mean, components=self.components)
        (out / "spectral.json").write_text(json.dumps(
            {"bands": self.bands, "components": self.k, "spatial": self.spatial,
             "fingerprint": self.fingerprint}, indent=1) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> SpectralBasis:
        d = Path(directory)
        try:
            meta = json.loads((d / "spectral.json").read_text())
            with np.load(d / "basis.npz") as z:
                basis = cls(z["mean"].astype(np.float64), z["components"].astype(np.float64),
                            meta["spatial"])
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read spectral basis {d}: {exc}") from exc
        if basis.fingerprint != meta.get("fingerprint"):
            raise InputError(f"{d}: basis does not match its fingerprint (corrupt)")
        return basis


def fit_basis(cubes: list[np.ndarray], components: int, spatial: str = "field-16x",
              max_pixels: int = 200_000, seed: int = 0) -> SpectralBasis:
    """PCA over the spectra (pixels) of training cubes ``(B, H, W)``; NaN spectra skipped."""
    spectra = np.concatenate([c.reshape(c.shape[0], -1).T for c in cubes]).astype(np.float64)
    spectra = spectra[np.isfinite(spectra).all(axis=1)]
    if spectra.shape[0] < 2:
        raise InputError("too few finite training spectra to fit a spectral basis")
    if spectra.shape[0] > max_pixels:
        spectra = spectra[np.random.default_rng(seed).choice(spectra.shape[0], max_pixels, False)]
    mean = spectra.mean(axis=0)
    # the leading right singular vectors of the centred spectra: (B, K)
    _, _, vt = np.linalg.svd(spectra - mean, full_matrices=False)
    k = min(components, vt.shape[0])
    return SpectralBasis(mean, vt[:k].T.copy(), spatial)


class SpectralCodec:
    """Cubes ``(B, H, W)`` <-> records, through a :class:`SpectralBasis` and a 2-D codec.

    Examples
    --------
    >>> import numpy as np
    >>> from walloc_io.spectral import SpectralCodec, fit_basis
    >>> rng = np.random.default_rng(0)
    >>> spectra = rng.normal(size=(3, 64)).cumsum(axis=1)          # 3 spectral shapes
    >>> cube = np.einsum("kb,khw->bhw", spectra, rng.random((3, 32, 32))).astype(np.float32)
    >>> codec = SpectralCodec(fit_basis([cube], components=4))
    >>> record = codec.encode(cube, max_abs_error=0.01)
    >>> back = codec.decode(record)
    >>> back.shape, bool(np.abs(back - cube).max() <= 0.01), len(record) < cube.nbytes
    ((64, 32, 32), True, True)
    """

    def __init__(self, basis: SpectralBasis, device: str = "cpu") -> None:
        from .codec import load_codec

        self.basis = basis
        self.spatial = load_codec(basis.spatial, device=device)
        cfg = self.spatial.config
        if cfg.modality != "image" or cfg.channels != 1:
            raise InputError(f"the spatial codec must be a one-channel image codec, not {cfg.name}")

    def _check(self, cube: np.ndarray) -> None:
        if cube.ndim != 3 or cube.shape[0] != self.basis.bands:
            raise InputError(f"expected a cube ({self.basis.bands}, H, W), got {cube.shape}")
        if cube.dtype.name not in DTYPES:
            raise InputError(f"cubes are float32 or float64, got {cube.dtype}")
        f = 2 ** self.spatial.config.levels
        if min(cube.shape[1:]) < f:
            raise InputError(f"cube axes {cube.shape[1:]} too small: each needs >= {f}")

    def encode(self, cube: np.ndarray, *, max_abs_error: float | None = None,
               nan: str = "raise", quality: int | None = None) -> bytes:
        from .entropy import residual
        from .signal import fill_nan

        cube = np.asarray(cube)
        self._check(cube)
        finite = np.isfinite(cube)
        mask = None
        if not finite.all():
            if np.isinf(cube).any():
                raise InputError("cube contains Inf")
            if nan != "mask":
                raise InputError(f"cube contains {int((~finite).sum())} NaN (use nan='mask')")
            mask, cube = ~finite, fill_nan(cube)
        if max_abs_error is not None:
            eps = residual.check_bound(max_abs_error, cube.dtype.name)
        b, h, w = cube.shape
        if cube.size > bitstream.MAX_ELEMENTS:
            raise InputError(f"cube of {cube.size} values: more than walloc_io.bitstream."
                             f"MAX_ELEMENTS = {bitstream.MAX_ELEMENTS} (raise it to code it)")
        x = cube.reshape(b, -1).astype(np.float64)
        planes = (self.basis.components.T @ (x - self.basis.mean[:, None])).reshape(-1, h, w)
        streams = self.spatial.encode_batch([p[None].astype(np.float32) for p in planes],
                                            quality=quality)
        flags = (1 if mask is not None else 0) | (2 if max_abs_error is not None else 0)
        parts = [_HEAD.pack(MAGIC, VERSION, DTYPES.index(cube.dtype.name), flags, b, h, w,
                            self.basis.k, bytes.fromhex(self.basis.fingerprint))]
        parts += [struct.pack(f"<{len(streams)}I", *map(len, streams)), *streams]
        if max_abs_error is not None:
            pred = self._predict(streams, h, w)
            plane = cube.reshape(1, b, h * w)
            bins = np.zeros(plane.shape, np.uint8)
            skip = None if mask is None else mask.reshape(plane.shape)
            # each component plane's decoder may drift by MARGIN of its span: in the band
            # domain by up to MARGIN x sum_k |P_bk| span_k
            spans = np.ptp(planes.reshape(planes.shape[0], -1), axis=1)
            drift = residual.MARGIN * float(np.max(np.abs(self.basis.components) @ spans))
            body = residual.encode(plane, pred.reshape(plane.shape), eps, bins, None, skip,
                                      margin=max(drift, residual.MARGIN * float(np.ptp(pred))))
            parts += [struct.pack("<I", len(body)), body]
        if mask is not None:
            packed = zlib.compress(np.packbits(mask.ravel()).tobytes(), 9)
            parts += [struct.pack("<I", len(packed)), packed]
        body = b"".join(parts)
        return body + struct.pack("<I", zlib.crc32(body))

    def _predict(self, streams: list[bytes], h: int, w: int) -> np.ndarray:
        """The decoder's reconstruction ``(B, H * W)`` float64 from the component streams."""
        planes = np.stack([y[0].astype(np.float64) for y in self.spatial.decode_batch(streams)])
        return self.basis.components @ planes.reshape(planes.shape[0], -1) + \
            self.basis.mean[:, None]

    def decode(self, record: bytes) -> np.ndarray:
        from .entropy import residual

        data = bytes(record)
        if len(data) < _HEAD.size + 4 or data[:4] != MAGIC:
            raise BitstreamError("not a WaLLoC spectral record")
        if zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
            raise BitstreamError("spectral record checksum mismatch: the record is corrupt")
        data = data[:-4]
        _, version, dtype, flags, b, h, w, k, fp = _HEAD.unpack_from(data)
        if version != VERSION or dtype >= len(DTYPES) or flags > 3:
            raise BitstreamError(f"unsupported spectral record (version {version}, flags {flags})")
        if fp.hex() != self.basis.fingerprint or (b, k) != (self.basis.bands, self.basis.k):
            raise ModelMismatchError(f"record made with spectral basis {fp.hex()[:12]}, not "
                                     f"{self.basis.fingerprint[:12]}")
        if b * h * w > bitstream.MAX_ELEMENTS or min(h, w) < 1:
            raise BitstreamError(f"spectral record declares an implausible cube {(b, h, w)}")
        at = _HEAD.size
        if at + 4 * k > len(data):
            raise BitstreamError("spectral record truncated")
        sizes = struct.unpack_from(f"<{k}I", data, at)
        at += 4 * k
        streams = []
        for size in sizes:
            if at + size > len(data):
                raise BitstreamError("spectral record truncated")
            streams.append(data[at:at + size])
            at += size
        for s in streams:
            header = bitstream.read_header(s)
            if header.array_shape != (1, h, w):
                raise BitstreamError(f"component stream of shape {header.array_shape}, "
                                     f"expected {(1, h, w)}")
        pred = self._predict(streams, h, w)
        name = DTYPES[dtype]
        if flags & 2:
            body, at = _section(data, at)
            out = residual.decode(body, pred.reshape(1, b, h * w), np.zeros((1, b, h * w), np.uint8),
                                  name, None).reshape(b, h, w)
        else:
            out = pred.reshape(b, h, w).astype(name)
        if flags & 1:
            packed, at = _section(data, at)
            n = b * h * w
            inflate = zlib.decompressobj()
            try:
                bits = inflate.decompress(packed, (n + 7) // 8)
            except zlib.error as exc:
                raise BitstreamError(f"spectral record: corrupt NaN mask ({exc})") from None
            if len(bits) != (n + 7) // 8:
                raise BitstreamError("spectral record: NaN mask of the wrong size")
            mask = np.unpackbits(np.frombuffer(bits, np.uint8), count=n).astype(bool)
            out.reshape(-1)[mask] = np.nan  # out is contiguous: the view writes through
        if at != len(data):
            raise BitstreamError(f"{len(data) - at} trailing bytes in a spectral record")
        return out


def _section(data: bytes, at: int) -> tuple[bytes, int]:
    if at + 4 > len(data):
        raise BitstreamError("spectral record truncated")
    (size,) = struct.unpack_from("<I", data, at)
    at += 4
    if at + size > len(data):
        raise BitstreamError("spectral record truncated")
    return data[at:at + size], at + size


__all__ = ["SpectralBasis", "SpectralCodec", "fit_basis"]
