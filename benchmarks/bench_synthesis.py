#!/usr/bin/env python
"""A preset decoded with the C inverse transform and with torch's, in one run: speed and error.

    python benchmarks/bench_synthesis.py rgb-16x [--data data/images/heldout]
    python benchmarks/bench_synthesis.py mono-16x --data data/audio/heldout/mono

Each item (the folder's photos, grey ones made as Pillow's ``convert("L")`` makes them, or
its audio clips) is coded once at the default quality;
the stream is decoded ``--repeat`` times with each inverse packet transform, alternating,
one torch thread (median per item). The decoder network and its arithmetic (the preset's
``precision="auto"``) are the same for both. Printed: the largest change of a decoded sample
(levels of the dtype) and the share of samples changed, PSNR (images) or SNR (audio) with
each, then the decode time of each (ms per megapixel or per minute of audio) and their ratio.
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
from walloc_io.media import read_signal, signal_files
from walloc_io.metrics import psnr, snr

ARMS = ("torch", "c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("--data", type=Path, default=Path("data/images/heldout"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = walloc_io.load_codec(args.preset, device="cpu")
    modality = codec.config.modality
    score = psnr if modality == "image" else snr
    times: dict[str, list[float]] = {arm: [] for arm in ARMS}
    quality: dict[str, list[float]] = {arm: [] for arm in ARMS}
    size, worst, changed, total = 0.0, 0, 0, 0
    for path in signal_files(args.data, modality):
        signal = read_signal(path)
        x = signal.data
        if modality == "image" and x.shape[0] != codec.config.channels:  # RGB photos, grey codec
            x = np.asarray(Image.open(path).convert("L"))[None]
        blob = codec.encode(x, sample_rate=signal.sample_rate)
        out = {}
        for arm in ARMS:
            codec.native_synthesis = arm == "c"
            out[arm] = codec.decode(blob)  # also the warm-up
        runs: dict[str, list[float]] = {arm: [] for arm in ARMS}
        for _ in range(args.repeat):
            for arm in ARMS:
                codec.native_synthesis = arm == "c"
                t = time.perf_counter()
                codec.decode(blob)
                runs[arm].append(time.perf_counter() - t)
        for arm in ARMS:
            times[arm].append(statistics.median(runs[arm]))
            quality[arm].append(score(x, out[arm]))
        d = np.abs(out["c"].astype(np.int64) - out["torch"].astype(np.int64))
        worst, changed, total = max(worst, int(d.max())), changed + np.count_nonzero(d), total + d.size
        size += (x.shape[1] * x.shape[2] / 1e6 if modality == "image"
                 else x.shape[-1] / signal.sample_rate / 60)
    unit = "ms/MP" if modality == "image" else "ms per minute"
    name = "PSNR" if modality == "image" else "SNR"
    ms = {arm: 1e3 * sum(v) / size for arm, v in times.items()}
    print(f"{args.preset} {codec.fingerprint[:8]} ({codec.precision} blocks), "
          f"{len(times['c'])} items of {args.data}:")
    print(f"  largest change {worst} level(s), {changed / max(total, 1):.3%} of samples changed; "
          f"mean {name} torch {np.mean(quality['torch']):.4f} dB, C {np.mean(quality['c']):.4f} dB")
    print(f"  decode: torch synthesis {ms['torch']:.1f} {unit}, C synthesis {ms['c']:.1f} {unit}, "
          f"ratio {ms['c'] / ms['torch']:.2f}")


if __name__ == "__main__":
    main()
