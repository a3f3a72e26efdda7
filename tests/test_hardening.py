"""Hostile streams and records cost bounded work; bad arguments are WallocErrors.

Each test is one row of the hardening table: a forged input that is *valid enough* (CRC
recomputed) and what walloc-io must do with it.
"""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import walloc_io
from walloc_io import bitstream
from walloc_io.codecs import chunk
from walloc_io.errors import BitstreamError, InputError, PresetError, WallocError


@pytest.fixture(scope="module")
def codec():
    return walloc_io.load_codec("rgb-16x", device="cpu")


@pytest.fixture(scope="module")
def blob(codec):
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    return codec.encode(x)


def forge(blob: bytes, payload: bytes | None = None, **fields) -> bytes:
    """The stream with header fields replaced and the CRC recomputed."""
    header, original = bitstream.unpack(blob)
    return bitstream.pack(dataclasses.replace(header, **fields),
                          original if payload is None else payload)


def quick(fn, seconds: float = 1.0):
    start = time.perf_counter()
    with pytest.raises(WallocError) as info:
        fn()
    assert time.perf_counter() - start < seconds
    return info.value


@pytest.mark.parametrize("version", [1, 2])
def test_empty_payload_never_decodes(codec, blob, version):
    error = quick(lambda: codec.decode(forge(blob, b"", version=version)))
    assert isinstance(error, BitstreamError) and "cannot hold" in str(error)


def test_tiny_payload_claiming_a_huge_image_is_refused_at_once(codec, blob):
    small = forge(blob, b"\x00\x00\x01\x00\x00\x00\x01\x00", shape=(4096, 4096),
                  latent_shape=(512, 512))
    assert len(small) < 70
    assert "cannot hold" in str(quick(lambda: codec.decode(small)))


