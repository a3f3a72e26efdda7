#!/usr/bin/env python
"""Where an audio preset loses to ideal decimation: its error, band by band.

    python benchmarks/audio_bands.py mono-16x data/audio/mono/val
    python benchmarks/audio_bands.py stereo-20x data/audio/heldout/stereo --quality 100

Each clip (its first ``--seconds``) is coded with the public codec (``Codec.encode`` at
``--quality``, default: the preset's default) and compared with ideal (FFT brick-wall)
decimation by the codec's dimensionality reduction. Printed per clip: SNR of both; then for
all clips together, each band's share of the signal energy and of each method's error energy
(dB relative to the signal's total energy, every clip weighted alike). Bands are in units of
decimation's cut-off ``fc`` (the Nyquist frequency over the reduction: 1378 Hz for 44.1 kHz
by 16), so clips of any rate add up. Decimation's error is exactly the signal above ``fc``
and nothing below; a codec beats it only by keeping more of what lies above ``fc`` than it
loses below.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import walloc_io
from walloc_io.metrics import decimate_round_trip, snr

EDGES = (0, 0.1, 0.3, 0.6, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2, 4, 16)  # x cut-off


def band_energy(x: np.ndarray, cutoff: float) -> np.ndarray:
    """Energy of ``(C, T)`` in each band of :data:`EDGES` (frequency over ``cutoff``, a share
    of the Nyquist frequency; the last band takes the rest)."""
    power = (np.abs(np.fft.rfft(x.astype(np.float64), axis=-1)) ** 2).sum(axis=0)
    freq = np.linspace(0.0, 1.0, power.shape[-1]) / cutoff
    edges = (*EDGES[:-1], np.inf)
    return np.array([power[(freq >= lo) & (freq < hi)].sum() for lo, hi in zip(edges, edges[1:])])


def main() -> None:
    import soundfile as sf

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("codec", help="preset name or codec directory")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--quality", type=int)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    codec = walloc_io.load_codec(args.codec, device="cpu")
    cfg = codec.config
    factor = round(cfg.packet_channels / cfg.latent_channels)
    totals = np.zeros((3, len(EDGES) - 1))
    print(f"{args.codec} ({codec.fingerprint[:8]}), quality {args.quality}, decimation /{factor}")
    for path in sorted(args.folder.glob("*.flac")):
        clip, rate = sf.read(path, dtype="int16", always_2d=True)
        clip = clip[: int(args.seconds * rate)].T
        if clip.shape[0] != cfg.channels:
            continue
        out = codec.decode(codec.encode(clip, sample_rate=rate, quality=args.quality))
        x = clip.astype(np.float64)
        dec = decimate_round_trip(x, factor)
        print(f"  {path.name:32s} WaLLoC {snr(x, out):6.2f} dB  decimation {snr(x, dec):6.2f} dB")
        scale = (x**2).sum() * x.shape[-1]  # Parseval: rfft energies sum to ~T x time energy
        cut = 1.0 / factor
        totals += np.stack([band_energy(x, cut), band_energy(x - out, cut),
                            band_energy(x - dec, cut)]) / scale
    db = 10 * np.log10(np.maximum(totals / totals[0].sum(), 1e-12))
    print("\n| band (x fc) | signal dB | WaLLoC error dB | decimation error dB |")
    print("|---|---|---|---|")
    for k, (lo, hi) in enumerate(zip(EDGES, EDGES[1:])):
        print(f"| {lo}-{hi} | {db[0, k]:.1f} | {db[1, k]:.1f} | {db[2, k]:.1f} |")


if __name__ == "__main__":
    main()
