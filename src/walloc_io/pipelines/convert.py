"""``walloc convert``: existing archives -> a WaLLoC Zarr store or WaLLoC WebDataset shards,
in parallel on dask.distributed.

Sources:

- a folder (or file) of images / audio / ``.npy``;
- WebDataset tar shards: a ``.tar``, a folder of them, or a brace pattern
  (``shards/train-{000..099}.tar``); members whose extension is an image / audio / ``.npy``
  type of the codec's modality are the signals, the rest (labels, captions, JSON) ride along;
- a Zarr array, or an HDF5 / NetCDF variable (``file.h5:variable``, ``file.nc:variable``)
  whose trailing axes are one signal ``(..., C, H, W)`` / ``(..., C, T)``.

Outputs (``fmt``):

- ``"zarr"`` (format 3, or 2): a folder or shard source gives one array per signal,
  ``items/<name>`` (items may differ in size), chunked in tiles of ``tile`` samples, with a
  shard sample's small text members (``cls``, ``json``, ...) kept in the array's attributes;
  an array source gives one array ``signals`` of the same shape, written in runs of
  ``items_per_task`` rows;
- ``"webdataset"``: a folder of tar shards whose signal members are ``.wlc`` streams
  (``x.jpg`` -> ``x.wlc``, ``x.seg.png`` -> ``x.seg.wlc``) and whose other members are
  copied byte for byte. A shard source maps shard to shard (same names); folder and array
  sources are packed ``items_per_task`` signals per shard (``shard-000000.tar``, ...).
  A manifest ``walloc-convert.json`` lists the shards, items and skipped items.

Every task runs on a dask.distributed worker (a LocalCluster of ``workers`` processes by
default, or an existing cluster with ``scheduler``; paths must then be visible to the
workers). The output is built in ``DST.partial`` and renamed to ``DST`` only once every
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from ..errors import InputError, WallocError
from ..media import Signal
from ..presets import PRESET_DIR

MARKERS = ".walloc-convert"
MANIFEST = "walloc-convert.json"
FORMATS = ("zarr", "webdataset")
TEXT_MEMBER_LIMIT = 65536  # shard members kept as Zarr attributes: UTF-8 text up to this size


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


@dataclass
class TaskStats:
    """What one task did (returned by a worker, kept as its JSON resume marker)."""

    id: str
    items: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    names: list[str] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    input_bytes: int = 0
    output_bytes: int = 0

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((item, reason))

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, text: str) -> TaskStats:
        data = json.loads(text)
        data["skipped"] = [tuple(x) for x in data.get("skipped", [])]
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Job:
    """Everything a worker needs for one task (picklable, paths only)."""

    codec: str
    partial: str
    zarr_format: int
    tile: int
    verify: bool
    fmt: str = "zarr"


# -- source discovery ---------------------------------------------------------------------------
def plan(src: str, modality: str, items_per_task: int, fmt: str = "zarr") -> tuple[str, list[dict]]:
    """``(kind, tasks)``, kind ``"folder"``, ``"shards"`` or ``"array"``; each task is a
    dict with an ``id`` (its marker's name)."""
    from . import shards as wds_shards

    path, variable = _split_variable(src)
    if variable is None and wds_shards.is_shard_source(src):
        return "shards", [{"id": f"shard-{name}", "shard": str(p), "name": name}
                          for p in wds_shards.list_shards(src)
                          for name in [wds_shards.shard_name(path, p)]]
    if _is_array_source(path, variable):
        shape = _open_array(path, variable).shape
        if len(shape) < 2:
            raise InputError(f"{src}: array of shape {shape} has no item axis")
        n = shape[0]
        return "array", [{"id": f"rows-{i:08d}", "start": i, "stop": min(i + items_per_task, n),
                          "path": str(path), "variable": variable,
                          "name": f"shard-{i // items_per_task:06d}.tar"}
                         for i in range(0, n, items_per_task)]
    from ..media import signal_files

    files = signal_files(path, modality)
    root = path if path.is_dir() else path.parent
    items = [{"file": str(f), "name": "__".join(f.relative_to(root).with_suffix("").parts)}
             for f in files]
    if fmt == "webdataset":  # many items per shard
        return "folder", [{"id": f"shard-{i // items_per_task:06d}",
                           "name": f"shard-{i // items_per_task:06d}.tar",
                           "items": items[i:i + items_per_task]}
                          for i in range(0, len(items), items_per_task)]
    return "folder", [{"id": f"item-{it['name']}", "items": [it]} for it in items]


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
            raise InputError(f"{path} has no dataset {variable!r} (has {sorted(map(str, f))})")
        return f[variable]
    import xarray as xr

    ds = xr.open_dataset(path, mask_and_scale=False)
    if variable not in ds:
        raise InputError(f"{path} has no variable {variable!r} (has {sorted(map(str, ds.data_vars))})")
    return ds[variable]


# -- worker side ---------------------------------------------------------------------------------
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_task(job: Job, kind: str, task: dict, array_info: dict | None = None) -> TaskStats:
    """Convert one task and mark it done; returns its statistics. Changes nothing about the
    worker (thread counts included): a user's own cluster stays as it was."""
    from ..codec import load_codec

    codec = load_codec(job.codec, device="cpu")
    if job.fmt == "webdataset":
        stats = _to_shard(job, codec, kind, task)
    elif kind == "folder":
        stats = _folder_item(job, codec, task["items"][0], task["id"])
    elif kind == "shards":
        stats = _shard_to_zarr(job, codec, task)
    else:
        assert array_info is not None  # array tasks always carry the array's layout
        stats = _array_rows(job, codec, task, array_info)
    from ..media import write_atomic

    write_atomic(Path(job.partial) / MARKERS / f"{task['id']}.json", stats.to_json())
    return stats


def _read_item(codec, file: str, name: str, data: bytes | None = None):
    """One item as a :class:`~walloc_io.media.Signal`, checked against the codec."""
    from ..media import read_signal

    sig = read_signal(file, data)
    _check_item(codec, sig.data, name)
    return sig


def _folder_item(job: Job, codec, item: dict, task_id: str) -> TaskStats:
    name = item["name"]
    try:
        sig = _read_item(codec, item["file"], name)
    except WallocError as exc:
        return TaskStats(task_id, skipped=[(name, str(exc))])
    group = _group(job)
    arr = _write_item(job, codec, group, name, sig, {"source": os.path.basename(item["file"])})
    stats = TaskStats(task_id, 1, names=[name], input_bytes=os.path.getsize(item["file"]),
                      output_bytes=_array_bytes(Path(job.partial) / "items" / name))
    if job.verify:
        stats.quality = [_quality(codec.config.modality, sig.data, np.asarray(arr[...]))]
    return stats


def _group(job: Job):
    import zarr

    return zarr.open_group(job.partial, mode="a", zarr_format=cast(Literal[2, 3], job.zarr_format))


def _write_item(job: Job, codec, group, name: str, sig, attrs: dict):
    data = sig.data
    chunks = (codec.config.channels, *(min(n, job.tile) for n in data.shape[1:]))
    arr = _create(group, f"items/{name}", data.shape, chunks, data.dtype, job, sig.sample_rate)
    arr.attrs.update({**attrs, "sample_rate": sig.sample_rate})
    arr[...] = data
    return arr


def _signal_fields(codec, fields: dict[str, bytes]) -> list[str]:
    from ..media import SUFFIXES

    suffixes = SUFFIXES[codec.config.modality]
    return [f for f in fields if "." + f.rsplit(".", 1)[-1].lower() in suffixes]


def _shard_to_zarr(job: Job, codec, task: dict) -> TaskStats:
    """Every signal member of a shard becomes ``items/<key>`` (``items/<key>.<member>`` when
    a sample holds several); small text members go into the array's attributes."""
    from . import shards as wds_shards

    group = _group(job)
    stats = TaskStats(task["id"], input_bytes=os.path.getsize(task["shard"]))
    try:
        for key, fields in wds_shards.read_samples(task["shard"]):
            signal_fields = _signal_fields(codec, fields)
            if not signal_fields:
                stats.skip(f"{task['name']}:{key}", "no signal member")
            text = _text_members(fields, signal_fields)
            for member in signal_fields:
                name = key.replace("/", "__") + (f".{member}" if len(signal_fields) > 1 else "")
                label = f"{task['name']}:{key}.{member}"
                try:
                    sig = _read_item(codec, f"{key}.{member}", label, fields[member])
                    _check_unique(group, name, task["name"])
                except WallocError as exc:
                    stats.skip(label, str(exc))
                    continue
                arr = _write_item(job, codec, group, name, sig,
                                  {"source": label, "shard": task["name"], "members": text})
                stats.items += 1
                stats.names.append(name)
                stats.output_bytes += _array_bytes(Path(job.partial) / "items" / name)
                if job.verify and not stats.quality:
                    stats.quality.append(_quality(codec.config.modality, sig.data,
                                                  np.asarray(arr[...])))
    except InputError as exc:  # a damaged shard: what was read is kept, the rest reported
        stats.skip(task["name"], str(exc))
    return stats


def _check_unique(group, name: str, shard: str) -> None:
    path = f"items/{name}"
    if path in group and group[path].attrs.get("shard") != shard:
        raise InputError(f"key {name!r} already came from shard {group[path].attrs.get('shard')}")


def _text_members(fields: dict[str, bytes], signal_fields: list[str]) -> dict[str, str]:
    out = {}
    for member, data in fields.items():
        if member in signal_fields or len(data) > TEXT_MEMBER_LIMIT:
            continue
        try:
            out[member] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def _to_shard(job: Job, codec, kind: str, task: dict) -> TaskStats:
    """One output shard: signals re-encoded as ``.wlc`` members, other members copied."""
    from . import shards as wds_shards

    stats = TaskStats(task["id"])
    samples: list[wds_shards.Sample] = []
    signals: list[tuple[int, str, object]] = []  # (sample index, output member, Signal)

    if kind == "shards":
        stats.input_bytes = os.path.getsize(task["shard"])
        try:
            for key, fields in wds_shards.read_samples(task["shard"]):
                pending: list[tuple[str, Any]] | None = []
                signal_fields = _signal_fields(codec, fields)
                for member in signal_fields:
                    label = f"{task['name']}:{key}.{member}"
                    try:
                        assert pending is not None
                        pending.append((_wlc_field(member, fields, {n for n, _ in pending}),
                                        _read_item(codec, f"{key}.{member}", label, fields[member])))
                    except WallocError as exc:
                        stats.skip(label, str(exc))
                        pending = None
                        break
                if pending is None:
                    continue  # a bad signal member: the whole sample is reported and left out
                out = {f: d for f, d in fields.items() if f not in signal_fields}
                for member, sig in pending:
                    signals.append((len(samples), member, sig))
                samples.append((key, out))
        except InputError as exc:
            stats.skip(task["name"], str(exc))
    elif kind == "folder":
        for item in task["items"]:
            try:
                sig = _read_item(codec, item["file"], item["name"])
            except WallocError as exc:
                stats.skip(item["name"], str(exc))
                continue
            stats.input_bytes += os.path.getsize(item["file"])
            signals.append((len(samples), "wlc", sig))
            samples.append((item["name"], {}))
    else:
        rows = np.asarray(_open_array(Path(task["path"]), task["variable"])[task["start"]:task["stop"]])
        for i, row in enumerate(rows):
            name = f"{task['start'] + i:08d}"
            try:
                _check_row(codec, row, f"{task['path']}[{task['start'] + i}]")
            except WallocError as exc:
                stats.skip(name, str(exc))
                continue
            stats.input_bytes += int(row.nbytes)
            signals.append((len(samples), "wlc", Signal(row)))
            samples.append((name, {}))
    blobs = _encode_all(codec, [sig for _, _, sig in signals])
    for (index, member, _sig), blob in zip(signals, blobs):
        samples[index][1][member] = blob
    stats.items = len(signals)
    stats.names = [samples[i][0] for i, _, _ in signals]
    if job.verify and signals:
        sig = cast(Signal, signals[0][2])
        stats.quality = [_quality(codec.config.modality, sig.data, codec.decode(blobs[0]))]
    stats.output_bytes = wds_shards.write_shard(Path(job.partial) / task["name"], samples) \
        if samples else 0
    return stats


def _wlc_field(member: str, fields: dict, chosen: set) -> str:
    """``jpg`` -> ``wlc``, ``seg.png`` -> ``seg.wlc``; ``png.wlc`` if that name is taken."""
    stem = member.rpartition(".")[0]
    name = f"{stem}.wlc" if stem else "wlc"
    return name if name not in fields and name not in chosen else f"{member}.wlc"


def _encode_all(codec, signals: list) -> list[bytes]:
    """Encode in batches of same-size signals (one tensor call each), rate per item."""
    by_rate: dict[int, list[int]] = {}
    for i, sig in enumerate(signals):
        by_rate.setdefault(sig.sample_rate, []).append(i)
    out: list[bytes] = [b""] * len(signals)
    for rate, index in by_rate.items():
        for i, blob in zip(index, codec.encode_batch([signals[i].data for i in index],
                                                     sample_rate=rate)):
            out[i] = blob
    return out


def _array_rows(job: Job, codec, task: dict, info: dict) -> TaskStats:
    import zarr

    src = _open_array(Path(task["path"]), task["variable"])
    rows = np.asarray(src[task["start"]:task["stop"]])
    name = info["name"]
    try:
        for i, row in enumerate(rows):
            _check_row(codec, row, f"{task['path']}[{task['start'] + i}]")
    except WallocError as exc:
        return TaskStats(task["id"], skipped=[(f"rows {task['start']}-{task['stop'] - 1}", str(exc))])
    arr = zarr.open_array(Path(job.partial) / name, mode="r+")
    arr[task["start"]:task["stop"]] = rows
    stats = TaskStats(task["id"], len(rows), input_bytes=int(rows.nbytes))
    if job.verify:
        stats.quality = [_quality(codec.config.modality, rows[0], np.asarray(arr[task["start"]]))]
    return stats


def _check_row(codec, row: np.ndarray, name: str) -> None:
    """An array source's row: a signal of the codec's layout, finite."""
    _check_item(codec, row, name)
    if row.dtype.kind == "f" and not np.isfinite(row).all():
        raise InputError(f"{name} contains NaN or Inf")


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
    from dataclasses import asdict

    from ..codecs.options import ChunkCodecOptions
    from ..presets import resolve

    path = resolve(job.codec)  # a codec directory wins over a preset of the same name, as in load_codec
    # the path as given (never made absolute) plus the fingerprint, which finds it anywhere
    named = path.parent == PRESET_DIR
    options = ChunkCodecOptions(preset=job.codec if named else None,
                                path=None if named else str(job.codec), sample_rate=sample_rate)
    if job.zarr_format == 3:
        serializer = {"name": "walloc", "configuration": options.to_config()}
        return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype,
                                  serializer=serializer, compressors=None, overwrite=True)
    from ..codecs.numcodec import WallocCodec

    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, filters=None,
                              compressors=WallocCodec(**asdict(options)), overwrite=True)


