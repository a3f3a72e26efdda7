"""Golden fixtures for every format a user persists, decoded forever after (in the spirit of
numcodecs' ``check_backwards_compatibility``): a Zarr chunk record, a Zarr v2 store, a Zarr
v3 store, a sharded Zarr v3 store and a WebDataset shard written by ``walloc convert``.

Written once with rgb-16x; regenerate (only on purpose) with

    WALLOC_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden_stores.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import walloc_io
from walloc_io.codecs import chunk

from ..common import golden_codec
from ..conftest import smooth_images

ROOT = Path(__file__).parent.parent / "golden" / "stores"
SERIALIZER = {"name": "walloc", "configuration": {"preset": "rgb-16x"}}


def items() -> np.ndarray:
    return np.stack(smooth_images(2, (48, 64), seed=5))  # (2, 3, 48, 64) uint8


def regenerate(codec) -> None:
    import zarr

    if ROOT.exists():
        shutil.rmtree(ROOT)
    ROOT.mkdir(parents=True)
    x = items()
    record = chunk.encode_chunk(codec, x)
    (ROOT / "record.wlck").write_bytes(record)
    np.savez_compressed(ROOT / "record.npz", decoded=chunk.decode_chunk(codec, record),
                        latents=chunk.decode_chunk(codec, record, to="latents"))
    v3 = zarr.create_array(ROOT / "v3.zarr", shape=x.shape, chunks=(1, 3, 48, 64), dtype="uint8",
                           serializer=SERIALIZER)
    v3[:] = x
    import numcodecs

    v2 = zarr.create_array(ROOT / "v2.zarr", shape=x.shape, chunks=(1, 3, 48, 64), dtype="uint8",
                           zarr_format=2, compressors=numcodecs.get_codec(
                               {"id": "walloc", "preset": "rgb-16x"}), filters=None)
    v2[:] = x
    sharded = zarr.create_array(ROOT / "sharded.zarr", shape=(2, 3, 96, 128), chunks=(1, 3, 48, 64),
                                shards=(2, 3, 96, 128), dtype="uint8", serializer=SERIALIZER)
    big = np.concatenate([np.concatenate([x, x[:, :, ::-1]], axis=2)] * 2, axis=3)
    sharded[:] = big
    expected = {name: zarr.open_array(ROOT / name)[:] for name in ("v2.zarr", "v3.zarr",
                                                                  "sharded.zarr")}
    np.savez_compressed(ROOT / "stores.npz", **{k.split(".")[0]: v for k, v in expected.items()})
    _write_shard(codec, x)


def _write_shard(codec, x) -> None:
    import tarfile

    from walloc_io.pipelines.convert import convert

    src = ROOT / "src.tar"
    with tarfile.open(src, "w") as tar:
        for i, im in enumerate(x):
            for name, data in ((f"s{i}.npy", _npy(im)), (f"s{i}.cls", str(i).encode())):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), 0
                tar.addfile(info, __import__("io").BytesIO(data))
    convert(str(src), str(ROOT / "shards"), "rgb-16x", fmt="webdataset", workers=1, verify=0)
    src.unlink()
    shard = sorted((ROOT / "shards").glob("*.tar"))[0]
    latents, labels = _read_shard(shard)
    np.savez_compressed(ROOT / "shard.npz", latents=np.stack(latents), labels=np.array(labels))


def _npy(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _read_shard(shard: Path):
    import webdataset as wds

    ds = (wds.WebDataset(str(shard), shardshuffle=False)
          .decode(walloc_io.wds_decoder(to="latents")).to_tuple("wlc", "cls"))
    pairs = list(ds)
    return [p[0] for p in pairs], [int(p[1]) for p in pairs]


@pytest.fixture(scope="module")
def codec():
    return golden_codec(regenerate)


def test_chunk_record(codec):
    record = (ROOT / "record.wlck").read_bytes()
    expected = np.load(ROOT / "record.npz")
    rec = chunk.unpack(record)
    assert rec.shape == (2, 3, 48, 64) and rec.dtype == "uint8" and len(rec.streams) == 2
    np.testing.assert_array_equal(chunk.decode_chunk(codec, record, to="latents"),
                                  expected["latents"])
    decoded = chunk.decode_chunk(codec, record)
    assert np.abs(decoded.astype(int) - expected["decoded"]).max() <= 1


@pytest.mark.parametrize("name", ["v2", "v3", "sharded"])
def test_zarr_stores(codec, name):
    import zarr

    store = ROOT / f"{name}.zarr"
    meta = store / (".zarray" if name == "v2" else "zarr.json")
    assert meta.is_file() and "walloc" in meta.read_text()
    arr = zarr.open_array(store, mode="r")
    expected = np.load(ROOT / "stores.npz")[name]
    assert arr.shape == expected.shape and arr.dtype == np.uint8
    assert np.abs(arr[:].astype(int) - expected).max() <= 1
    lat = walloc_io.open_latents(store).compute()  # records located through shard indexes
    assert lat.shape == ((2, 12, 12, 16) if name == "sharded" else (2, 12, 6, 8))
    decoded = walloc_io.decode_array(store, device="cpu").compute()
    assert np.abs(decoded.astype(int) - expected).max() <= 1


def test_sharded_latents_are_those_of_the_same_inner_chunks_unsharded(codec):
    """The sharded fixture's top-left inner chunks hold the v3 fixture's items."""
    sharded = walloc_io.open_latents(ROOT / "sharded.zarr", chunks_per_task=1).compute()
    plain = walloc_io.open_latents(ROOT / "v3.zarr").compute()
    np.testing.assert_array_equal(sharded[:, :, :6, :8], plain)
    ds = walloc_io.ZarrDataset(str(ROOT / "sharded.zarr"), to="latents", output="numpy")
    assert len(ds) == 2
    np.testing.assert_array_equal(ds[1], sharded[1])


def test_webdataset_shard(codec):
    shard = sorted((ROOT / "shards").glob("*.tar"))[0]
    manifest = json.loads((ROOT / "shards" / "walloc-convert.json").read_text())
    assert manifest and shard.stat().st_size > 0
    latents, labels = _read_shard(shard)
    expected = np.load(ROOT / "shard.npz")
    np.testing.assert_array_equal(np.stack(latents), expected["latents"])
    assert labels == expected["labels"].tolist() == [0, 1]
