"""The packet transform against PyWavelets, coefficient by coefficient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from walloc_io.transform import PacketTransform
from walloc_io.transform.filters import DEC_HI, DEC_LO, REC_HI, REC_LO

pywt = pytest.importorskip("pywt")


def reference(x: np.ndarray, levels: int) -> np.ndarray:
    """pywt one-level split applied recursively to every band, channel-major."""
    bands = list(x)
    for _ in range(levels):
        split = []
        for band in bands:
            if band.ndim == 1:
                split += list(pywt.dwt(band, "bior4.4", mode="periodization"))
            else:
                approx, (ch, cv, cd) = pywt.dwt2(band, "bior4.4", mode="periodization")
                split += [approx, ch, cv, cd]
        bands = split
    return np.stack(bands)


def test_filters_are_pywavelets_bior44():
    w = pywt.Wavelet("bior4.4")
    for ours, theirs in ((DEC_LO, w.dec_lo), (DEC_HI, w.dec_hi), (REC_LO, w.rec_lo),
                         (REC_HI, w.rec_hi)):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("levels,shape", [(1, (8, 8)), (2, (16, 24)), (3, (32, 64)),
                                          (3, (8, 16)), (4, (48, 32))])
def test_2d_matches_pywt(levels, shape):
    x = np.random.default_rng(levels).standard_normal((3, *shape))
    y = PacketTransform(2, levels)(torch.from_numpy(x)[None])[0].numpy()
    assert y.shape == (3 * 4 ** levels, shape[0] >> levels, shape[1] >> levels)
    np.testing.assert_allclose(y, reference(x, levels), rtol=0, atol=1e-12)


@pytest.mark.parametrize("levels,length", [(1, 8), (3, 64), (5, 96), (8, 512), (8, 256)])
def test_1d_matches_pywt(levels, length):
    x = np.random.default_rng(levels).standard_normal((2, length))
    y = PacketTransform(1, levels)(torch.from_numpy(x)[None])[0].numpy()
    assert y.shape == (2 * 2 ** levels, length >> levels)
    np.testing.assert_allclose(y, reference(x, levels), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ndim,shape", [(1, (2, 3, 1024)), (2, (2, 3, 64, 96))])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_perfect_reconstruction(ndim, shape, dtype, tol):
    t = PacketTransform(ndim, 3 if ndim == 2 else 8)
    x = torch.randn(shape, dtype=torch.float64).to(dtype)
    y = t(x)
    assert y.dtype == dtype
    rel = (t.inverse(y) - x).abs().max() / x.abs().max()
    assert rel <= tol


def test_subband_order_is_recursive_channel_major():
    """Channel k of J=2 is band (k // 4 of level 1, k % 4 of level 2) per input channel."""
    x = np.random.default_rng(0).standard_normal((2, 16, 16))
    y = PacketTransform(2, 2)(torch.from_numpy(x)[None])[0].numpy()
    approx, (ch, cv, cd) = pywt.dwt2(x[1], "bior4.4", mode="periodization")
    second = pywt.dwt2(cv, "bior4.4", mode="periodization")[1][2]  # cD of cV
    np.testing.assert_allclose(y[16 + 2 * 4 + 3], second, atol=1e-12)


def test_rejects_indivisible_and_wrong_rank():
    t = PacketTransform(2, 3)
    with pytest.raises(ValueError, match="multiples of 8"):
        t(torch.zeros(1, 3, 12, 16))
    with pytest.raises(ValueError, match="4-d batch"):
        t(torch.zeros(3, 16, 16))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    t = PacketTransform(2, 3)
    x = torch.randn(2, 3, 64, 64)
    np.testing.assert_allclose(t.cuda()(x.cuda()).cpu(), t.cpu()(x), atol=1e-5)
