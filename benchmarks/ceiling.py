#!/usr/bin/env python
"""A model's ceiling: its quality at ever finer quantisation steps, against the classical
reduction of the same size (ideal decimation for audio, bicubic for images).

    python benchmarks/ceiling.py mono-16x data/audio/mono/val
    python benchmarks/ceiling.py runs/mono-16x/checkpoint.pt data/audio/mono/val
    python benchmarks/ceiling.py rgb-16x data/images/heldout

The model's network alone (no entropy tables needed, so a training checkpoint works too) at
quantisation steps 1 (the design point), 1/4 (q = 100) and 1/16 (finer than any stream:
what the bottleneck itself allows). Audio: mean SNR over the folder's music clips (first
``--seconds``; ``speech*`` clips skipped, 8 kHz sources) and ideal decimation by the same
reduction. Images: mean PSNR over the folder's photos (uint8, as decoded) and bicubic down
and up by the same reduction. A model whose step-1/16 figure stays below another codec's
curve at some rate cannot reach that codec there at any quality.

``--against EVAL_CSV`` (a ``walloc eval`` table of the same folder) adds where that happens:
the rate at which each classical codec's mean curve reaches the ceiling (log-rate
interpolation), the share of the WaLLoC quality curve's log-rate span above it, and how far
the codec is above the WaLLoC curve at that curve's top rate (n/a where the codec's own
curve stops short of it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from walloc_io.metrics import bicubic_round_trip, decimate_round_trip, psnr, snr

STEPS = (1.0, 0.25, 1 / 16)


def load_model(source: str):
    from walloc_io.config import CodecConfig
    from walloc_io.model import WallocModel
    from walloc_io.presets import PRESET_DIR
    from walloc_io.presets.directory import load_codec_dir

    path = Path(source)
    if path.suffix == ".pt":
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = WallocModel(CodecConfig.from_dict(state["config"]))
        model.load_state_dict(state["model"])
        return model.eval()
    return load_codec_dir(path if path.is_dir() else PRESET_DIR / source)[0].eval()


def audio_rows(model, folder: Path, seconds: float) -> tuple[list[list[float]], str]:
    import soundfile as sf

    cfg = model.config
    factor, block = round(cfg.dimensionality_reduction), 2**cfg.levels
    rows = []
    for path in sorted(folder.glob("*.flac")):
        if path.stem.startswith("speech"):
            continue
        x, rate = sf.read(path, dtype="float32", always_2d=True)
        x = x.T[: cfg.channels]
        x = x[:, : min(x.shape[1], int(seconds * rate)) // block * block]
        if x.shape[0] != cfg.channels:
            continue
        signal = torch.from_numpy(x / 2)[None]
        with torch.no_grad():
            row = [snr(x, 2 * model.decode_latents(model.encode_latents(signal, s), s)[0].numpy())
                   for s in STEPS]
        rows.append([*row, snr(x, decimate_round_trip(x, factor))])
    return rows, f"SNR; ideal decimation /{factor}"


def image_rows(model, folder: Path) -> tuple[list[list[float]], str]:
    from walloc_io.evaluation.rd import items

    cfg = model.config
    factor, block = round(cfg.dimensionality_reduction**0.5), 2**cfg.levels
    rows = []
    for _, x, _ in items(folder, "image", cfg.channels):
        x = x[:, : x.shape[1] // block * block, : x.shape[2] // block * block]
        signal = torch.from_numpy(x / 255.0 - 0.5).float()[None]
        row = []
        with torch.no_grad():
            for s in STEPS:
                y = model.decode_latents(model.encode_latents(signal, s), s)[0].numpy()
                row.append(psnr(x, np.clip(np.round((y + 0.5) * 255), 0, 255).astype(np.uint8)))
        rows.append([*row, psnr(x, bicubic_round_trip(x, factor))])
    return rows, f"PSNR; bicubic /{factor}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="preset name, codec directory or training checkpoint.pt")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--against", type=Path, metavar="EVAL_CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    if model.config.modality == "audio":
        rows, what = audio_rows(model, args.folder, args.seconds)
    else:
        rows, what = image_rows(model, args.folder)
    mean = np.mean(rows, axis=0)
    metric, baseline = what.split("; ")
    print(f"{args.model} on {args.folder}: {len(rows)} items, mean {metric} at step 1 "
          f"{mean[0]:.2f} dB, 1/4 {mean[1]:.2f} dB, 1/16 {mean[2]:.2f} dB; {baseline} "
          f"{mean[3]:.2f} dB")
    if args.against:
        key = "snr" if model.config.modality == "audio" else "psnr"
        for line in crossings(args.against, float(mean[2]), key):
            print("  " + line)


def crossings(table: Path, ceiling: float, key: str = "psnr") -> list[str]:
    """Where each classical codec of a ``walloc eval`` CSV passes ``ceiling`` (mean curves
    of column ``key``: ``psnr`` for images, ``snr`` for audio)."""
    import csv
    from collections import defaultdict

    points = defaultdict(list)
    with table.open() as f:
        for row in csv.DictReader(f):
            if row["rate"] not in ("", "nan"):
                points[(row["method"], row["setting"])].append((float(row["rate"]),
                                                               float(row[key])))
    curves = defaultdict(list)
    for (method, _), values in points.items():
        curves[method].append(tuple(np.mean(values, axis=0)))
    ours = sorted(curves.pop("WaLLoC curve"))
    low, top = np.log(ours[0][0]), np.log(ours[-1][0])
    lines = []
    for method, curve in sorted(curves.items()):
        curve.sort()
        rate, quality = np.log([c[0] for c in curve]), [c[1] for c in curve]
        if method == "WaLLoC" or len(curve) < 2:
            continue
        above = (f"{float(np.interp(top, rate, quality)) - ours[-1][1]:+.2f} dB"
                 if rate[0] <= top <= rate[-1] else "n/a")
        if ceiling < min(quality):
            lines.append(f"{method} is above the ceiling at every rate measured (from "
                         f"{curve[0][0]:.3f}); at the quality curve's top rate "
                         f"({ours[-1][0]:.3f}) {method} minus WaLLoC: {above}")
            continue
        if ceiling > max(quality):
            lines.append(f"{method} stays below the ceiling at every rate measured (to "
                         f"{curve[-1][0]:.3f})")
            continue
        order = np.argsort(quality)
        cross = float(np.interp(ceiling, np.take(quality, order), rate[order]))
        share = (top - max(cross, low)) / (top - low)
        lines.append(f"{method} reaches the ceiling at {np.exp(cross):.3f}; "
                     f"{100 * max(share, 0):.0f} % of the quality curve's log-rate span "
                     f"({ours[0][0]:.3f}-{ours[-1][0]:.3f}) lies above; at its top rate "
                     f"{method} minus WaLLoC: {above}")
    return lines


if __name__ == "__main__":
    main()
