#!/usr/bin/env python
"""Decode/encode time of rgb-16x version 3 (rate allocation) against version 2 (the same
weights, one step for all channels), interleaved in one process, single-threaded.

    python benchmarks/bench_allocation_speed.py --images data/images/heldout

The ratio is what counts: absolute ms/MP drift with the load on this VM.
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
from walloc_io.presets import PRESET_DIR, versions


def _timed(run) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=Path("data/images/heldout"))
    parser.add_argument("--old", default="781b910c", help="fingerprint prefix of the baseline")
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    new = walloc_io.load_codec("rgb-16x", device="cpu")
    old_fp = next(f for f in versions(PRESET_DIR / "rgb-16x") if f.startswith(args.old))
    old = walloc_io.load_codec("rgb-16x", device="cpu", fingerprint=old_fp)
    images = [np.asarray(Image.open(f).convert("RGB")).transpose(2, 0, 1).copy()
              for f in sorted(args.images.glob("*.png"))[: args.count]]
    mp = sum(x.shape[1] * x.shape[2] for x in images) / 1e6
    codecs = {f"version 2 ({old.fingerprint[:8]})": old, f"version 3 ({new.fingerprint[:8]})": new}
    blobs = {name: [c.encode(x, quality=50) for x in images] for name, c in codecs.items()}
    decode: dict[str, list[float]] = {name: [] for name in codecs}
    encode: dict[str, list[float]] = {name: [] for name in codecs}
    for _ in range(args.repeat):
        for name, c in codecs.items():
            decode[name].append(_timed(lambda: [c.decode(b) for b in blobs[name]]))  # noqa: B023
            encode[name].append(_timed(lambda: [c.encode(x, quality=50) for x in images]))  # noqa: B023
    for name in codecs:
        print(f"{name}: decode {1000 * statistics.median(decode[name]) / mp:.1f} ms/MP, "
              f"encode {1000 * statistics.median(encode[name]) / mp:.1f} ms/MP (q50, 1 thread)")
    a, b = (statistics.median(decode[n]) for n in codecs)
    print(f"decode time, version 3 / version 2: {b / a:.3f}")


if __name__ == "__main__":
    main()
