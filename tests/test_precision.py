"""Decoding with bfloat16 residual blocks: only where measured harmless, never for bounds."""

from __future__ import annotations

import json
import pickle
from importlib.resources import files

import numpy as np
import pytest
import torch

import walloc_io
from walloc_io import codec as codec_module
from walloc_io.codec import BFLOAT16_KEY, pick_precision
from walloc_io.config import CodecConfig
from walloc_io.media import read_signal
from walloc_io.model.decoder import BlockPrecision, Decoder
from walloc_io.presets import resolve

CPU = torch.device("cpu")


def photo() -> np.ndarray:
    image = read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data
    return np.ascontiguousarray(image[:, :256, :320])


def test_auto_takes_bfloat16_only_for_a_checked_model_on_a_native_cpu(monkeypatch):
    monkeypatch.delenv("WALLOC_PRECISION", raising=False)
    monkeypatch.setattr(codec_module, "native_bfloat16", lambda: True)
    assert pick_precision("auto", CPU, checked=True) is torch.bfloat16
    assert pick_precision(None, CPU, checked=True) is torch.bfloat16
    assert pick_precision("auto", CPU, checked=False) is None
    assert pick_precision("auto", torch.device("cuda"), checked=True) is None
    assert pick_precision("float32", CPU, checked=True) is None
    assert pick_precision("bfloat16", CPU, checked=False) is torch.bfloat16
    monkeypatch.setattr(codec_module, "native_bfloat16", lambda: False)
    assert pick_precision("auto", CPU, checked=True) is None
    monkeypatch.setenv("WALLOC_PRECISION", "float32")
    assert pick_precision(None, CPU, checked=True) is None


@pytest.mark.parametrize("bad", ["fp16", "", "BFLOAT16", 16])
def test_a_bad_precision_is_an_input_error(bad):
    with pytest.raises(walloc_io.WallocError, match="precision must be one of"):
        walloc_io.load_codec("gray-16x", device="cpu", precision=bad)


def test_the_checked_presets_keep_the_blocks_their_manifests_record():
    """rgb-16x and gray-16x pass with every block in bfloat16; rgb-4x's block 3, whose
    increments are large, loses up to 0.45 dB rounded, so it stays float32. Audio presets
    were not checked."""
    for preset, keep in (("rgb-16x", ()), ("gray-16x", ()), ("rgb-4x", (3,)),
                         ("mono-16x", None), ("stereo-20x", None)):
        manifest = json.loads((resolve(preset) / "manifest.json").read_text())
        record = manifest.get(BFLOAT16_KEY)
        assert (record is None) is (keep is None), preset
        if record is not None:
            assert record["max_level_change"] <= 1 and tuple(record["float32_blocks"]) == keep
            codec = walloc_io.load_codec(preset, device="cpu", precision="bfloat16")
            assert codec.reduced == BlockPrecision(torch.bfloat16, keep)


@pytest.mark.parametrize("preset", ["rgb-16x", "rgb-4x"])
def test_bfloat16_blocks_move_a_photo_by_at_most_one_level(preset):
    exact = walloc_io.load_codec(preset, device="cpu", precision="float32")
    reduced = walloc_io.load_codec(preset, device="cpu", precision="bfloat16")
    assert (exact.precision, reduced.precision) == ("float32", "bfloat16")
    x = photo()
    for q in (None, 1, 100):
        blob = exact.encode(x, quality=q)
        np.testing.assert_array_equal(reduced.decode_latents(blob), exact.decode_latents(blob))
        a, b = exact.decode(blob), reduced.decode(blob)
        d = np.abs(a.astype(np.int16) - b.astype(np.int16))
        assert d.max() <= 1 and 0 < np.count_nonzero(d) < 0.05 * d.size, q


def test_error_bounded_streams_decode_in_float32_whatever_the_precision():
    reduced = walloc_io.load_codec("gray-16x", device="cpu", precision="bfloat16")
    x = photo()[:1].astype(np.float32) / 255
    for eps in (1e-3, 1e-2):
        y = reduced.decode(reduced.encode(x, max_abs_error=eps))
        assert np.abs(y.astype(np.float64) - x).max() <= eps


def test_codecs_pickle_with_their_precision():
    reduced = walloc_io.load_codec("rgb-16x", device="cpu", precision="bfloat16")
    exact = walloc_io.load_codec("rgb-16x", device="cpu", precision="float32")
    assert reduced is not exact
    assert pickle.loads(pickle.dumps(reduced)) is reduced
    assert pickle.loads(pickle.dumps(exact)) is exact


def test_cast_blocks_follow_weight_changes():
    """The bfloat16 copies are remade when a weight changes (a training step, a state
    load), so a decoder never runs stale blocks; the state dict holds no copies."""
    torch.manual_seed(0)
    cfg = CodecConfig(name="t", modality="image", channels=1, levels=2, latent_channels=4,
                      decoder_channels=16, decoder_blocks=2)
    decoder = Decoder(2, cfg.latent_channels, cfg.packet_channels, 16, 2, 3, False)
    with torch.no_grad():
        for p in decoder.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    z = torch.randn(1, 4, 8, 8)
    keys = set(decoder.state_dict())
    reduced = BlockPrecision(torch.bfloat16)
    first = decoder(z, reduced)
    assert torch.allclose(first, decoder(z), atol=0.05)
    assert set(decoder.state_dict()) == keys
    with torch.no_grad():
        decoder.residual[2].body[0].weight.mul_(2)  # block 1's first convolution
    second = decoder(z, reduced)
    assert not torch.allclose(first, second, atol=1e-3)
    assert torch.allclose(second, decoder(z), atol=0.05)
    # a kept block runs in float32: keeping them all is the float32 decoder
    torch.testing.assert_close(decoder(z, BlockPrecision(torch.bfloat16, (0, 1))), decoder(z))
