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
abort the run with ``strict=True``; nothing is dropped silently."""

from .driver import FORMATS, MANIFEST, ConvertSummary, convert
from .sources import plan
from .tasks import MARKERS, Job, TaskStats, run_task

__all__ = ["FORMATS", "MANIFEST", "MARKERS", "ConvertSummary", "Job", "TaskStats", "convert", "plan",
           "run_task"]
