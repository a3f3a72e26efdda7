"""The ``walloc convert`` driver: plans, resumes (markers, orphaned temp files swept), runs
tasks on a cluster, assembles the summary and the atomic rename.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import numpy as np

from ...errors import InputError
from .sinks import _array_bytes, _create
from .sources import _open_array, _split_variable, plan, single_field
from .tasks import MARKERS, Job, TaskStats, _one_torch_thread, run_task

MANIFEST = "walloc-convert.json"


FORMATS = ("zarr", "webdataset")


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
            client=None, quality: int | None = None, max_abs_error: float | None = None,
            nan: str = "raise", shards: int | None = None) -> ConvertSummary:
    """Convert ``src`` to a WaLLoC Zarr store or WaLLoC WebDataset shards at ``dst`` (see
    the module docstring)."""
    from ...codec import load_codec

    started = time.perf_counter()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be an integer >= 1, got {workers!r}")
    model = load_codec(codec, device="cpu")
    quality = model.check_quality(quality)  # before anything is written
    if max_abs_error is not None:
        from ...entropy.residual import check_bound

        max_abs_error = check_bound(max_abs_error, "float32")
    if nan not in ("raise", "mask"):
        raise InputError(f"nan must be 'raise' or 'mask', got {nan!r}")
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
    if shards is not None and (shards < 1 or zarr_format != 3):
        raise InputError("shards must be a positive number of chunks per shard axis, with "
                         "zarr_format=3")
    band = tile * (shards or 1)
    kind, tasks = plan(src, model.config.modality, items_per_task, fmt, band,
                       model.config.channels)
    partial = dst_path.with_name(dst_path.name + ".partial")
    job = Job(codec, str(partial), zarr_format, tile, verify > 0, fmt, quality, max_abs_error, nan)
    info = None
    if fmt == "zarr":
        import zarr

        group = zarr.open_group(partial, mode="a", zarr_format=cast(Literal[2, 3], zarr_format))
        if kind == "array":
            info = _prepare_array(group, src, model, job, shards)
    else:
        partial.mkdir(parents=True, exist_ok=True)
    markers = partial / MARKERS
    _sweep_orphans(partial)
    done = {p.stem for p in markers.glob("*.json")} if markers.exists() else set()
    todo = [t for t in tasks if t["id"] not in done]
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
        from ...media import write_atomic

        meta["shards"] = [t["name"] for t, s in zip(tasks, stats) if s.output_bytes]
        write_atomic(partial / MANIFEST, json.dumps(meta, indent=1).encode())
    shutil.rmtree(markers)
    os.replace(partial, dst_path)
    summary.seconds = time.perf_counter() - started
    return summary


def _prepare_array(group, src, model, job: Job, shards: int | None = None) -> dict:
    path, variable = _split_variable(src)
    a = _open_array(path, variable)
    shape, dtype = tuple(a.shape), np.dtype(a.dtype)
    cfg = model.config
    nd = cfg.signal_ndim + 1
    if single_field(shape, cfg.modality, cfg.channels):  # stored as (1, H, W)
        shape = (1, *shape)
    chunks = (*(1,) * (len(shape) - nd), *shape[-nd:-cfg.signal_ndim],
              *(min(n, job.tile) for n in shape[-cfg.signal_ndim:]))
    from ...codecs.chunk import check_layout

    check_layout(cfg, chunks, dtype)
    name = "signals"
    if name not in group:
        shard_shape = None if not shards else (
            *chunks[:-cfg.signal_ndim],
            *(min(n, c * shards) for n, c in zip(shape[-cfg.signal_ndim:],
                                                  chunks[-cfg.signal_ndim:])))
        _create(group, name, shape, chunks, dtype, job, shards=shard_shape)
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
                                               processes=True, dashboard_address=":0")
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
