"""``walloc convert``: existing archives -> a WaLLoC Zarr store, in parallel on dask.distributed.

Sources:

- a folder (or file) of images / audio / ``.npy``: every item becomes its own array
  ``items/<name>`` (items may differ in size), chunked in tiles of ``--tile`` samples (default 1024);
- a Zarr array, or an HDF5 / NetCDF variable (``file.h5:variable``, ``file.nc:variable``)
  whose trailing axes are one signal ``(..., C, H, W)`` / ``(..., C, T)``: one array
  ``signals`` of the same shape, written in runs of ``--items-per-task`` along axis 0.

Every task runs on a dask.distributed worker (a LocalCluster of ``--workers`` processes by
default, or an existing cluster with ``--scheduler ADDRESS``; paths must then be visible to
the workers). The output is built in ``DST.partial`` and renamed to ``DST`` only once every
task has finished, so ``DST`` never exists half-written. Each finished task leaves a
marker (written atomically after its data); a rerun after a crash or SIGKILL skips marked
tasks and redoes the rest, and because encoding is deterministic the result is identical
to an uninterrupted run. The source is only read. Bad items are reported and skipped, or
abort the run with ``strict=True``; nothing is dropped silently.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, WallocError
from ..presets import PRESET_DIR

MARKERS = ".walloc-convert"


@dataclass
class ConvertSummary:
    items: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    input_bytes: int = 0
    output_bytes: int = 0
    quality: list[float] = field(default_factory=list)  # PSNR (images) / SNR (audio), verified
    resumed_tasks: int = 0
    seconds: float = 0.0

    @property
    def ratio(self) -> float:
        return self.input_bytes / self.output_bytes if self.output_bytes else math.nan

    def lines(self, modality: str) -> list[str]:
        metric = "PSNR" if modality == "image" else "SNR"
        q = f"{np.mean(self.quality):.2f} dB over {len(self.quality)} verified items" \
            if self.quality else "n/a"
        return [f"items: {self.items} converted, {len(self.skipped)} skipped"
                + (f", {self.resumed_tasks} tasks already done" if self.resumed_tasks else ""),
                f"input bytes: {self.input_bytes}", f"output bytes: {self.output_bytes}",
                f"compression ratio: {self.ratio:.1f}x", f"mean {metric}: {q}",
                f"time: {self.seconds:.1f} s"]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs for one task (picklable, paths only)."""

    codec: str
    partial: str
    zarr_format: int
    tile: int
    verify: bool


# -- source discovery ---------------------------------------------------------------------------
def plan(src: str, modality: str, items_per_task: int) -> tuple[str, list[dict]]:
    """``("folder", tasks)`` or ``("array", tasks)``; each task is a dict with an ``id``."""
    path, variable = _split_variable(src)
    if _is_array_source(path, variable):
        shape = _open_array(path, variable).shape
        if len(shape) < 2:
            raise InputError(f"{src}: array of shape {shape} has no item axis")
        n = shape[0]
        return "array", [{"id": f"rows-{i:08d}", "start": i, "stop": min(i + items_per_task, n),
                          "path": str(path), "variable": variable}
                         for i in range(0, n, items_per_task)]
    from ..cli.io import signal_files

    files = signal_files(path, modality)
    root = path if path.is_dir() else path.parent
    tasks = []
    for f in files:
        name = "__".join(f.relative_to(root).with_suffix("").parts)
        tasks.append({"id": f"item-{name}", "file": str(f), "name": name})
    return "folder", tasks


def _split_variable(src: str) -> tuple[Path, str | None]:
    head, sep, tail = src.rpartition(":")
    if sep and head and Path(head).suffix.lower() in (".h5", ".hdf5", ".nc", ".nc4") and tail:
        return Path(head), tail
    return Path(src), None


def _is_array_source(path: Path, variable: str | None) -> bool:
    return variable is not None or (path / "zarr.json").exists() or (path / ".zarray").exists()


