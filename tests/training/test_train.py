"""``walloc train`` end to end: multi-band images, multichannel audio, resume, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import walloc_io
from walloc_io.cli import main
from walloc_io.metrics import psnr

LANDSAT = Path(__file__).parent.parent / "data" / "landsat7_6band_128.tif"
TINY = ["--levels", "2", "--decoder-channels", "16", "--decoder-blocks", "1", "--batch", "4",
        "--device", "cpu", "--validate-every", "20", "--checkpoint-every", "10"]


def train(data, out, *extra, steps=40):
    return main(["train", str(data), str(out), "--steps", str(steps), *TINY, *extra])


def test_trains_a_six_band_codec_on_a_landsat_scene(tmp_path, capsys):
    import tifffile

    out = tmp_path / "l7"
    assert train(LANDSAT, out, "--latent-channels", "24", "--crop", "32") == 0
    assert "wrote" in capsys.readouterr().out
    codec = walloc_io.load_codec(out)
    assert codec.config.channels == 6 and codec.dimensionality_reduction == 4
    scene = tifffile.imread(LANDSAT)  # (6, 128, 128) uint8, band-first
    blob = codec.encode(scene)
    decoded = codec.decode(blob)
    assert decoded.shape == scene.shape and decoded.dtype == np.uint8
    assert psnr(scene, decoded) > 28  # 40 steps from the PCA start: ~33 dB measured
    assert codec.decode_latents(blob).shape == (24, 32, 32)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["steps"] == 40 and "val_psnr" in manifest["training"]


def test_training_is_deterministic_for_a_seed(tmp_path):
    args = ("--latent-channels", "12", "--crop", "32", "--name", "same")  # name is fingerprinted
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert train(LANDSAT, tmp_path / name, *args, "--seed", seed, steps=10) == 0
    fingerprints = [walloc_io.load_codec(tmp_path / n).fingerprint for n in "abc"]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_resume_continues_from_the_checkpoint(tmp_path, capsys):
    out, args = tmp_path / "r", ("--latent-channels", "12", "--crop", "32")
    assert train(LANDSAT, out, *args, steps=10) == 0
    capsys.readouterr()
    assert train(LANDSAT, out, *args, steps=20) == 2  # refuses to silently continue
    assert "--resume" in capsys.readouterr().err
    assert train(LANDSAT, out, *args, "--resume", steps=20) == 0
    log = [json.loads(line) for line in (tmp_path / "r.work" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val_psnr" in r] == [10, 20]  # 10 again would mean a restart
    assert json.loads((out / "manifest.json").read_text())["training"]["steps"] == 20


def test_trains_a_four_channel_audio_codec(tmp_path):
    """No real >2-channel recording exists offline, so the channels are real recordings put
    side by side: the bundled music clip's left and right, resampled to 8 kHz, the bundled
    speech clip, and the speech 0.3 s later (a second microphone)."""
    import soundfile
    from scipy.signal import resample_poly

    samples = Path(walloc_io.__file__).parent / "samples"
    music, rate = soundfile.read(samples / "heroes_rite.flac", dtype="float32")
    speech, speech_rate = soundfile.read(samples / "speech_david4.flac", dtype="float32")
    assert (rate, speech_rate) == (44100, 8000)
    music = resample_poly(music, 80, 441, axis=0)[:22400]
    quad = np.stack([music[:, 0], music[:, 1], speech[:22400], speech[2400:24800]], axis=1)
    folder = tmp_path / "audio"
    folder.mkdir()
    for i in range(2):
        take = quad[i * 11200:(i + 1) * 11200]
        soundfile.write(folder / f"take{i}.wav", take, 8000, subtype="PCM_16")
    out = tmp_path / "quad"
    assert main(["train", str(folder), str(out), "--steps", "30", "--levels", "4",
                 "--latent-channels", "16", "--crop", "2048", "--decoder-channels", "16",
                 "--decoder-blocks", "1", "--batch", "4", "--device", "cpu",
                 "--validate-every", "15", "--spectral-tilt", "0.5"]) == 0
    codec = walloc_io.load_codec(out)
    assert codec.config.modality == "audio" and codec.config.channels == 4
    clip, rate = soundfile.read(folder / "take1.wav", dtype="int16", always_2d=True)
    blob = codec.encode(clip.T, sample_rate=rate)
    decoded = codec.decode(blob)
    assert decoded.shape == clip.T.shape and decoded.dtype == np.int16
    assert walloc_io.read_header(blob).sample_rate == 8000
    signal = clip.T.astype(float)
    snr = 10 * np.log10((signal ** 2).mean() / ((signal - decoded) ** 2).mean())
    from walloc_io.metrics import decimate_round_trip
    from walloc_io.metrics import snr as snr_of

    assert snr == pytest.approx(snr_of(clip.T, decoded))
    # 7.2 dB measured; ideal decimation by the same 4x gives 4.5 dB (speech fills the 4 kHz
    # band). The codec shares latents across channels, so the duplicated speech costs less.
    assert snr > snr_of(clip.T, decimate_round_trip(clip.T, 4)) + 1.5


@pytest.mark.parametrize("problem", ["empty", "mixed", "crop"])
def test_bad_training_input_is_reported(tmp_path, capsys, problem):
    folder = tmp_path / "data"
    folder.mkdir()
    extra = []
    if problem == "mixed":
        np.save(folder / "a.npy", np.zeros((3, 64, 64), np.uint8))
        np.save(folder / "b.npy", np.zeros((1, 64, 64), np.uint8))
    elif problem == "crop":
        np.save(folder / "a.npy", np.zeros((3, 64, 64), np.uint8))
        np.save(folder / "b.npy", np.zeros((3, 64, 64), np.uint8))
        extra = ["--crop", "30"]
    assert train(folder, tmp_path / "out", *extra, steps=2) == 2
    err = capsys.readouterr().err
    assert {"empty": "no image files", "mixed": "one channel count",
            "crop": "multiple of 2**levels"}[problem] in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--spectral-tilt", "--low-contrast", "--variable-rate"])
@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "half"])
def test_a_share_outside_0_to_1_is_a_usage_error(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        train(tmp_path, tmp_path / "out", flag, value, steps=2)
    assert exit_.value.code == 2
    assert f"{flag}: expected a number 0..1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_allocated_model_trains_validates_and_exports(tmp_path):
    """Fine-tuning a model with a rate allocation (``train_preset --fine-tune``): per-channel
    noise in training, validation's coded rate with codes beyond 127 (finer steps), and an
    export whose tables hold every code."""
    import tifffile

    from walloc_io.config import CodecConfig
    from walloc_io.quality import GAIN_KNOTS
    from walloc_io.training import Trainer, TrainSettings
    from walloc_io.training.export import export_codec

    scene = tifffile.imread(LANDSAT)
    gains = tuple((-32, -32, -16, 0, 8, 16) for _ in GAIN_KNOTS)  # channels 0, 1: 4x finer
    cfg = CodecConfig(name="alloc", channels=6, levels=2, latent_channels=6, decoder_channels=16,
                      decoder_blocks=1, step_gains=gains)
    settings = TrainSettings(steps=12, batch=4, crop=32, validate_every=6, checkpoint_every=6,
                             variable_rate=0.5)
    trainer = Trainer(cfg, settings, [scene[:, :96]], [scene[:, 96:]], tmp_path / "work")
    trainer.run(report=lambda line: None)
    log = [json.loads(line) for line in (tmp_path / "work" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "val_coded_bpp" in r] == [6, 12]
    import torch

    with torch.no_grad():  # large latents: the finer channels' codes reach far past 127
        trainer.model.encoder.weight.mul_(20)
        x = trainer.val[0]
        assert trainer.model.encode_latents(x).abs().max() > 127
    assert trainer.validate()["val_coded_bpp"] > 0
    out = export_codec(trainer.model.eval(), [scene[:, :96]], tmp_path / "codec")
    codec = walloc_io.load_codec(out, device="cpu")
    assert codec.config.step_gains == gains
    for q in (1, None, 100):
        blob = codec.encode(scene, quality=q)
        assert codec.decode(blob).shape == scene.shape
    assert np.abs(codec.decode_latents(codec.encode(scene, quality=100))[0]).max() > 127


def _octave_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64), axis=-1)) ** 2
    freq = np.arange(spectrum.shape[-1]) * 22050.0 / (spectrum.shape[-1] - 1)
    return float(spectrum[..., (freq >= lo) & (freq < hi)].sum())


def test_spectral_tilt_reshapes_audio_crops_and_keeps_their_range():
    from walloc_io.training.data import CropSampler

    rng = np.random.default_rng(1)
    music = np.clip(0.1 * rng.standard_normal((2, 1 << 15)), -0.5, 0.5).astype(np.float32)
    sampler = CropSampler([music], 4096, seed=3, spectral_tilt=1.0)
    tilted = sampler.batch(64).numpy()
    assert tilted.shape == (64, 2, 4096) and tilted.dtype == np.float32
    assert np.abs(tilted).max() <= 0.5
    # one crop tilted many times: its peak stays, its bass-to-treble balance moves by the
    # drawn slope (-6..+3 dB/octave, 5 octaves apart: up to 1000x darker, 30x brighter)
    crop = music[:, :4096]
    ratio = []
    for _ in range(64):
        out = sampler._tilt(crop)
        assert abs(np.abs(out).max() - np.abs(crop).max()) < 1e-6
        ratio.append(_octave_energy(out, 250, 500) / _octave_energy(out, 8000, 16000)
                     / (_octave_energy(crop, 250, 500) / _octave_energy(crop, 8000, 16000)))
    assert max(ratio) > 100 and min(ratio) < 0.3
    # a fixed slope: tones on FFT bins keep their amplitude ratios but for the tilt, which is
    # flat below 50 Hz (21.5 and 43.1 Hz) and -6 dB/octave above (1 kHz to 8 kHz: 3 octaves)
    n, bins = 4096, (2, 4, 93, 743)  # 21.5, 43.1, 1001.3, 7999.5 Hz at 44.1 kHz
    t = np.arange(n)
    tones = sum(np.cos(2 * np.pi * k * t / n) for k in bins)[None] * 0.1
    fixed = CropSampler([music], 4096, seed=0, spectral_tilt=1.0)
    fixed.TILT_DB = (-6.0, -6.0)
    amp = np.abs(np.fft.rfft(fixed._tilt(tones.astype(np.float32))[0].astype(np.float64)))[
        list(bins)]
    assert amp[1] / amp[0] == pytest.approx(1.0, rel=1e-3)
    assert amp[3] / amp[2] == pytest.approx((7999.5 / 1001.3) ** (-6 / (20 * np.log10(2))),
                                            rel=1e-3)
    # seeded: the same draw again; images are never tilted
    again = CropSampler([music], 4096, seed=3, spectral_tilt=1.0).batch(64).numpy()
    np.testing.assert_array_equal(tilted, again)
    image = rng.integers(0, 256, (3, 64, 64), dtype=np.uint8)
    np.testing.assert_array_equal(CropSampler([image], 32, seed=0).batch(4).numpy(),
                                  CropSampler([image], 32, seed=0, spectral_tilt=1.0)
                                  .batch(4).numpy())


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_joint_training_codes_crops_with_the_boundary_split(tmp_path, share):
    """``split_share``: the model is fed each split crop's periodic part, and the loss is
    taken on clamp(its *unclamped* output + the smooth part), as the codec decodes photos;
    0 feeds crops as they are. A bright photo over a dark band: its periodic part leaves
    [-1/2, 1/2], so clamping before adding the smooth part back would score otherwise."""
    import copy
    import math

    import torch

    from walloc_io import boundary
    from walloc_io.config import CodecConfig
    from walloc_io.model import WallocModel
    from walloc_io.training import Trainer, TrainSettings
    from walloc_io.training.decoder import periodic

    rng = np.random.default_rng(3)
    photo = np.full((3, 320, 320), 235, np.int64)
    photo[:, 200:] = 8
    photo = np.clip(photo + rng.integers(-6, 7, photo.shape), 0, 255).astype(np.uint8)
    cfg = CodecConfig(name="split", channels=3, levels=2, latent_channels=12,
                      decoder_channels=8, decoder_blocks=1)
    settings = TrainSettings(steps=2, batch=2, crop=256, validate_every=100, split_share=share)
    trainer = Trainer(cfg, settings, [photo], [photo[:, :256, :256]], tmp_path / "work")
    trainer.initialise_or_resume()
    weights, noise = copy.deepcopy(trainer.model.state_dict()), torch.get_rng_state()
    seen, fed = [], []
    batch, forward = trainer.sampler.batch, trainer.model.forward
    trainer.sampler.batch = lambda n: seen.append(batch(n)) or seen[-1]
    trainer.model.forward = lambda x, *a, **k: fed.append(x.clone()) or forward(x, *a, **k)
    progress = trainer.train_step()
    x, p = seen[0], fed[0]
    if share == 0:
        assert torch.equal(p, x)
    else:
        for i in range(x.shape[0]):
            smooth = boundary.split(x[i].numpy())[1]
            np.testing.assert_allclose(p[i].numpy(), x[i].numpy() - smooth, atol=1e-6)
        assert p.abs().max() > 0.55
    # the same step again from the same weights and noise: what the loss was taken on
    model = WallocModel(cfg)
    model.load_state_dict(weights)
    model.train()
    torch.set_rng_state(noise)
    if share == 0:
        decoded = model(x).reconstruction
    else:
        q, smooth = periodic(x, (torch.rand(x.shape[0]) >= share).numpy())
        raw = model(q, 1.0, clamp=False).reconstruction
        decoded = (raw + smooth).clamp(-0.5, 0.5)
        early = (raw.clamp(-0.5, 0.5) + smooth).clamp(-0.5, 0.5)  # clamped too soon
        assert not torch.allclose(early, decoded, atol=1e-3)
    mse = torch.mean((decoded - x) ** 2).item()
    assert progress.psnr == pytest.approx(10 * math.log10(1 / mse), abs=1e-4)


def test_a_continuation_warms_its_learning_rate_up_afresh(tmp_path):
    """``schedule_from``: a run continuing a trained model from its step 1000 warms up from
    there and decays to 2 % by its end, as a fresh run does from step 0."""
    from walloc_io.config import CodecConfig
    from walloc_io.training import Trainer, TrainSettings

    cfg = CodecConfig(name="lr", channels=1, levels=1, latent_channels=2, decoder_channels=4,
                      decoder_blocks=0)
    image = np.zeros((1, 64, 64), np.uint8)
    fresh = Trainer(cfg, TrainSettings(steps=600, lr=1e-3, warmup=100, crop=32), [image],
                    [image], tmp_path / "a")
    later = Trainer(cfg, TrainSettings(steps=1600, lr=1e-3, warmup=100, crop=32,
                                       schedule_from=1000), [image], [image], tmp_path / "b")
    for step in (0, 50, 99, 100, 350, 599, 600):
        fresh.step, later.step = step, 1000 + step
        assert later.learning_rate() == pytest.approx(fresh.learning_rate())
    later.step = 1000
    assert later.learning_rate() == pytest.approx(1e-5)  # lr / warmup, not mid-cosine
    later.step = 1600
    assert later.learning_rate() == pytest.approx(2e-5)
