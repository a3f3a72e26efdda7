"""``walloc convert``: folders and arrays into WaLLoC Zarr stores on dask.distributed,
resumable after SIGKILL, atomic, bad items reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
pytest.importorskip("distributed")

from walloc_io.cli import main  # noqa: E402
from walloc_io.metrics import psnr  # noqa: E402

from ..conftest import smooth_images  # noqa: E402


@pytest.fixture(scope="module")
def scheduler():
    """One LocalCluster shared by the tests that do not test the default cluster itself."""
    import distributed

    # ":0": a free port for its HTTP server, so the default clusters other tests start get theirs
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _convert(scheduler: str, args: list[str]) -> int:
    """``walloc convert ARGS`` on the shared cluster (``--workers`` is for LocalCluster only)."""
    drop = {i for i, a in enumerate(args) if a == "--workers"}
    args = [a for i, a in enumerate(args) if i not in drop and i - 1 not in drop]
    return main(["convert", *args, "--scheduler", scheduler])


def _folder(root: Path, n: int) -> Path:
    from PIL import Image

    src = root / "src"
    (src / "sub").mkdir(parents=True)
    for i, im in enumerate(smooth_images(n, (96, 128), seed=11)):
        Image.fromarray(im.transpose(1, 2, 0)).save(src / ("sub" if i % 3 == 0 else "") / f"im{i:02d}.png")
    return src


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_convert_folder_with_a_bad_item(tmp_path, capsys):
    src = _folder(tmp_path, 4)
    (src / "broken.png").write_bytes(b"not a png")
    before = _tree(src)
    assert main(["convert", str(src), str(tmp_path / "out.zarr"), "--workers", "2"]) == 0
    out = capsys.readouterr()
    assert "skipped broken" in out.err and "items: 4 converted, 1 skipped" in out.out
    assert "compression ratio" in out.out and "mean PSNR" in out.out
    assert _tree(src) == before  # the source is only read
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    meta = group.attrs["walloc_convert"]
    assert meta["items"] == ["im01", "im02", "sub__im00", "sub__im03"]
    assert meta["skipped"][0][0] == "broken"
    from PIL import Image

    ref = np.asarray(Image.open(src / "im01.png")).transpose(2, 0, 1)
    assert psnr(ref, group["items/im01"][:]) > 26
    assert not (tmp_path / "out.zarr.partial").exists()


def test_strict_aborts_and_writes_nothing(tmp_path, capsys, scheduler):
    src = _folder(tmp_path, 2)
    (src / "broken.png").write_bytes(b"not a png")
    assert _convert(scheduler, [str(src), str(tmp_path / "out.zarr"), "--workers", "1", "--strict"]) != 0
    assert "bad items" in capsys.readouterr().err
    assert not (tmp_path / "out.zarr").exists()


def test_convert_zarr_array_source_format_2(tmp_path, capsys, scheduler):
    x = np.stack(smooth_images(5, (64, 96), seed=4))
    zarr.create_array(tmp_path / "raw.zarr", shape=x.shape, chunks=(1, 3, 64, 96), dtype="uint8")[:] = x
    assert _convert(scheduler, [str(tmp_path / "raw.zarr"), str(tmp_path / "w.zarr"), "--workers", "1",
                 "--items-per-task", "2", "--zarr-format", "2"]) == 0
    assert "items: 5 converted" in capsys.readouterr().out
    arr = zarr.open_group(tmp_path / "w.zarr", mode="r")["signals"]
    assert arr.metadata.zarr_format == 2 and arr.metadata.compressor.codec_id == "walloc"
    assert psnr(x, arr[:]) > 26


def test_convert_hdf5_variable(tmp_path, capsys, scheduler):
    h5py = pytest.importorskip("h5py")
    x = np.stack(smooth_images(3, (64, 64), seed=8))
    with h5py.File(tmp_path / "cube.h5", "w") as f:
        f["photos"] = x
    assert _convert(scheduler, [f"{tmp_path / 'cube.h5'}:photos", str(tmp_path / "h.zarr"),
                 "--workers", "1"]) == 0
    assert psnr(x, zarr.open_group(tmp_path / "h.zarr")["signals"][:]) > 26
    assert _convert(scheduler, [f"{tmp_path / 'cube.h5'}:nope", str(tmp_path / "n.zarr")]) != 0
    assert "no dataset 'nope'" in capsys.readouterr().err


def test_float_field_streams_in_shard_aligned_bands_with_a_bound(tmp_path, capsys, scheduler):
    """A 2-D float field with NaN (an ocean grid) through convert: one signal (1, H, W),
    tasks of shard-aligned bands, every finite value within the bound, NaN kept, sharded
    store read back in part, as latents, by Dask and as a dataset."""
    h5py = pytest.importorskip("h5py")
    import walloc_io

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:200, 0:328]
    field = (np.sin(xx / 23) * np.cos(yy / 17) * 15 + 20 + rng.normal(0, 0.2, xx.shape))
    field = field.astype(np.float32)
    field[40:90, 100:180] = np.nan  # land
    with h5py.File(tmp_path / "sst.h5", "w") as f:
        f["sst"] = field
    out = tmp_path / "sst.zarr"
    assert _convert(scheduler, [f"{tmp_path / 'sst.h5'}:sst", str(out), "--codec", "field-16x",
                                "--max-abs-error", "0.05", "--nan", "mask", "--tile", "64",
                                "--shards", "2"]) == 0
    assert "items: 1 converted" in capsys.readouterr().out
    markers = sorted((out / ".walloc-convert").glob("*.json")) if (out / ".walloc-convert").exists() else []
    arr = zarr.open_group(out)["signals"]
    assert arr.shape == (1, 200, 328) and arr.chunks == (1, 64, 64) and arr.shards == (1, 128, 128)
    y = arr[0]
    finite = np.isfinite(field)
    assert np.array_equal(np.isnan(y), ~finite)
    assert np.abs(y[finite] - field[finite]).max() <= 0.05
    part = arr[0, 150:170, 300:328]
    assert np.nanmax(np.abs(part - field[150:170, 300:328])) <= 0.05
    lat = walloc_io.open_latents(out)
    assert lat.shape == (4, 25, 41)
    lazy = walloc_io.decode_array(out, device="cpu")
    assert np.nanmax(np.abs(lazy.compute()[0] - field)) <= 0.05
    ds = walloc_io.ZarrDataset(out, to="latents")
    assert tuple(ds[0].shape) == (4, 25, 41)
    assert not markers  # the finished store carries no resume markers


def test_bounded_conversion_skips_integer_items_and_bounds_float_ones(tmp_path, capsys,
                                                                     scheduler):
    from PIL import Image

    src = tmp_path / "mixed"
    src.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(src / "photo.png")
    x = np.random.default_rng(0).normal(size=(3, 32, 32)).astype(np.float32)
    np.save(src / "field.npy", x)
    assert _convert(scheduler, [str(src), str(tmp_path / "o.zarr"), "--max-abs-error", "0.1"]) == 0
    captured = capsys.readouterr()
    assert "items: 1 converted, 1 skipped" in captured.out
    assert "photo: --max-abs-error applies to float signals" in captured.err
    y = zarr.open_group(tmp_path / "o.zarr")["items/field"][:]
    assert np.abs(y - x).max() <= 0.1


def test_convert_on_an_existing_cluster_by_address(tmp_path, capsys, scheduler):
    import distributed

    src = _folder(tmp_path, 3)
    with distributed.Client(scheduler) as client:
        client.run(_set_torch_threads, 2)
    assert main(["convert", str(src), str(tmp_path / "out.zarr"), "--scheduler", scheduler]) == 0
    assert "items: 3 converted, 0 skipped" in capsys.readouterr().out
    with distributed.Client(scheduler) as client:  # left running for others
        assert len(client.scheduler_info()["workers"]) == 2
        assert set(client.run(_torch_threads).values()) == {2}  # the user's setting kept
        client.run(_set_torch_threads, 1)
    assert psnr(_source(src / "im01.png"), zarr.open_group(tmp_path / "out.zarr")["items/im01"][:]) > 26


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _source(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path)).transpose(2, 0, 1)


def test_existing_destination_is_refused(tmp_path, capsys):
    src = _folder(tmp_path, 1)
    (tmp_path / "out.zarr").mkdir()
    assert main(["convert", str(src), str(tmp_path / "out.zarr")]) != 0
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["zarr", "webdataset"])
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, fmt):
    src = _folder(tmp_path, 12)
    opts = ["--workers", "1", "--format", fmt, "--items-per-task", "1"]
    reference = tmp_path / "ref"
    assert main(["convert", str(src), str(reference), *opts]) == 0
    dst = tmp_path / "out"
    markers = tmp_path / "out.partial" / ".walloc-convert"
    cmd = [sys.executable, "-m", "walloc_io.cli", "convert", str(src), str(dst), *opts]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(markers.glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its cluster's worker processes
    proc.wait()
    done_before = len(list(markers.glob("*.json")))
    settle = time.time() + 2  # a worker the kill raced with may still land one marker
    while time.time() < settle:
        time.sleep(0.2)
        now = len(list(markers.glob("*.json")))
        if now != done_before:
            done_before, settle = now, time.time() + 2
    assert 3 <= done_before < 12, "the run was not interrupted mid-way"
    assert not dst.exists()  # nothing half-written under the final name
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{done_before} tasks already done" in out.stdout
    assert "items: 12 converted, 0 skipped" in out.stdout
    a, b = _tree(reference), _tree(dst)
    assert a.keys() == b.keys()
    for key in a:
        if key not in ("zarr.json", "walloc-convert.json"):
            assert a[key] == b[key], key
    meta = "zarr.json" if fmt == "zarr" else "walloc-convert.json"
    meta_a, meta_b = (json.loads(t[meta]) for t in (a, b))
    meta_a.get("attributes", meta_a).get("walloc_convert", meta_a).pop("source")
    meta_b.get("attributes", meta_b).get("walloc_convert", meta_b).pop("source")
    assert meta_a == meta_b


# -- WebDataset shards in and out -----------------------------------------------------------------
def _shards(root: Path, n_shards: int = 2, per_shard: int = 3, bad: str | None = None) -> list[Path]:
    """Real tar shards in webdataset's layout: ``key.png`` + ``key.cls`` + ``key.json``."""
    import io
    import tarfile

    from PIL import Image

    images = smooth_images(n_shards * per_shard, (96, 128), seed=21)
    paths = []
    for s in range(n_shards):
        path = root / f"train-{s:03d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(per_shard):
                key = f"part{s}/sample{i:02d}"
                buf = io.BytesIO()
                Image.fromarray(images[s * per_shard + i].transpose(1, 2, 0)).save(buf, format="PNG")
                png = b"garbage" if key == bad else buf.getvalue()
                for field, data in (("png", png), ("cls", str(i % 2).encode()),
                                    ("json", json.dumps({"i": i, "s": s}).encode())):
                    info = tarfile.TarInfo(f"{key}.{field}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        paths.append(path)
    return paths


def _source_images(paths: list[Path]) -> dict[str, np.ndarray]:
    from PIL import Image

    from walloc_io.pipelines.shards import read_samples

    return {k: np.asarray(Image.open(__import__("io").BytesIO(f["png"]))).transpose(2, 0, 1)
            for p in paths for k, f in read_samples(p) if f["png"] != b"garbage"}


def test_shards_to_webdataset_replaces_signals_and_copies_the_rest(tmp_path, capsys, scheduler):
    wds = pytest.importorskip("webdataset")
    import walloc_io

    src = tmp_path / "src"
    src.mkdir()
    paths = _shards(src, bad="part1/sample01")
    before = _tree(src)
    pattern = str(src / "train-{000..001}.tar")
    assert _convert(scheduler, [pattern, str(tmp_path / "out"), "--format", "webdataset",
                 "--workers", "2"]) == 0
    out = capsys.readouterr()
    assert "items: 5 converted, 1 skipped" in out.out
    assert "skipped train-001.tar:part1/sample01.png: cannot read" in out.err
    assert _tree(src) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "train-000.tar", "train-001.tar", "walloc-convert.json"]
    manifest = json.loads((tmp_path / "out" / "walloc-convert.json").read_text())
    assert manifest["shards"] == ["train-000.tar", "train-001.tar"] and len(manifest["items"]) == 5
    urls = [str(tmp_path / "out" / f"train-{s:03d}.tar") for s in range(2)]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [
        "part0/sample00", "part0/sample01", "part0/sample02", "part1/sample00", "part1/sample02"]
    codec = walloc_io.load_codec("rgb-16x", device="cpu")
    reference = _source_images(paths)
    for s in samples:
        assert set(s) == {"__key__", "__url__", "__local_path__", "wlc", "cls", "json"}
        i = int(s["__key__"][-2:])
        assert s["cls"] == str(i % 2).encode()  # copied byte for byte
        assert json.loads(s["json"])["i"] == i
        assert psnr(reference[s["__key__"]], codec.decode(s["wlc"])) > 26
    # deterministic: a second conversion gives the same bytes
    assert _convert(scheduler, [pattern, str(tmp_path / "again"), "--format", "webdataset",
                 "--workers", "1"]) == 0
    for s in range(2):
        name = f"train-{s:03d}.tar"
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_folder_to_webdataset_packs_items_per_shard(tmp_path, capsys, scheduler):
    src = _folder(tmp_path, 5)
    assert _convert(scheduler, [str(src), str(tmp_path / "out"), "--format", "webdataset",
                 "--items-per-task", "2", "--workers", "1"]) == 0
    assert "items: 5 converted, 0 skipped" in capsys.readouterr().out
    from walloc_io.pipelines.shards import read_samples

    shards = sorted((tmp_path / "out").glob("*.tar"))
    assert [p.name for p in shards] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    keys = [k for p in shards for k, fields in read_samples(p) if set(fields) == {"wlc"}]
    assert keys == ["im01", "im02", "im04", "sub__im00", "sub__im03"]


