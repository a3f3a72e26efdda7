"""Streaming: the WebDataset handler and encoder hook, DataLoader workers, batched decoding on
the training device, Zarr datasets, and bad members / shards."""

from __future__ import annotations

import pickle
import struct
import tarfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import walloc_io
from walloc_io.metrics import psnr

from ..conftest import smooth_images

wds = pytest.importorskip("webdataset")

N_SHARDS, PER_SHARD = 2, 6


@pytest.fixture(scope="module")
def codec():
    return walloc_io.load_codec("rgb-16x", device="cpu")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[list[str], dict[str, np.ndarray]]:
    """Real tar shards written by webdataset's ShardWriter through our encoder hook."""
    root = tmp_path_factory.mktemp("shards")
    images = smooth_images(N_SHARDS * PER_SHARD, (64, 96), seed=5)
    originals = {}
    with wds.ShardWriter(str(root / "part-%03d.tar"), maxcount=PER_SHARD,
                         encoder=walloc_io.wds_encoder("rgb-16x"), verbose=0) as sink:
        for i, image in enumerate(images):
            key = f"s{i:03d}"
            originals[key] = image
            sink.write({"__key__": key, "wlc": image, "cls": i % 3, "json": {"i": i}})
    return [str(root / f"part-{s:03d}.tar") for s in range(N_SHARDS)], originals


def _members(url: str) -> dict[str, bytes]:
    with tarfile.open(url) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}


def test_encoder_hook_writes_streams_and_the_default_encoder_does_the_rest(shards, codec):
    urls, originals = shards
    members = _members(urls[0])
    assert sorted(members)[:3] == ["s000.cls", "s000.json", "s000.wlc"]
    assert members["s000.cls"] == b"0" and members["s000.json"] == b'{"i": 0}'
    assert walloc_io.read_header(members["s000.wlc"]).shape == (64, 96)
    assert psnr(originals["s000"], codec.decode(members["s000.wlc"])) > 26
    with pytest.raises(walloc_io.InputError, match="sample 'bad', field 'wlc'.*channels"):
        walloc_io.wds_encoder("rgb-16x")({"__key__": "bad", "wlc": np.zeros((1, 64, 64), np.uint8)})


