"""WaLLoC as a numcodecs codec and a Zarr v3 serializer, through real stores."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")

import walloc_io  # noqa: E402
from walloc_io import BitstreamError, InputError  # noqa: E402
from walloc_io.codecs.chunk import ChunkLayoutError, decode_chunk, encode_chunk, unpack  # noqa: E402
from walloc_io.metrics import psnr  # noqa: E402

from ..common import check_config  # noqa: E402
from ..conftest import smooth_images  # noqa: E402

RGB = {"name": "walloc", "configuration": {"preset": "rgb-16x"}}


@pytest.fixture(scope="module")
def stack():
    """(4, 3, 100, 120) uint8: four smooth RGB pictures (edge chunks at 64x64 chunking)."""
    return np.stack(smooth_images(4, (100, 120), seed=5))


@pytest.fixture(scope="module")
def codec():
    import walloc_io

    return walloc_io.load_codec("rgb-16x", device="cpu")


def run_fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (no walloc_io imported up front)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


# -- the chunk record ------------------------------------------------------------------------
def test_chunk_record_round_trip_batches_leading_axes(codec, stack):
    record = encode_chunk(codec, stack[:2, :, :64, :64])
    parsed = unpack(record)
    assert parsed.shape == (2, 3, 64, 64) and parsed.dtype == "uint8" and len(parsed.streams) == 2
    out = decode_chunk(codec, record)
    assert out.shape == (2, 3, 64, 64) and out.dtype == np.uint8
    assert psnr(stack[:2, :, :64, :64], out) > 26
    latents = decode_chunk(codec, record, to="latents")
    assert latents.shape == (2, 12, 8, 8) and latents.dtype == np.int32


def test_channel_last_layout(codec, stack):
    hwc = np.ascontiguousarray(stack[:2].transpose(0, 2, 3, 1))
    record = encode_chunk(codec, hwc, channel_last=True)
    back = decode_chunk(codec, record)
    assert back.shape == hwc.shape
    np.testing.assert_array_equal(back.transpose(0, 3, 1, 2),
                                  decode_chunk(codec, encode_chunk(codec, stack[:2])))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
def test_dtypes_round_trip_within_their_range(codec, stack, dtype):
    x = stack[:1].astype(dtype)
    if dtype == "uint16":
        x = x * 200 + 1000
    elif dtype.startswith("float"):
        x = x / 255 * 4 - 2  # [-2, 2]
    back = decode_chunk(codec, encode_chunk(codec, x))
    assert back.dtype == x.dtype and back.shape == x.shape
    span = float(x.max() - x.min())
    assert psnr(x.astype(float) / span, back.astype(float) / span, peak=1.0) > 26


def test_nan_policy(codec, stack):
    x = stack[:1].astype(np.float32)
    x[0, 1, 10:20, 30:40] = np.nan
    with pytest.raises(InputError, match="100 NaN"):
        encode_chunk(codec, x)
    back = decode_chunk(codec, encode_chunk(codec, x, nan="mask"))
    np.testing.assert_array_equal(np.isnan(back), np.isnan(x))
    ok = ~np.isnan(x)
    assert psnr(x[ok], back[ok]) > 25
    x[0, 0, 0, 0] = np.inf
    with pytest.raises(InputError, match="Inf"):
        encode_chunk(codec, x, nan="mask")


@pytest.mark.parametrize("shape, dtype, match", [
    ((2, 2, 64, 64), "uint8", "all 3 channels"),
    ((2, 3, 4, 64), "uint8", "too small"),
    ((3, 64), "uint8", "at least 3 axes"),
    ((2, 3, 64, 64), "int32", "not int32"),
])
def test_bad_chunk_layouts(codec, shape, dtype, match):
    with pytest.raises(ChunkLayoutError, match=match):
        encode_chunk(codec, np.zeros(shape, dtype))


def test_corrupted_records_raise(codec, stack):
    record = encode_chunk(codec, stack[:2, :, :64, :64])
    for bad in (b"junk", record[:-5], record + b"x", b"WLCK" + record[4:5] + b"\x09" + record[6:],
                record[:8] + b"\xff" * 4 + record[12:]):
        with pytest.raises(BitstreamError):
            decode_chunk(codec, bad)


# -- numcodecs ----------------------------------------------------------------------------------
def test_numcodecs_entry_point_in_a_fresh_process():
    out = run_fresh("""
        import sys, numpy as np, numcodecs
        codec = numcodecs.get_codec({"id": "walloc", "preset": "rgb-16x"})
        assert "walloc_io.codecs.numcodec" in sys.modules  # found via the entry point
        x = np.random.default_rng(0).integers(0, 256, (2, 3, 64, 64), dtype=np.uint8)
        y = codec.decode(codec.encode(x))
        print(y.shape, y.dtype, codec.get_config()["preset"])
    """)
    assert out.strip() == "(2, 3, 64, 64) uint8 rgb-16x"


def test_numcodecs_config_and_pickle(stack):
    from walloc_io.codecs.numcodec import WallocCodec

    codec = numcodecs.get_codec({"id": "walloc", "preset": "rgb-16x", "nan": "mask"})
    assert isinstance(codec, WallocCodec)
    config = codec.get_config()
    assert json.loads(json.dumps(config)) == config and "device" not in config
    check_config(WallocCodec, {"preset": "rgb-16x", "nan": "mask", "device": "cpu"})  # 0.1 key
    blob = codec.encode(stack[:1])
    clone = pickle.loads(pickle.dumps(codec))
    assert clone.get_config() == config and clone._model is None
    np.testing.assert_array_equal(clone.decode(blob), codec.decode(blob))
    out = np.empty(stack[:1].size, np.uint8)
    codec.decode(blob, out=out)
    np.testing.assert_array_equal(out.reshape(stack[:1].shape), codec.decode(blob))
    with pytest.raises(InputError, match="exactly one"):
        WallocCodec()


# -- zarr ----------------------------------------------------------------------------------------
def _stores(tmp_path):
    return {
        "local": zarr.storage.LocalStore(tmp_path / "local.zarr"),
        "zip": zarr.storage.ZipStore(tmp_path / "arr.zip", mode="w"),
        "memory": zarr.storage.MemoryStore(),
    }


@pytest.mark.parametrize("kind", ["local", "zip", "memory"])
def test_zarr_v3_round_trip_through_stores(tmp_path, stack, kind):
    store = _stores(tmp_path)[kind]
    arr = zarr.create_array(store, shape=stack.shape, chunks=(2, 3, 64, 64), dtype="uint8",
                            serializer=RGB)
    arr[:] = stack
    back = arr[:]
    assert back.shape == stack.shape and back.dtype == np.uint8
    assert psnr(stack, back) > 26
    # edge chunks (zarr pads them with the fill value) still reproduce their visible part
    assert psnr(stack[:, :, 64:, 64:], back[:, :, 64:, 64:]) > 24
    if kind == "zip":
        store.close()
        reopened = zarr.open_array(zarr.storage.ZipStore(tmp_path / "arr.zip", mode="r"), mode="r")
        np.testing.assert_array_equal(reopened[:], back)
    assert _stored_chunk_bytes(store, tmp_path, kind) < stack.nbytes / 8


def _stored_chunk_bytes(store, tmp_path, kind) -> int:
    if kind == "local":
        return sum(p.stat().st_size for p in (tmp_path / "local.zarr" / "c").rglob("*") if p.is_file())
    if kind == "zip":
        import zipfile

        with zipfile.ZipFile(tmp_path / "arr.zip") as z:
            return sum(i.compress_size for i in z.infolist() if i.filename.startswith("c/"))
    return sum(len(v.to_bytes()) for k, v in store._store_dict.items() if k.startswith("c/"))


def test_zarr_v3_reopens_in_a_fresh_process(tmp_path, stack):
    path = tmp_path / "photos.zarr"
    arr = zarr.create_array(path, shape=stack.shape, chunks=(1, 3, 64, 64), dtype="uint8",
                            serializer=RGB)
    arr[:] = stack
    np.save(tmp_path / "expected.npy", arr[:])
    out = run_fresh(f"""
        import sys, numpy as np, zarr
        a = zarr.open_array({str(path)!r}, mode="r")
        # within 1: the decoder's float sums may round differently with another thread count
        diff = np.abs(a[:].astype(int) - np.load({str(tmp_path / "expected.npy")!r}))
        assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
        print(a.metadata.to_dict()["codecs"][0]["name"], "walloc_io.codecs.zarr3" in sys.modules)
    """)
    assert out.strip() == "walloc True"


def test_zarr_v2_compressor(tmp_path, stack):
    from walloc_io.codecs.numcodec import WallocCodec

    arr = zarr.create_array(tmp_path / "v2.zarr", shape=stack.shape, chunks=(2, 3, 64, 64),
                            dtype="uint8", zarr_format=2, compressors=WallocCodec(preset="rgb-16x"),
                            filters=None)
    arr[:] = stack
    meta = json.loads((tmp_path / "v2.zarr" / ".zarray").read_text())
    assert meta["compressor"]["id"] == "walloc"
    reopened = zarr.open_array(tmp_path / "v2.zarr", mode="r")
    assert psnr(stack, reopened[:]) > 26


def test_zarr_audio_channel_last(tmp_path):
    import soundfile

    from walloc_io.metrics import snr

    clip, rate = soundfile.read(str(_sample("heroes_rite.flac")), dtype="int16")  # (T, 2)
    clip = clip[: 3 * 32768]
    arr = zarr.create_array(tmp_path / "music.zarr", shape=clip.shape, chunks=(32768, 2),
                            dtype="int16", serializer={"name": "walloc", "configuration": {
                                "preset": "stereo-20x", "channel_last": True, "sample_rate": rate}})
    arr[:] = clip
    back = arr[:]
    assert back.shape == clip.shape and snr(clip.T, back.T) > 10


def _sample(name):
    from importlib.resources import files

    return files("walloc_io").joinpath("samples", name)


def test_zarr_rejects_bad_layouts_before_writing(tmp_path):
    bad = [
        dict(shape=(4, 3, 100, 120), chunks=(2, 2, 64, 64), dtype="uint8"),  # splits channels
        dict(shape=(4, 3, 100, 120), chunks=(2, 3, 4, 64), dtype="uint8"),  # chunk < 2**J
        dict(shape=(4, 3, 100, 120), chunks=(2, 3, 64, 64), dtype="int32"),
    ]
    for i, spec in enumerate(bad):
        with pytest.raises(ChunkLayoutError):
            zarr.create_array(tmp_path / f"bad{i}.zarr", serializer=RGB, **spec)
        assert not list((tmp_path / f"bad{i}.zarr").rglob("c/*"))


def test_zarr_unknown_preset_is_a_clear_error(tmp_path, stack):
    path = tmp_path / "a.zarr"
    arr = zarr.create_array(path, shape=stack.shape, chunks=(2, 3, 64, 64), dtype="uint8",
                            serializer=RGB)
    arr[:] = stack
    meta = json.loads((path / "zarr.json").read_text())
    config = meta["codecs"][0]["configuration"]
    assert "device" not in config and len(config["fingerprint"]) == 32  # portable metadata
    config["preset"] = "no-such-preset"  # renamed, but the fingerprint still finds the model
    (path / "zarr.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[:], arr[:])
    config["fingerprint"] = "0" * 32  # neither name nor fingerprint known: a clear error
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no-such-preset"):
        zarr.open_array(path, mode="r")[:]


def test_zarr_corrupted_chunk_raises(tmp_path, stack):
    path = tmp_path / "a.zarr"
    arr = zarr.create_array(path, shape=stack.shape, chunks=(2, 3, 64, 64), dtype="uint8",
                            serializer=RGB, compressors=None)
    arr[:] = stack
    chunk = next(path.rglob("c/0/0/0/0"))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(BitstreamError):
        zarr.open_array(path, mode="r")[:2, :, :64, :64]


def test_batched_zarr_decode_matches_one_chunk_at_a_time(tmp_path, stack):
    arr = zarr.create_array(tmp_path / "a.zarr", shape=stack.shape, chunks=(1, 3, 64, 64),
                            dtype="uint8", serializer=RGB)
    arr[:] = stack
    single = arr[:]
    with zarr.config.set({"codec_pipeline.batch_size": 16}):
        batched = zarr.open_array(tmp_path / "a.zarr", mode="r")[:]
    assert np.abs(batched.astype(int) - single).max() <= 1


def test_xarray_variable_round_trip(tmp_path, stack):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset({"photos": (("item", "band", "y", "x"), stack),
                     "label": (("item",), np.arange(len(stack)))})
    encoding = {"photos": {"chunks": (2, 3, 64, 64), "serializer": RGB, "compressors": None}}
    ds.to_zarr(tmp_path / "ds.zarr", mode="w", encoding=encoding, zarr_format=3,
               consolidated=False)
    back = xr.open_zarr(tmp_path / "ds.zarr", consolidated=False)
    assert back.photos.dtype == np.uint8 and back.photos.shape == stack.shape
    assert psnr(stack, back.photos.values) > 26
    np.testing.assert_array_equal(back.label.values, np.arange(len(stack)))
    meta = json.loads((tmp_path / "ds.zarr" / "photos" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "walloc"


def test_store_made_from_a_codec_directory_opens_after_the_directory_moves(tmp_path, tiny_dir,
                                                                          monkeypatch):
    import shutil

    codec_dir = tmp_path / "my-codec"
    shutil.copytree(tiny_dir, codec_dir)
    x = np.stack([np.full((3, 16, 16), v, np.uint8) for v in (30, 200)])
    arr = zarr.create_array(tmp_path / "a.zarr", shape=x.shape, chunks=(1, 3, 16, 16),
                            dtype="uint8", serializer={"name": "walloc", "configuration": {
                                "path": str(codec_dir)}})
    arr[:] = x
    before = arr[:]
    moved = tmp_path / "elsewhere" / "my-codec"
    moved.parent.mkdir()
    codec_dir.rename(moved)  # the recorded path no longer exists
    with pytest.raises(ValueError, match="WALLOC_CODEC_PATH"):
        zarr.open_array(tmp_path / "a.zarr", mode="r")[:]
    monkeypatch.setenv("WALLOC_CODEC_PATH", str(moved.parent))
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "a.zarr", mode="r")[:], before)


def test_rewriting_a_codec_directory_in_one_process_is_seen(tmp_path, tiny_dir):
    import json
    import shutil

    target = tmp_path / "codec"
    shutil.copytree(tiny_dir, target)
    first = walloc_io.load_codec(str(target), device="cpu")
    assert walloc_io.load_codec(str(target), device="cpu") is first  # cached
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["fingerprint"] = "f" * 32  # as a second training run to the same folder would
    (target / "manifest.json").write_text(json.dumps(manifest))
    assert walloc_io.load_codec(str(target), device="cpu") is not first  # loaded afresh