def _array_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- driver ------------------------------------------------------------------------------------------
def _sweep_orphans(partial: Path) -> None:
    """Remove the temporary ``*.partial`` files a killed run left inside the output (zarr's
    LocalStore and our atomic writes rename them into place when complete; a SIGKILL in
    between orphans them). Their tasks have no marker, so they are redone."""
    if partial.is_dir():
        for orphan in partial.rglob("*.partial"):
            if orphan.is_file():
                orphan.unlink()


def convert(src: str, dst: str, codec: str = "rgb-16x", *, fmt: str = "zarr", zarr_format: int = 3,
            workers: int = 2, scheduler: str | None = None, strict: bool = False,
            items_per_task: int = 16, tile: int = 1024, verify: int = 8, progress=None,
            client=None) -> ConvertSummary:
    """Convert ``src`` to a WaLLoC Zarr store or WaLLoC WebDataset shards at ``dst`` (see
    the module docstring)."""
    from ..codec import load_codec

    started = time.perf_counter()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be an integer >= 1, got {workers!r}")
    model = load_codec(codec, device="cpu")
    dst_path = Path(dst)
    if dst_path.exists():
        raise InputError(f"{dst} exists: choose a new destination (or remove it)")
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {FORMATS}, got {fmt!r}")
    if zarr_format not in (2, 3):
        raise InputError(f"zarr_format must be 2 or 3, got {zarr_format}")
    if items_per_task < 1:
        raise InputError(f"items_per_task must be >= 1, got {items_per_task}")
    f = 2 ** model.config.levels
    if tile < f or tile % f:
        raise InputError(f"tile must be a positive multiple of {f} for {codec}, got {tile}")
    kind, tasks = plan(src, model.config.modality, items_per_task, fmt)
    partial = dst_path.with_name(dst_path.name + ".partial")
    info = None
    if fmt == "zarr":
        import zarr

        group = zarr.open_group(partial, mode="a", zarr_format=cast(Literal[2, 3], zarr_format))
        if kind == "array":
            info = _prepare_array(group, src, model, zarr_format, items_per_task, codec, tile)
    else:
        partial.mkdir(parents=True, exist_ok=True)
    markers = partial / MARKERS
    _sweep_orphans(partial)
    done = {p.stem for p in markers.glob("*.json")} if markers.exists() else set()
    todo = [t for t in tasks if t["id"] not in done]
    job = Job(codec, str(partial), zarr_format, tile, verify > 0, fmt)
    summary = ConvertSummary(resumed_tasks=len(tasks) - len(todo))
    if todo:
        _run_distributed(job, kind, todo, info, workers, scheduler, client, progress, len(tasks),
                         len(tasks) - len(todo), strict)
    stats = [TaskStats.from_json((markers / f"{t['id']}.json").read_text()) for t in tasks]
    names: list[str] = []
    for s in stats:
        summary.items += s.items
        summary.skipped += s.skipped
        summary.input_bytes += s.input_bytes
        summary.output_bytes += s.output_bytes
        summary.quality += s.quality[: max(0, verify - len(summary.quality))]
        names += s.names
    if kind == "array" and fmt == "zarr" and info is not None:
        summary.output_bytes = _array_bytes(partial / info["name"])
    if strict and summary.skipped:
        raise InputError(f"{len(summary.skipped)} bad items (strict): " + "; ".join(
            f"{n}: {r}" for n, r in summary.skipped[:5]))
    meta = {"codec": codec, "fingerprint": model.fingerprint, "source": str(src), "kind": kind,
            "items": sorted(names) if kind != "array" else summary.items,
            "skipped": [list(x) for x in summary.skipped]}
    if fmt == "zarr":
        group.attrs.update({"walloc_convert": meta})
    else:
        from ..media import write_atomic

        meta["shards"] = [t["name"] for t, s in zip(tasks, stats) if s.output_bytes]
        write_atomic(partial / MANIFEST, json.dumps(meta, indent=1).encode())
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
            client.run(_one_torch_thread)  # our own workers only: one process per core
    try:
        futures = [client.submit(run_task, job, kind, t, info, key=f"walloc-convert-{t['id']}",
                                 pure=False) for t in todo]
        for future in distributed.as_completed(futures):
            stats = future.result()  # raises a worker's unexpected error here
            if strict and stats.skipped:
                client.cancel(futures)
                name, reason = stats.skipped[0]
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
