"""Latent views and batched Dask decoding of WaLLoC Zarr arrays (threaded and distributed)."""

from __future__ import annotations

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

import walloc_io  # noqa: E402
from walloc_io.codecs.chunk import ChunkLayoutError  # noqa: E402
from walloc_io.metrics import psnr  # noqa: E402

from ..conftest import smooth_images  # noqa: E402

RGB = {"name": "walloc", "configuration": {"preset": "rgb-16x"}}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Six smooth RGB pictures (100 x 128) in a v3 store, chunks (2, 3, 64, 64): edge chunks
    along H, and the last pair of pictures never written (zarr stores nothing there)."""
    x = np.stack(smooth_images(6, (100, 128), seed=2))
    path = tmp_path_factory.mktemp("dask") / "photos.zarr"
    arr = zarr.create_array(path, shape=x.shape, chunks=(2, 3, 64, 64), dtype="uint8",
                            serializer=RGB, fill_value=0)
    arr[:4] = x[:4]
    return path, x


@pytest.fixture(scope="module")
def codec():
    return walloc_io.load_codec("rgb-16x", device="cpu")


def test_latent_view_matches_encoder_without_running_the_decoder(photos, codec, monkeypatch):
    path, x = photos

    def boom(*_):
        raise AssertionError("the decoder network ran")

    monkeypatch.setattr(type(codec), "synthesise", boom)
    lat = walloc_io.open_latents(path, chunks_per_task=1)  # one Dask block per Zarr chunk
    assert isinstance(lat, da.Array)
    assert lat.shape == (6, 12, 13, 16) and lat.dtype == np.int32
    assert lat.chunks == ((2, 2, 2), (12,), (8, 5), (8, 8))
    grouped = walloc_io.open_latents(path)  # default: 8 chunks along axis 0 per task
    assert grouped.chunks == ((6,), (12,), (8, 5), (8, 8))
    got = lat.compute(scheduler="threads")
    for i, (r, c) in enumerate([(0, 0), (0, 64)]):
        ref = codec.decode_latents(codec.encode(x[i, :, r:r + 64, c:c + 64]))
        np.testing.assert_array_equal(got[i, :, :8, c // 8:c // 8 + 8], ref)
    edge = np.zeros((3, 64, 64), np.uint8)
    edge[:, :36] = x[1, :, 64:, :64]  # zarr pads the edge chunk with the fill value
    np.testing.assert_array_equal(got[1, :, 8:, :8], codec.decode_latents(codec.encode(edge))[:, :5])
    empty = codec.decode_latents(codec.encode(np.zeros((3, 64, 64), np.uint8)))
    np.testing.assert_array_equal(got[5, :, :8, :8], empty)  # never-written chunk: fill value


def test_latent_view_of_a_channel_last_array_keeps_channels_last(tmp_path, codec):
    x = np.stack(smooth_images(2, (128, 128), seed=4))  # (2, 3, H, W)
    hwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    path = tmp_path / "hwc.zarr"
    arr = zarr.create_array(path, shape=hwc.shape, chunks=(1, 64, 128, 3), dtype="uint8",
                            serializer={"name": "walloc", "configuration": {
                                "preset": "rgb-16x", "channel_last": True}})
    arr[:] = hwc
    lat = walloc_io.open_latents(path, chunks_per_task=1)
    assert lat.shape == (2, 16, 16, 12) and lat.chunks == ((1, 1), (8, 8), (16,), (12,))
    got = lat.compute()
    assert got.shape == lat.shape
    for i in range(2):
        for r in (0, 64):
            ref = codec.decode_latents(codec.encode(x[i, :, r:r + 64]))  # (12, 8, 16)
            np.testing.assert_array_equal(got[i, r // 8:r // 8 + 8], ref.transpose(1, 2, 0))
    ds = walloc_io.ZarrDataset(path, to="latents")
    np.testing.assert_array_equal(ds[1].numpy(), got[1])


def test_dequantised_latents(photos, codec):
    path, _ = photos
    ints = walloc_io.open_latents(path).compute()
    floats = walloc_io.open_latents(path, dequantise=True).compute()
    assert floats.dtype == np.float32 and floats.shape == ints.shape
    assert np.all(np.sign(floats) == np.sign(ints))  # companding is odd and monotone
    assert np.corrcoef(floats.ravel(), ints.ravel())[0, 1] > 0.9


def test_batched_decode_matches_zarr(photos):
    path, x = photos
    ref = zarr.open_array(path, mode="r")[:]
    for per_task in (1, 3):
        arr = walloc_io.decode_array(path, chunks_per_task=per_task, device="cpu")
        assert arr.shape == x.shape and arr.dtype == np.uint8
        out = arr.compute(scheduler="threads")
        assert np.abs(out.astype(int) - ref).max() <= 1
    assert psnr(x[:4], out[:4]) > 26
    assert not out[4:].any()  # never written: the fill value
    lat = walloc_io.decode_array(path, to="latents").compute(scheduler="threads")
    np.testing.assert_array_equal(lat, walloc_io.open_latents(path).compute())


def test_distributed_two_workers(photos):
    distributed = pytest.importorskip("distributed")
    path, _ = photos
    ref = walloc_io.decode_array(path, chunks_per_task=2, device="cpu").compute(scheduler="threads")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        arr = walloc_io.decode_array(str(path), chunks_per_task=2, device="cpu")
        out = client.compute(arr).result()
        lat = client.compute(walloc_io.open_latents(str(path))).result()
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    # the network's float sums may round differently with another thread count: within 1
    assert out.shape == ref.shape and np.abs(out.astype(int) - ref).max() <= 1
    np.testing.assert_array_equal(lat, walloc_io.open_latents(path).compute())  # exact


def test_latent_view_errors(tmp_path):
    plain = zarr.create_array(tmp_path / "plain.zarr", shape=(2, 3, 64, 64), dtype="uint8")
    with pytest.raises(walloc_io.InputError, match="not a WaLLoC-encoded"):
        walloc_io.open_latents(plain)
    odd = zarr.create_array(tmp_path / "odd.zarr", shape=(2, 3, 100, 100), chunks=(1, 3, 60, 100),
                            dtype="uint8", serializer=RGB)
    with pytest.raises(ChunkLayoutError, match="multiples of 8"):
        walloc_io.open_latents(odd)
    with pytest.raises(walloc_io.InputError, match="to must be"):
        walloc_io.decode_array(odd, to="pixels")


def test_import_walloc_io_does_not_import_dask_or_zarr():
    import subprocess
    import sys

    code = ("import sys, numpy as np, walloc_io; c = walloc_io.load_codec('rgb-16x'); "
            "b = c.encode(np.zeros((3, 64, 64), np.uint8)); "
            "walloc_io.BatchDecoder()([walloc_io.wds_decoder(to='deferred')('.wlc', b)]); "
            "print(sorted(m for m in ('zarr', 'dask', 'numcodecs', 'webdataset') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_views_accept_the_group_walloc_convert_writes(tmp_path):
    import zarr

    from walloc_io.pipelines.convert import convert

    src = tmp_path / "src"
    src.mkdir()
    from PIL import Image

    from ..conftest import smooth_images

    originals = [smooth_images(1, (h, w), seed=i)[0] for i, (h, w) in enumerate([(64, 64), (48, 80)])]
    for i, image in enumerate(originals):
        Image.fromarray(image.transpose(1, 2, 0)).save(src / f"p{i}.png")
    out = tmp_path / "out.zarr"
    convert(str(src), str(out), "rgb-16x", workers=1, verify=0)
    lat = walloc_io.open_latents(out)  # the group: one Dask array per item
    assert sorted(lat) == ["p0", "p1"] and lat["p1"].shape == (12, 6, 10)
    group = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(lat["p0"].compute(),
                                  walloc_io.open_latents(group["items/p0"]).compute())
    codec = walloc_io.load_codec("rgb-16x", device="cpu")  # the latents of the photo itself
    np.testing.assert_array_equal(lat["p1"].compute(), codec.decode_latents(codec.encode(originals[1])))
    signals = walloc_io.decode_array(str(out), device="cpu")
    assert signals["p0"].shape == (3, 64, 64)
    with pytest.raises(walloc_io.InputError, match="without 'signals' or 'items'"):
        walloc_io.open_latents(zarr.open_group(tmp_path / "empty.zarr", mode="w"))
