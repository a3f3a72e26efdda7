#!/usr/bin/env python
"""Batched throughput on a CUDA device beside the CPU, for one preset (rgb-16x by default).

    python benchmarks/bench_gpu.py --images data/images/unseen --batch 64 --out benchmarks/results/gpu.md

Rows, each in megapixels per second of signal (and items per second):

- encode: signals -> integer latents (CPU: the C analysis kernel, one thread; CUDA: the
  torch model in float32, one batched call, synchronised) + entropy coding on the CPU;
- decode to signal: integer latents -> signals (the decoder network + inverse packet
  transform, batched; entropy decoding excluded, it is the next row);
- decode to latents: streams -> integer latents (native entropy decoder, CPU, batched).

Items are ``--size`` crops of the given photos. Without CUDA the CUDA columns say so and the
script still measures the CPU (so it is tested on machines without a GPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from report import emit

import walloc_io


def crops(folder: Path | None, size: int, count: int) -> np.ndarray:
    from PIL import Image

    if folder is None:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (count, 3, size, size), dtype=np.uint8)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        im = images[i % len(images)]
        top = rng.integers(0, im.shape[0] - size + 1)
        left = rng.integers(0, im.shape[1] - size + 1)
        out.append(im[top:top + size, left:left + size].transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out))


def best(fn, repeat: int, sync=lambda: None) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(codec, x: np.ndarray, repeat: int) -> dict[str, float]:
    """Seconds per batch for the three rows on the codec's device."""
    cuda = codec.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    blobs = codec.encode_batch(list(x))
    latents = np.stack(codec.decode_latents_batch(blobs))
    out = {"encode": best(lambda: codec.encode_batch(list(x)), repeat, sync),
           "decode to signal": best(lambda: codec.synthesise(latents), repeat, sync)}
    if cuda:  # the network alone, data already on the device
        xt = torch.from_numpy(x).to(codec.device).float() / 255 - 0.5
        with torch.inference_mode():
            out["encode (network only)"] = best(lambda: codec.model.encode_latents(xt), repeat, sync)
    out["decode to latents"] = best(lambda: codec.decode_latents_batch(blobs), repeat)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", default="rgb-16x")
    parser.add_argument("--images", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    x = crops(args.images, args.size, args.batch)
    mp = x.shape[0] * x.shape[2] * x.shape[3] / 1e6
    cpu = measure(walloc_io.load_codec(args.codec, device="cpu"), x, args.repeat)
    gpu = None
    if torch.cuda.is_available():
        gpu = measure(walloc_io.load_codec(args.codec, device="cuda"), x, args.repeat)
        device = torch.cuda.get_device_name()
    else:
        device = "no CUDA device here: CUDA columns not measured"
    lines = [f"{args.codec}, batch of {x.shape[0]} crops {args.size}x{args.size} "
             f"({mp:.1f} MP), CPU one thread; CUDA: {device}", "",
             "| path | CPU MP/s | CPU items/s | CUDA MP/s | CUDA items/s |", "|---|---|---|---|---|"]
    for row in [*cpu, *(k for k in (gpu or {}) if k not in cpu)]:
        c = cpu.get(row)
        g = (gpu or {}).get(row)
        cells = [f"{mp / c:.1f} | {x.shape[0] / c:.0f}" if c else "- | -",
                 f"{mp / g:.1f} | {x.shape[0] / g:.0f}" if g else "- | -"]
        lines.append(f"| {row} | {cells[0]} | {cells[1]} |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
