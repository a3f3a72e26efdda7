"""The C synthesis (the inverse lifting packet transform) against the torch transform, and
the codec's CPU decoding through it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import walloc_io
from walloc_io.model import _analysis
from walloc_io.model.analysis import NativeSynthesis
from walloc_io.transform import PacketTransform

CASES = [(2, 1, 2, (8, 6)), (2, 2, 3, (16, 24)), (2, 3, 3, (64, 96)), (2, 3, 1, (24, 600)),
         (2, 4, 1, (48, 32)), (1, 1, 1, (8,)), (1, 3, 2, (64,)), (1, 8, 1, (4096,)),
         (1, 8, 2, (2048,)),
         # an axis of exactly 2**levels: the deepest level lifts one pair (h = 1)
         (2, 3, 1, (8, 8)), (2, 2, 3, (4, 12)), (1, 4, 2, (16,))]


@pytest.mark.parametrize("ndim,levels,channels,shape", CASES)
def test_synthesis_inverts_the_packet_transform_as_torch_does(ndim, levels, channels, shape):
    transform = PacketTransform(ndim, levels)
    x = torch.from_numpy(np.random.default_rng(levels).uniform(-0.5, 0.5, (2, channels, *shape))
                         .astype(np.float32))
    bands = transform(x)
    ours = NativeSynthesis(channels, levels, ndim).inverse(bands)
    assert ours.shape == x.shape and ours.dtype == torch.float32
    torch.testing.assert_close(ours, x, rtol=0, atol=2e-6)
    torch.testing.assert_close(ours, transform.inverse(bands), rtol=0, atol=2e-6)


def test_one_band_inverts_to_its_own_basis_function():
    """A single unit coefficient: the C and torch forms give the same (non-trivial) signal,
    so band order, scales and offsets all agree, not only their composition."""
    transform, synthesis = PacketTransform(2, 3), NativeSynthesis(3, 3, 2)
    for band in (0, 1, 9, 64 + 37, 191):
        y = torch.zeros(1, 192, 4, 5)
        y[0, band, 2, 3] = 1.0
        expect = transform.inverse(y)
        assert expect.abs().max() > 0.05
        torch.testing.assert_close(synthesis.inverse(y), expect, rtol=0, atol=1e-6)


def test_bad_shapes_and_band_maps_are_refused():
    y = np.zeros((1, 12, 2, 2), np.float32)
    out = np.empty((1, 3, 4, 4), np.float32)
    index = np.arange(12, dtype=np.int32)
    _analysis.synthesise(y, 1, 3, 4, 4, 1, 2, index, out)
    with pytest.raises(ValueError, match="buffer sizes"):
        _analysis.synthesise(y, 1, 3, 4, 8, 1, 2, index, out)
    with pytest.raises(ValueError, match="signal shape"):
        _analysis.synthesise(y, 1, 3, 4, 6, 2, 2, index, out)
    with pytest.raises(ValueError, match="band index"):
        _analysis.synthesise(y, 1, 3, 4, 4, 1, 2, np.full(12, 12, np.int32), out)
    # forged shapes whose byte counts wrap around 2**64 to the buffers' sizes are refused
    # (N * C * H * W * 4 = 2**30 * 2**16 * 2**16 * 4 = 2**64, and P = 2**16 * 16 bands)
    huge = np.zeros(0, np.float32)
    with pytest.raises(ValueError, match="buffer sizes"):
        _analysis.synthesise(huge, 2 ** 30, 2 ** 16, 256, 256, 2, 2,
                             np.zeros(2 ** 20, np.int32), huge)


@pytest.mark.parametrize("preset", ["rgb-16x", "gray-16x", "mono-16x", "stereo-20x"])
def test_cpu_decoding_through_the_c_synthesis_matches_the_torch_transform(preset):
    """The codec decodes on the CPU with the C synthesis; with it switched off (torch's
    convolution form) every sample is within one level of the same stream's decode."""
    codec = walloc_io.load_codec(preset, device="cpu")
    rng = np.random.default_rng(0)
    if codec.config.modality == "image":
        yy, xx = np.mgrid[0:96, 0:128]
        base = 120 + 60 * np.sin(xx / 9) * np.cos(yy / 13)
        x = np.clip(base + rng.normal(0, 8, (codec.config.channels, 96, 128)), 0, 255)
        x = x.astype(np.uint8)
    else:
        walk = np.cumsum(rng.integers(-300, 301, (codec.config.channels, 2 ** 13)), axis=1)
        x = np.clip(walk, -32768, 32767).astype(np.int16)
    blob = codec.encode(x)
    assert codec.native_synthesis
    calls = []
    real = NativeSynthesis.inverse
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(NativeSynthesis, "inverse",
                      lambda self, y: calls.append(y.shape) or real(self, y))
        ours = codec.decode(blob).astype(np.int64)
        assert len(calls) == 1  # decoded through the C synthesis
        patch.setattr(codec, "native_synthesis", False)  # restored: the codec is shared
        theirs = codec.decode(blob).astype(np.int64)
        assert len(calls) == 1  # ... and with it off, through torch's transform
    assert np.abs(ours - theirs).max() <= 1
    assert np.mean(ours != theirs) < 0.01


def test_error_bounded_streams_never_decode_through_the_c_synthesis(monkeypatch):
    """Their residual was coded against torch's reconstruction: encoding (the prediction)
    and decoding both keep torch's transform, and the bound holds."""
    def refuse(self, y):
        raise AssertionError("the C synthesis ran for an error-bounded stream")

    codec = walloc_io.load_codec("field-16x", device="cpu")
    yy, xx = np.mgrid[0:64, 0:96]
    field = (np.sin(xx / 7) * np.cos(yy / 11) * 3 + 15)[None].astype(np.float32)
    monkeypatch.setattr(NativeSynthesis, "inverse", refuse)
    blob = codec.encode(field, max_abs_error=0.01)
    decoded = codec.decode(blob)
    assert np.abs(decoded - field).max() <= 0.01
    with pytest.raises(AssertionError, match="C synthesis ran"):
        codec.decode(codec.encode(field))  # the check itself: a plain stream does use it
