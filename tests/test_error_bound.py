"""The error-bounded mode: every finite decoded value within max_abs_error, guaranteed."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest

import walloc_io
from walloc_io import bitstream
from walloc_io.codecs.chunk import decode_chunk, encode_chunk

CASES = 4000 if os.environ.get("WALLOC_FUZZ") == "large" else 48


@pytest.fixture(scope="module")
def gray():
    return walloc_io.load_codec("gray-16x", device="cpu")


def field(rng: np.random.Generator, shape: tuple[int, int], dtype) -> np.ndarray:
    """Smooth structure, noise, steps and spikes, at a random offset and scale."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    f = np.sin(xx / rng.uniform(3, 40)) * np.cos(yy / rng.uniform(3, 40))
    f += rng.normal(0, rng.uniform(0, 0.3), shape)
    f += (xx > rng.uniform(0, shape[1])) * rng.uniform(-2, 2)
    spikes = rng.random(shape) < 0.002
    f[spikes] += rng.normal(0, 20, int(spikes.sum()))
    f = f * 10.0 ** rng.uniform(-3, 4) + rng.uniform(-1e3, 1e3)
    return f.astype(dtype)[None]


def nan_pattern(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray | None:
    kind = rng.integers(4)
    if kind == 0:
        return None
    mask = np.zeros(shape, bool)
    if kind == 1:
        mask |= rng.random(shape) < rng.uniform(0.001, 0.5)
    elif kind == 2:  # "land": a block or two
        for _ in range(int(rng.integers(1, 3))):
            y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
            mask[y:y + int(rng.integers(1, shape[0])), x:x + int(rng.integers(1, shape[1]))] = True
    else:
        mask[:, : int(rng.integers(1, shape[1]))] = True
    mask.flat[0] = False  # at least one finite value
    return mask


def test_bound_holds_on_random_fields_shapes_nan_patterns_and_bounds(gray):
    rng = np.random.default_rng(2026)
    violations, cases, raw = 0, 0, 0
    for _ in range(CASES):
        shape = (int(rng.integers(8, 97)), int(rng.integers(8, 97)))
        dtype = np.float32 if rng.random() < 0.7 else np.float64
        x = field(rng, shape, dtype)
        mask = nan_pattern(rng, shape)
        finite = np.ones(x.shape, bool) if mask is None else ~mask[None]
        span = float(np.ptp(x[finite])) or 1.0
        eps = span * 10.0 ** rng.uniform(-7, -0.5)
        if mask is not None:
            x[~finite] = np.nan
        record = encode_chunk(gray, x, nan="mask", max_abs_error=eps)
        y = decode_chunk(gray, record)
        assert y.dtype == x.dtype and y.shape == x.shape
        assert np.array_equal(np.isnan(y), ~finite)
        err = np.abs(y[finite].astype(np.float64) - x[finite].astype(np.float64))
        violations += int((err > eps).sum())
        cases += 1
        raw += int(len(record) >= x.nbytes)
    print(f"error-bound property test: {cases} cases, {violations} violations, "
          f"{raw} stored at least raw size")
    assert violations == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_round_trip_keeps_dtype_latents_and_records_the_bound(gray, dtype):
    rng = np.random.default_rng(0)
    x = field(rng, (64, 80), dtype)
    eps = 1e-3 * float(np.ptp(x))
    plain, bounded = gray.encode(x), gray.encode(x, max_abs_error=eps)
    h = walloc_io.read_header(bounded)
    assert h.version == 3 and h.max_abs_error == eps
    y = gray.decode(bounded)
    assert y.dtype == dtype and np.abs(y.astype(np.float64) - x).max() <= eps
    np.testing.assert_array_equal(gray.decode_latents(bounded), gray.decode_latents(plain))
    assert len(bounded) < x.nbytes  # it compresses


def test_tighter_bounds_cost_more_and_the_loosest_cost_least(gray):
    x = field(np.random.default_rng(3), (96, 96), np.float32)
    span = float(np.ptp(x))
    sizes = [len(gray.encode(x, max_abs_error=r * span)) for r in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "0.1", None])
def test_bad_bounds_are_input_errors(gray, bad):
    x = np.zeros((1, 16, 16), np.float32)
    if bad is None:
        with pytest.raises(walloc_io.InputError, match="max_abs_error applies to float"):
            gray.encode(np.zeros((1, 16, 16), np.uint8), max_abs_error=1.0)
        return
    with pytest.raises(walloc_io.InputError, match="max_abs_error"):
        gray.encode(x, max_abs_error=bad)


def test_nan_and_inf_refused_by_the_stream_codec(gray):
    x = np.zeros((1, 16, 16), np.float32)
    x[0, 3, 3] = np.nan
    with pytest.raises(walloc_io.InputError, match="NaN"):
        gray.encode(x, max_abs_error=0.1)
    x[0, 3, 3] = np.inf
    with pytest.raises(walloc_io.InputError, match="Inf"):
        encode_chunk(gray, x, nan="mask", max_abs_error=0.1)


def test_forged_residuals_are_refused(gray):
    x = field(np.random.default_rng(4), (32, 32), np.float32)
    blob = gray.encode(x, max_abs_error=1e-3 * float(np.ptp(x)))
    header, payload = bitstream.unpack(blob)
    import dataclasses

    for body in (header.residual[:10], header.residual[:-3], header.residual + b"\0\0\0\0",
                 header.residual[:8] + struct.pack("<d", -1.0) + header.residual[16:]):
        forged = bitstream.pack(dataclasses.replace(header, residual=body), payload)
        with pytest.raises(walloc_io.BitstreamError):
            gray.decode(forged)