def test_shards_to_zarr_keep_text_members(tmp_path, capsys, scheduler):
    src = tmp_path / "src"
    src.mkdir()
    paths = _shards(src, n_shards=1, per_shard=2)
    assert _convert(scheduler, [str(src), str(tmp_path / "o.zarr"), "--workers", "1"]) == 0
    assert "items: 2 converted, 0 skipped" in capsys.readouterr().out
    group = zarr.open_group(tmp_path / "o.zarr", mode="r")
    arr = group["items/part0__sample01"]
    assert arr.attrs["members"] == {"cls": "1", "json": json.dumps({"i": 1, "s": 0})}
    assert arr.attrs["source"] == "train-000.tar:part0/sample01.png"
    assert psnr(_source_images(paths)["part0/sample01"], arr[:]) > 26


def test_truncated_shard_keeps_whole_samples_and_reports_the_shard(tmp_path, capsys, scheduler):
    src = tmp_path / "src"
    src.mkdir()
    (path,) = _shards(src, n_shards=1, per_shard=3)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.8)])  # cut inside the last sample
    assert _convert(scheduler, [str(path), str(tmp_path / "out"), "--format", "webdataset",
                 "--workers", "1"]) == 0
    out = capsys.readouterr()
    assert "skipped train-000.tar: " in out.err and "truncated" in out.err
    from walloc_io.pipelines.shards import read_samples

    kept = [k for k, _ in read_samples(tmp_path / "out" / "train-000.tar")]
    assert kept == ["part0/sample00", "part0/sample01"]
    assert _convert(scheduler, [str(path), str(tmp_path / "strict"), "--format", "webdataset",
                 "--workers", "1", "--strict"]) != 0
    assert not (tmp_path / "strict").exists()


def test_main_job_demo_store(tmp_path, capsys):
    store = tmp_path / "samples.zarr"
    assert main(["demo-store", "--workers", "1", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "items: 3 converted, 0 skipped" in out
    assert "(3, 384, 512) uint8" in out and "(12, 48, 64) int32" in out
    ratio = float(out.split("compression ratio: ")[1].split("x")[0])
    mean_psnr = float(out.split("mean PSNR: ")[1].split(" dB")[0])
    assert ratio > 10 and 27 < mean_psnr < 40
    assert sorted(zarr.open_group(store, mode="r")["items"].array_keys()) == ["kleiber", "ladybird", "life"]
    # the streaming part: shards -> DataLoader -> batched decode -> training steps
    losses = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "probe loss" in line]
    assert "streaming 2 WebDataset shards" in out and len(losses) == 6
    assert "batch (3, 12, 48, 64) latents -> (3, 3, 48, 64) targets" in out
    assert losses[-1] < 0.8 * losses[0]  # the probe learns from the streamed latents
