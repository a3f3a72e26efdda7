"""`walloc` end to end on real files: images, arrays, audio; errors exit 2 with a message."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from walloc_io.cli import main
from walloc_io.config import CodecConfig
from walloc_io.media import read_signal, write_signal

from ..conftest import build_codec_dir


def run(*argv: str) -> int:
    return main(list(argv))


def test_png_round_trip_with_preset(tmp_path, capsys, images):
    write_signal(tmp_path / "in.png", images[0])
    assert run("encode", str(tmp_path / "in.png"), str(tmp_path / "x.wlc")) == 0
    assert "bpp" in capsys.readouterr().out
    assert run("decode", str(tmp_path / "x.wlc"), str(tmp_path / "out.png")) == 0  # no --codec
    out = read_signal(tmp_path / "out.png").data
    assert out.shape == images[0].shape and out.dtype == np.uint8
    assert run("info", str(tmp_path / "x.wlc"), "--json") == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["shape"] == [3, 48, 80] and info["dtype"] == "uint8"


def test_npy_and_tiff(tmp_path, tiny_dir, images):
    x = images[1].astype(np.float32) / 7
    np.save(tmp_path / "in.npy", x)
    assert run("encode", str(tmp_path / "in.npy"), str(tmp_path / "a.wlc"), "--codec", tiny_dir) == 0
    assert run("decode", str(tmp_path / "a.wlc"), str(tmp_path / "a.npy"), "--codec", tiny_dir) == 0
    assert np.load(tmp_path / "a.npy").dtype == np.float32
    u16 = (images[2].astype(np.uint16) * 200)
    write_signal(tmp_path / "in.tif", u16)
    assert read_signal(tmp_path / "in.tif").data.shape == (3, 48, 80)
    assert run("encode", str(tmp_path / "in.tif"), str(tmp_path / "b.wlc"), "--codec", tiny_dir) == 0
    assert run("decode", str(tmp_path / "b.wlc"), str(tmp_path / "b.tif"), "--codec", tiny_dir) == 0
    assert read_signal(tmp_path / "b.tif").data.dtype == np.uint16


@pytest.fixture(scope="module")
def audio_codec(tmp_path_factory):
    cfg = CodecConfig(name="tiny-audio", modality="audio", channels=2, levels=4,
                      latent_channels=8, decoder_channels=8, decoder_blocks=1)
    rng, t = np.random.default_rng(3), np.arange(4096) / 8000
    audio = []
    for k in range(8):  # two-tone stereo clips with a little noise, as uint8 training signals
        tone = np.sin(2 * np.pi * (220 + 40 * k) * t)
        stereo = np.stack([tone, np.roll(tone, 5)]) * 0.4 + rng.normal(0, 0.02, (2, t.size))
        audio.append(np.round((stereo + 0.5) * 255).clip(0, 255).astype(np.uint8))
    return build_codec_dir(cfg, audio, tmp_path_factory.mktemp("audio"))


def test_wav_round_trip_keeps_sample_rate(tmp_path, audio_codec):
    import soundfile

    t = np.arange(3000) / 16000
    pcm = (np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 450 * t)]) * 9000)
    soundfile.write(tmp_path / "in.wav", pcm.T.astype(np.int16), 16000, subtype="PCM_16")
    assert run("encode", str(tmp_path / "in.wav"), str(tmp_path / "a.wlc"), "--codec",
               audio_codec) == 0
    assert run("decode", str(tmp_path / "a.wlc"), str(tmp_path / "out.wav"), "--codec",
               audio_codec) == 0
    data, rate = soundfile.read(tmp_path / "out.wav", dtype="int16", always_2d=True)
    assert rate == 16000 and data.shape == (3000, 2)


def test_small_images_read_channel_first(tmp_path):
    rgb = np.arange(16 * 12 * 3, dtype=np.uint8).reshape(3, 16, 12)
    write_signal(tmp_path / "s.png", rgb)
    np.testing.assert_array_equal(read_signal(tmp_path / "s.png").data, rgb)
    bands = np.arange(6 * 40 * 32, dtype=np.uint16).reshape(6, 40, 32)
    write_signal(tmp_path / "b.tif", bands)
    np.testing.assert_array_equal(read_signal(tmp_path / "b.tif").data, bands)


def test_errors_exit_2_with_reason(tmp_path, capsys):
    (tmp_path / "bad.wlc").write_bytes(b"WLOC garbage")
    assert run("info", str(tmp_path / "bad.wlc")) == 2
    assert "error" in capsys.readouterr().err
    np.save(tmp_path / "gray.npy", np.zeros((1, 32, 32), np.uint8))
    assert run("encode", str(tmp_path / "gray.npy"), str(tmp_path / "g.wlc")) == 2
    assert "expects 3 channels" in capsys.readouterr().err
    assert not (tmp_path / "g.wlc").exists()  # nothing half-written
    assert run("encode", str(tmp_path / "missing.png"), str(tmp_path / "m.wlc")) == 2


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "walloc_io.cli", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "encode" in out.stdout and "info" in out.stdout
