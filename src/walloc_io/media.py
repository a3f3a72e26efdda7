"""Read and write signals by file extension: images, .npy arrays, audio.

Images come out channel-first ``(C, H, W)``; audio ``(C, T)`` with its sample rate.
Pillow, tifffile and soundfile are imported only when a file of theirs is touched.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import InputError

PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
TIFF_SUFFIXES = (".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
SUFFIXES = {"image": PIL_SUFFIXES + TIFF_SUFFIXES + (".npy",), "audio": AUDIO_SUFFIXES + (".npy",)}


def signal_files(source: str | Path, modality: str) -> list[Path]:
    """``source`` itself if it is a file, else every image/audio/.npy file under it, sorted."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"{source} does not exist")
    suffixes = SUFFIXES[modality]
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise InputError(f"no {modality} files ({', '.join(suffixes)}) under {source}")
    return files


class Signal(NamedTuple):
    data: np.ndarray
    sample_rate: int = 0


def read_signal(path: str | Path, data: bytes | None = None) -> Signal:
    """Read the file at ``path``, or decode ``data`` (e.g. a tar member) as a file named
    ``path``: the suffix picks the reader either way."""
    path = Path(path)
    suffix = path.suffix.lower()
    src = path if data is None else io.BytesIO(data)
    try:
        if suffix == ".npy":
            return Signal(np.load(src, allow_pickle=False))
        if suffix in TIFF_SUFFIXES:
            import tifffile

            return Signal(_channels_first(tifffile.imread(src), channel_last=None))
        if suffix in PIL_SUFFIXES:
            from PIL import Image

            with Image.open(src) as im:
                return Signal(_channels_first(np.asarray(im), channel_last=True))
        if suffix in AUDIO_SUFFIXES:
            import soundfile

            file = str(path) if data is None else src
            info = soundfile.info(file)
            dtype = "int16" if info.subtype == "PCM_16" else "float32"
            if isinstance(src, io.BytesIO):  # data given: rewind after soundfile.info
                src.seek(0)
            samples, rate = soundfile.read(file, dtype=dtype, always_2d=True)
            return Signal(np.ascontiguousarray(samples.T), int(rate))
    except (OSError, ValueError, RuntimeError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    raise InputError(f"unsupported file type {suffix!r} for {path}")


def _channels_first(a: np.ndarray, channel_last: bool | None) -> np.ndarray:
    """(H, W) -> (1, H, W); (H, W, C) -> (C, H, W).

    Pillow is always channel-last; TIFF may be either (``channel_last=None``: guessed from
    which end holds the smaller, band-like axis).
    """
    if a.ndim == 2:
        return a[None]
    if channel_last is None:
        channel_last = a.ndim == 3 and a.shape[-1] < a.shape[0] and a.shape[-1] <= 16
    if a.ndim == 3 and channel_last:
        return np.ascontiguousarray(a.transpose(2, 0, 1))
    return a


def write_signal(path: str | Path, data: np.ndarray, sample_rate: int = 0) -> None:
    """Write ``data`` (channel-first) in the format of ``path``'s extension, atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)  # as encode does for its output
    tmp = path.with_name(f".{path.name}.partial")
    if suffix == ".npy":
        with open(tmp, "wb") as f:
            np.save(f, data)
    elif suffix in TIFF_SUFFIXES:
        import tifffile

        tifffile.imwrite(tmp, data.transpose(1, 2, 0) if data.shape[0] in (3, 4) else data)
    elif suffix in PIL_SUFFIXES:
        from PIL import Image

        if data.shape[0] not in (1, 3, 4) or data.dtype != np.uint8:
            raise InputError(f"{suffix} holds 1, 3 or 4 uint8 channels; use .tif or .npy")
        img = data[0] if data.shape[0] == 1 else data.transpose(1, 2, 0)
        Image.fromarray(np.ascontiguousarray(img)).save(tmp, format=_pil_format(suffix))
    elif suffix in AUDIO_SUFFIXES:
        import soundfile

        if not sample_rate:
            raise InputError("the stream records no sample rate; write .npy instead")
        soundfile.write(str(tmp), data.T, sample_rate, format=suffix[1:].upper())
    else:
        raise InputError(f"unsupported output type {suffix!r}")
    tmp.replace(path)


def _pil_format(suffix: str) -> str:
    return {".jpg": "JPEG", ".jpeg": "JPEG"}.get(suffix, suffix[1:].upper())


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and a rename: readers (and a rerun
    after a crash) see the old file or the whole new one, never a part. The temporary name
    carries the process id, so concurrent writers never share one."""
    import os

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, target)
