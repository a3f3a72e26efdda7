"""Hyperspectral cubes in Zarr v3: the array-to-bytes codec ``"walloc_spectral"``.

Each chunk holds every band of a spatial tile, ``(B, h, w)``, and is stored as one record of
:class:`walloc_io.spectral.SpectralCodec` (component streams, residual, NaN mask)::

    zarr.create_array(store, shape=(3681, 40, 40), chunks=(3681, 40, 40), dtype="float32",
                      fill_value=float("nan"), serializer={"name": "walloc_spectral",
                      "configuration": {"basis": "muse-basis", "max_abs_error": 0.05,
                                        "nan": "mask"}})

``basis`` is a directory written by ``walloc train-spectral`` (recorded as given, with its
fingerprint; a moved basis is found through ``WALLOC_CODEC_PATH``). The layout (3-D float,
all bands per chunk, tiles of at least ``2**J`` per axis) is checked at creation.
"""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import parse_named_configuration

from ..errors import BitstreamError, InputError, PresetError
from .chunk import ChunkLayoutError

NAME = "walloc_spectral"


@functools.lru_cache(maxsize=16)
def _codec(directory: str, device: str):
    from ..spectral import SpectralBasis, SpectralCodec

    return SpectralCodec(SpectralBasis.load(directory), device=device)


def _find(basis: str, fingerprint: str | None) -> str:
    """The basis directory: as recorded, else the one in ``WALLOC_CODEC_PATH`` with the
    recorded fingerprint."""
    import json

    def fp(d: Path) -> str | None:
        meta = d / "spectral.json"
        return json.loads(meta.read_text()).get("fingerprint") if meta.is_file() else None

    if fp(Path(basis)) is not None and fingerprint in (None, fp(Path(basis))):
        return basis
    for root in filter(None, os.environ.get("WALLOC_CODEC_PATH", "").split(os.pathsep)):
        for d in [Path(root), *Path(root).iterdir()] if Path(root).is_dir() else []:
            if d.is_dir() and fp(d) == fingerprint:
                return str(d)
    raise PresetError(f"no spectral basis {basis!r} (fingerprint {str(fingerprint)[:12]}): "
                      "point WALLOC_CODEC_PATH at the directory holding it")


@dataclass(frozen=True)
class WallocSpectralZarrCodec(ArrayBytesCodec):
    """Zarr v3 serializer of hyperspectral chunks ``(B, h, w)`` (see the module docstring)."""

    basis: str = ""
    fingerprint: str | None = None
    max_abs_error: float | None = None
    nan: str = "raise"
    quality: int | None = None
    is_fixed_size = False

    def __post_init__(self) -> None:
        from ..entropy.residual import check_bound
        from ..quality import check_quality

        if not self.basis:
            raise InputError("walloc_spectral needs basis= (a walloc train-spectral directory)")
        if self.nan not in ("raise", "mask"):
            raise InputError(f"nan must be 'raise' or 'mask', got {self.nan!r}")
        if self.max_abs_error is not None:
            object.__setattr__(self, "max_abs_error", check_bound(self.max_abs_error, "float32"))
        object.__setattr__(self, "quality", check_quality(self.quality))
        directory = _find(str(self.basis), self.fingerprint)
        object.__setattr__(self, "fingerprint", self.spectral(directory).basis.fingerprint)

    def spectral(self, directory: str | None = None):
        return _codec(directory or _find(str(self.basis), self.fingerprint),
                      os.environ.get("WALLOC_DEVICE", "cpu"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WallocSpectralZarrCodec:
        _, parsed = parse_named_configuration(data, NAME, require_configuration=True)
        config: dict[str, Any] = dict(parsed or {})
        unknown = set(config) - {"basis", "fingerprint", "max_abs_error", "nan", "quality"}
        if unknown:
            raise InputError(f"unknown walloc_spectral options: {sorted(unknown)}")
        return cls(**config)

    def to_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {"basis": str(self.basis), "fingerprint": self.fingerprint,
                                  "nan": self.nan}
        if self.max_abs_error is not None:
            config["max_abs_error"] = self.max_abs_error
        if self.quality is not None:
            config["quality"] = self.quality
        return {"name": NAME, "configuration": config}

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        from zarr.core.chunk_grids import RegularChunkGrid

        chunks = chunk_grid.chunk_shape if isinstance(chunk_grid, RegularChunkGrid) else shape
        self._check(tuple(chunks), dtype.to_native_dtype())

    def evolve_from_array_spec(self, array_spec: ArraySpec) -> WallocSpectralZarrCodec:
        """Checks the spec zarr gives (the array's, or a shard's inner chunk) like
        :meth:`validate` checks the chunks."""
        self._check(tuple(array_spec.shape), array_spec.dtype.to_native_dtype())
        fill = array_spec.fill_value
        if self.nan == "raise" and fill is not None and np.isnan(fill):
            raise ChunkLayoutError("fill_value NaN needs nan='mask'")
        return self

    def _check(self, shape: tuple, native) -> None:
        codec = self.spectral()
        f = 2 ** codec.spatial.config.levels
        if len(shape) != 3 or native.name not in ("float32", "float64"):
            raise ChunkLayoutError(f"walloc_spectral stores 3-D float cubes (B, H, W), not "
                                   f"{native} chunks of shape {shape}")
        if shape[0] != codec.basis.bands:
            raise ChunkLayoutError(f"chunks must hold all {codec.basis.bands} bands of the "
                                   f"basis, got {shape[0]}")
        if min(shape[1:]) < f:
            raise ChunkLayoutError(f"spatial chunk {shape[1:]} too small: each axis >= {f}")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable-size output

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        chunk = np.asarray(chunk_array.as_numpy_array())
        record = self.spectral().encode(chunk, max_abs_error=self.max_abs_error, nan=self.nan,
                                        quality=self.quality)
        return chunk_spec.prototype.buffer.from_bytes(record)

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        out = self.spectral().decode(chunk_bytes.to_bytes())
        native = chunk_spec.dtype.to_native_dtype()
        if out.shape != tuple(chunk_spec.shape) or out.dtype != native:
            raise BitstreamError(f"chunk decodes to {out.shape} {out.dtype}, the array "
                                 f"expects {tuple(chunk_spec.shape)} {native}")
        return chunk_spec.prototype.nd_buffer.from_numpy_array(out)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)