@pytest.mark.parametrize("side", [2 ** 15, 2 ** 16])
def test_claims_beyond_max_elements_are_refused_before_allocating(codec, blob, side):
    huge = forge(blob, shape=(side, side), latent_shape=(side // 8, side // 8))
    error = quick(lambda: codec.decode(huge), 0.5)
    assert "MAX_ELEMENTS" in str(error)


def test_max_elements_is_a_documented_knob(codec, blob, monkeypatch):
    monkeypatch.setattr(bitstream, "MAX_ELEMENTS", 1000)
    with pytest.raises(BitstreamError, match="WALLOC_MAX_ELEMENTS"):
        codec.decode(blob)


def test_huge_claimed_shape_with_the_original_payload_fails_fast(codec, blob):
    forged = forge(blob, shape=(8192, 8192), latent_shape=(1024, 1024))
    assert "cannot hold" in str(quick(lambda: codec.decode(forged)))


@pytest.mark.parametrize("norm, dtype", [([[0.0, 1e300]] * 3, "float32"),
                                         ([[0.0, -1.0]] * 3, "float64"),
                                         ([[60000.0, 10000.0]] * 3, "uint16")])
def test_forged_normalisation_is_refused(codec, norm, dtype):
    x = np.random.default_rng(1).random((3, 32, 32)).astype(np.float32)
    blob = codec.encode(x)
    forged = forge(blob, normalisation=np.array(norm), dtype=dtype)
    with pytest.raises(BitstreamError, match="normalisation"):
        codec.decode(forged)


ZLIB_BOMB = """
import resource, struct, zlib, numpy as np
from walloc_io.codecs import chunk
from walloc_io.errors import BitstreamError
bomb = zlib.compress(b"\\0" * 800_000_000, 9)
shape = (1, 3, 64, 64)
head = chunk._HEAD.pack(chunk.MAGIC, chunk.VERSION, chunk._MASK, 3, 4) + struct.pack("<4I", *shape)
record = head + struct.pack("<II", 1, 4) + b"WLOC" + struct.pack("<I", len(bomb)) + bomb
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    chunk.unpack(record)
except BitstreamError as exc:
    print("refused", exc)
print("grew_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_nan_mask_zlib_bomb_is_inflated_only_as_far_as_the_shape_allows():
    out = subprocess.run([sys.executable, "-c", ZLIB_BOMB], capture_output=True, text=True,
                         check=True).stdout
    assert "refused" in out and "NaN mask" in out
    assert int(out.split("grew_kb")[1]) < 50_000  # not the 800 MB the bomb holds


def test_chunk_record_claiming_too_many_values_is_refused():
    head = chunk._HEAD.pack(chunk.MAGIC, chunk.VERSION, 0, 0, 4)
    record = head + struct.pack("<4I", 1 << 16, 3, 1 << 12, 1 << 12) + struct.pack("<I", 0)
    with pytest.raises(BitstreamError, match="MAX_ELEMENTS"):
        chunk.unpack(record)


@pytest.mark.parametrize("rate", [-1, 2 ** 32, 44100.5, "44100", True])
def test_bad_sample_rates_are_input_errors(rate):
    audio = walloc_io.load_codec("stereo-20x", device="cpu")
    with pytest.raises(InputError, match="sample_rate"):
        audio.encode(np.zeros((2, 4096), np.int16), sample_rate=rate)


def test_tensor_layouts_and_dtypes(codec):
    t = torch.rand(3, 64, 64)
    header = walloc_io.read_header(codec.encode(t.to(torch.bfloat16)))  # converted, exactly
    assert header.dtype == "float32"
    for bad, match in ((t.to_sparse(), "dense"), (torch.empty(3, 64, 64, device="meta"), "meta"),
                       (torch.complex(t, t), "complex")):
        with pytest.raises(InputError, match=match):
            codec.encode(bad)


@pytest.mark.parametrize("args, error, match", [
    ((None,), PresetError, "preset name"), ((3,), PresetError, "preset name"),
    (("rgb-16x", "tpu"), InputError, "device must be"), (("rgb-16x", 5), InputError, "device")])
def test_load_codec_arguments(args, error, match):
    with pytest.raises(error, match=match):
        walloc_io.load_codec(*args)


def test_int16_with_a_narrow_range_is_normalised_per_channel(codec):
    from importlib.resources import files

    from walloc_io.media import read_signal

    x = read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data[:, :128, :128]
    blob = codec.encode(x.astype(np.int16))
    assert walloc_io.read_header(blob).normalisation is not None
    y = codec.decode(blob)
    assert y.dtype == np.int16
    reference = np.abs(codec.decode(codec.encode(x)).astype(int) - x).mean()
    assert np.abs(y.astype(int) - x).mean() < reference + 1  # as good as uint8, not ~430 off


# -- adapters -------------------------------------------------------------------------------
def test_numcodecs_empty_batch_round_trips():
    import numcodecs

    c = numcodecs.get_codec({"id": "walloc", "preset": "rgb-16x"})
    out = c.decode(c.encode(np.zeros((0, 3, 64, 64), np.uint8)))
    assert out.shape == (0, 3, 64, 64) and out.dtype == np.uint8


SERIALIZER = {"name": "walloc", "configuration": {"preset": "rgb-16x"}}


def test_nan_fill_needs_the_mask_policy_and_then_partial_writes_work():
    import zarr
    from zarr.storage import MemoryStore

    with pytest.raises(chunk.ChunkLayoutError, match="fill_value NaN"):
        zarr.create_array(MemoryStore(), shape=(2, 3, 64, 64), chunks=(1, 3, 64, 64),
                          dtype="float32", fill_value=np.nan, serializer=SERIALIZER)
    masked = {"name": "walloc", "configuration": {"preset": "rgb-16x", "nan": "mask"}}
    arr = zarr.create_array(MemoryStore(), shape=(2, 3, 64, 64), chunks=(1, 3, 64, 64),
                            dtype="float32", fill_value=np.nan, serializer=masked)
    yy, xx = np.mgrid[:40, :64] / 64.0
    x = np.stack([np.sin(3 * xx + c) * yy for c in range(3)]).astype(np.float32)  # smooth
    arr[0, :, :40, :] = x  # a partial write: the rest of the chunk is the NaN fill
    back = arr[0]
    assert np.isnan(back[:, 40:]).all() and np.abs(back[:, :40] - x).mean() < 0.05


@pytest.mark.parametrize("inner, match", [((1, 1, 256, 256), "all 3 channels"),
                                          ((1, 3, 4, 256), "too small")])
def test_sharded_arrays_are_validated_at_creation(inner, match):
    import zarr
    from zarr.storage import MemoryStore

    with pytest.raises(chunk.ChunkLayoutError, match=match):
        zarr.create_array(MemoryStore(), shape=(2, 3, 512, 768), chunks=inner,
                          shards=(2, 3, 512, 768), dtype="uint8", serializer=SERIALIZER)


CREATE = """
import sys, zarr
from zarr.storage import MemoryStore
zarr.create_array(MemoryStore(), shape=(4, 3, 256, 256), chunks=(1, 3, 128, 128),
                  shards=(2, 3, 256, 256), dtype="uint8",
                  serializer={"name": "walloc", "configuration": {"preset": "rgb-16x"}})
print("torch" in sys.modules)
"""


def test_create_array_validates_without_torch():
    out = subprocess.run([sys.executable, "-c", CREATE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- command line -----------------------------------------------------------------------------
def walloc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "walloc_io.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.parametrize("args, match", [
    (("convert", "src", "dst.zarr", "--workers", "0"), "--workers"),
    (("convert", "src", "dst.zarr", "--workers", "-1"), "--workers"),
    (("encode", "in.png", "out.wlc", "--device", "tpu"), "--device")])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, match):
    run = walloc(*args, cwd=tmp_path)
    assert run.returncode == 2 and match in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "dst.zarr.partial").exists()


def test_convert_of_only_bad_items_exits_nonzero(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.png").write_bytes(b"not a picture")
    run = walloc("convert", "src", "out.zarr", "--workers", "1", cwd=tmp_path)
    assert run.returncode == 1 and "nothing was converted" in run.stderr


def test_decode_creates_the_output_directory(tmp_path, blob):
    (tmp_path / "x.wlc").write_bytes(blob)
    run = walloc("decode", "x.wlc", "missing/dir/out.png", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "missing" / "dir" / "out.png").stat().st_size > 0


def test_normalisation_whose_end_overflows_float64_is_refused():
    """low + span beyond float64 (found by the forged-header fuzzing): a BitstreamError, no
    overflow warning."""
    codec = walloc_io.load_codec("gray-16x", device="cpu")
    blob = codec.encode(np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(1, 32, 32))
    header, payload = bitstream.unpack(blob)
    forged = bitstream.pack(dataclasses.replace(
        header, normalisation=np.array([[8.988465674311579e307, 8.98846567431158e307]])), payload)
    with pytest.raises(walloc_io.BitstreamError, match="leaves the range"):
        walloc_io.read_header(forged)
