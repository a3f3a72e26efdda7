"""Training signals: loading folders/arrays, and seeded random crops held in memory.

Photos for the shipped presets stay uint8 (:func:`load_images`); anything else
(:func:`load_signals`) is normalised to ``[-1/2, 1/2]`` exactly as :meth:`Codec.encode` will
normalise it (dtype range, or per-channel min..max for floats and uint16) and kept float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def load_images(folder: str | Path, channels: int = 3) -> list[np.ndarray]:
    """Every image in ``folder`` as a ``(C, H, W)`` uint8 array, sorted by file name."""
    from PIL import Image

    mode = {1: "L", 3: "RGB"}[channels]
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    arrays = [np.asarray(Image.open(p).convert(mode)) for p in files]
    return [a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy() for a in arrays]


def load_signals(source: str | Path, modality: str) -> list[np.ndarray]:
    """Every signal under ``source`` as float32 ``(C, *axes)`` in ``[-1/2, 1/2]``.

    ``source`` is a folder of images (PNG/JPEG/TIFF incl. multi-band GeoTIFF), audio
    (WAV/FLAC/OGG) or ``.npy`` files, one such file, or a Zarr array whose first axis indexes
    items (``(N, C, H, W)`` / ``(N, C, T)``). All items must have the same channel count.
    """
    from ..errors import InputError
    from ..media import read_signal, signal_files
    from ..signal import prepare

    source, ndim = Path(source), {"image": 2, "audio": 1}[modality]
    if _is_zarr(source):
        raw = list(_zarr_items(source))
    else:
        raw = [read_signal(p).data for p in signal_files(source, modality)]
    channels = {a.shape[0] for a in raw if a.ndim == ndim + 1}
    if len(channels) != 1 or any(a.ndim != ndim + 1 for a in raw):
        shapes = sorted({a.shape for a in raw})[:4]
        raise InputError(f"training {modality} items must all be {ndim + 1}-d with one channel "
                         f"count; got shapes like {shapes}")
    return [prepare(a, a.shape[0], ndim, 1).data for a in raw]


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zarray").exists()


def _zarr_items(path: Path):
    try:
        import zarr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading a Zarr array needs the zarr extra: "
                          "pip install 'walloc-io[zarr]'") from exc
    array = zarr.open_array(str(path), mode="r")
    for i in range(array.shape[0]):
        yield np.asarray(array[i])


def split_validation(items: list[np.ndarray], fraction: float, seed: int
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out ``fraction`` of the items (at least one), chosen with ``seed``.

    A single item (one multispectral scene, one long recording) is split along its last axis
    instead: the final ``fraction`` of it is the validation part.
    """
    if len(items) == 1:
        x = items[0]
        cut = x.shape[-1] - max(1, int(round(x.shape[-1] * fraction)))
        return [x[..., :cut]], [x[..., cut:]]
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = min(len(items) - 1, max(1, int(round(len(items) * fraction))))
    held = set(order[:n_val].tolist())
    return ([x for i, x in enumerate(items) if i not in held],
            [x for i, x in enumerate(items) if i in held])


