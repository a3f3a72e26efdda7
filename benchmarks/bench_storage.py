#!/usr/bin/env python
"""Storage benchmark: ``walloc convert`` scaling, Zarr read throughput (signals vs latents vs
raw uint8 under Blosc/Zstd), and store size vs the source archive. One run, same images.

    python benchmarks/bench_storage.py --images data/images/val --out benchmarks/results/storage.md

- conversion: the folder through ``walloc convert`` on a LocalCluster of 1 and of 2 worker
  processes (one thread each); megapixels per second and the 2-vs-1 scaling ratio. Cluster
  start-up is excluded (the client is created first), task scheduling is not.
- reads: the same images stacked ``(N, 3, H, W)`` (centre-cropped to a common size), one chunk
  per image, read back in full: WaLLoC signals through zarr, signals through
  ``decode_array`` (batched, 8 chunks per call), latents through ``open_latents``, and raw
  uint8 Zarr arrays compressed with Zstd (level 3) and Blosc (lz4, shuffle). Best of
  ``--repeat``, single-threaded scheduler.
- sizes: WaLLoC chunk bytes vs the source files (PNG here) and vs the same images as JPEG q90.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from report import emit


def best(fn, repeat: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("data/images/val"))
    parser.add_argument("--codec", default="rgb-16x")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import distributed
    import torch
    import zarr
    from PIL import Image
    from zarr.codecs import BloscCodec, ZstdCodec

    import walloc_io
    from walloc_io.media import read_signal, signal_files
    from walloc_io.pipelines.convert import convert

    torch.set_num_threads(1)
    files = signal_files(args.images, "image")
    images = [read_signal(f).data for f in files]
    mp = sum(im.shape[1] * im.shape[2] for im in images) / 1e6
    lines = [f"# Storage benchmark: {len(images)} photos from {args.images}, {mp:.2f} MP, "
             f"codec {args.codec}", ""]
    tmp = Path(tempfile.mkdtemp())
    try:
        # -- conversion scaling -----------------------------------------------------------------
        rates = {}
        for workers in (1, 2):
            with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                          dashboard_address=None) as cluster, \
                    distributed.Client(cluster) as client:
                client.run(lambda: __import__("walloc_io").load_codec(args.codec, device="cpu"))
                dst = tmp / f"conv{workers}.zarr"
                t = time.perf_counter()
                summary = convert(str(args.images), str(dst), args.codec, client=client, verify=0)
                rates[workers] = mp / (time.perf_counter() - t)
        lines += ["| conversion | MP/s |", "|---|---|",
                  f"| walloc convert, 1 worker | {rates[1]:.2f} |",
                  f"| walloc convert, 2 workers | {rates[2]:.2f} |",
                  f"| scaling 2 vs 1 | {rates[2] / rates[1]:.2f}x |", ""]
        # -- sizes ------------------------------------------------------------------------------
        source = sum(f.stat().st_size for f in files)
        jpeg = 0
        for im in images:
            buf = io.BytesIO()
            Image.fromarray(im.transpose(1, 2, 0)).save(buf, format="JPEG", quality=90)
            jpeg += buf.getbuffer().nbytes
        ours = summary.output_bytes
        lines += ["| archive | bytes | vs WaLLoC store |", "|---|---|---|",
                  f"| source files ({files[0].suffix}) | {source} | {source / ours:.1f}x |",
                  f"| same images as JPEG q90 | {jpeg} | {jpeg / ours:.1f}x |",
                  f"| WaLLoC Zarr store (chunks) | {ours} | 1.0x |", ""]
        # -- read throughput --------------------------------------------------------------------
        h = min(im.shape[1] for im in images)
        w = min(im.shape[2] for im in images)
        stack = np.stack([im[:, (im.shape[1] - h) // 2:(im.shape[1] - h) // 2 + h,
                             (im.shape[2] - w) // 2:(im.shape[2] - w) // 2 + w] for im in images])
        smp = stack.shape[0] * h * w / 1e6
        chunks = (1, 3, h, w)
        made = {
            "WaLLoC": dict(serializer={"name": "walloc", "configuration": {"preset": args.codec}},
                           compressors=None),
            "raw uint8 + Zstd(3)": dict(compressors=ZstdCodec(level=3)),
            "raw uint8 + Blosc(lz4, shuffle)": dict(compressors=BloscCodec(cname="lz4", clevel=5,
                                                                           shuffle="shuffle")),
        }
        paths = {}
        for name, options in made.items():
            paths[name] = tmp / (name.split()[0].replace("/", "") + f"{len(paths)}.zarr")
            zarr.create_array(paths[name], shape=stack.shape, chunks=chunks, dtype="uint8",
                              **options)[:] = stack
        rows = []
        wl = paths["WaLLoC"]
        t_sig, _ = best(lambda: zarr.open_array(wl, mode="r")[:], args.repeat)
        t_bat, _ = best(lambda: walloc_io.decode_array(wl, chunks_per_task=8, device="cpu").compute(
            scheduler="sync"), args.repeat)
        t_lat, lat = best(lambda: walloc_io.open_latents(wl).compute(scheduler="sync"), args.repeat)
        rows += [("WaLLoC -> signals (zarr, chunk by chunk)", t_sig, folder_bytes(wl)),
                 ("WaLLoC -> signals (decode_array, batched)", t_bat, folder_bytes(wl)),
                 ("WaLLoC -> latents (open_latents)", t_lat, folder_bytes(wl))]
        for name in list(made)[1:]:
            t, _ = best(lambda p=paths[name]: zarr.open_array(p, mode="r")[:], args.repeat)
            rows.append((f"{name} -> pixels", t, folder_bytes(paths[name])))
        zstd = rows[3][1]
        lines += [f"Reads of {stack.shape[0]} images stacked {stack.shape} ({smp:.2f} MP), best of "
                  f"{args.repeat}, one thread:", "",
                  "| read | MP/s | vs raw+Zstd | store bytes |", "|---|---|---|---|"]
        lines += [f"| {n} | {smp / t:.1f} | {zstd / t:.2f}x | {b} |" for n, t, b in rows]
        lines += ["", f"latents per image: {lat.shape[1:]} int32 ({lat[0].size} values vs "
                      f"{stack[0].size} pixel values)"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
