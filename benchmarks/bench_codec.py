#!/usr/bin/env python
"""Codec benchmark: speed vs Pillow JPEG/WebP, rate-distortion vs bicubic, entropy stage vs
lossless WebP of the same latents. Everything is measured in one run on the same images.

    python benchmarks/bench_codec.py                      # held-out crops, else bundled samples
    python benchmarks/bench_codec.py --images data/images/unseen --threads 1

Timings are medians of ``--repeat`` runs, single-threaded by default (Pillow's codecs are),
reported as ms per megapixel and as ratios against the baselines measured alongside.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from walloc_io import load_codec
from walloc_io.media import read_signal
from walloc_io.metrics import bicubic_round_trip, psnr


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def pil_bytes(hwc: np.ndarray, fmt: str, **options) -> bytes:
    """Encode a contiguous (H, W, C) array, Pillow's own layout (no transpose timed)."""
    buf = io.BytesIO()
    Image.fromarray(hwc).save(buf, format=fmt, **options)
    return buf.getvalue()


def pil_decode(blob: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB"))


def latents_as_webp(latents: np.ndarray) -> int:
    """Bytes of the reference storage: latents + 128 as uint8, lossless WebP (method 6).

    Two tilings, the smaller counts: RGB (3 channels per pixel, groups stacked vertically, as
    the reference WaLLoC code stores them) and a grey mosaic of all channels.
    """
    c, h, w = latents.shape
    u8 = (latents + 128).astype(np.uint8)
    sizes = []
    if c % 3 == 0:
        rgb = u8.reshape(3, c // 3 * h, w).transpose(1, 2, 0)
        sizes.append(len(_webp_lossless(Image.fromarray(np.ascontiguousarray(rgb), "RGB"))))
    cols = int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / cols))
    mosaic = np.zeros((rows * h, cols * w), np.uint8)
    for i in range(c):
        mosaic[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = u8[i]
    sizes.append(len(_webp_lossless(Image.fromarray(mosaic, "L"))))
    return min(sizes)


def _webp_lossless(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="WEBP", lossless=True, quality=100, method=6)
    return buf.getvalue()


def load_images(folder: Path | None) -> tuple[str, list[tuple[str, np.ndarray]]]:
    if folder is None:
        default = Path("data/images/val")
        folder = default if default.is_dir() else None
    if folder is None:
        paths = sorted(p for p in files("walloc_io").joinpath("samples").iterdir()
                       if p.name.endswith(".png"))
        source = "bundled samples (held out)"
    else:
        paths = sorted(Path(folder).glob("*.png"))
        source = f"{folder} (held out)"
    return source, [(Path(str(p)).name, read_signal(p).data) for p in paths]


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    codec = load_codec(args.codec, device=args.device)
    source, images = load_images(args.images)
    rows = []
    for name, image in images:
        mp = image.shape[1] * image.shape[2] / 1e6
        codec.decode(codec.encode(image))  # warm-up
        t_enc, blob = timed(lambda im=image: codec.encode(im), args.repeat)
        t_lat, latents = timed(lambda b=blob: codec.decode_latents(b), args.repeat)
        t_dec, decoded = timed(lambda b=blob: codec.decode(b), args.repeat)
        hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
        t_jenc, jpeg = timed(lambda im=hwc: pil_bytes(im, "JPEG", quality=75), args.repeat)
        t_jdec, jpeg_img = timed(lambda b=jpeg: pil_decode(b), args.repeat)
        t_wenc, webp = timed(lambda im=hwc: pil_bytes(im, "WEBP", quality=75), args.repeat)
        t_wdec, webp_img = timed(lambda b=webp: pil_decode(b), args.repeat)
        pixels = image.shape[1] * image.shape[2]
        rows.append({
            "image": name, "megapixels": mp,
            "walloc_bpp": 8 * len(blob) / pixels, "walloc_psnr": psnr(image, decoded),
            "bicubic_psnr": psnr(image, bicubic_round_trip(image, 4)),
            "jpeg_bpp": 8 * len(jpeg) / pixels, "jpeg_psnr": psnr(image, jpeg_img.transpose(2, 0, 1)),
            "webp_bpp": 8 * len(webp) / pixels, "webp_psnr": psnr(image, webp_img.transpose(2, 0, 1)),
            "payload_bytes": len(blob), "latent_webp_bytes": latents_as_webp(latents),
            "latent_symbols": int(latents.size),
            "ms_per_mp": {k: 1e3 * v / mp for k, v in {
                "walloc_encode": t_enc, "walloc_decode_latents": t_lat,
                "walloc_decode_signal": t_dec, "jpeg_encode": t_jenc, "jpeg_decode": t_jdec,
                "webp_encode": t_wenc, "webp_decode": t_wdec}.items()},
        })
    return {"codec": codec.config.name, "fingerprint": codec.fingerprint, "source": source,
            "threads": args.threads, "device": str(codec.device), "rows": rows}


def report(result: dict) -> str:
    rows = result["rows"]

    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    def speed(key: str) -> float:
        return float(np.mean([r["ms_per_mp"][key] for r in rows]))

    lines = [f"codec {result['codec']} ({result['fingerprint'][:12]}) on {len(rows)} images from "
             f"{result['source']}; torch threads={result['threads']}, device={result['device']}",
             "", "| image | WaLLoC bpp | WaLLoC PSNR | bicubic /4 PSNR | JPEG q75 bpp/PSNR | "
             "WebP q75 bpp/PSNR | payload B | latents as WebP-lossless B |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['image']} | {r['walloc_bpp']:.3f} | {r['walloc_psnr']:.2f} | "
                     f"{r['bicubic_psnr']:.2f} | {r['jpeg_bpp']:.2f} / {r['jpeg_psnr']:.2f} | "
                     f"{r['webp_bpp']:.2f} / {r['webp_psnr']:.2f} | {r['payload_bytes']} | "
                     f"{r['latent_webp_bytes']} |")
    entropy_ratio = sum(r["payload_bytes"] for r in rows) / sum(r["latent_webp_bytes"] for r in rows)
    symbols_per_second = sum(r["latent_symbols"] for r in rows) / sum(
        r["ms_per_mp"]["walloc_decode_latents"] * r["megapixels"] / 1e3 for r in rows)
    lines += ["", f"mean: WaLLoC {mean('walloc_bpp'):.3f} bpp, {mean('walloc_psnr'):.2f} dB; "
              f"bicubic /4 {mean('bicubic_psnr'):.2f} dB; WaLLoC - bicubic = "
              f"{mean('walloc_psnr') - mean('bicubic_psnr'):+.2f} dB",
              f"entropy stage: our payload / lossless WebP of the same latents = {entropy_ratio:.3f}",
              "", "| ms per megapixel | WaLLoC | JPEG q75 | WebP q75 |", "|---|---|---|---|",
              f"| encode | {speed('walloc_encode'):.1f} | {speed('jpeg_encode'):.1f} | "
              f"{speed('webp_encode'):.1f} |",
              f"| decode to latents | {speed('walloc_decode_latents'):.1f} | | |",
              f"| decode to signal | {speed('walloc_decode_signal'):.1f} | "
              f"{speed('jpeg_decode'):.1f} | {speed('webp_decode'):.1f} |", "",
              f"ratio encode WaLLoC / JPEG q75 encode = "
              f"{speed('walloc_encode') / speed('jpeg_encode'):.2f} (target <= 2)",
              f"ratio encode WaLLoC / WebP encode = "
              f"{speed('walloc_encode') / speed('webp_encode'):.2f} (target < 1)",
              f"ratio decode-to-latents / JPEG decode = "
              f"{speed('walloc_decode_latents') / speed('jpeg_decode'):.2f} (target < 1: latents "
              "cheaper than pixels)",
              f"ratio decode-to-signal / JPEG decode = "
              f"{speed('walloc_decode_signal') / speed('jpeg_decode'):.2f}",
              f"entropy decoding rate: {symbols_per_second / 1e6:.1f} M latent symbols/s"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", default="rgb-16x")
    parser.add_argument("--images", type=Path)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, help="write JSON + Markdown results here")
    args = parser.parse_args()
    result = run(args)
    text = report(result)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{result['codec']}.json").write_text(json.dumps(result, indent=1))
        (args.out / f"{result['codec']}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
