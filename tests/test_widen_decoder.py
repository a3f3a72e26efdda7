"""``scripts/widen_decoder.py``: a decoder widened to more taps starts as the same function."""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def widen(import_script):
    return import_script("widen_decoder")


@pytest.mark.parametrize("modality,channels,levels,shape", [
    ("audio", 1, 4, (2, 1, 4096)), ("image", 3, 2, (1, 3, 64, 48))])
def test_widened_decoder_decodes_the_same(widen, modality, channels, levels, shape):
    from walloc_io.config import CodecConfig
    from walloc_io.model.autoencoder import WallocModel

    torch.manual_seed(0)
    config = CodecConfig(name="t", modality=modality, channels=channels, levels=levels,
                         latent_channels=4, decoder_channels=16, decoder_blocks=2)
    small, big = WallocModel(config).eval(), WallocModel(replace(config, decoder_kernel=5)).eval()
    with torch.no_grad():  # a trained residual: its last layer (zero at init) made live
        for p in small.decoder.residual[-1].parameters():
            p.normal_(0, 0.05)
    assert any(v.shape != big.state_dict()[k].shape for k, v in small.state_dict().items())
    big.load_state_dict(widen.widened(small.state_dict(), big.state_dict()))
    x = torch.rand(shape) - 0.5
    with torch.no_grad():
        y = small.analyse(x)
        assert torch.equal(y, big.analyse(x))
        torch.testing.assert_close(big.synthesise(y), small.synthesise(y), rtol=0, atol=1e-5)
        # the widened taps are live: perturbing one changes the output
        for p in big.decoder.parameters():
            if p.ndim > 2 and p.shape[-1] == 5:
                p[..., 0] += 0.1
        assert not torch.allclose(big.synthesise(y), small.synthesise(y), atol=1e-4)


def test_a_narrower_kernel_is_refused(widen):
    state = {"w": torch.zeros(4, 4, 5)}
    with pytest.raises(SystemExit, match="cannot widen"):
        widen.widened(state, {"w": torch.zeros(4, 4, 3)})
