"""What ``walloc convert`` writes: the WaLLoC Zarr group and arrays (options recorded
portably), output sizes, verification.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import numpy as np

from ...errors import InputError
from ...presets import PRESET_DIR

if TYPE_CHECKING:
    from .tasks import Job


def _group(job: Job):
    import zarr

    return zarr.open_group(job.partial, mode="a", zarr_format=cast(Literal[2, 3], job.zarr_format))


def _write_item(job: Job, codec, group, name: str, sig, attrs: dict):
    data = sig.data
    chunks = (codec.config.channels, *(min(n, job.tile) for n in data.shape[1:]))
    arr = _create(group, f"items/{name}", data.shape, chunks, data.dtype, job, sig.sample_rate)
    arr.attrs.update({**attrs, "sample_rate": sig.sample_rate})
    arr[...] = data
    return arr


def _check_unique(group, name: str, shard: str) -> None:
    path = f"items/{name}"
    if path in group and group[path].attrs.get("shard") != shard:
        raise InputError(f"key {name!r} already came from shard {group[path].attrs.get('shard')}")


def _encode_all(codec, signals: list, quality: int | None = None,
                max_abs_error: float | None = None) -> list[bytes]:
    """Encode in batches of same-size signals (one tensor call each), rate per item."""
    by_rate: dict[int, list[int]] = {}
    for i, sig in enumerate(signals):
        by_rate.setdefault(sig.sample_rate, []).append(i)
    out: list[bytes] = [b""] * len(signals)
    for rate, index in by_rate.items():
        for i, blob in zip(index, codec.encode_batch([signals[i].data for i in index],
                                                     sample_rate=rate, quality=quality,
                                                     max_abs_error=max_abs_error)):
            out[i] = blob
    return out


def _quality(modality: str, ref: np.ndarray, out: np.ndarray) -> float:
    from ...metrics import psnr, snr

    return float(psnr(ref, out) if modality == "image" else snr(ref, out))


def _create(group, name: str, shape, chunks, dtype, job: Job, sample_rate: int = 0,
            shards=None):

    from ...codecs.options import ChunkCodecOptions
    from ...presets import resolve

    path = resolve(job.codec)  # a codec directory wins over a preset of the same name, as in load_codec
    # the path as given (never made absolute) plus the fingerprint, which finds it anywhere
    named = path.parent == PRESET_DIR
    options = ChunkCodecOptions(preset=job.codec if named else None,
                                path=None if named else str(job.codec), sample_rate=sample_rate,
                                quality=job.quality, max_abs_error=job.max_abs_error,
                                nan=job.nan)
    if job.zarr_format == 3:
        serializer = {"name": "walloc", "configuration": options.to_config()}
        fill = {"fill_value": np.nan} if job.nan == "mask" and np.dtype(dtype).kind == "f" else {}
        return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, shards=shards,
                                  serializer=serializer, compressors=None, overwrite=True, **fill)
    from ...codecs.numcodec import WallocCodec

    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, filters=None,
                              compressors=WallocCodec(**asdict(options)), overwrite=True)


def _array_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
