"""The shipped presets on the bundled held-out samples: rate and quality bands."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

import walloc_io
from walloc_io.cli.io import read_signal
from walloc_io.metrics import bicubic_round_trip, psnr


@pytest.fixture(scope="module")
def samples():
    root = files("walloc_io").joinpath("samples")
    return [read_signal(p).data for p in sorted(root.iterdir()) if p.name.endswith(".png")]


def test_listed_and_described():
    assert "rgb-16x" in walloc_io.list_presets()
    codec = walloc_io.load_codec("rgb-16x", device="cpu")
    cfg = codec.config
    assert (cfg.levels, cfg.latent_channels, cfg.channels) == (3, 12, 3)
    assert codec.dimensionality_reduction == 16


def test_rate_and_quality_beat_bicubic(samples):
    codec = walloc_io.load_codec("rgb-16x", device="cpu")
    bpp, ours, bicubic = [], [], []
    for image in samples:
        blob = codec.encode(image)
        bpp.append(8 * len(blob) / (image.shape[1] * image.shape[2]))
        ours.append(psnr(image, codec.decode(blob)))
        bicubic.append(psnr(image, bicubic_round_trip(image, 4)))
    assert 0.1 < np.mean(bpp) <= 0.8
    assert np.mean(ours) >= np.mean(bicubic) + 1.0
    assert np.mean(ours) < 40  # a 16x lossy codec: higher would mean the test measures nothing


def test_latents_shape_and_range(samples):
    codec = walloc_io.load_codec("rgb-16x", device="cpu")
    z = codec.decode_latents(codec.encode(samples[0]))
    assert z.shape == (12, 48, 64) and np.abs(z).max() <= 127 and z.dtype == np.int32


def test_gray_16x_on_grey_samples(samples):
    codec = walloc_io.load_codec("gray-16x", device="cpu")
    assert codec.config.channels == 1 and codec.dimensionality_reduction == 16
    ours, bicubic, bpp = [], [], []
    for image in samples:
        grey = np.round(image.astype(float).T @ [0.299, 0.587, 0.114]).T.astype(np.uint8)[None]
        blob = codec.encode(grey)
        bpp.append(8 * len(blob) / grey[0].size)
        ours.append(psnr(grey, codec.decode(blob)))
        bicubic.append(psnr(grey, bicubic_round_trip(grey, 4)))
    assert 0.03 < np.mean(bpp) <= 0.5
    assert np.mean(ours) > np.mean(bicubic) + 0.3  # +0.48 dB measured on these three
    assert np.mean(ours) < 40
