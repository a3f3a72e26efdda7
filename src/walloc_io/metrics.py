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
    """uint8 ``(C, H, W)`` -> bicubic down by ``factor`` -> bicubic back up (Pillow)."""
    from PIL import Image

    planes = []
    for plane in image:
        im = Image.fromarray(plane)
        small = im.resize((im.width // factor, im.height // factor), Image.Resampling.BICUBIC)
        planes.append(np.asarray(small.resize(im.size, Image.Resampling.BICUBIC)))
    return np.stack(planes)