def test_reconstruct_refuses_bounded_streams(gray):
    x = field(np.random.default_rng(5), (32, 32), np.float32)
    codes, header = gray.entropy_decode(gray.encode(x, max_abs_error=0.5))
    with pytest.raises(walloc_io.InputError, match="bound"):
        gray.reconstruct(codes[None], [header])


def test_a_bound_below_float_resolution_is_lossless_and_not_larger_than_raw(gray):
    x = field(np.random.default_rng(6), (64, 64), np.float32)
    blob = gray.encode(x, max_abs_error=1e-12)
    np.testing.assert_array_equal(gray.decode(blob), x)
    assert len(blob) < x.nbytes + 200


def test_zarr_and_numcodecs_configs_carry_the_bound(tmp_path):
    import zarr

    from walloc_io.codecs.numcodec import WallocCodec

    from .common import check_config

    check_config(WallocCodec, {"preset": "gray-16x", "max_abs_error": 0.25, "nan": "mask"})
    x = field(np.random.default_rng(7), (64, 128), np.float32)
    x[:, 5:9, 10:30] = np.nan
    a = zarr.create_array(tmp_path / "f.zarr", shape=x.shape, chunks=(1, 64, 64),
                          shards=(1, 64, 128), dtype="float32", fill_value=np.nan,
                          serializer={"name": "walloc", "configuration": {
                              "preset": "gray-16x", "nan": "mask", "max_abs_error": 0.25}})
    a[:] = x
    y = zarr.open_array(tmp_path / "f.zarr", mode="r")[:]
    finite = np.isfinite(x)
    assert np.array_equal(np.isnan(y), ~finite)
    assert np.abs(y[finite] - x[finite]).max() <= 0.25
    lat = walloc_io.open_latents(tmp_path / "f.zarr").compute()
    assert lat.shape == (4, 8, 16)
    with pytest.raises(ValueError, match="max_abs_error applies to float"):
        zarr.create_array(tmp_path / "i.zarr", shape=(1, 64, 64), dtype="uint16",
                          serializer={"name": "walloc", "configuration": {
                              "preset": "gray-16x", "max_abs_error": 1.0}})


def test_decoder_drift_across_threads_and_batches_stays_inside_the_margin(gray):
    import torch

    from walloc_io.entropy.residual import MARGIN

    x = field(np.random.default_rng(8), (64, 256), np.float32)
    blobs = [gray.encode(x[:, :, i * 64:(i + 1) * 64]) for i in range(4)]
    read = gray.read_many(blobs)
    threads = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            for batch in (1, 4):
                ys = []
                for i in range(0, 4, batch):
                    # exact: the float32 path bounded streams take (whatever the precision)
                    ys += gray._decode_stack(read[i:i + batch], exact=True)
                outs.append(np.stack(ys).astype(np.float64))
    finally:
        torch.set_num_threads(threads)
    drift = max(float(np.abs(o - outs[0]).max()) for o in outs)
    assert drift <= MARGIN / 4, drift  # normalised units: a fraction of the span


def test_a_drifting_decoder_stays_within_the_bound(gray, monkeypatch):
    x = field(np.random.default_rng(3), (32, 32), np.float32)
    eps = 1e-2 * float(np.ptp(x))
    blob = gray.encode(x, max_abs_error=eps)
    assert walloc_io.read_header(blob).residual[16] & 1  # coded against the network's output
    from walloc_io.entropy import residual

    real = residual.decode

    def drifted(body, prediction, *args):  # a decoder off by a third of the margin
        return real(body, prediction + residual.MARGIN / 3 * float(np.ptp(x)), *args)

    monkeypatch.setattr(residual, "decode", drifted)
    assert np.abs(gray.decode(blob).astype(np.float64) - x).max() <= eps


def test_zlib_raw_body_is_bounded_by_its_declared_size(gray):
    x = field(np.random.default_rng(9), (32, 32), np.float32)
    blob = gray.encode(x, max_abs_error=1e-12)
    header, payload = bitstream.unpack(blob)
    head = header.residual[:bitstream_head()]
    bomb = head + zlib.compress(b"\0" * (50 * x.nbytes))
    import dataclasses

    with pytest.raises(walloc_io.BitstreamError, match="wrong size"):
        gray.decode(bitstream.pack(dataclasses.replace(header, residual=bomb), payload))


def bitstream_head() -> int:
    from walloc_io.entropy.residual import _HEAD

    return _HEAD.size


def test_large_offsets_keep_the_bound_whatever_the_decoders_batch(gray):
    """Values ~1e5 with a span of ~40 (pressures, offsets): a float32 ulp is a sizeable part
    of the bound, and a decoder batching differently must still hold it."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64]
    xs = [(1e5 + 20 * np.sin(xx / (7 + i)) * np.cos(yy / 9) + rng.normal(0, 0.3, (64, 64)))[None]
          .astype(np.float32) for i in range(4)]
    eps = 0.0045
    blobs = gray.encode_batch(xs, max_abs_error=eps)
    for decoded in (gray.decode_batch(blobs), [gray.decode(b) for b in blobs]):
        assert max(float(np.abs(d.astype(np.float64) - x).max()) for d, x in zip(decoded, xs)) <= eps


def test_skip_masks_must_match_the_signals(gray):
    x = np.zeros((1, 16, 16), np.float32)
    with pytest.raises(walloc_io.InputError, match="skip"):
        gray.encode_batch([x, x], max_abs_error=0.1, skip=[None])
    with pytest.raises(walloc_io.InputError, match="skip mask"):
        gray.encode_batch([x], max_abs_error=0.1, skip=[np.zeros((4, 4), bool)])
