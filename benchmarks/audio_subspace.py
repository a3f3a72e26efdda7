#!/usr/bin/env python
"""How far a linear bottleneck on the packet bands can go, against ideal decimation.

    python benchmarks/audio_subspace.py mono-16x data/audio-varied/mono/val \\
        --train data/audio-varied/mono/train

An audio preset's encoder keeps ``L`` linear combinations of the ``B = 2**levels`` CDF 9/7
packet bands of every frame; ideal decimation by the same reduction ``B / L`` keeps the
band below ``fc`` with a brick-wall filter. Per clip (whole clip, cut to a whole number of
frames) this prints the SNR of:

- ``decimation``: FFT brick-wall decimation by ``B / L`` and back;
- ``pca``: the best ``L``-dimensional subspace of the band vectors in the mean-square
  sense (principal components of ``--train`` crops' packet bands), projected and inverted:
  the most a ``1x1`` encoder followed by a per-frame (``1x1``) linear decoder keeps. A
  decoder that looks at neighbouring frames, as the codec's does, can recover more;
- ``low bands``: the first ``L / C`` packets of each of the ``C`` channels in the
  transform's order (repeated low/high splits, the first split most significant): for
  ``L / C`` a power of two exactly the packets under the low-pass branch below ``fc``,
  decimation's band, with the CDF 9/7 filters' transition bands instead of a brick wall;
- ``encoder``: the best linear decoder of the preset's own encoder's unquantised latents
  (:func:`linear_decoder` under the training crops' second moments): what its choice of
  ``L`` combinations keeps for a per-frame linear decoder, to compare with ``pca``;
- ``encoder +-K``: the best linear decoder of the same unquantised latents that sees
  ``K`` frames either side (``--frames``, edges replicated; least squares on the training
  crops): what a decoder with context, linear, can make of them (walloc-io 0.12);
- ``codec``: the public codec at its default quality (quantised latents, its decoder).

``--levels J [J ...]`` adds the principal-subspace bound of packet trees of other depths at
the same reduction (``2**J / (B / L)`` components of ``2**J`` bands; no model needed).

The means say which part of a gap to decimation is the bottleneck's (``pca`` below
``decimation``: no per-frame linear reconstruction from these bands reaches it, so what the
codec gains beyond ``pca`` is the work of its decoder's context and nonlinearity) and which
the decoder's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import walloc_io
from walloc_io.media import read_signal, signal_files
from walloc_io.metrics import decimate_round_trip, snr
from walloc_io.signal import prepare
from walloc_io.training.decoder import frame_context

COLUMNS = ("decimation", "pca", "low bands", "encoder", "encoder +-K", "codec")


class _Bands:
    """A bare packet transform standing in for a model in :func:`band_vectors` and
    :func:`projected` (``--levels``)."""

    def __init__(self, channels: int, levels: int) -> None:
        from types import SimpleNamespace

        from walloc_io.transform import PacketTransform

        self.transform = PacketTransform(1, levels)
        self.config = SimpleNamespace(levels=levels, channels=channels)


def band_vectors(model, x: np.ndarray) -> np.ndarray:
    """``(C, T)`` unit-range float -> packet bands ``(C * B, frames)`` float64."""
    with torch.no_grad():
        c = model.transform(torch.from_numpy(x.astype(np.float32))[None])[0]
    return c.reshape(c.shape[0], -1).double().numpy()


def second_moments(band_sets) -> np.ndarray | None:
    """Sum of ``v @ v.T`` (uncentred, as the encoder sees them) over the band-vector sets
    given, or None if none is."""
    moments = None
    for v in band_sets:
        m = v @ v.T
        moments = m if moments is None else moments + m
    return moments


def top_components(moments: np.ndarray, dims: int) -> np.ndarray:
    """Orthonormal ``(bands, dims)`` basis of the top principal components."""
    _, vectors = np.linalg.eigh(moments)
    return vectors[:, ::-1][:, :dims]


def linear_decoder(moments: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(bands, bands)`` operator of the best linear reconstruction of band vectors ``v``
    from ``weight @ v`` under these second moments: ``M W^T (W M W^T)^-1 W``. What a
    linear decoder can make of an encoder's unquantised latents; for orthonormal rows
    spanning principal components it is their projection."""
    mw = moments @ weight.T
    return mw @ np.linalg.solve(weight @ mw, weight)


def moments_of(model, crops, none: str) -> np.ndarray:
    """:func:`second_moments` of the band vectors of ``crops`` (unit-range signals); exits
    with ``none`` when there is no crop."""
    moments = second_moments(band_vectors(model, c) for c in crops)
    if moments is None:
        raise SystemExit(none)
    return moments


def random_crops(clips: list[np.ndarray], crops: int, seed: int) -> list[np.ndarray]:
    """``crops`` random 65536-sample crops of each clip longer than that (seeded)."""
    rng, f = np.random.default_rng(seed), 2 ** 16
    starts = [(x, int(rng.integers(0, x.shape[-1] - f)))
              for x in clips if x.shape[-1] > f for _ in range(crops)]
    return [x[:, s:s + f] for x, s in starts]


def crop_moments(model, clips: list[np.ndarray], crops: int, seed: int) -> np.ndarray:
    """:func:`moments_of` :func:`random_crops` of ``clips``."""
    return moments_of(model, random_crops(clips, crops, seed),
                      "no training clip is longer than 65536 samples")


def principal_subspace(model, clips: list[np.ndarray], dims: int, crops: int, seed: int
                       ) -> np.ndarray:
    """:func:`top_components` of the band vectors of random crops of ``clips``."""
    return top_components(crop_moments(model, clips, crops, seed), dims)


