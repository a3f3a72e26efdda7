#!/usr/bin/env python
"""Entropy stage of every preset: stream bytes vs lossless WebP of the same latents, and
entropy coding speed (latent symbols per second), on held-out data.

    python benchmarks/bench_entropy.py rgb-16x:data/images/unseen gray-16x:data/images/unseen \\
        rgb-4x:data/images/unseen rgb-16x:data/images/val stereo-20x:data/audio/stereo/val \\
        --repeat 7 --out benchmarks/results/entropy.md

Format 2 (the native rANS coder, what walloc-io writes) is measured beside format 1 (the
constriction coder of walloc-io 0.1, still decoded for old streams): bytes, decode speed on
whole items and on 256x256 crops (images; 16384-sample excerpts for audio) decoded as one
batch, and encode speed (mode choice + coding, from integer latents).

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

from walloc_io import bitstream, load_codec
from walloc_io.entropy import format1
from walloc_io.evaluation import items as eval_items


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


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _crops(data: np.ndarray, ndim: int) -> list[np.ndarray]:
    """Non-overlapping 256x256 crops (images) or 16384-sample excerpts (audio)."""
    if ndim == 2:
        return [data[:, i:i + 256, j:j + 256] for i in range(0, data.shape[1] - 255, 256)
                for j in range(0, data.shape[2] - 255, 256)]
    return [data[:, i:i + 16384] for i in range(0, data.shape[1] - 16383, 16384)]


def measure(spec: str, repeat: int) -> dict:
    name, folder = spec.split(":", 1)
    codec = load_codec(name, device="cpu")
    cfg = codec.config
    ours = old = webp = symbols = crop_symbols = 0
    t_dec = t_old = t_enc = t_crops = 0.0
    crops: list[bytes] = []
    for _, data, rate in eval_items(Path(folder), cfg.modality, cfg.channels):
        blob = codec.encode(data, sample_rate=rate)
        header, payload = bitstream.unpack(blob)
        latents = codec.decode_latents(blob)
        shape = latents.shape
        coder = codec.coder_for(header.quality)  # the default may be a floor rung
        t_dec += _median_time(lambda b=blob: codec.decode_latents(b), repeat)
        if coder.tables.neighbour_weight:  # format 1 has no contextual model
            v1, t_old = payload, float("nan")
        else:
            v1 = format1.encode(latents, coder.tables)
            t_old += _median_time(lambda p=v1, s=shape, t=coder.tables: format1.decode(p, s, t),
                                  max(1, repeat // 3))
        t_enc += _median_time(lambda z=latents, c=coder: c.encode(z), repeat)
        ours, webp, symbols = ours + len(blob), webp + webp_bytes(latents), symbols + latents.size
        old += len(blob) - len(payload) + len(v1)
        crops += codec.encode_batch(_crops(data, cfg.signal_ndim), sample_rate=rate)
    if crops:
        crop_symbols = sum(z.size for z in codec.decode_latents_batch(crops))
        t_crops = _median_time(lambda: codec.decode_latents_batch(crops), repeat)
    return {"codec": name, "data": folder, "bytes": ours, "format1": old, "webp": webp,
            "ratio": ours / webp, "msym_s": symbols / t_dec / 1e6,
            "crops_msym_s": crop_symbols / t_crops / 1e6 if crops else float("nan"),
            "encode_msym_s": symbols / t_enc / 1e6, "format1_msym_s": symbols / t_old / 1e6,
            "crops": len(crops), "entropy_model": cfg.entropy_model}


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
    lines = ["| preset | held-out data | stream bytes (format 2) | format 1 bytes | "
             "latents as lossless WebP | format 2 / WebP | decode M sym/s | decode M sym/s, "
             "crops batched | encode M sym/s | format 1 decode M sym/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for spec in args.specs:
        r = measure(spec, args.repeat)
        lines.append(f"| {r['codec']} | {r['data']} | {r['bytes']} | {r['format1']} | {r['webp']} | "
                     f"{r['ratio']:.3f} | {r['msym_s']:.1f} | {r['crops_msym_s']:.1f} "
                     f"({r['crops']}) | {r['encode_msym_s']:.1f} | {r['format1_msym_s']:.1f} |")
        print(lines[-1], flush=True)
    floor = coder_floor(args.repeat)
    lines += ["", f"constriction alone (one call, one 33-symbol table, same run): {floor:.1f} M "
              "symbols/s, the ceiling for any decoder on its Python binding."]
    print(lines[-1])
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
