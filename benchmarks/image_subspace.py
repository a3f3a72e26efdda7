#!/usr/bin/env python
"""How far a linear bottleneck on the packet bands can go on photos, against the codec.

    python benchmarks/image_subspace.py rgb-4x data/images/heldout --train data/images/train

An image preset's encoder keeps ``L`` linear combinations of the ``B = C * 4**levels`` CDF
9/7 packet bands of every block. Per photo (cut to whole blocks) this prints the PSNR of:

- ``bicubic``: bicubic down and up by the same reduction (``walloc eval``'s baseline);
- ``pca``: the best ``L``-dimensional subspace of the band vectors in the mean-square sense
  (principal components of ``--train`` crops' packet bands), projected and inverted: the
  most a ``1x1`` encoder followed by a per-block linear decoder keeps;
- ``encoder``: the best linear decoder of the preset's own encoder's unquantised latents
  (``audio_subspace.linear_decoder`` under the training crops' second moments): what its
  choice of ``L`` combinations keeps for a per-block linear decoder, to compare with ``pca``;
- ``q50`` / ``q100``: the public codec at the design point and at the top of its ladder
  (quantised latents, nonlinear decoder).

``q100`` against ``pca`` is what the codec's nonlinear, spatially aware decoder recovers
beyond any per-block linear reconstruction of that many combinations; ``encoder`` against
``pca`` says whether the encoder chose its combinations well (for a per-block linear
decoder, the principal ones are best).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from audio_subspace import band_vectors, linear_decoder, moments_of, top_components

import walloc_io
from walloc_io.media import read_signal, signal_files
from walloc_io.metrics import bicubic_round_trip, psnr
from walloc_io.signal import unit_uint8

COLUMNS = ("bicubic", "pca", "encoder", "q50", "q100")


def whole_blocks(path: Path, factor: int) -> np.ndarray:
    """The photo (uint8 ``(C, H, W)``) cut to whole ``factor``-pixel blocks."""
    x = read_signal(path).data
    return np.ascontiguousarray(x[:, : x.shape[1] // factor * factor,
                                  : x.shape[2] // factor * factor])


def crop_moments(model, photos: list[np.ndarray], crops: int, seed: int) -> np.ndarray:
    """:func:`audio_subspace.moments_of` random 256x256 crops of ``photos`` at whole-block
    offsets."""
    rng, f = np.random.default_rng(seed), model.transform.factor
    corners = ((x, *(f * int(rng.integers(0, (n - 256) // f + 1)) for n in x.shape[1:]))
               for x in photos if min(x.shape[1:]) >= 256 for _ in range(crops))
    return moments_of(model, (unit_uint8(x[:, i:i + 256, j:j + 256]) for x, i, j in corners),
                      "no training photo is 256x256 or larger")


def principal_subspace(model, photos: list[np.ndarray], dims: int, crops: int, seed: int
                       ) -> np.ndarray:
    """:func:`audio_subspace.top_components` of :func:`crop_moments`."""
    return top_components(crop_moments(model, photos, crops, seed), dims)


def reconstructed(model, x: np.ndarray, operator: np.ndarray) -> np.ndarray:
    """uint8 photo ``x`` with ``operator`` applied to its band vectors, inverted and
    rounded back to uint8."""
    v = band_vectors(model, unit_uint8(x))
    f = model.transform.factor
    kept = (operator @ v).reshape(1, -1, x.shape[1] // f, x.shape[2] // f)
    with torch.no_grad():
        y = model.transform.inverse(torch.from_numpy(kept).float())[0].numpy()
    return np.clip(np.round((y + 0.5) * 255), 0, 255).astype(np.uint8)


def projected(model, x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """uint8 photo ``x`` with its band vectors projected on ``basis``'s span."""
    return reconstructed(model, x, basis @ basis.T)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("data", type=Path, help="folder of photos to measure")
    parser.add_argument("--train", type=Path, required=True,
                        help="folder of training photos (for the principal components)")
    parser.add_argument("--crops", type=int, default=4, help="crops per training photo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    codec = walloc_io.load_codec(args.preset, device="cpu", precision="float32")
    model, cfg = codec.model, codec.config
    if cfg.modality != "image" or cfg.channels not in (1, 3):
        raise SystemExit(f"{args.preset} is not a grey or RGB image preset")
    f = model.transform.factor
    train = [whole_blocks(p, f) for p in signal_files(args.train, "image")]
    train = [x for x in train if x.shape[0] == cfg.channels]
    moments = crop_moments(model, train, args.crops, args.seed)
    pca = top_components(moments, cfg.latent_channels)
    encoder = linear_decoder(moments,
                             model.encoder.weight.detach().double().numpy()[:, :, 0, 0])
    factor = max(1, round(np.sqrt(codec.dimensionality_reduction)))
    rows = []
    for path in signal_files(args.data, "image"):
        x = whole_blocks(path, f)
        if x.shape[0] != cfg.channels:
            continue
        row = (psnr(x, bicubic_round_trip(x, factor)), psnr(x, projected(model, x, pca)),
               psnr(x, reconstructed(model, x, encoder)),
               *(psnr(x, codec.decode(codec.encode(x, quality=q))) for q in (50, 100)))
        rows.append(row)
        print(f"{path.name[:32]:32s} " + " ".join(f"{v:7.2f}" for v in row), flush=True)
    mean = np.mean(rows, axis=0)
    print(f"\n{args.preset} on {args.data} ({len(rows)} photos), mean PSNR dB:")
    for name, value in zip(COLUMNS, mean):
        print(f"  {name:8s} {value:7.2f}  ({value - mean[1]:+.2f} vs pca)")


if __name__ == "__main__":
    main()
