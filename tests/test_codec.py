"""Codec round trips, dtypes, batching, determinism and bad input (tiny seeded codec)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import walloc_io
from walloc_io import BitstreamError, InputError, ModelMismatchError, WallocError


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(float(peak) ** 2 / mse)


def check_round_trip(codec, x, min_psnr):
    blob = codec.encode(x)
    y = codec.decode(blob)
    ref = x.numpy() if torch.is_tensor(x) else x
    assert y.shape == ref.shape and y.dtype == ref.dtype
    peak = np.ptp(ref) if ref.dtype.kind == "f" or ref.dtype == np.uint16 else 255
    assert psnr(ref, y, peak) >= min_psnr
    return blob, y


def test_uint8_round_trip_psnr_band(tiny, images):
    for im in images:
        blob, y = check_round_trip(tiny, im, 28)
        assert psnr(im, y, 255) < 60  # lossy: a perfect result would mean a broken test
        assert len(blob) < im.nbytes / 2


@pytest.mark.parametrize("dtype", ["uint16", "float32", "float64"])
def test_affine_dtypes(tiny, images, dtype):
    x = images[0].astype(np.float64) * 37.5 - 1200
    if dtype == "uint16":
        x = x + 1200 + 1000
    x = x.astype(dtype)
    _, y = check_round_trip(tiny, x, 28)
    h = walloc_io.read_header(tiny.encode(x))
    np.testing.assert_allclose(h.normalisation[:, 0], x.reshape(3, -1).min(1))
    assert y.min() >= x.min() - 1e-6 * abs(x.min()) and y.max() <= x.max() + 1e-6 * abs(x.max())


def test_torch_input_and_odd_shapes(tiny, images):
    im = images[1][:, :45, :71]
    blob, _ = check_round_trip(tiny, torch.from_numpy(np.ascontiguousarray(im)), 26)
    h = walloc_io.read_header(blob)
    assert h.shape == (45, 71) and h.padding == (3, 1) and h.latent_shape == (12, 18)
    assert tiny.decode_latents(blob).shape == (12, 12, 18)


def test_constant_image(tiny):
    x = np.full((3, 16, 16), 77, np.uint8)
    y = tiny.decode(tiny.encode(x)).astype(int)
    assert np.abs(y - 77).max() <= 6 and abs(y.mean() - 77) <= 2
    f = np.full((3, 16, 16), -3.25, np.float32)
    np.testing.assert_allclose(tiny.decode(tiny.encode(f)), f, atol=1e-3)


def test_batch_equals_single(tiny, images):
    mixed = [images[0], images[1][:, :40, :56], images[2], images[3].astype(np.float32)]
    blobs = tiny.encode_batch(mixed)
    assert blobs == [tiny.encode(x) for x in mixed]
    for a, b in zip(tiny.decode_batch(blobs), [tiny.decode(b) for b in blobs]):
        assert a.dtype == b.dtype
        assert np.abs(a.astype(np.float64) - b).max() <= (1 if a.dtype == np.uint8 else 1e-4)


def test_latents_are_deterministic_across_thread_counts(tiny, images):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [tiny.encode(x) for x in images]
        torch.set_num_threads(2)
        two = [tiny.encode(x) for x in images]
    finally:
        torch.set_num_threads(before)
    assert one == two


def test_synthesise_matches_decode(tiny, images):
    blob = tiny.encode(images[0])
    z = tiny.decode_latents(blob)
    y = tiny.synthesise(z[None])[0].numpy()
    expected = tiny.decode(blob)
    assert np.abs(np.rint((y + 0.5) * 255) - expected).max() <= 1


@pytest.mark.parametrize("bad,match", [
    (np.zeros((3, 16), np.uint8), "3-d array"),
    (np.zeros((4, 16, 16), np.uint8), "expects 3 channels"),
    (np.zeros((3, 0, 16), np.uint8), "empty"),
    (np.zeros((3, 16, 16), np.int32), "unsupported dtype"),
    (np.zeros((3, 16, 16), np.complex64), "unsupported dtype"),
    (np.zeros((3, 2, 16), np.uint8), "too small"),
    (np.full((3, 16, 16), np.nan, np.float32), "NaN"),
    (np.array([[[np.inf] * 8] * 8] * 3), "NaN or Inf"),
    ([[1, 2], [3, 4]], "numpy array or torch tensor"),
])
def test_bad_input(tiny, bad, match):
    with pytest.raises(InputError, match=match):
        tiny.encode(bad)
    assert issubclass(InputError, ValueError)


def test_stream_from_another_model(tiny, images):
    other = walloc_io.load_codec("rgb-16x", device="cpu")
    blob = other.encode(images[0])
    with pytest.raises(ModelMismatchError, match="not by this codec"):
        tiny.decode(blob)
    with pytest.raises(ModelMismatchError):
        tiny.decode_latents(blob)


def test_corrupt_streams(tiny, images):
    blob = tiny.encode(images[0])
    with pytest.raises(BitstreamError, match="truncated"):
        tiny.decode(blob[:-7])
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x10
    with pytest.raises(BitstreamError, match="checksum"):
        tiny.decode(bytes(flipped))


def test_pickles_by_reference(tiny, images):
    again = pickle.loads(pickle.dumps(tiny))
    assert again is tiny  # same process: the cached instance
    assert again.encode(images[0]) == tiny.encode(images[0])


def test_properties(tiny):
    assert tiny.dimensionality_reduction == 4.0
    assert len(tiny.fingerprint) == 32 and tiny.config.name == "tiny"
    assert "tiny" in repr(tiny)


def test_unknown_preset():
    with pytest.raises(WallocError, match="no preset or codec directory"):
        walloc_io.load_codec("no-such-preset")


def test_cuda_request_without_cuda_falls_back(tiny_dir):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.warns(RuntimeWarning, match="CUDA requested"):
        codec = walloc_io.load_codec(tiny_dir, device="cuda")
    assert codec.device.type == "cpu"


def test_contextual_entropy_model_codes_the_same_latents(tiny, images, tmp_path):
    """The contextual model changes the words, never the latents: same weights, same
    decoded signal, a stream that says which model coded it, and one codec's streams are
    refused by the other."""
    from dataclasses import replace

    import walloc_io
    from walloc_io.bitstream import read_header

    from .conftest import TINY, build_codec_dir, smooth_images

    ctx = walloc_io.load_codec(build_codec_dir(replace(TINY, entropy_model="contextual"),
                                               smooth_images(16), tmp_path / "ctx"), device="cpu")
    assert ctx.tables.neighbour_weight > 0 and tiny.tables.neighbour_weight == 0
    for x in images:
        a, b = tiny.encode(x), ctx.encode(x)
        assert read_header(b).entropy_model == "contextual"
        assert read_header(a).entropy_model == "predictive"
        np.testing.assert_array_equal(ctx.decode_latents(b), tiny.decode_latents(a))
        np.testing.assert_array_equal(ctx.decode(b), tiny.decode(a))
    with pytest.raises(walloc_io.WallocError):
        ctx.decode(tiny.encode(images[0]))