@pytest.mark.parametrize("to", ["signal", "latents"])
def test_decoder_handler_in_dataloader_workers(shards, codec, to):
    urls, originals = shards
    handler = walloc_io.wds_decoder(to=to, output="torch")
    assert pickle.loads(pickle.dumps(handler)).to == to
    ds = wds.WebDataset(urls, shardshuffle=False).decode(handler).to_tuple("__key__", "wlc", "cls")
    loader = DataLoader(ds, batch_size=4, num_workers=2)
    seen = {}
    for keys, x, labels in loader:
        assert x.dtype == (torch.uint8 if to == "signal" else torch.int32)
        assert x.shape[1:] == ((3, 64, 96) if to == "signal" else (12, 8, 12))
        for key, item, label in zip(keys, x, labels):
            seen[key] = item.numpy()
            assert label == int(key[1:]) % 3
    assert sorted(seen) == sorted(originals)  # every sample once, across both workers
    blobs = {k[:-4]: v for u in urls for k, v in _members(u).items() if k.endswith(".wlc")}
    for key, item in seen.items():
        if to == "signal":  # another process may round a value at .5 the other way
            diff = np.abs(item.astype(int) - codec.decode(blobs[key]).astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
        else:
            np.testing.assert_array_equal(item, codec.decode_latents(blobs[key]))


def test_batched_decode_on_the_device_equals_per_sample_decode(shards, codec):
    urls, _ = shards
    ds = (wds.WebDataset(urls, shardshuffle=False).decode(walloc_io.wds_decoder(to="deferred"))
          .to_tuple("__key__", "wlc"))
    loader = DataLoader(ds, batch_size=6, num_workers=2, collate_fn=walloc_io.collate)
    decoder = walloc_io.BatchDecoder("rgb-16x", device="auto")
    blobs = {k[:-4]: v for u in urls for k, v in _members(u).items() if k.endswith(".wlc")}
    batches = 0
    # float32: equal but for rounding ties; bfloat16 blocks (rgb-16x on a CPU with native
    # bfloat16) round a batch's increments apart from a single stream's at a few per cent
    # of pixels, each by one level at most
    same = 0.999 if codec.precision == "float32" else 0.95
    for keys, batch in loader:
        assert isinstance(batch, walloc_io.pipelines.batch.DeferredBatch)
        assert batch.codes.shape == (6, 12, 8, 12)  # entropy-decoded in the workers
        signals = decoder(batch).cpu().numpy()
        unit = decoder(batch, output="unit").cpu().numpy()
        assert signals.dtype == np.uint8 and unit.dtype == np.float32
        for key, x, u in zip(keys, signals, unit):
            ref = codec.decode(blobs[key])
            assert np.abs(x.astype(int) - ref).max() <= 1 and (x == ref).mean() > same
            assert np.abs(u * 255 - ref).max() <= (0.51 if same > 0.99 else 1.51)
        batches += 1
    assert batches == 2
    # streams straight from the tar, decoded in the training process
    direct = decoder([blobs["s000"], blobs["s001"]]).numpy()
    ref = codec.decode(blobs["s000"])
    assert np.abs(direct[0].astype(int) - ref).max() <= (0 if same > 0.99 else 1)
    assert (direct[0] == ref).mean() > same


def test_batching_different_sizes_is_a_clear_error(codec):
    a = codec.encode(smooth_images(1, (64, 64))[0])
    b = codec.encode(smooth_images(1, (64, 96))[0])
    handler = walloc_io.wds_decoder(to="deferred")
    with pytest.raises(walloc_io.InputError, match="different shapes"):
        walloc_io.collate([handler(".wlc", a), handler(".wlc", b)])
    assert handler(".jpg", a) is None  # other extensions are left to other handlers
    seg = walloc_io.wds_decoder(to="latents", extensions=("seg.wlc",))
    assert seg("seg.wlc", a).shape == (12, 8, 8) and seg("wlc", a) is None  # webdataset's suffix rule
    assert walloc_io.wds_decoder(to="latents")("x.seg.wlc", a).shape == (12, 8, 8)
    from typing import NamedTuple

    class Item(NamedTuple):
        wlc: object
        label: int

    batch = walloc_io.collate([Item(handler(".wlc", a), 1), Item(handler(".wlc", a), 2)])
    assert isinstance(batch, Item) and batch.label.tolist() == [1, 2]
    assert tuple(batch.wlc.codes.shape) == (2, 12, 8, 8)


def _rewrite_member(url: str, dst: Path, key: str, edit) -> str:
    with tarfile.open(url) as src, tarfile.open(dst, "w") as out:
        for m in src:
            data = src.extractfile(m).read()
            if m.name == f"{key}.wlc":
                data = edit(data)
                m.size = len(data)
            out.addfile(m, __import__("io").BytesIO(data))
    return str(dst)


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x5A]) + data[middle + 1:]


def _foreign(data: bytes) -> bytes:
    """The same stream claiming another model's fingerprint, checksum made valid again."""
    body = bytearray(data[:-4])
    body[8:24] = bytes(range(16))
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


@pytest.mark.parametrize("edit, error, reason", [
    (_flip, walloc_io.BitstreamError, "checksum"),
    (_foreign, walloc_io.ModelMismatchError, "000102030405"),
])
def test_bad_member_names_key_and_shard_and_follows_the_handler(shards, tmp_path, edit, error, reason):
    urls, _ = shards
    bad = _rewrite_member(urls[1], tmp_path / "bad.tar", "s008", edit)
    handler = walloc_io.wds_decoder(to="latents")
    ds = wds.WebDataset([urls[0], bad], shardshuffle=False).decode(handler)
    with pytest.raises(wds.autodecode.DecodingError) as info:
        list(ds)
    assert info.value.key == "s008" and info.value.url == bad
    assert isinstance(info.value.__cause__, error) and reason in str(info.value.__cause__)
    ds = wds.WebDataset([urls[0], bad], shardshuffle=False).decode(handler,
                                                                   handler=wds.warn_and_continue)
    with pytest.warns(UserWarning):
        keys = [s["__key__"] for s in ds]
    assert keys == [f"s{i:03d}" for i in range(12) if i != 8]


