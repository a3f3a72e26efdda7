"""One unit of ``walloc convert`` work, run on a dask.distributed worker: per kind of source
and output, returning a typed :class:`TaskStats` kept as its resume marker.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ...errors import InputError, WallocError
from ...media import Signal
from .sinks import _array_bytes, _check_unique, _encode_all, _group, _quality, _write_item
from .sources import _check_row, _open_array, _read_item, _signal_fields, _text_members, _wlc_field

MARKERS = ".walloc-convert"


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
    quality: int | None = None  # walloc_io.quality; None: the codec's design point
    max_abs_error: float | None = None  # float sources: the guaranteed bound
    nan: str = "raise"


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_task(job: Job, kind: str, task: dict, array_info: dict | None = None) -> TaskStats:
    """Convert one task and mark it done; returns its statistics. Changes nothing about the
    worker (thread counts included): a user's own cluster stays as it was."""
    from ...codec import load_codec

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
    from ...media import write_atomic

    write_atomic(Path(job.partial) / MARKERS / f"{task['id']}.json", stats.to_json())
    return stats


def _folder_item(job: Job, codec, item: dict, task_id: str) -> TaskStats:
    name = item["name"]
    try:
        sig = _read_item(codec, item["file"], name, bounded=job.max_abs_error is not None)
    except WallocError as exc:
        return TaskStats(task_id, skipped=[(name, str(exc))])
    group = _group(job)
    arr = _write_item(job, codec, group, name, sig, {"source": os.path.basename(item["file"])})
    stats = TaskStats(task_id, 1, names=[name], input_bytes=os.path.getsize(item["file"]),
                      output_bytes=_array_bytes(Path(job.partial) / "items" / name))
    if job.verify:
        stats.quality = [_quality(codec.config.modality, sig.data, np.asarray(arr[...]))]
    return stats


def _shard_to_zarr(job: Job, codec, task: dict) -> TaskStats:
    """Every signal member of a shard becomes ``items/<key>`` (``items/<key>.<member>`` when
    a sample holds several); small text members go into the array's attributes."""
    from .. import shards as wds_shards

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


def _to_shard(job: Job, codec, kind: str, task: dict) -> TaskStats:
    """One output shard: signals re-encoded as ``.wlc`` members, other members copied."""
    from .. import shards as wds_shards

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
                                        _read_item(codec, f"{key}.{member}", label, fields[member],
                                                   bounded=job.max_abs_error is not None)))
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
                sig = _read_item(codec, item["file"], item["name"],
                                 bounded=job.max_abs_error is not None)
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
    blobs = _encode_all(codec, [sig for _, _, sig in signals], job.quality, job.max_abs_error)
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


def _array_rows(job: Job, codec, task: dict, info: dict) -> TaskStats:
    import zarr

    src = _open_array(Path(task["path"]), task["variable"])
    band = slice(*task["band"]) if "band" in task else slice(None)
    if task.get("single"):  # a 2-D field (H, W), stored as one signal (1, H, W)
        rows = np.asarray(src[band])[None, None]
        target: tuple = (slice(None), band)
    else:
        index: list = [slice(task["start"], task["stop"])]
        if "band" in task:
            index += [slice(None)] * (task["axis"] - 1) + [band]
        rows = np.asarray(src[tuple(index)])
        target = tuple(index)
    name = info["name"]
    try:
        for i, row in enumerate(rows):
            _check_row(codec, row, f"{task['path']}[{task['start'] + i}]", job.nan)
    except WallocError as exc:
        return TaskStats(task["id"], skipped=[(f"rows {task['start']}-{task['stop'] - 1}", str(exc))])
    arr = zarr.open_array(Path(job.partial) / name, mode="r+")
    arr[target] = rows[0] if task.get("single") else rows
    stats = TaskStats(task["id"], len(rows) if "band" not in task or task["band"][0] == 0 else 0,
                      input_bytes=int(rows.nbytes))
    if job.verify and stats.items:
        stored = np.asarray(arr[target])
        stats.quality = [_quality(codec.config.modality, np.nan_to_num(rows[0]),
                                  np.nan_to_num(stored if task.get("single") else stored[0]))]
    return stats