def reconstructed(model, x: np.ndarray, operator: np.ndarray) -> np.ndarray:
    """``x`` with ``operator`` applied to its band vectors, inverted to a signal."""
    kept = operator @ band_vectors(model, x)
    shape = (1, x.shape[0] * 2 ** model.config.levels, -1)
    with torch.no_grad():
        return model.transform.inverse(torch.from_numpy(kept.reshape(shape)).float())[0].numpy()


def projected(model, x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``x`` with its band vectors projected on ``basis``'s span, inverted to a signal."""
    return reconstructed(model, x, basis @ basis.T)


def latent_context(model, x: np.ndarray, frames: int) -> np.ndarray:
    """Unquantised latents of ``x`` at each frame and ``frames`` either side (edges
    replicated, :func:`~walloc_io.training.decoder.frame_context`, as the codec's linear
    decoder sees them), and a constant: ``(latent * (2 frames + 1) + 1, frames)`` float64."""
    weight = model.encoder.weight.detach().double().numpy()[:, :, 0]
    z = weight @ band_vectors(model, x) + model.encoder.bias.detach().double().numpy()[:, None]
    return frame_context(torch.from_numpy(z)[None], 2 * frames + 1)[0].numpy()


def context_decoder(model, crops, frames: int) -> np.ndarray:
    """Least-squares ``(bands, latent * (2 frames + 1) + 1)`` map from
    :func:`latent_context` to the band vectors, over ``crops``."""
    gram = cross = 0
    for c in crops:
        ctx, v = latent_context(model, c, frames), band_vectors(model, c)
        gram, cross = gram + ctx @ ctx.T, cross + v @ ctx.T
    return np.linalg.solve(gram, np.asarray(cross).T).T


def context_reconstructed(model, x: np.ndarray, operator: np.ndarray, frames: int
                          ) -> np.ndarray:
    """``x`` decoded by :func:`context_decoder`'s map from its unquantised latents."""
    kept = operator @ latent_context(model, x, frames)
    shape = (1, x.shape[0] * 2 ** model.config.levels, -1)
    with torch.no_grad():
        return model.transform.inverse(torch.from_numpy(kept.reshape(shape)).float())[0].numpy()


def unit(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The clip as read (int16), in unit range (float32, as the codec normalises it), and
    its sample rate."""
    clip = read_signal(path)
    return clip.data, prepare(clip.data, clip.data.shape[0], 1, 1).data, clip.sample_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("data", type=Path, help="folder of clips to measure")
    parser.add_argument("--train", type=Path, required=True,
                        help="folder of training clips (for the principal components)")
    parser.add_argument("--crops", type=int, default=8, help="crops per training clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=4,
                        help="frames either side seen by the 'encoder +-K' column's decoder")
    parser.add_argument("--levels", type=int, nargs="*", default=[],
                        help="packet-tree depths whose principal-subspace bound to add")
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = walloc_io.load_codec(args.preset, device="cpu", precision="float32")
    model, cfg = codec.model, codec.config
    if cfg.modality != "audio":
        raise SystemExit(f"{args.preset} is not an audio preset")
    bands, dims = cfg.channels * 2 ** cfg.levels, cfg.latent_channels
    train = [unit(p)[1] for p in signal_files(args.train, "audio")]
    moments = crop_moments(model, train, args.crops, args.seed)
    pca = top_components(moments, dims)
    low = np.zeros((bands, dims))
    per = 2 ** cfg.levels  # channel-major band order: the lowest bands of each channel
    keep = [c * per + b for b in range(-(-dims // cfg.channels))
            for c in range(cfg.channels)][:dims]
    low[keep, np.arange(dims)] = 1
    encoder = linear_decoder(moments, model.encoder.weight.detach().double().numpy()[:, :, 0])
    context = context_decoder(model, random_crops(train, args.crops, args.seed), args.frames)
    factor = round(codec.dimensionality_reduction)
    rows = []
    for path in signal_files(args.data, "audio"):
        raw, x, rate = unit(path)
        cut = x.shape[-1] // per * per
        raw, x = raw[:, :cut], x[:, :cut]
        decoded = codec.decode(codec.encode(raw, sample_rate=rate)).astype(np.float64)
        row = (snr(x, decimate_round_trip(x, factor)), snr(x, projected(model, x, pca)),
               snr(x, projected(model, x, low)), snr(x, reconstructed(model, x, encoder)),
               snr(x, context_reconstructed(model, x, context, args.frames)),
               snr(raw.astype(np.float64), decoded))
        rows.append(row)
        print(f"{path.name[:32]:32s} " + " ".join(f"{v:7.2f}" for v in row), flush=True)
    mean = np.mean(rows, axis=0)
    print(f"\n{args.preset} on {args.data} ({len(rows)} clips), mean SNR dB:")
    for name, value in zip(COLUMNS, mean):
        name = name.replace("K", str(args.frames))
        print(f"  {name:11s} {value:7.2f}  ({value - mean[0]:+.2f} vs decimation)")
    for levels in args.levels:
        tree = _Bands(cfg.channels, levels)
        width = cfg.channels * 2 ** levels
        basis = principal_subspace(tree, train, width // factor, args.crops, args.seed)
        scores = []
        for path in signal_files(args.data, "audio"):
            x = unit(path)[1]
            x = x[:, : x.shape[-1] // 2 ** levels * 2 ** levels]
            scores.append(snr(x, projected(tree, x, basis)) - snr(x, decimate_round_trip(x, factor)))
        print(f"  pca J={levels:<3d}  {mean[0] + np.mean(scores):7.2f}  ({np.mean(scores):+.2f} vs "
              f"decimation; {width // factor} of {width} bands)")


if __name__ == "__main__":
    main()
