#!/usr/bin/env python
"""Spectrally tilted copies of validation clips: the bass-heavy and bright mixes a codec
trained on one collection's balance never met (validation content, never held-out data).

    python scripts/tilt_audio.py data/audio/mono/val data/audio/mono/val-tilted
    walloc eval mono-16x data/audio/mono/val-tilted --out benchmarks/results/...

Each FLAC clip of FOLDER (speech clips excepted: 8 kHz sources with nothing to tilt above
4 kHz) is cut to its first ``--seconds`` and written tilted by each slope of ``--slopes``
(dB per octave around 1 kHz, flat below 50 Hz: :func:`walloc_io.training.data.tilt_spectrum`,
the filter ``walloc train --spectral-tilt`` applies to crops), rescaled to its own peak, as
``NAME_tilt-6.flac`` etc. (24-bit). ``walloc eval`` then measures the codec against ideal
decimation and MP3/Opus on them like on any folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    import soundfile as sf

    from walloc_io.training.data import tilt_spectrum

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--slopes", type=float, nargs="+", default=[-6.0, -3.0, 3.0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in sorted(args.folder.glob("*.flac")):
        if path.stem.startswith("speech"):
            continue
        x, rate = sf.read(path, dtype="float64", always_2d=True)
        x = x[: int(args.seconds * rate)].T
        for slope in args.slopes:
            y = np.clip(tilt_spectrum(x, slope, rate), -1.0, 1.0)
            sf.write(args.out / f"{path.stem}_tilt{slope:+g}.flac", y.T, rate, subtype="PCM_24")
            print(f"{path.name} {slope:+g} dB/octave", flush=True)


if __name__ == "__main__":
    main()
