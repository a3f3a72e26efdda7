#!/usr/bin/env python
"""The smooth-gradient failure, before and after: PSNR and crops of a held-out photo.

    python scripts/prepare_data.py heldout
    python scripts/smooth_gradient_report.py --image data/images/heldout/DarkestHour.png \\
        --out benchmarks/results/smooth-gradient

For each codec given (``--codec``, repeatable: a preset name, ``NAME@FINGERPRINT8`` for a
kept version, or a codec directory) the photo is coded at the design point (``quality=50``,
what walloc-io 0.2 did) and at the default (``quality=None``: the design point raised by the
rate floor), next to bicubic at the same DR. Writes ``report.md`` and PNG crops (the top
edge and a sky region, 4x nearest-neighbour enlarged, contrast stretched so banding and the
8x8 grid are visible; the same stretch for every panel).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import walloc_io
from walloc_io.metrics import bicubic_round_trip, psnr


def load(spec: str):
    name, _, fp = spec.partition("@")
    if not fp:
        return walloc_io.load_codec(name, device="cpu")
    from walloc_io.presets import resolve, versions

    found = [f for f in versions(resolve(name)) if f.startswith(fp)]
    return walloc_io.load_codec(name, device="cpu", fingerprint=found[0])


def stretch(crop: np.ndarray, low: float, high: float) -> Image.Image:
    x = (crop.astype(np.float64) - low) / max(high - low, 1) * 255
    im = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8).transpose(1, 2, 0))
    return im.resize((im.width * 4, im.height * 4), Image.Resampling.NEAREST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, default=Path("data/images/heldout/DarkestHour.png"))
    parser.add_argument("--codec", action="append", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/smooth-gradient"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    x = np.asarray(Image.open(args.image).convert("RGB")).transpose(2, 0, 1).copy()
    panels = {"original": x, "bicubic /4": bicubic_round_trip(x, 4)}
    lines = [f"# Smooth-gradient photo: {args.image.name} ({x.shape[2]}x{x.shape[1]})", "",
             "| method | bpp | PSNR dB | vs bicubic dB | top 8 rows PSNR dB |", "|---|---|---|---|---|"]
    bic = psnr(x, panels["bicubic /4"])
    lines.append(f"| bicubic /4 (same DR) | - | {bic:.2f} | 0 | "
                 f"{psnr(x[:, :8], panels['bicubic /4'][:, :8]):.2f} |")
    for spec in args.codec or ["rgb-16x"]:
        codec = load(spec)
        for label, q in (("design point (q=50)", 50), ("default", None)):
            blob = codec.encode(x, quality=q)
            y = codec.decode(blob)
            used = walloc_io.read_header(blob).quality
            key = f"{spec} {label}" + (f" -> q={used}" if q is None and used else "")
            panels[key] = y
            lines.append(f"| {key} ({codec.fingerprint[:8]}) | {8 * len(blob) / x[0].size:.3f} | "
                         f"{psnr(x, y):.2f} | {psnr(x, y) - bic:+.2f} | "
                         f"{psnr(x[:, :8], y[:, :8]):.2f} |")
    sky = (slice(None), slice(0, 64), slice(x.shape[2] // 2 - 96, x.shape[2] // 2 + 96))
    low, high = np.percentile(x[sky], 1), np.percentile(x[sky], 99)
    lines += ["", "Crops (rows 0-63, the centre 192 columns; contrast stretched "
              f"{low:.0f}..{high:.0f} -> 0..255, 4x enlarged):", ""]
    for i, (key, y) in enumerate(panels.items()):
        name = f"crop-{i}-{''.join(ch for ch in key.replace(' ', '_') if ch.isalnum() or ch in '_-@')}.png"
        stretch(y[sky], low, high).save(args.out / name)
        lines.append(f"- {key}: `{name}`")
    text = "\n".join(lines) + "\n"
    (args.out / "report.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
