"""``walloc convert SRC DST``: existing archives -> a WaLLoC Zarr store or WaLLoC WebDataset
shards, on dask.distributed.

    walloc convert photos/ photos.zarr --codec rgb-16x --workers 2
    walloc convert 'train-{000..099}.tar' train-wlc/ --format webdataset
    walloc convert cube.h5:reflectance cube.zarr --codec my-codec/ --scheduler tcp://host:8786
"""

from __future__ import annotations

import sys

from .args import positive_int, quality


def add_parser(sub) -> None:
    p = sub.add_parser("convert", help="convert images/audio/tar shards/Zarr/HDF5/NetCDF into a "
                                       "WaLLoC Zarr store or WebDataset shards",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="folder or file of images/audio/.npy, WebDataset .tar shards (a file, "
                               "a folder or a brace pattern), a Zarr array, or "
                               "FILE.h5:DATASET / FILE.nc:VARIABLE")
    p.add_argument("dst", help="output Zarr store or shard folder (a directory; must not exist)")
    p.add_argument("--codec", default="rgb-16x", help="preset name or codec directory")
    p.add_argument("--format", dest="fmt", choices=("zarr", "webdataset"), default="zarr",
                   help="a Zarr store, or tar shards with .wlc members (other members copied)")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3)
    p.add_argument("--workers", type=positive_int, default=2, help="LocalCluster worker processes")
    p.add_argument("--scheduler", help="address of an existing dask.distributed scheduler")
    p.add_argument("--items-per-task", type=positive_int, default=16,
                   help="array sources: rows per task; --format webdataset: items per shard")
    p.add_argument("--tile", type=int, default=1024, help="chunk size along each signal axis")
    p.add_argument("--verify", type=int, default=8, help="decode this many items for the summary")
    p.add_argument("--strict", action="store_true", help="abort if any item is bad")
    p.add_argument("--quality", type=quality, help="1..100, higher = more bits (default: the "
                   "codec's design point, 50)")
    p.add_argument("--max-abs-error", type=float, metavar="EPS",
                   help="float sources: every finite value decodes within EPS of the source")
    p.add_argument("--nan", choices=("raise", "mask"), default="raise",
                   help="float sources with NaN: refuse (default) or store a mask")
    p.add_argument("--shards", type=positive_int, metavar="N",
                   help="array sources, Zarr v3: shards of N x N chunks (sharding codec)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..pipelines.convert import convert

    def progress(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / total)
        end = "\n" if done == total else ""
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} tasks", end=end,
              file=sys.stderr, flush=True)

    summary = convert(args.src, args.dst, args.codec, fmt=args.fmt, zarr_format=args.zarr_format,
                      workers=args.workers, scheduler=args.scheduler, strict=args.strict,
                      items_per_task=args.items_per_task, tile=args.tile, verify=args.verify,
                      progress=progress, quality=args.quality,
                      max_abs_error=args.max_abs_error, nan=args.nan, shards=args.shards)
    from ..codec import load_codec

    modality = load_codec(args.codec, device="cpu").config.modality
    for name, reason in summary.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(f"wrote {args.dst}")
    print("\n".join(summary.lines(modality)))
    if summary.items == 0:
        raise NothingConverted(f"nothing was converted: all {len(summary.skipped)} items of "
                               f"{args.src} were bad")


class NothingConverted(RuntimeError):
    """``walloc convert`` ran but every item was bad: exit status 1."""
