#!/usr/bin/env python
"""Decode speed of a preset's current model against a kept version, in one run (ms/MP).

    python benchmarks/bench_decode_versions.py rgb-16x 74b8f140 --images data/images/heldout
    python benchmarks/bench_decode_versions.py mono-16x 3ef29b9b --clips data/audio/heldout/mono

Every image is encoded once at the default quality by each model; each stream is then
decoded ``--repeat`` times (one torch thread) and the median is taken per image. The
models alternate image by image, so drift on the machine falls on both alike. The decoder's
multiply-accumulates per output pixel (convolutions, counted by forward hooks on one decode)
are printed beside the times. ``--candidate DIR`` adds a codec directory not yet installed
(a training run's ``--out``), timed in the same run. ``--precision``/``--kept-precision``
and ``--synthesis``/``--kept-synthesis`` pick each model's arithmetic: bfloat16 or float32
residual blocks, the C inverse transform (walloc-io 0.10) or torch's (0.9 and before).
Audio presets time ``--clips`` (default: the held-out clips of their channel count) in ms
per million time samples and count MACs per time sample.
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
from walloc_io.presets import resolve, versions

SYNTHESES = ("c", "torch")


def label(codec) -> str:
    """The decoder's arithmetic: residual blocks' precision, and the inverse transform."""
    return f"{codec.precision}, {'C' if codec.native_synthesis else 'torch'} synthesis"


def decoder_macs_per_pixel(codec, blob: bytes, pixels: int) -> float:
    """Multiply-accumulates of ``codec``'s decoder convolutions in decoding ``blob``, per
    pixel of the decoded signal (the packet transform and the entropy decoder excluded)."""
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        total += output.numel() * (module.in_channels // module.groups) * int(
            np.prod(module.kernel_size))

    hooks = [m.register_forward_hook(count) for m in codec.model.decoder.modules()
             if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    try:
        codec.decode(blob)
    finally:
        for h in hooks:
            h.remove()
    return total / pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("version", help="fingerprint prefix of a kept version")
    parser.add_argument("--images", type=Path, default=Path("data/images/heldout"))
    parser.add_argument("--clips", type=Path, help="audio presets: the clips to time "
                        "(default: data/audio/heldout/mono or .../stereo)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--candidate", type=Path, help="a codec directory to time too")
    parser.add_argument("--precision", default="auto", help="the current model's and the "
                        "candidate's decoder arithmetic (walloc_io.load_codec)")
    parser.add_argument("--kept-precision", default="auto",
                        help="the kept version's (float32: as walloc-io 0.9 and before)")
    parser.add_argument("--synthesis", choices=SYNTHESES, default="c",
                        help="the current model's and the candidate's inverse transform: c "
                        "(the codec's CPU default since 0.10) or torch (0.9 and before)")
    parser.add_argument("--kept-synthesis", choices=SYNTHESES, default="c",
                        help="the kept version's (torch: as it was timed when released)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    current = walloc_io.load_codec(args.preset, device="cpu", precision=args.precision)
    kept = [fp for fp in versions(resolve(args.preset)) if fp.startswith(args.version)]
    if len(kept) != 1:
        raise SystemExit(f"{args.preset} keeps no single version {args.version}*")
    old = walloc_io.load_codec(args.preset, device="cpu", fingerprint=kept[0],
                               precision=args.kept_precision)
    codecs = {"current": current, "kept": old}
    if args.candidate is not None:
        codecs["candidate"] = walloc_io.load_codec(args.candidate, device="cpu",
                                                   precision=args.precision)
    for name, codec in codecs.items():
        codec.native_synthesis = (args.kept_synthesis if name == "kept" else args.synthesis) == "c"
    times: dict[str, list[float]] = {name: [] for name in codecs}
    pixels = 0
    macs: dict[str, float] = {}
    for x, rate in inputs(current.config, args):
        size = int(np.prod(x.shape[1:]))  # pixels, or time samples
        pixels += size
        for name, codec in codecs.items():
            blob = codec.encode(x, sample_rate=rate)
            macs.setdefault(name, decoder_macs_per_pixel(codec, blob, size))
            codec.decode(blob)  # warm
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                codec.decode(blob)
                runs.append(time.perf_counter() - t)
            times[name].append(statistics.median(runs))
    ms = {k: 1e3 * sum(v) / (pixels / 1e6) for k, v in times.items()}
    per, unit = ("pixel", "MP") if current.config.modality == "image" else ("sample", "MS")
    print(f"{args.preset}: current {current.fingerprint[:8]} ({label(current)}) "
          f"{ms['current']:.1f} ms/{unit} ({macs['current']:.0f} MAC/{per}), kept "
          f"{kept[0][:8]} ({label(old)}) {ms['kept']:.1f} ms/{unit} "
          f"({macs['kept']:.0f} MAC/{per}), ratio {ms['current'] / ms['kept']:.2f}")
    if "candidate" in codecs:
        c = codecs["candidate"]
        print(f"{args.preset}: candidate {c.fingerprint[:8]} ({label(c)}) "
              f"{ms['candidate']:.1f} ms/{unit} ({macs['candidate']:.0f} MAC/{per}), "
              f"ratio {ms['candidate'] / ms['current']:.2f} to current")


def inputs(cfg, args):
    """``(signal, sample rate)`` of every held-out image (uint8) or clip (int16)."""
    if cfg.modality == "audio":
        folder = args.clips or Path("data/audio/heldout") / (
            "mono" if cfg.channels == 1 else "stereo")
        for path in signal_files(folder, "audio"):
            clip = read_signal(path)
            yield clip.data, clip.sample_rate
        return
    mode = {1: "L", 3: "RGB"}[cfg.channels]
    for path in sorted(args.images.glob("*.png")):
        x = np.asarray(Image.open(path).convert(mode))
        yield (x[None] if x.ndim == 2 else x.transpose(2, 0, 1)), 0


if __name__ == "__main__":
    main()
