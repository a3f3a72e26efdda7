"""``walloc eval`` reports and the metrics behind it."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from walloc_io.cli import main
from walloc_io.metrics import decimate_round_trip, ms_ssim, snr

from ..conftest import smooth_images


def test_ms_ssim_orders_distortions():
    image = smooth_images(1, (96, 128), seed=3)[0].astype(float)
    rng = np.random.default_rng(0)
    light = np.clip(image + rng.normal(0, 3, image.shape), 0, 255)
    heavy = np.clip(image + rng.normal(0, 25, image.shape), 0, 255)
    assert ms_ssim(image, image) == pytest.approx(1.0)
    assert 1.0 > ms_ssim(image, light) > ms_ssim(image, heavy) > 0.2


def test_snr_and_decimation_baseline():
    t = np.arange(4096) / 4096
    low = np.sin(2 * np.pi * 5 * t)[None]
    high = 0.5 * np.sin(2 * np.pi * 1500 * t)[None]
    assert snr(low, decimate_round_trip(low, 4)) > 100  # in band: kept exactly
    assert snr(low + high, decimate_round_trip(low + high, 4)) == pytest.approx(
        10 * np.log10(np.mean((low + high) ** 2) / np.mean(high**2)), abs=0.01)  # removed


def test_eval_writes_report_csv_and_plot(tiny_dir, tmp_path, capsys):
    folder = tmp_path / "held-out"
    folder.mkdir()
    for i, image in enumerate(smooth_images(2, (64, 96), seed=9)):
        Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"im{i}.png")
    out = tmp_path / "report"
    assert main(["eval", tiny_dir, str(folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| WaLLoC | tiny |" in text and "vs bicubic /2 (same DR)" in text
    for method in ("JPEG", "WebP", "JPEG 2000"):
        assert f"| {method} |" in text
    with (out / "eval.csv").open() as f:
        rows = list(csv.DictReader(f))
    ours = [r for r in rows if r["method"] == "WaLLoC"]
    assert len(ours) == 2 and all(float(r["psnr"]) > 25 for r in ours)
    assert (out / "eval.md").read_text().startswith("walloc eval: codec tiny")
    assert (out / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_rejects_mismatched_data(tiny_dir, tmp_path, capsys):
    folder = tmp_path / "bands"
    folder.mkdir()
    np.save(folder / "cube.npy", np.zeros((5, 32, 32), np.uint8))
    assert main(["eval", tiny_dir, str(folder)]) == 2
    assert "5 channels" in capsys.readouterr().err


@pytest.mark.parametrize("codec_rate", [44100, 22050, 11025])
def test_mp3_baseline_is_aligned_for_codec_delay(codec_rate):
    """MP3 decoders return the signal late (encoder delay + padding). Unaligned, a tone gets a
    negative SNR; aligned, the round trip keeps it well (also after resampling)."""
    pytest.importorskip("scipy")
    from walloc_io.evaluation.rd import sndfile_round_trip as _sndfile_round_trip

    t = np.arange(44100 * 2) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1210 * t)
    clip = np.round(np.stack([tone, 0.8 * tone]) * 32767).astype(np.int16)
    try:
        size, back = _sndfile_round_trip(clip, 44100, "MP3", "MPEG_LAYER_III", 0.7, codec_rate)
    except (RuntimeError, ValueError, TypeError) as exc:
        pytest.skip(f"libsndfile without MP3: {exc}")
    assert back.shape == clip.shape and back.dtype == clip.dtype
    assert 0 < size < clip.nbytes / 4
    assert snr(clip, back) > 15


def test_flac_baseline_is_lossless_and_sized_by_its_bytes():
    """libsndfile seeks back to write FLAC's header: the size is the buffer's length, not
    the write position (which once reported 18 bytes for 20 s of music)."""
    from walloc_io.evaluation.rd import sndfile_round_trip as _sndfile_round_trip

    rng = np.random.default_rng(0)
    clip = np.cumsum(rng.integers(-300, 300, (2, 48000)), axis=1).clip(-32768, 32767).astype(np.int16)
    size, back = _sndfile_round_trip(clip, 48000, "FLAC")
    assert np.array_equal(back, clip)
    assert clip.nbytes / 10 < size < clip.nbytes
