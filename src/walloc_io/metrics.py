"""Distortion measures and classical baselines used by the demo, eval and benchmarks."""

from __future__ import annotations

import math

import numpy as np


def psnr(reference: np.ndarray, test: np.ndarray, peak: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``peak`` defaults to the dtype range (uint8: 255)
    or, for floats, to the reference's own range."""
    ref, out = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    if peak is None:
        kind = np.asarray(reference).dtype
        peak = float(np.iinfo(kind).max) if kind.kind in "iu" else float(np.ptp(ref))
    mse = float(np.mean((ref - out) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def bicubic_round_trip(image: np.ndarray, factor: int) -> np.ndarray:
    """uint8 or float ``(C, H, W)`` -> bicubic down by ``factor`` -> bicubic back up (Pillow;
    floats as 32-bit float images, returned in the input's dtype)."""
    from PIL import Image

    planes = []
    for plane in image:
        im = Image.fromarray(plane if plane.dtype == np.uint8 else plane.astype(np.float32))
        small = im.resize((im.width // factor, im.height // factor), Image.Resampling.BICUBIC)
        planes.append(np.asarray(small.resize(im.size, Image.Resampling.BICUBIC)))
    return np.stack(planes).astype(image.dtype)


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """Multi-scale SSIM (Wang et al. 2003) of ``(C, H, W)`` images, mean over channels.

    Gaussian window 11, sigma 1.5 (separable, valid region), five scales with the standard
    weights; scales that would shrink the image below the window are dropped and the weights
    renormalised. Needs scipy (it comes with scikit-image).
    """
    from scipy.ndimage import correlate1d

    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    g = (g / g.sum()).astype(np.float32)

    def window(z):  # (C, H, W) -> Gaussian-filtered valid region
        z = correlate1d(correlate1d(z, g, axis=-2, mode="nearest"), g, axis=-1, mode="nearest")
        return z[:, 5:-5, 5:-5]

    x = np.asarray(reference, np.float32)
    y = np.asarray(test, np.float32)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    scales = max(1, min(len(MS_SSIM_WEIGHTS), 1 + int(math.log2(min(x.shape[-2:]) / 11))))
    weights = np.array(MS_SSIM_WEIGHTS[:scales]) / sum(MS_SSIM_WEIGHTS[:scales])
    values = []
    for s in range(scales):
        mx, my = window(x), window(y)
        sxx = window(x * x) - mx**2
        syy = window(y * y) - my**2
        sxy = window(x * y) - mx * my
        cs = ((2 * sxy + c2) / (sxx + syy + c2)).mean(axis=(1, 2), dtype=np.float64)
        if s == scales - 1:
            lum = ((2 * mx * my + c1) / (mx**2 + my**2 + c1)).mean(axis=(1, 2), dtype=np.float64)
            values.append(np.clip(lum * cs, 0, None))
        else:
            values.append(np.clip(cs, 0, None))
            h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
            x = x[:, :h, :w].reshape(x.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
            y = y[:, :h, :w].reshape(y.shape[0], h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    return float(np.prod(np.stack(values) ** weights[:, None], axis=0).mean())


def snr(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio in dB (audio): signal power over error power."""
    ref, out = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    noise = float(np.mean((ref - out) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.mean(ref**2)) / noise)


def decimate_round_trip(signal: np.ndarray, factor: int) -> np.ndarray:
    """``(C, T)`` audio -> ideal (FFT) low-pass and keep 1/``factor`` of the band -> back.

    The classical baseline at the same dimensionality reduction: what survives decimating
    by ``factor`` and interpolating back, with a brick-wall filter (its best case).
    """
    x = np.asarray(signal, np.float64)
    spectrum = np.fft.rfft(x, axis=-1)
    keep = spectrum.shape[-1] // factor
    spectrum[..., keep:] = 0
    return np.fft.irfft(spectrum, n=x.shape[-1], axis=-1)
