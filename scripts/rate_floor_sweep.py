#!/usr/bin/env python
"""Choose a preset's default-quality rate floor on validation content (never held-out data).

    python scripts/rate_floor_sweep.py rgb-16x --data data/images/val

For each validation photo and a set of synthetic smooth images (dark, low-contrast
gradients with sensor noise, 512x768: the content an MSE-trained rate term starves), every
quality rung from the design point up to the floor rungs is coded (with the boundary split,
as ``Codec.encode`` does) and compared with bicubic at the same DR. A floor ``f`` (bits per
latent, stream bytes) sends each image to the first rung whose stream reaches it. Printed:
the per-image table (bits per latent / dB vs bicubic per rung) and the smallest floor of
the grid that leaves every *starved* image (below bicubic at the design point, which spends
fewer than :data:`STARVED` bits per latent on it) at or above bicubic, or within 0.05 dB of
its best rung where none reaches bicubic. Images the design point codes with more bits and
still below bicubic are the decoder's limit, not the rate term's: no floor is for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import walloc_io
from walloc_io import quality as Q
from walloc_io.media import read_signal
from walloc_io.metrics import bicubic_round_trip, psnr
from walloc_io.signal import prepare

GRID = (0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
STARVED = 2.0  # bits per latent at the design point


def synthetic(channels: int) -> dict[str, np.ndarray]:
    """Smooth dark gradients (the low-contrast regime), seeded."""
    yy, xx = np.mgrid[0:512, 0:768] / np.array([512, 768])[:, None, None]
    out = {}
    for base, amp in ((12, 20), (30, 25), (60, 40), (90, 15)):
        img = np.stack([base + amp * yy + 0.3 * amp * xx, base + amp * yy * 0.9,
                        base + amp * (1 - yy) * 0.5 + 0.2 * amp * np.sin(6 * xx)])[:channels]
        noise = np.random.default_rng(base).normal(0, 0.6, img.shape)
        out[f"gradient-{base}-{amp}"] = np.round(img + noise).clip(0, 255).astype(np.uint8)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("--data", type=Path, default=Path("data/images/val"))
    args = parser.parse_args()
    codec = walloc_io.load_codec(args.preset, device="cpu")
    cfg = codec.config
    factor = 2 if codec.dimensionality_reduction <= 4 else 4
    images = {p.name: read_signal(p).data for p in sorted(args.data.glob("*.png"))}
    if cfg.channels == 1:
        images = {k: np.round(v[:3].astype(np.float64).mean(0, keepdims=True) if v.shape[0] > 1
                              else v).astype(np.uint8) for k, v in images.items()}
    images.update(synthetic(cfg.channels))
    rungs = [None, *(r for r in Q.RUNGS if r > Q.DESIGN), *codec.floor_rungs]
    table = {}
    for name, x in images.items():
        bic = psnr(x, bicubic_round_trip(x, factor))
        p, side = codec._split(prepare(x, cfg.channels, 2, 2 ** cfg.levels, raw_uint8=True))
        row = []
        for q in rungs:
            z = codec._encode_stack([p], Q.step(q))[0]
            blob = codec._pack(p, z, 0, q, boundary=side)
            row.append((8 * len(blob) / z.size, psnr(x, codec.decode(blob)) - bic))
        table[name] = row
        print(f"{name[:24]:24s} " + " ".join(f"{q or 50}:{b:.2f}/{d:+.2f}"
                                              for q, (b, d) in zip(rungs, row)), flush=True)
    for floor in GRID:
        ok = True
        for row in table.values():
            if row[0][1] >= 0 or row[0][0] >= STARVED:
                continue
            picked = next((d for b, d in row if b >= floor), row[-1][1])
            best = max(d for _, d in row)
            ok &= picked >= 0 or picked >= best - 0.05
        if ok:
            print(f"{args.preset}: smallest floor holding every validation image: {floor} "
                  "bits/latent")
            return
    print(f"{args.preset}: no floor in {GRID} holds every validation image")


if __name__ == "__main__":
    main()
