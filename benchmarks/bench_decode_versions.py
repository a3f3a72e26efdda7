#!/usr/bin/env python
"""Decode speed of a preset's current model against a kept version, in one run (ms/MP).

    python benchmarks/bench_decode_versions.py rgb-16x 74b8f140 --images data/images/heldout

Every image is encoded once at the default quality by each model; each stream is then
decoded ``--repeat`` times (one torch thread) and the median is taken per image. The
models alternate image by image, so drift on the machine falls on both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import walloc_io
from walloc_io.presets import resolve, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("version", help="fingerprint prefix of a kept version")
    parser.add_argument("--images", type=Path, default=Path("data/images/heldout"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    current = walloc_io.load_codec(args.preset, device="cpu")
    kept = [fp for fp in versions(resolve(args.preset)) if fp.startswith(args.version)]
    if len(kept) != 1:
        raise SystemExit(f"{args.preset} keeps no single version {args.version}*")
    old = walloc_io.load_codec(args.preset, device="cpu", fingerprint=kept[0])
    mode = {1: "L", 3: "RGB"}[current.config.channels]
    times: dict[str, list[float]] = {"current": [], "kept": []}
    pixels = 0
    for path in sorted(args.images.glob("*.png")):
        x = np.asarray(Image.open(path).convert(mode))
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        pixels += x.shape[1] * x.shape[2]
        for name, codec in (("current", current), ("kept", old)):
            blob = codec.encode(x)
            codec.decode(blob)  # warm
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                codec.decode(blob)
                runs.append(time.perf_counter() - t)
            times[name].append(statistics.median(runs))
    ms = {k: 1e3 * sum(v) / (pixels / 1e6) for k, v in times.items()}
    print(f"{args.preset}: current {current.fingerprint[:8]} {ms['current']:.1f} ms/MP, "
          f"kept {kept[0][:8]} {ms['kept']:.1f} ms/MP, ratio {ms['current'] / ms['kept']:.2f}")


if __name__ == "__main__":
    main()
