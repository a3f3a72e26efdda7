"""Hyperspectral cubes: spectral basis + 2-D codec + residual, every finite value bounded."""

from __future__ import annotations

import numpy as np
import pytest

import walloc_io
from walloc_io.spectral import SpectralBasis, SpectralCodec, fit_basis


def cube(seed: int, bands: int = 300, shape=(24, 40)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wave = np.linspace(0, 1, bands)
    shapes = np.stack([np.exp(-((wave - c) / 0.05) ** 2) for c in (0.2, 0.5, 0.8)] + [wave])
    abundance = rng.random((4, *shape)).cumsum(axis=1) / shape[0]
    x = np.einsum("kb,khw->bhw", shapes, abundance) + rng.normal(0, 0.01, (bands, *shape))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    basis = fit_basis([cube(0)], components=6)
    directory = basis.save(tmp_path_factory.mktemp("basis"))
    return SpectralCodec(SpectralBasis.load(directory))


@pytest.mark.parametrize("rel", [1e-2, 1e-3, 1e-5])
def test_held_out_cube_within_the_bound_with_nan(codec, rel):
    x = cube(1)  # another cube than the basis saw
    x[5:9, 3, 7] = np.nan
    x[:, 10:12, 30:33] = np.nan
    finite = np.isfinite(x)
    eps = rel * float(np.ptp(x[finite]))
    record = codec.encode(x, max_abs_error=eps, nan="mask")
    y = codec.decode(record)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.array_equal(np.isnan(y), ~finite)
    assert np.abs(y[finite].astype(np.float64) - x[finite]).max() <= eps
    assert len(record) < x.nbytes


def test_without_a_bound_the_cube_is_lossy_but_close(codec):
    x = cube(2)
    y = codec.decode(codec.encode(x))
    assert np.corrcoef(y.ravel(), x.ravel())[0, 1] > 0.95


def test_bad_cubes_and_records(codec):
    x = cube(3)
    with pytest.raises(walloc_io.InputError, match="NaN"):
        bad = x.copy()
        bad[0, 0, 0] = np.nan
        codec.encode(bad)
    with pytest.raises(walloc_io.InputError, match="expected a cube"):
        codec.encode(x[:10])
    with pytest.raises(walloc_io.InputError, match="float"):
        codec.encode(x.astype(np.int16))
    record = codec.encode(x, max_abs_error=0.01)
    for forged in (record[:20], record[:-5], record + b"\0", b"nope" + record[4:]):
        with pytest.raises(walloc_io.BitstreamError):
            codec.decode(forged)
    other = SpectralCodec(fit_basis([cube(4)], components=6))
    with pytest.raises(walloc_io.ModelMismatchError, match="spectral basis"):
        other.decode(record)


def test_walloc_train_spectral_writes_a_basis_the_codec_opens(tmp_path, capsys):
    from walloc_io.cli import main

    np.save(tmp_path / "a.npy", cube(5))
    np.save(tmp_path / "b.npy", cube(6))
    assert main(["train-spectral", str(tmp_path), str(tmp_path / "basis"), "--components", "5"]) == 0
    assert "300 bands -> 5 components" in capsys.readouterr().out
    codec = SpectralCodec(SpectralBasis.load(tmp_path / "basis"))
    x = cube(7)
    assert np.abs(codec.decode(codec.encode(x, max_abs_error=0.02)) - x).max() <= 0.02
    with pytest.raises(SystemExit):
        main(["train-spectral", str(tmp_path), str(tmp_path / "b2"), "--components", "x"])


def test_cubes_in_zarr_v3_with_a_bound_and_nan(tmp_path):
    import json

    import zarr

    basis = fit_basis([cube(0)], components=6).save(tmp_path / "basis")
    x = cube(8, shape=(48, 64))
    x[:, 0:3, 0:5] = np.nan
    config = {"basis": str(basis), "max_abs_error": 0.01, "nan": "mask"}
    a = zarr.create_array(tmp_path / "c.zarr", shape=x.shape, chunks=(300, 24, 32),
                          dtype="float32", fill_value=float("nan"),
                          serializer={"name": "walloc_spectral", "configuration": config})
    a[:] = x
    y = zarr.open_array(tmp_path / "c.zarr", mode="r")[:]
    finite = np.isfinite(x)
    assert np.array_equal(np.isnan(y), ~finite)
    assert np.abs(y[finite] - x[finite]).max() <= 0.01
    meta = json.loads((tmp_path / "c.zarr" / "zarr.json").read_text())["codecs"][0]
    assert meta["name"] == "walloc_spectral" and len(meta["configuration"]["fingerprint"]) == 32
    stored = sum(f.stat().st_size for f in (tmp_path / "c.zarr" / "c").rglob("*") if f.is_file())
    assert stored < x.nbytes
    with pytest.raises(ValueError, match="all 300 bands"):
        zarr.create_array(tmp_path / "bad.zarr", shape=x.shape, chunks=(100, 24, 32),
                          dtype="float32", serializer={"name": "walloc_spectral",
                                                       "configuration": config})


def test_corrupt_records_are_bitstream_errors(codec):
    x = cube(9)
    x[0, :2, :2] = np.nan
    record = bytearray(codec.encode(x, max_abs_error=0.01, nan="mask"))
    for at in (len(record) - 10, len(record) // 2, 40):
        forged = bytearray(record)
        forged[at] ^= 0x5A
        with pytest.raises(walloc_io.BitstreamError):
            codec.decode(bytes(forged))