class CropSampler:
    """Draw batches of random crops (``crop`` samples along every signal axis) with flips.

    Items are uint8 images (scaled to ``[-1/2, 1/2]`` on the fly) or float32 signals already
    in that range, 2D ``(C, H, W)`` or 1D ``(C, T)``. Items are picked with probability
    proportional to their size, so every training sample is equally likely; images are
    flipped left-right at random (audio is never reversed). Seeded: runs are reproducible.

    ``spectral_tilt``: the share of 1D (audio) crops whose spectrum is tilted by a random
    -6..+3 dB per octave around 1 kHz (:meth:`_tilt`), so the encoder meets bass-heavy and
    bright mixes its training tracks lack instead of fitting their one spectral balance.
    """

    TILT_DB = (-6.0, 3.0)  # dB per octave, drawn uniformly

    def __init__(self, images: list[np.ndarray], crop: int, seed: int = 0, *,
                 augment: bool = False, low_contrast: float = 0.0,
                 spectral_tilt: float = 0.0) -> None:
        self.augment, self.low_contrast = augment, low_contrast
        self.spectral_tilt = spectral_tilt
        self.images = [im for im in images if min(im.shape[1:]) >= crop]
        if not self.images:
            raise ValueError(f"no training item is at least {crop} samples along every axis")
        size = np.array([np.prod(im.shape[1:]) for im in self.images], dtype=np.float64)
        self.weights = size / size.sum()
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        """``(size, C, crop[, crop])`` float32 in ``[-1/2, 1/2]``."""
        picks = self.rng.choice(len(self.images), size=size, p=self.weights)
        first = self.images[0]
        spatial = (self.crop,) * (first.ndim - 1)
        out = np.empty((size, first.shape[0], *spatial), dtype=first.dtype)
        for i, k in enumerate(picks):
            im = self.images[k]
            starts = [self.rng.integers(0, n - self.crop + 1) for n in im.shape[1:]]
            patch = im[(slice(None), *(slice(s, s + self.crop) for s in starts))]
            if im.ndim == 3 and self.rng.random() < 0.5:
                patch = patch[:, :, ::-1]
            if im.ndim == 3 and self.augment:
                if self.rng.random() < 0.5:
                    patch = patch[:, ::-1]
                patch = np.rot90(patch, int(self.rng.integers(4)), axes=(1, 2))
            if self.low_contrast and self.rng.random() < self.low_contrast:
                patch = self._flatten(patch)
            if im.ndim == 2 and self.spectral_tilt and self.rng.random() < self.spectral_tilt:
                patch = self._tilt(patch)
            out[i] = patch
        return to_unit(out)

    def _tilt(self, patch: np.ndarray) -> np.ndarray:
        """``(C, T)`` float crop tilted by a random slope (:func:`tilt_spectrum`, read as
        44.1 kHz audio): the same music, mixed darker or brighter."""
        slope = self.rng.uniform(*self.TILT_DB)
        return tilt_spectrum(patch, slope).astype(patch.dtype)

    def _flatten(self, patch: np.ndarray) -> np.ndarray:
        """Contrast lowered 0.1-0.6x around a random level: the smooth, dark, misty content
        an MSE-trained codec otherwise starves of bits."""
        x = patch.astype(np.float32)
        mean = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)
        level = self.rng.uniform(0.05, 0.8) * (255 if patch.dtype == np.uint8 else 1.0)
        if patch.dtype != np.uint8:
            level -= 0.5
        y = level + (x - mean) * self.rng.uniform(0.1, 0.6) + (mean - mean.mean()) * 0.3
        if patch.dtype == np.uint8:
            return np.clip(np.round(y), 0, 255).astype(np.uint8)
        return np.clip(y, -0.5, 0.5).astype(patch.dtype)


def tilt_spectrum(x: np.ndarray, slope: float, rate: float = 44100.0) -> np.ndarray:
    """``(C, T)`` signal with its spectrum tilted by ``slope`` dB per octave (gain 1 at 1 kHz,
    flat below 50 Hz), float64, rescaled to the input's own peak so it stays in range."""
    spectrum = np.fft.rfft(np.asarray(x, np.float64), axis=-1)
    freq = np.fft.rfftfreq(x.shape[-1], 1.0 / rate)
    spectrum *= (np.maximum(freq, 50.0) / 1000.0) ** (slope / (20 * np.log10(2)))
    y = np.fft.irfft(spectrum, n=x.shape[-1], axis=-1)
    new = float(np.abs(y).max())
    return y * (float(np.abs(x).max()) / new if new > 0 else 0.0)


def to_unit(x: np.ndarray) -> torch.Tensor:
    """uint8 images -> float32 in ``[-1/2, 1/2]``; float signals pass through as float32."""
    t = torch.from_numpy(np.require(x, requirements=["C", "W"]))  # copies read-only views
    return t.float() / 255 - 0.5 if x.dtype == np.uint8 else t.float()
