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

from .conftest import smooth_images  # noqa: E402


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


def test_strict_aborts_and_writes_nothing(tmp_path, capsys):
    src = _folder(tmp_path, 2)
    (src / "broken.png").write_bytes(b"not a png")
    assert main(["convert", str(src), str(tmp_path / "out.zarr"), "--workers", "1", "--strict"]) != 0
    assert "bad items" in capsys.readouterr().err
    assert not (tmp_path / "out.zarr").exists()


def test_convert_zarr_array_source_format_2(tmp_path, capsys):
    x = np.stack(smooth_images(5, (64, 96), seed=4))
    zarr.create_array(tmp_path / "raw.zarr", shape=x.shape, chunks=(1, 3, 64, 96), dtype="uint8")[:] = x
    assert main(["convert", str(tmp_path / "raw.zarr"), str(tmp_path / "w.zarr"), "--workers", "1",
                 "--items-per-task", "2", "--zarr-format", "2"]) == 0
    assert "items: 5 converted" in capsys.readouterr().out
    arr = zarr.open_group(tmp_path / "w.zarr", mode="r")["signals"]
    assert arr.metadata.zarr_format == 2 and arr.metadata.compressor.codec_id == "walloc"
    assert psnr(x, arr[:]) > 26


def test_convert_hdf5_variable(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    x = np.stack(smooth_images(3, (64, 64), seed=8))
    with h5py.File(tmp_path / "cube.h5", "w") as f:
        f["photos"] = x
    assert main(["convert", f"{tmp_path / 'cube.h5'}:photos", str(tmp_path / "h.zarr"),
                 "--workers", "1"]) == 0
    assert psnr(x, zarr.open_group(tmp_path / "h.zarr")["signals"][:]) > 26
    assert main(["convert", f"{tmp_path / 'cube.h5'}:nope", str(tmp_path / "n.zarr")]) != 0
    assert "no dataset 'nope'" in capsys.readouterr().err


def test_existing_destination_is_refused(tmp_path, capsys):
    src = _folder(tmp_path, 1)
    (tmp_path / "out.zarr").mkdir()
    assert main(["convert", str(src), str(tmp_path / "out.zarr")]) != 0
    assert "exists" in capsys.readouterr().err


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    src = _folder(tmp_path, 12)
    reference = tmp_path / "ref.zarr"
    assert main(["convert", str(src), str(reference), "--workers", "1"]) == 0
    dst = tmp_path / "out.zarr"
    markers = tmp_path / "out.zarr.partial" / ".walloc-convert"
    cmd = [sys.executable, "-m", "walloc_io.cli", "convert", str(src), str(dst), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(markers.glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its cluster's worker processes
    proc.wait()
    done_before = len(list(markers.glob("*.json")))
    assert 3 <= done_before < 12, "the run was not interrupted mid-way"
    assert not dst.exists()  # nothing half-written under the final name
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{done_before} tasks already done" in out.stdout
    assert "items: 12 converted, 0 skipped" in out.stdout
    a, b = _tree(reference), _tree(dst)
    assert a.keys() == b.keys()
    for key in a:
        if key != "zarr.json":
            assert a[key] == b[key], key
    meta_a, meta_b = (json.loads(t["zarr.json"]) for t in (a, b))
    assert meta_a == meta_b


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
