#!/usr/bin/env python
"""Entropy stage of every preset: stream bytes vs lossless WebP of the same latents, and
entropy-decoding speed (latent symbols per second), on held-out data.

    python benchmarks/bench_entropy.py rgb-16x:data/images/val gray-16x:data/images/val \\
        rgb-4x:data/images/val stereo-20x:data/audio/stereo/val stereo-5x:data/audio/stereo/val \\
        --repeat 7 --out benchmarks/results/entropy.md

Each argument is ``CODEC:FOLDER``. Items are read as ``walloc eval`` reads them (photos
converted to grey for 1-channel codecs, as Pillow does). The reference stores latents + 128
as lossless WebP (method 6); 2D latents use the better of an RGB and a grey-mosaic tiling (as
in bench_codec.py), 1D latents
``(C, T)`` are one grey picture, C rows by T columns. Our bytes are whole streams, header
included. Speed: median of ``--repeat`` runs of ``decode_latents`` (header, entropy decoding,
nothing else), single thread.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
from bench_codec import latents_as_webp
from PIL import Image

from walloc_io import load_codec
from walloc_io.cli.evaluate import _items as eval_items


def webp_bytes(latents: np.ndarray) -> int:
    if latents.ndim == 3:
        return latents_as_webp(latents)
    u8 = (latents + 128).astype(np.uint8)
    sizes = []
    for picture in (u8, u8.T):  # channels as rows, or as columns
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(picture), "L").save(
            buf, format="WEBP", lossless=True, quality=100, method=6)
        sizes.append(buf.getbuffer().nbytes)
    return min(sizes)


def measure(spec: str, repeat: int) -> dict:
    name, folder = spec.split(":", 1)
    codec = load_codec(name, device="cpu")
    ours = webp = symbols = 0
    seconds = 0.0
    for _, data, rate in eval_items(Path(folder), codec.config.modality, codec.config.channels):
        blob = codec.encode(data, sample_rate=rate)
        latents = codec.decode_latents(blob)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            codec.decode_latents(blob)
            times.append(time.perf_counter() - t)
        ours, webp, symbols = ours + len(blob), webp + webp_bytes(latents), symbols + latents.size
        seconds += float(np.median(times))
    return {"codec": name, "data": folder, "bytes": ours, "webp": webp, "ratio": ours / webp,
            "msym_s": symbols / seconds / 1e6, "entropy_model": codec.config.entropy_model}


def coder_floor(repeat: int, symbols: int = 1 << 18) -> float:
    """M symbols/s of constriction alone: one call, one 33-symbol table, nothing else.

    The speed any decoder built on constriction's Python binding stays under; measured in
    the same run, so the presets' figures can be read against it.
    """
    import constriction

    p = np.exp(-np.abs(np.arange(33) - 16) / 2.0)
    model = constriction.stream.model.Categorical(p / p.sum(), perfect=False)
    data = np.random.default_rng(0).choice(33, size=symbols, p=p / p.sum()).astype(np.int32)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(data, model)
    words, times = coder.get_compressed(), []
    for _ in range(repeat):
        decoder = constriction.stream.stack.AnsCoder(words)
        t = time.perf_counter()
        decoder.decode(model, symbols)
        times.append(time.perf_counter() - t)
    return symbols / float(np.median(times)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="+", help="CODEC:FOLDER")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = ["| preset | held-out data | model | stream bytes | latents as lossless WebP | ratio | "
             "entropy decode M symbols/s |", "|---|---|---|---|---|---|---|"]
    for spec in args.specs:
        r = measure(spec, args.repeat)
        lines.append(f"| {r['codec']} | {r['data']} | {r['entropy_model']} | {r['bytes']} | "
                     f"{r['webp']} | {r['ratio']:.3f} | {r['msym_s']:.1f} |")
        print(lines[-1], flush=True)
    floor = coder_floor(args.repeat)
    lines += ["", f"constriction alone (one call, one 33-symbol table, same run): {floor:.1f} M "
              "symbols/s, the ceiling for any decoder on its Python binding."]
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