def test_truncated_shard_raises_with_the_url_or_skips(shards, tmp_path):
    urls, _ = shards
    data = Path(urls[1]).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    handler = walloc_io.wds_decoder(to="latents")
    with pytest.raises(Exception) as info:
        list(wds.WebDataset([urls[0], str(cut)], shardshuffle=False).decode(handler))
    assert str(cut) in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = list(wds.WebDataset([urls[0], str(cut)], shardshuffle=False,
                                  handler=wds.warn_and_continue).decode(handler))
    keys = [s["__key__"] for s in got]
    assert keys[:PER_SHARD] == [f"s{i:03d}" for i in range(PER_SHARD)] and len(keys) < 12
    for s in got:  # whatever came through is whole
        assert s["wlc"].shape == (12, 8, 12)


# -- Zarr datasets ------------------------------------------------------------------------------
zarr = pytest.importorskip("zarr")


@pytest.fixture(scope="module")
def store(shards, tmp_path_factory) -> Path:
    from walloc_io.pipelines.convert import convert

    _, originals = shards
    root = tmp_path_factory.mktemp("zarr")
    with wds.TarWriter(str(root / "png.tar")) as sink:  # the same images as PNG members
        for key, image in originals.items():
            sink.write({"__key__": key, "png": image.transpose(1, 2, 0), "cls": int(key[1:]) % 3})
    out = root / "items.zarr"
    summary = convert(str(root / "png.tar"), str(out), "rgb-16x", workers=1)
    assert summary.items == 12
    return out


def test_zarr_dataset_items_with_labels_in_workers(store, codec):
    import zarr as z

    group = z.open_group(store, mode="r")
    for to in ("latents", "signal"):
        ds = walloc_io.ZarrDataset(store, to=to, attrs=("cls",))
        assert len(ds) == 12
        loader = DataLoader(ds, batch_size=4, num_workers=2)
        got = [x for batch, labels in loader for x in batch]
        labels = [int(v) for _, labels in loader for v in labels]
        assert labels == [int(k[1:]) % 3 for k in ds.names]
        for name, x in zip(ds.names, got):
            if to == "signal":  # float decoders may round a value at .5 the other way in
                # another process (thread count, batch): one level at most; latents are exact
                diff = np.abs(x.numpy().astype(int) - group[f"items/{name}"][:].astype(int))
                assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
            else:
                expect = walloc_io.open_latents(group[f"items/{name}"]).compute()
                np.testing.assert_array_equal(x.numpy(), expect)
    ds = walloc_io.ZarrDataset(store, to="deferred")
    loader = DataLoader(ds, batch_size=6, num_workers=2, collate_fn=walloc_io.collate)
    signals = torch.cat([walloc_io.BatchDecoder(device="cpu")(b) for b in loader])
    ref = np.stack([group[f"items/{n}"][:] for n in ds.names])
    assert np.abs(signals.numpy().astype(int) - ref).max() <= 1


def test_zarr_dataset_rows_spanning_several_chunks(tmp_path):
    x = np.stack(smooth_images(3, (96, 128), seed=9))
    arr = zarr.create_array(tmp_path / "rows.zarr", shape=x.shape, chunks=(2, 3, 64, 64),
                            dtype="uint8", serializer={"name": "walloc",
                                                       "configuration": {"preset": "rgb-16x"}})
    arr[:] = x
    latents = walloc_io.open_latents(str(tmp_path / "rows.zarr")).compute()
    ds = walloc_io.ZarrDataset(tmp_path / "rows.zarr", to="latents")
    assert len(ds) == 3
    for i in range(3):  # an item over 2x2 chunks, the last rows in a padded edge chunk
        np.testing.assert_array_equal(ds[i].numpy(), latents[i])
    assert ds[-1].shape == (12, 12, 16)
    np.testing.assert_array_equal(walloc_io.ZarrDataset(tmp_path / "rows.zarr")[2].numpy(), arr[2])
    with pytest.raises(walloc_io.InputError, match="one chunk"):
        walloc_io.ZarrDataset(tmp_path / "rows.zarr", to="deferred")[0]
    with pytest.raises(IndexError):
        ds[3]
