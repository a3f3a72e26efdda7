#!/usr/bin/env python
"""Choose a preset's default-quality rate floor on validation content (never held-out data).

    python scripts/rate_floor_sweep.py rgb-16x --data data/images/val data/images/unseen
    python scripts/rate_floor_sweep.py mono-16x --data data/audio/mono/val

(audio presets: against ideal decimation at the DR, SNR, on the given FLAC clips; their
target is the mean, so the printed floor is the smallest that holds the validation mean.)

For each validation photo (``val``: held-out photos of the training packages; ``unseen``:
scikit-image / scikit-learn photos, sources no preset trains on, not the held-out set the
figures are reported on), smooth dark low-contrast versions of those photos (blurred, a fifth
of the contrast around a dark level, sensor noise) and synthetic smooth images (dark,
low-contrast gradients with sensor noise, 512x768: the content an MSE-trained rate term
starves), every
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
from PIL import Image

import walloc_io
from walloc_io import quality as Q
from walloc_io.media import read_signal
from walloc_io.metrics import bicubic_round_trip, psnr
from walloc_io.signal import prepare

GRID = tuple(0.25 * i for i in range(13))  # 0 .. 3 bits per latent
STARVED = 2.0  # bits per latent at the design point


def dusk(images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Smooth, dark, low-contrast versions of the validation photos (blurred, contrast cut
    to a fifth around a dark level, sensor noise): misty or dusk scenes made of validation
    content, the regime an MSE-trained rate term starves."""
    from PIL import ImageFilter

    out = {}
    for i, (name, x) in enumerate(images.items()):
        mode = "L" if x.shape[0] == 1 else "RGB"
        im = Image.fromarray(x[0] if mode == "L" else x.transpose(1, 2, 0), mode)
        y = np.asarray(im.filter(ImageFilter.GaussianBlur(4)), np.float64)
        y = y[None] if mode == "L" else y.transpose(2, 0, 1)
        y = 30 + 0.2 * (y - y.mean()) + np.random.default_rng(i).normal(0, 0.6, y.shape)
        out[f"dusk-{name}"] = np.round(y).clip(0, 255).astype(np.uint8)
    return out


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
    parser.add_argument("--data", type=Path, nargs="+",
                        default=[Path("data/images/val"), Path("data/images/unseen")])
    args = parser.parse_args()
    codec = walloc_io.load_codec(args.preset, device="cpu")
    cfg = codec.config
    if cfg.modality == "audio":
        return audio(codec, args.data)
    factor = 2 if codec.dimensionality_reduction <= 4 else 4
    mode = "L" if cfg.channels == 1 else "RGB"  # as training and walloc eval read them
    images = {p.name: np.asarray(Image.open(p).convert(mode)).reshape(
        *Image.open(p).size[::-1], -1).transpose(2, 0, 1).copy()
        for d in args.data for p in sorted(d.glob("*.png"))}
    images.update(dusk({k: v for k, v in images.items() if min(v.shape[1:]) >= 256}))
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
    decide(args.preset, table)


def decide(preset: str, table: dict[str, list[tuple[float, float]]]) -> None:
    """Print the smallest floor of :data:`GRID` that holds every starved item."""
    for floor in GRID:
        ok = True
        for row in table.values():
            if row[0][1] >= 0 or row[0][0] >= STARVED:
                continue
            picked = next((d for b, d in row if b >= floor), row[-1][1])
            best = max(d for _, d in row)
            ok &= picked >= 0 or picked >= best - 0.05
        if ok:
            print(f"{preset}: smallest floor holding every validation item: {floor} bits/latent")
            return
    print(f"{preset}: no floor in {GRID} holds every validation item")


def audio(codec, folders: list[Path]) -> None:
    """The same sweep for an audio preset against ideal decimation at its DR (SNR)."""
    from walloc_io.metrics import decimate_round_trip, snr

    cfg = codec.config
    factor = max(1, round(codec.dimensionality_reduction))
    rungs = [None, *(r for r in Q.RUNGS if r > Q.DESIGN), *codec.floor_rungs]
    table = {}
    for path in (p for d in folders for p in sorted(d.glob("*.flac"))):
        x = read_signal(path).data
        base = snr(x, decimate_round_trip(x, factor))
        p, _ = codec._split(prepare(x, cfg.channels, 1, 2 ** cfg.levels))
        row = []
        for q in rungs:
            z = codec._encode_stack([p], Q.step(q))[0]
            blob = codec._pack(p, z, 0, q)
            row.append((8 * len(blob) / z.size, snr(x, codec.decode(blob)) - base))
        table[path.name] = row
        print(f"{path.name[:24]:24s} " + " ".join(f"{q or 50}:{b:.2f}/{d:+.2f}"
                                                 for q, (b, d) in zip(rungs, row)), flush=True)
    mean = np.mean(list(table.values()), axis=0)
    print("mean                     " + " ".join(f"{q or 50}:{b:.2f}/{d:+.2f}"
                                                 for q, (b, d) in zip(rungs, mean)))
    # audio's target is the mean against decimation (the 16x bottleneck saturates near it):
    # the smallest floor whose picked rungs reach it on average
    for floor in np.arange(0.0, 8.01, 0.25):
        picked = [next((d for b, d in row if b >= floor), row[-1][1]) for row in table.values()]
        bits = [next((b for b, _ in row if b >= floor), row[-1][0]) for row in table.values()]
        if np.mean(picked) >= 0:
            print(f"{cfg.name}: smallest floor holding the validation mean at or above "
                  f"decimation /{factor}: {floor:g} bits/latent (mean {np.mean(picked):+.2f} dB "
                  f"at {np.mean(bits):.2f} bits/latent; design point {mean[0][0]:.2f})")
            return
    print(f"{cfg.name}: no floor up to 8 bits/latent holds the validation mean")


if __name__ == "__main__":
    main()
