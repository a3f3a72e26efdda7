#!/usr/bin/env python
"""PSNR on small tiles (coded without the boundary split) of a preset's current model
against a kept version, at qualities 1, 50 and 100 and the default.

    python benchmarks/bench_tiles.py rgb-16x 74b8f140 --images data/images/heldout
    python benchmarks/bench_tiles.py rgb-16x 74b8f140 --candidate runs/rgb-16x-m6-out

Images and chunks with an axis under 256 are coded as they are, wrap edges included
(:mod:`walloc_io.boundary`), so a decoder must hold its quality there too. Tiles are
``--tile``-sized, four per image (the corners of a 2x2 grid), from the first ``--count``
images. ``--candidate DIR`` adds a codec directory not yet installed (a training run's
output) to the comparison.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import walloc_io
from walloc_io.metrics import psnr
from walloc_io.presets import resolve, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("version", help="fingerprint prefix of a kept version")
    parser.add_argument("--images", type=Path, default=Path("data/images/heldout"))
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--candidate", type=Path, help="a codec directory to compare too")
    args = parser.parse_args()
    kept = [fp for fp in versions(resolve(args.preset)) if fp.startswith(args.version)]
    if len(kept) != 1:
        raise SystemExit(f"{args.preset} keeps no single version {args.version}*")
    codecs = {"current": walloc_io.load_codec(args.preset, device="cpu"),
              f"kept {kept[0][:8]}": walloc_io.load_codec(args.preset, device="cpu",
                                                          fingerprint=kept[0])}
    if args.candidate is not None:
        codecs["candidate"] = walloc_io.load_codec(args.candidate, device="cpu")
    mode = {1: "L", 3: "RGB"}[codecs["current"].config.channels]
    tiles, t = [], args.tile
    for path in sorted(args.images.glob("*.png"))[: args.count]:
        x = np.asarray(Image.open(path).convert(mode))
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        h, w = x.shape[1] // 2, x.shape[2] // 2
        tiles += [x[:, i:i + t, j:j + t] for i in (0, h) for j in (0, w)]
    print(f"{args.preset}: {len(tiles)} tiles of {t}x{t}, mean PSNR dB")
    print("| model | q1 | q50 | q100 | default |\n|---|---|---|---|---|")
    for name, codec in codecs.items():
        row = [np.mean([psnr(x, codec.decode(codec.encode(x, quality=q))) for x in tiles])
               for q in (1, 50, 100, None)]
        print(f"| {name} {codec.fingerprint[:8]} | " + " | ".join(f"{v:.2f}" for v in row) + " |")


if __name__ == "__main__":
    main()
