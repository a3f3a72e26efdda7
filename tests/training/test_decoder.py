"""Decoder-only training (``walloc_io.training.decoder``, ``scripts/tune_decoder.py``): a
deepened decoder starts as the same function, the encoder never moves, and the version it
writes codes the same streams with the old tables."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from walloc_io import boundary, quality  # noqa: E402
from walloc_io.config import CodecConfig  # noqa: E402
from walloc_io.errors import InputError  # noqa: E402
from walloc_io.model import WallocModel  # noqa: E402
from walloc_io.training.decoder import (  # noqa: E402
    DecoderSettings,
    DecoderTrainer,
    deepened,
    linearised,
    periodic,
    quantise,
)

CONFIG = CodecConfig(name="t", modality="image", channels=3, levels=2, latent_channels=6,
                     decoder_channels=16, decoder_blocks=2,
                     step_gains=[[-4, 0, 2, 3, 5, 6], [0] * 6, [3, 2, 1, 0, -1, -2],
                                 [0] * 6, [1, 1, 0, 0, -1, -1], [2] * 6])


def _trained_model(seed: int = 0) -> WallocModel:
    torch.manual_seed(seed)
    model = WallocModel(CONFIG).eval()
    with torch.no_grad():  # a trained residual: its last layer (zero at init) made live
        for p in model.decoder.residual[-1].parameters():
            p.normal_(0, 0.05)
    return model


def _images(n: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size)[None, :, None] + np.linspace(0, 50, size)[None, None, :]
    return [np.clip(ramp + rng.normal(0, 20, (3, size, size)), 0, 255).astype(np.uint8)
            for _ in range(n)]


def test_deepened_decoder_decodes_the_same_and_its_new_blocks_learn():
    model = _trained_model()
    grown = deepened(model, 4)
    assert grown.config.decoder_blocks == 4
    x = torch.rand(2, 3, 32, 48) - 0.5
    with torch.no_grad():
        assert torch.equal(model.encode_latents(x, 0.7), grown.encode_latents(x, 0.7))
        y = quantise(model, x, np.array([1.0, 0.7]))
        torch.testing.assert_close(grown.synthesise(y), model.synthesise(y), rtol=0, atol=1e-6)
        grown.decoder.residual[5].body[2].weight.normal_(0, 0.05)  # a new block made live
        assert not torch.allclose(grown.synthesise(y), model.synthesise(y), atol=1e-4)
    with pytest.raises(InputError, match="cannot be deepened"):
        deepened(model, 1)


def test_quantise_rounds_as_the_codec_does():
    model = _trained_model()
    x = torch.rand(3, 3, 32, 32) - 0.5
    steps = np.array([1.0, quality.step(1), quality.step(110)])
    y = quantise(model, x, steps)
    for i, s in enumerate(steps):
        codes = model.encode_latents(x[i:i + 1], float(s))
        grid = model.grid(float(s), codes.ndim, y)
        torch.testing.assert_close(y[i:i + 1], codes.to(y.dtype) * grid, rtol=0, atol=0)


def test_periodic_part_is_what_the_codec_codes():
    x = torch.from_numpy(np.stack(_images(2, 256))).float() / 255 - 0.5
    p, s = periodic(x)
    torch.testing.assert_close(p + s, x, rtol=0, atol=1e-6)
    assert np.array_equal(s[1].numpy(), boundary.split(x[1].numpy())[1])
    p, s = periodic(x, np.array([True, False]))  # the first coded as it is, wrap edges in
    assert torch.equal(p[0], x[0]) and not s[0].any() and s[1].abs().max() > 0
    small = x[:, :, :128, :128]
    p, s = periodic(small)
    assert torch.equal(p, small) and not s.any()


def test_training_moves_only_the_decoder_and_resumes_exactly(tmp_path):
    settings = DecoderSettings(steps=6, batch=2, crop=64, warmup=2, checkpoint_every=3,
                               validate_every=3)
    train, val = _images(4), _images(1, seed=9)

    def trainer(workdir, steps):
        return DecoderTrainer(deepened(_trained_model(), 3), replace(settings, steps=steps),
                              train, val, workdir)

    whole = trainer(tmp_path / "whole", 6)
    whole.run(report=lambda line: None)
    start = _trained_model().state_dict()
    after = whole.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in start.items() if not k.startswith("decoder."))
    assert not torch.equal(after["decoder.linear.weight"], start["decoder.linear.weight"])
    rows = [json.loads(r) for r in (tmp_path / "whole/log.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and "val_psnr_q50" in rows[0] and rows[-1]["step"] == 6
    # stopped after 3 steps, then resumed to 6: the same decoder as one run
    trainer(tmp_path / "split", 3).run(report=lambda line: None)
    resumed = trainer(tmp_path / "split", 6)
    resumed.run(report=lambda line: None)
    for k, v in resumed.model.decoder.state_dict().items():
        torch.testing.assert_close(v, whole.model.decoder.state_dict()[k], rtol=0, atol=0)


AUDIO = CodecConfig(name="a", modality="audio", channels=1, levels=3, latent_channels=2,
                    decoder_channels=8, decoder_blocks=1)


def _clips(n: int, samples: int = 4096, seed: int = 0) -> list[np.ndarray]:
    """Float clips in [-1/2, 1/2] ``(1, T)``: two tones and noise, as load_signals gives."""
    rng, t = np.random.default_rng(seed), np.arange(samples)
    return [(0.2 * np.sin(t * rng.uniform(0.01, 0.2)) + 0.1 * np.sin(t * rng.uniform(0.3, 1))
             + rng.normal(0, 0.02, samples))[None].astype(np.float32) for _ in range(n)]


def test_an_audio_decoder_trains_on_its_own_crops_and_is_validated_by_snr(tmp_path):
    torch.manual_seed(0)
    model = WallocModel(AUDIO).eval()
    grown = deepened(model, 3)
    settings = DecoderSettings(steps=4, batch=2, crop=1024, warmup=1, checkpoint_every=2,
                               validate_every=2)
    train, val = _clips(3), _clips(2, 4000, seed=5)  # 4000: cut to a multiple of 8
    trainer = DecoderTrainer(grown, settings, train, val, tmp_path)
    assert trainer.sampler.low_contrast == 0 and not trainer.sampler.augment
    assert [v.shape for v in trainer.val] == [(1, 1, 4000)] * 2
    before = trainer.validate()
    assert sorted(before) == ["val_snr_q1", "val_snr_q100", "val_snr_q50"]
    assert before["val_snr_q1"] < before["val_snr_q100"]  # finer grid, less error
    snrs = []  # the SNR of the codec's own reconstruction at q50 (step 1), item by item
    with torch.no_grad():
        for x in trainer.val:
            r = grown.synthesise(quantise(grown, x, np.array([1.0]))).double()
            snrs.append(10 * np.log10(float((x.double() ** 2).mean())
                                      / float(((r - x) ** 2).mean())))
    assert before["val_snr_q50"] == pytest.approx(np.mean(snrs), abs=1e-6)
    start = {k: v.clone() for k, v in grown.state_dict().items()}
    trainer.run(report=lambda line: None)
    after = trainer.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in start.items()
               if not k.startswith("decoder."))
    assert not torch.equal(after["decoder.linear.weight"], start["decoder.linear.weight"])
    rows = [json.loads(r) for r in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4 and "val_snr_q50" in rows[-1]


def test_the_snr_loss_weighs_every_crop_by_its_own_error_and_bad_losses_are_refused(tmp_path):
    settings = DecoderSettings(steps=1, batch=2, crop=1024, loss="snr")
    trainer = DecoderTrainer(WallocModel(AUDIO), settings, _clips(2), _clips(1), tmp_path)
    x = torch.from_numpy(np.stack([c[:, :1024] for c in _clips(2)]))
    error = 0.01 * torch.randn(x.shape, generator=torch.manual_seed(3))
    loss, mse = trainer.objective(x + error, x)
    each = (error.double() ** 2).mean(dim=(1, 2))
    assert mse == pytest.approx(float(each.mean()), rel=1e-5)
    assert float(loss) == pytest.approx(float(10 * torch.log10(each + 1e-7).mean()), rel=1e-5)
    # a crop's error 10x larger costs 20 dB / 2 crops under "snr", whatever its size;
    # under "mse" it is 100x its own error power, so the larger crop's error dominates
    scaled = error.clone()
    scaled[1] *= 10
    louder, _ = trainer.objective(x + scaled, x)
    assert float(louder - loss) == pytest.approx(10.0, abs=0.05)
    mse_trainer = DecoderTrainer(WallocModel(AUDIO), replace(settings, loss="mse"), _clips(2),
                                 _clips(1), tmp_path / "mse")
    plain, _ = mse_trainer.objective(x + scaled, x)
    assert float(plain) == pytest.approx(float((scaled.double() ** 2).mean()), rel=1e-5)
    with pytest.raises(InputError, match="loss must be"):
        DecoderTrainer(WallocModel(AUDIO), replace(settings, loss="l1"), _clips(2), _clips(1),
                       tmp_path / "bad")


def test_a_training_step_backpropagates_its_objective(tmp_path):
    """train_step descends what ``objective`` returns (snr: a loss in dB, negative for an
    error power under 1): zeroed, nothing moves; as returned, the decoder moves."""
    settings = DecoderSettings(steps=2, batch=2, crop=1024, warmup=1, loss="snr")
    trainer = DecoderTrainer(deepened(WallocModel(AUDIO), 2), settings, _clips(2), _clips(1),
                             tmp_path)
    real, losses = trainer.objective, []

    def zeroed(out, x):
        loss, mse = real(out, x)
        losses.append(float(loss.detach()))
        return loss * 0.0, mse

    def state():
        return torch.cat([p.detach().flatten() for p in trainer.model.decoder.parameters()])

    trainer.objective = zeroed
    before = state()
    trainer.train_step()
    assert torch.equal(state(), before) and losses[0] < 0  # a loss in dB: the snr objective
    trainer.objective = real
    trainer.train_step()
    assert not torch.equal(state(), before)


def _codec_dir(directory):
    """A trained model, its training images, its tables and its codec directory (rate floor
    0.5, a ladder of q1 and q100) written to ``directory``."""
    from walloc_io.entropy import fit_model_tables
    from walloc_io.presets.directory import save_codec_dir
    from walloc_io.training.export import fit_ladder, training_latents

    model, train = _trained_model(), _images(3, 256)
    tables = fit_model_tables(training_latents(model, train), model.max_symbol(),
                              CONFIG.entropy_model)
    return model, train, tables, save_codec_dir(model, tables, directory, {"rate_floor": 0.5},
                                                ladder=fit_ladder(model, train, (1, 100)))


def test_written_version_codes_the_same_streams_with_the_old_tables(tmp_path, import_script):
    from walloc_io.codec import load_codec
    from walloc_io.presets.directory import load_codec_dir

    tune = import_script("tune_decoder")
    model, train, tables, old_dir = _codec_dir(tmp_path / "old")
    grown = deepened(model, 3)
    with torch.no_grad():
        grown.decoder.residual[4].body[2].weight.normal_(0, 0.05)
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"step": 7, "val_psnr_q50": 30.0}) + "\n")
    new_dir = tune.write_version(old_dir, grown, log, tmp_path / "new", "recipe")
    _, new_tables, new_fp = load_codec_dir(new_dir)
    _, _, old_fp = load_codec_dir(old_dir)
    assert new_fp != old_fp and new_tables.digest() == tables.digest()
    manifest = json.loads((new_dir / "manifest.json").read_text())
    assert manifest["rate_floor"] == 0.5 and manifest["decoder"]["from"] == old_fp[:8]
    assert manifest["ladder"] == json.loads((old_dir / "manifest.json").read_text())["ladder"]
    old, new = load_codec(str(old_dir)), load_codec(str(new_dir))
    image = train[1][:, :128, :160]
    for q in (None, 1, 100):
        a, b = old.encode(image, quality=q), new.encode(image, quality=q)
        assert len(a) == len(b)
        assert np.array_equal(old.decode_latents(a), new.decode_latents(b))
        assert not np.array_equal(old.decode(a), new.decode(b))  # the new decoder decodes
    moved = replace(grown.config, decoder_blocks=3)  # an encoder that moved is refused
    bad = WallocModel(moved)
    bad.load_state_dict(grown.state_dict())
    with torch.no_grad():
        bad.encoder.weight.add_(0.01)
    with pytest.raises(SystemExit, match="encoder must stay frozen"):
        tune.write_version(old_dir, bad, log, tmp_path / "bad", "recipe")


def test_a_decoder_version_over_its_preset_shares_the_tables_and_ladder(tmp_path, import_script):
    """Written over the old directory, the new decoder keeps the old model in versions/
    with ``tables.ref`` and ``ladder.ref`` (no second copy); old streams still decode
    bit-exactly, at every quality; a second version leaves no chain of refs."""
    from walloc_io import PresetError
    from walloc_io.codec import load_codec
    from walloc_io.presets import VERSIONS
    from walloc_io.presets.directory import load_codec_dir

    tune = import_script("tune_decoder")
    model, train, _, directory = _codec_dir(tmp_path / "c")
    image = train[1][:, :128, :160]
    first = load_codec(str(directory))
    written = {q: first.encode(image, quality=q) for q in (None, 1, 100)}
    expect = {q: first.decode(b) for q, b in written.items()}
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"step": 7, "val_psnr_q50": 30.0}) + "\n")
    fps = [first.fingerprint]
    for seed in (1, 2):
        grown = deepened(model, 3)
        with torch.no_grad():
            grown.decoder.residual[4].body[2].weight.normal_(0, 0.05,
                                                             generator=torch.manual_seed(seed))
        tune.write_version(directory, grown, log, directory, "recipe")
        fps.append(load_codec_dir(directory)[2])
    assert len(set(fps)) == 3
    assert sorted(p.name for p in directory.glob("**/*.npz") if "weights" not in p.name) == [
        "ladder.npz", "tables.npz"]  # stored once, by the current model
    refs = sorted(directory.glob(f"{VERSIONS}/*/*.ref"))
    assert sorted(r.name for r in refs) == ["ladder.ref"] * 2 + ["tables.ref"] * 2
    assert {r.read_text().strip() for r in refs} == {fps[-1][:8]}  # no chain
    for q, blob in written.items():
        old = load_codec(str(directory), fingerprint=fps[0])
        np.testing.assert_array_equal(old.decode(blob), expect[q])
        assert old.encode(image, quality=q) == blob
    # grown from a kept version (tune_decoder.py --start): its ladder.ref is followed, so
    # the new directory carries the quality ladder and codes every quality as before
    out = tune.write_version(directory / VERSIONS / fps[0][:8], deepened(model, 3), log,
                             tmp_path / "from-kept", "recipe")
    assert (out / "ladder.npz").is_file()
    grown_from_kept = load_codec(str(out))
    for q, blob in written.items():
        again = grown_from_kept.encode(image, quality=q)
        assert len(again) == len(blob)
        np.testing.assert_array_equal(grown_from_kept.decode_latents(again),
                                      first.decode_latents(blob))
    ref = directory / VERSIONS / fps[0][:8] / "tables.ref"
    ref.write_text("deadbeef\n")
    with pytest.raises(PresetError, match="deadbeef"):
        load_codec_dir(ref.parent)


def _linear_trainer(tmp_path, kernel: int, loss: str = "mse") -> DecoderTrainer:
    torch.manual_seed(0)
    settings = DecoderSettings(steps=3, batch=4, crop=1024, loss=loss, validate_every=10)
    return DecoderTrainer(linearised(WallocModel(AUDIO).eval(), kernel), settings,
                          _clips(6), _clips(2, seed=1), tmp_path)


@pytest.mark.parametrize("loss", ["mse", "snr"])
def test_fit_linear_solves_the_least_squares_decoder_it_decodes_with(tmp_path, loss):
    """At the solution the weighted squared error of the packet bands, computed through the
    decoder's own convolution (replicated edges) on the same crops and drawn steps, has no
    gradient; the latents never move."""
    trainer = _linear_trainer(tmp_path, 5, loss)
    m = trainer.model
    x0 = torch.from_numpy(_clips(1)[0][None])
    before = m.encode_latents(x0, 0.7)
    state = (trainer.sampler.rng.bit_generator.state, trainer.rng.bit_generator.state)
    trainer.fit_linear(3, report=lambda line: None)
    assert trainer.step == 3 and (tmp_path / "checkpoint.pt").exists()
    assert torch.equal(m.encode_latents(x0, 0.7), before)
    m.decoder.double()

    def gradients() -> list[torch.Tensor]:
        """Of the weighted error on the same batches and steps the fit drew."""
        trainer.sampler.rng.bit_generator.state, trainer.rng.bit_generator.state = state
        m.decoder.zero_grad()
        for _ in range(3):
            x = trainer.sampler.batch(4)
            z = m.companding.inverse(quantise(m, x, trainer.draw_steps(4))).double()
            w = 1 / x.double().pow(2).flatten(1).mean(1) if loss == "snr" else torch.ones(4)
            err = (m.decoder(z) - m.transform(x).double()).pow(2).flatten(1).sum(1)
            (w * err).sum().backward()
        return [p.grad.abs().max().item() for p in (m.decoder.linear.weight,
                                                    m.decoder.linear.bias)]

    at_solution = gradients()
    with torch.no_grad():  # 1 % off the solution: the gradient grows by orders of magnitude
        for p in m.decoder.linear.parameters():
            p.mul_(1.01)
    off = gradients()
    # float32 weights hold the float64 solution to ~1e-7: the gradient left is 0.1-0.4 % of
    # that 1 % off (a tap order or edge padding unlike the convolution's gives 90-110 %)
    assert all(a < 1e-2 * b for a, b in zip(at_solution, off))


def test_wider_linear_decoder_validates_better(tmp_path):
    scores = {}
    for kernel in (1, 5):
        trainer = _linear_trainer(tmp_path / str(kernel), kernel)
        trainer.fit_linear(3, report=lambda line: None)
        scores[kernel] = trainer.validate()["val_snr_q100"]
    assert scores[5] > scores[1] > 0  # the zero decoder's SNR is 0 dB


def test_linear_decoder_refuses_what_it_cannot_fit(tmp_path):
    with pytest.raises(InputError, match="1-D"):
        linearised(_trained_model(), 3)
    trainer = _linear_trainer(tmp_path, 3)
    with pytest.raises(InputError, match="at least one batch"):
        trainer.fit_linear(0)
    deep = DecoderTrainer(WallocModel(AUDIO).eval(), trainer.settings, _clips(2), _clips(1),
                          tmp_path / "deep")
    with pytest.raises(InputError, match="linear 1-D decoder"):
        deep.fit_linear(1)


def test_linear_kernel_keeps_old_configs_and_their_fingerprints():
    from walloc_io.presets import resolve
    from walloc_io.presets.directory import load_codec_dir

    assert "linear_kernel" not in CONFIG.to_dict()
    load_codec_dir(resolve("rgb-16x"))  # verifies a 1-tap model's fingerprint
    wide = replace(AUDIO, decoder_blocks=0, linear_kernel=9)
    assert wide.to_dict()["linear_kernel"] == 9
    assert CodecConfig.from_json(wide.to_json()) == wide
    assert WallocModel(wide).decoder.linear.weight.shape == (8, 2, 9)
    from walloc_io.errors import PresetError
    for bad in (0, 4):
        with pytest.raises(PresetError, match="linear_kernel must be odd"):
            replace(AUDIO, linear_kernel=bad)
