#!/usr/bin/env python
"""Compress every image of a folder with a WaLLoC preset, in batches, and report.

    python examples/compress_folder.py PHOTOS_DIR OUT_DIR --codec rgb-16x

Writes ``OUT_DIR/<name>.wlc`` per image; prints bytes, bpp and PSNR per file. Shows the
batch API: equal-size images share one tensor call.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import walloc_io
from walloc_io.media import read_signal
from walloc_io.metrics import psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--codec", default="rgb-16x")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    codec = walloc_io.load_codec(args.codec)
    paths = sorted(p for p in args.src.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif"))
    args.dst.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(paths), args.batch):
        chunk = paths[start : start + args.batch]
        images = [read_signal(p).data for p in chunk]
        blobs = codec.encode_batch(images)
        for path, image, blob, decoded in zip(chunk, images, blobs, codec.decode_batch(blobs)):
            (args.dst / f"{path.stem}.wlc").write_bytes(blob)
            bpp = 8 * len(blob) / (image.shape[1] * image.shape[2])
            print(f"{path.name}: {len(blob)} bytes, {bpp:.3f} bpp, {psnr(image, decoded):.2f} dB")


if __name__ == "__main__":
    main()