def _open_array(path: Path, variable: str | None):
    """A lazily sliceable array: Zarr array, h5py dataset or NetCDF variable."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if variable is None:
        import zarr

        return zarr.open_array(path, mode="r")
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        f = h5py.File(path, "r")
        if variable not in f:
            raise InputError(f"{path} has no dataset {variable!r} (has {sorted(f)})")
        return f[variable]
    import xarray as xr

    ds = xr.open_dataset(path, mask_and_scale=False)
    if variable not in ds:
        raise InputError(f"{path} has no variable {variable!r} (has {sorted(ds.data_vars)})")
    return ds[variable]


# -- worker side ---------------------------------------------------------------------------------
def run_task(job: Job, kind: str, task: dict, array_info: dict | None = None) -> dict:
    """Convert one task and mark it done; returns its statistics."""
    import torch

    torch.set_num_threads(1)
    from ..codec import load_codec

    codec = load_codec(job.codec, device="cpu")
    if kind == "folder":
        stats = _folder_item(job, codec, task)
    else:
        stats = _array_rows(job, codec, task, array_info)
    from ..cli.io import write_atomic

    write_atomic(Path(job.partial) / MARKERS / f"{task['id']}.json", json.dumps(stats).encode())
    return stats


def _folder_item(job: Job, codec, task: dict) -> dict:
    import zarr

    from ..cli.io import read_signal

    name = task["name"]
    try:
        sig = read_signal(task["file"])
        data = sig.data
        _check_item(codec, data, name)
    except WallocError as exc:
        return {"id": task["id"], "items": 0, "skipped": [[name, str(exc)]]}
    cfg = codec.config
    chunks = (cfg.channels, *(min(n, job.tile) for n in data.shape[1:]))
    group = zarr.open_group(job.partial, mode="a", zarr_format=job.zarr_format)
    arr = _create(group, f"items/{name}", data.shape, chunks, data.dtype, job, sig.sample_rate)
    arr.attrs.update({"source": os.path.basename(task["file"]), "sample_rate": sig.sample_rate})
    arr[...] = data
    out = _array_bytes(Path(job.partial) / "items" / name)
    stats = {"id": task["id"], "items": 1, "skipped": [],
             "input_bytes": os.path.getsize(task["file"]), "output_bytes": out}
    if job.verify:
        stats["quality"] = [_quality(cfg.modality, data, arr[...])]
    return stats


def _array_rows(job: Job, codec, task: dict, info: dict) -> dict:
    import zarr

    src = _open_array(Path(task["path"]), task["variable"])
    rows = np.asarray(src[task["start"]:task["stop"]])
    name = info["name"]
    try:
        _check_item(codec, rows[0], f"{task['path']}[{task['start']}]")
        bad = [i for i in range(len(rows)) if rows[i].dtype.kind == "f" and
               not np.isfinite(rows[i]).all()]
        if bad:
            raise InputError(f"rows {[task['start'] + i for i in bad]} contain NaN or Inf")
    except WallocError as exc:
        return {"id": task["id"], "items": 0,
                "skipped": [[f"rows {task['start']}-{task['stop'] - 1}", str(exc)]]}
    arr = zarr.open_array(Path(job.partial) / name, mode="r+")
    arr[task["start"]:task["stop"]] = rows
    stats = {"id": task["id"], "items": len(rows), "skipped": [],
             "input_bytes": int(rows.nbytes), "output_bytes": 0}
    if job.verify:
        stats["quality"] = [_quality(codec.config.modality, rows[0], arr[task["start"]])]
    return stats


def _check_item(codec, data: np.ndarray, name: str) -> None:
    from ..codecs.chunk import check_layout

    cfg = codec.config
    if data.ndim != cfg.signal_ndim + 1:
        raise InputError(f"{name}: expected a {cfg.signal_ndim + 1}-d signal, got shape {data.shape}")
    check_layout(cfg, data.shape, data.dtype)


def _quality(modality: str, ref: np.ndarray, out: np.ndarray) -> float:
    from ..metrics import psnr, snr

    return float(psnr(ref, out) if modality == "image" else snr(ref, out))


def _create(group, name: str, shape, chunks, dtype, job: Job, sample_rate: int = 0):
    from ..presets import resolve

    path = resolve(job.codec)  # a codec directory wins over a preset of the same name, as in load_codec
    options = {"preset": job.codec} if path.parent == PRESET_DIR else {"path": str(path)}
    if job.zarr_format == 3:
        serializer = {"name": "walloc", "configuration": {**options, "sample_rate": sample_rate}}
        return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                  serializer=serializer, compressors=None, overwrite=True)
    from ..codecs.numcodec import WallocCodec

    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, filters=None,
                              compressors=WallocCodec(**options, sample_rate=sample_rate),
                              overwrite=True)


def _array_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- driver ------------------------------------------------------------------------------------------
def convert(src: str, dst: str, codec: str = "rgb-16x", *, zarr_format: int = 3,
            workers: int = 2, scheduler: str | None = None, strict: bool = False,
            items_per_task: int = 16, tile: int = 1024, verify: int = 8, progress=None,
            client=None) -> ConvertSummary:
    """Convert ``src`` to a WaLLoC Zarr store at ``dst`` (see the module docstring)."""
    import zarr

    from ..codec import load_codec

    started = time.perf_counter()
    model = load_codec(codec, device="cpu")
    dst_path = Path(dst)
    if dst_path.exists():
        raise InputError(f"{dst} exists: choose a new destination (or remove it)")
    if zarr_format not in (2, 3):
        raise InputError(f"zarr_format must be 2 or 3, got {zarr_format}")
    f = 2 ** model.config.levels
    if tile < f or tile % f:
        raise InputError(f"tile must be a positive multiple of {f} for {codec}, got {tile}")
    kind, tasks = plan(src, model.config.modality, items_per_task)
    partial = dst_path.with_name(dst_path.name + ".partial")
    group = zarr.open_group(partial, mode="a", zarr_format=zarr_format)
    info = None
    if kind == "array":
        info = _prepare_array(group, src, model, zarr_format, items_per_task, codec, tile)
    markers = partial / MARKERS
    done = {p.stem for p in markers.glob("*.json")} if markers.exists() else set()
    todo = [t for t in tasks if t["id"] not in done]
    job = Job(codec, str(partial), zarr_format, tile, verify > 0)
    summary = ConvertSummary(resumed_tasks=len(tasks) - len(todo))
    if todo:
        _run_distributed(job, kind, todo, info, workers, scheduler, client, progress, len(tasks),
                         len(tasks) - len(todo), strict)
    stats = [json.loads((markers / f"{t['id']}.json").read_text()) for t in tasks]
    for s in stats:
        summary.items += s["items"]
        summary.skipped += [tuple(x) for x in s["skipped"]]
        summary.input_bytes += s.get("input_bytes", 0)
        summary.output_bytes += s.get("output_bytes", 0)
        summary.quality += s.get("quality", [])[: max(0, verify - len(summary.quality))]
    if kind == "array":
        summary.output_bytes = _array_bytes(partial / info["name"])
    if strict and summary.skipped:
        raise InputError(f"{len(summary.skipped)} bad items (strict): " + "; ".join(
            f"{n}: {r}" for n, r in summary.skipped[:5]))
    names = sorted(t["name"] for t, s in zip(tasks, stats) if kind == "folder" and s["items"])
    group.attrs.update({"walloc_convert": {
        "codec": codec, "fingerprint": model.fingerprint, "source": str(src), "kind": kind,
        "items": names if kind == "folder" else summary.items,
        "skipped": [list(x) for x in summary.skipped]}})
    shutil.rmtree(markers)
    os.replace(partial, dst_path)
    summary.seconds = time.perf_counter() - started
    return summary


def _prepare_array(group, src, model, zarr_format, items_per_task, codec, tile) -> dict:
    path, variable = _split_variable(src)
    a = _open_array(path, variable)
    shape, dtype = tuple(a.shape), np.dtype(a.dtype)
    cfg = model.config
    nd = cfg.signal_ndim + 1
    chunks = (*(1,) * (len(shape) - nd), *shape[-nd:-cfg.signal_ndim],
              *(min(n, tile) for n in shape[-cfg.signal_ndim:]))
    from ..codecs.chunk import check_layout

    check_layout(cfg, chunks, dtype)
    name = "signals"
    if name not in group:
        _create(group, name, shape, chunks, dtype, Job(codec, "", zarr_format, tile, False))
    return {"name": name}


def _run_distributed(job, kind, todo, info, workers, scheduler, client, progress, total, done,
                     strict):
    import distributed

    own = None
    if client is None:
        if scheduler:
            client = own = distributed.Client(scheduler)
        else:
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                               processes=True, dashboard_address=None)
            client = own = distributed.Client(cluster)
    try:
        futures = [client.submit(run_task, job, kind, t, info, key=f"walloc-convert-{t['id']}",
                                 pure=False) for t in todo]
        for future in distributed.as_completed(futures):
            stats = future.result()  # raises a worker's unexpected error here
            if strict and stats["skipped"]:
                client.cancel(futures)
                name, reason = stats["skipped"][0]
                raise InputError(f"bad items (strict): {name}: {reason}; finished tasks are kept "
                                 f"in {job.partial} for a rerun")
            done += 1
            if progress is not None:
                progress(done, total)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None and not scheduler:
                cluster.close()
