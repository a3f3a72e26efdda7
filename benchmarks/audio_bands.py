#!/usr/bin/env python
"""Where an audio preset loses to ideal decimation: its error, band by band.

    python benchmarks/audio_bands.py mono-16x data/audio/mono/val
    python benchmarks/audio_bands.py stereo-20x data/audio/heldout/stereo --quality 100

Each music clip (its first ``--seconds``; ``speech*`` clips skipped: 8 kHz sources, as in
``benchmarks/ceiling.py``) is coded with the public codec (``Codec.encode`` at
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
import functools
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


@functools.cache
def packet_order(levels: int) -> np.ndarray:
    """The packets of a depth-``levels`` 1D transform, lowest centre frequency first (each
    synthesis atom's energy-weighted mean frequency)."""
    import torch

    from walloc_io.transform import PacketTransform

    bands = 2**levels
    atoms = torch.zeros(bands, bands, 64, dtype=torch.float64)
    atoms[torch.arange(bands), torch.arange(bands), 32] = 1.0  # item k: packet k's impulse
    with torch.no_grad():
        signals = PacketTransform(1, levels).inverse(atoms)[:, 0].numpy()
    power = np.abs(np.fft.rfft(signals, axis=-1)) ** 2
    return np.argsort((np.arange(power.shape[-1]) * power).sum(-1) / power.sum(-1))


def packet_lowpass(x: np.ndarray, levels: int, keep: int) -> np.ndarray:
    """``(C, T)`` through the packet transform, each channel's ``keep`` lowest packets (by
    centre frequency) kept and the rest zeroed, and back (``T`` a multiple of 2**levels)."""
    import torch

    from walloc_io.transform import PacketTransform

    transform, bands, low = PacketTransform(1, levels), 2**levels, packet_order(levels)[:keep]
    with torch.no_grad():
        packets = transform(torch.from_numpy(x.astype(np.float64))[None])
        kept = torch.zeros_like(packets)
        for c in range(x.shape[0]):
            kept[:, c * bands + low] = packets[:, c * bands + low]
        return transform.inverse(kept)[0].numpy()


def main() -> None:
    import soundfile as sf

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("codec", help="preset name or codec directory")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--quality", type=int)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--depths", type=int, nargs="*", default=[],
                        help="also the packet low-pass at these transform depths (the same "
                        "1/DR of the band kept at each)")
    args = parser.parse_args()
    codec = walloc_io.load_codec(args.codec, device="cpu")
    cfg = codec.config
    factor = round(cfg.dimensionality_reduction)
    totals, snrs, depth_snrs = np.zeros((3, len(EDGES) - 1)), [], []
    print(f"{args.codec} ({codec.fingerprint[:8]}), quality {args.quality}, decimation /{factor}")
    for path in sorted(args.folder.glob("*.flac")):
        clip, rate = sf.read(path, dtype="int16", always_2d=True)
        clip = clip[: min(len(clip), int(args.seconds * rate)) // 2**cfg.levels * 2**cfg.levels].T
        if clip.shape[0] != cfg.channels or path.stem.startswith("speech"):
            continue
        out = codec.decode(codec.encode(clip, sample_rate=rate, quality=args.quality))
        x = clip.astype(np.float64)
        dec = decimate_round_trip(x, factor)
        low = packet_lowpass(x, cfg.levels, 2**cfg.levels // factor)
        print(f"  {path.name:32s} WaLLoC {snr(x, out):6.2f} dB  decimation {snr(x, dec):6.2f} dB"
              f"  packet low-pass {snr(x, low):6.2f} dB")
        snrs.append((snr(x, out), snr(x, dec), snr(x, low)))
        if args.depths:
            cuts = [x[:, : x.shape[1] // 2**j * 2**j] for j in args.depths]
            depth_snrs.append([snr(c, packet_lowpass(c, j, 2**j // factor))
                               for c, j in zip(cuts, args.depths)])
        scale = (x**2).sum() * x.shape[-1]  # any constant: each clip counts alike
        cut = 1.0 / factor
        totals += np.stack([band_energy(x, cut), band_energy(x - out, cut),
                            band_energy(x - dec, cut)]) / scale
    mean = np.mean(snrs, axis=0)
    print(f"  mean: WaLLoC {mean[0]:.2f} dB, decimation {mean[1]:.2f} dB, packet low-pass "
          f"{mean[2]:.2f} dB ({len(snrs)} clips)")
    for j, value in zip(args.depths, np.mean(depth_snrs, axis=0) if depth_snrs else []):
        print(f"  packet low-pass at depth {j} ({2**j // factor} of {2**j} packets): "
              f"{value:.2f} dB")
    db = 10 * np.log10(np.maximum(totals / totals[0].sum(), 1e-12))
    print("\n| band (x fc) | signal dB | WaLLoC error dB | decimation error dB |")
    print("|---|---|---|---|")
    for k, (lo, hi) in enumerate(zip(EDGES, EDGES[1:])):
        name = f"{lo}-{hi}" if k < len(EDGES) - 2 else f"{lo} and up"
        print(f"| {name} | {db[0, k]:.1f} | {db[1, k]:.1f} | {db[2, k]:.1f} |")


if __name__ == "__main__":
    main()
