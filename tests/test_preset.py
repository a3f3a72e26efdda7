"""The shipped presets on the bundled held-out samples: rate and quality bands."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

import walloc_io
from walloc_io.media import read_signal
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


def _measure(codec, images, factor: int) -> tuple[float, float, float]:
    """Mean bpp, PSNR and bicubic /factor PSNR over ``images``."""
    bpp, ours, bicubic = [], [], []
    for image in images:
        blob = codec.encode(image)
        bpp.append(8 * len(blob) / (image.shape[1] * image.shape[2]))
        ours.append(psnr(image, codec.decode(blob)))
        bicubic.append(psnr(image, bicubic_round_trip(image, factor)))
    return float(np.mean(bpp)), float(np.mean(ours)), float(np.mean(bicubic))


def test_rate_and_quality_beat_bicubic(samples):
    bpp, ours, bicubic = _measure(walloc_io.load_codec("rgb-16x", device="cpu"), samples, 4)
    assert 0.1 < np.mean(bpp) <= 0.8
    assert np.mean(ours) >= np.mean(bicubic) + 1.0
    assert np.mean(ours) < 40  # a 16x lossy codec: higher would mean the test measures nothing


def test_latents_shape_and_range(samples):
    from walloc_io.quality import max_symbol_at

    codec = walloc_io.load_codec("rgb-16x", device="cpu")
    blob = codec.encode(samples[0])
    z = codec.decode_latents(blob)
    assert z.shape == (12, 48, 64) and z.dtype == np.int32
    # each channel within its step's range (127 on a step of 1; finer steps reach further)
    steps = codec.steps(walloc_io.read_header(blob).quality)
    top = [max_symbol_at(s, codec.model.companding.amplitude) for s in steps]
    assert (np.abs(z).reshape(12, -1).max(axis=1) <= top).all()
    assert max(top) > 127 and np.abs(z).max() > 0


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


def _clip(name: str):
    return read_signal(files("walloc_io").joinpath("samples", name))


def test_stereo_20x_on_held_out_music():
    from walloc_io.metrics import decimate_round_trip, snr

    codec = walloc_io.load_codec("stereo-20x", device="cpu")
    cfg = codec.config
    assert (cfg.modality, cfg.channels, cfg.levels, cfg.latent_channels) == ("audio", 2, 8, 27)
    clip = _clip("heroes_rite.flac")
    blob = codec.encode(clip.data, sample_rate=clip.sample_rate)
    assert walloc_io.read_header(blob).sample_rate == 44100
    decoded = codec.decode(blob)
    assert decoded.dtype == np.int16 and decoded.shape == clip.data.shape
    kbps = 8 * len(blob) / (clip.data.shape[1] / clip.sample_rate) / 1e3
    assert 8 < kbps < 30  # 20.0 measured (13.2 kbps mean on the whole held-out set)
    ours = snr(clip.data, decoded)
    assert 11 < ours < 25  # 13.07 dB measured; ideal decimation at the same DR gives 13.25
    assert ours > snr(clip.data, decimate_round_trip(clip.data, 19)) - 1.5


def test_rgb_4x_beats_bicubic_by_2(samples):
    codec = walloc_io.load_codec("rgb-4x", device="cpu")
    assert codec.config.latent_channels == 48 and codec.dimensionality_reduction == 4
    bpp, ours, bicubic = _measure(codec, samples, 2)
    assert 0.4 < np.mean(bpp) < 2.5  # 1.53 bpp, 35.52 dB vs bicubic 31.58 dB measured
    assert np.mean(ours) >= np.mean(bicubic) + 1.0
    assert np.mean(ours) < 45


def test_stereo_5x_trades_rate_for_quality():
    from walloc_io.metrics import snr

    clip = _clip("heroes_rite.flac")
    results = {}
    for name in ("stereo-5x", "stereo-20x"):
        codec = walloc_io.load_codec(name, device="cpu")
        blob = codec.encode(clip.data, sample_rate=clip.sample_rate)
        kbps = 8 * len(blob) / (clip.data.shape[1] / clip.sample_rate) / 1e3
        results[name] = (kbps, snr(clip.data, codec.decode(blob)))
    assert walloc_io.load_codec("stereo-5x").config.latent_channels == 108
    kbps, ours = results["stereo-5x"]
    assert 30 < kbps < 90 and 18 < ours < 35  # 53.5 kbps, 23.14 dB measured
    assert ours > results["stereo-20x"][1] + 6  # 4x the latents: a much better reconstruction


def test_mono_16x_on_held_out_music():
    from walloc_io.metrics import decimate_round_trip, snr

    codec = walloc_io.load_codec("mono-16x", device="cpu")
    cfg = codec.config
    assert (cfg.modality, cfg.channels, cfg.levels, cfg.latent_channels) == ("audio", 1, 8, 16)
    clip = _clip("heroes_rite.flac")  # held out of the mono training set too
    left = clip.data[:1]
    blob = codec.encode(left, sample_rate=clip.sample_rate)
    decoded = codec.decode(blob)
    assert decoded.dtype == np.int16 and decoded.shape == left.shape
    kbps = 8 * len(blob) / (left.shape[1] / clip.sample_rate) / 1e3
    assert 8 < kbps < 20  # 13.5 kbps measured
    ours = snr(left, decoded)
    assert 12 < ours < 20  # 14.46 dB measured; ideal decimation by 16 gives 13.95
    assert ours > snr(left, decimate_round_trip(left, 16))
    floats = left.astype(np.float32) / 32768  # [-1, 1] floats: same codec, float output
    out = codec.decode(codec.encode(floats, sample_rate=clip.sample_rate))
    assert out.dtype == np.float32 and abs(snr(floats, out) - ours) < 1.0
