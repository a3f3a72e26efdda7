#!/usr/bin/env python
"""A preset decoded in float32 and in its checked bfloat16 plan, in one run: speed and PSNR.

    python benchmarks/bench_precision.py rgb-16x [--images data/images/heldout]

Each photo is coded once at the default quality; the stream is decoded ``--repeat`` times by
each arithmetic, alternating, one torch thread (median per photo). Printed per photo: PSNR in
float32 and in bfloat16, the largest change of a pixel (levels of 255) and the share of
pixels changed; then the decode time of each (ms/MP) and their ratio. The plan is the one
the preset's manifest records (``scripts/check_precision.py``, chosen on validation photos);
this measures it on photos it was not chosen on.
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
from walloc_io.metrics import psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("--images", type=Path, default=Path("data/images/heldout"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    exact = walloc_io.load_codec(args.preset, device="cpu", precision="float32")
    reduced = walloc_io.load_codec(args.preset, device="cpu", precision="bfloat16")
    plan = reduced.reduced
    print(f"{args.preset} {exact.fingerprint[:8]}: bfloat16 blocks but "
          f"{list(plan.keep) if plan else []} (float32)")
    mode = {1: "L", 3: "RGB"}[exact.config.channels]
    times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    pixels, losses = 0, []
    for path in sorted(args.images.glob("*.png")):
        x = np.asarray(Image.open(path).convert(mode))
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        pixels += x.shape[1] * x.shape[2]
        blob = exact.encode(x)
        out = {}
        for name, codec in (("float32", exact), ("bfloat16", reduced)):
            out[name] = codec.decode(blob)  # also the warm-up
        for _ in range(args.repeat):
            for name, codec in (("float32", exact), ("bfloat16", reduced)):
                t = time.perf_counter()
                codec.decode(blob)
                times.setdefault(f"{name}-runs", []).append(time.perf_counter() - t)
        for name in ("float32", "bfloat16"):
            times[name].append(statistics.median(times.pop(f"{name}-runs")))
        a, b = out["float32"], out["bfloat16"]
        d = np.abs(a.astype(np.int16) - b.astype(np.int16))
        pa, pb = psnr(x, a), psnr(x, b)
        losses.append(pa - pb)
        print(f"  {path.stem:28s} {pa:7.3f} -> {pb:7.3f} dB  max change {int(d.max())}  "
              f"changed {np.count_nonzero(d) / d.size:.2%}")
    ms = {k: 1e3 * sum(v) / (pixels / 1e6) for k, v in times.items()}
    print(f"  mean PSNR change {-np.mean(losses):+.4f} dB, worst {-np.max(losses):+.4f} dB")
    print(f"  decode: float32 {ms['float32']:.1f} ms/MP, bfloat16 {ms['bfloat16']:.1f} ms/MP, "
          f"ratio {ms['bfloat16'] / ms['float32']:.2f}")


if __name__ == "__main__":
    main()
