#!/usr/bin/env python
"""An audio model's ceiling: SNR at ever finer quantisation steps, against ideal decimation.

    python benchmarks/audio_ceiling.py mono-16x data/audio/mono/val
    python benchmarks/audio_ceiling.py runs/mono-16x/checkpoint.pt data/audio/mono/val

The model's network alone (no entropy tables needed, so a training checkpoint works too):
mean SNR over the folder's music clips (first ``--seconds``; ``speech*`` clips skipped, 8 kHz
sources) at quantisation steps 1 (the design point), 1/4 (q = 100) and 1/16 (finer than any
stream: what the bottleneck itself allows), and ideal decimation by the same reduction. A
model whose step-1/16 figure stays below decimation cannot reach it at any quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from walloc_io.metrics import decimate_round_trip, snr

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


def main() -> None:
    import soundfile as sf

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="preset name, codec directory or training checkpoint.pt")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    cfg = model.config
    factor, block = round(cfg.packet_channels / cfg.latent_channels), 2**cfg.levels
    rows = []
    for path in sorted(args.folder.glob("*.flac")):
        if path.stem.startswith("speech"):
            continue
        x, _ = sf.read(path, dtype="float32", always_2d=True)
        x = x.T[: cfg.channels]
        x = x[:, : min(x.shape[1], int(args.seconds * 44100)) // block * block]
        if x.shape[0] != cfg.channels:
            continue
        signal = torch.from_numpy(x / 2)[None]
        with torch.no_grad():
            row = [snr(x, 2 * model.decode_latents(model.encode_latents(signal, s), s)[0].numpy())
                   for s in STEPS]
        rows.append([*row, snr(x, decimate_round_trip(x, factor))])
    mean = np.mean(rows, axis=0)
    print(f"{args.model} on {args.folder}: {len(rows)} clips, mean SNR at step 1 {mean[0]:.2f} dB, 1/4 "
          f"{mean[1]:.2f} dB, 1/16 {mean[2]:.2f} dB; ideal decimation /{factor} {mean[3]:.2f} dB")


if __name__ == "__main__":
    main()
