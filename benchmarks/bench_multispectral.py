#!/usr/bin/env python
"""Rate-distortion of an N-band WaLLoC codec on held-out multispectral cubes vs JPEG 2000 and SZ3.

    python scripts/prepare_data.py multispectral
    walloc train data/multispectral/landsat7/train runs/landsat7-6band \\
        --val data/multispectral/landsat7/val --levels 2 --latent-channels 12 ...
    python benchmarks/bench_multispectral.py runs/landsat7-6band \\
        data/multispectral/landsat7/val --out benchmarks/results/multispectral-landsat7

Every cube ``(bands, H, W)`` goes through the codec once; the baselines run as ladders:
JPEG 2000 band by band (Pillow/OpenJPEG, irreversible 9/7, rate-targeted), SZ3 band by band
(2D, absolute error bound) and SZ3 on the whole cube (3D, so it can use cross-band
correlation). Rates are bits per value (all bands); PSNR is per band with the peak equal to
the dtype range for uint8 and the band's own max - min otherwise, averaged over bands. The
baselines' PSNR at the codec's rate is interpolated on each ladder (linear in log-rate).
Writes ``OUT/multispectral.md``, ``OUT/multispectral.csv`` and ``OUT/rd.png``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path

import numpy as np

from walloc_io import load_codec
from walloc_io.media import read_signal, signal_files
from walloc_io.metrics import psnr

J2K_RATIOS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)  # vs the raw band
SZ_BOUNDS = (0.5, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)  # absolute error bound, in uint8 steps


def peak(band: np.ndarray) -> float:
    return 255.0 if band.dtype == np.uint8 else float(band.max()) - float(band.min())


def band_psnr(ref: np.ndarray, test: np.ndarray) -> list[float]:
    return [psnr(r, t, peak=peak(r)) for r, t in zip(ref, test)]


def jpeg2000(cube: np.ndarray, ratio: float) -> tuple[int, np.ndarray]:
    from PIL import Image

    nbytes, bands = 0, []
    for band in cube:
        im = Image.fromarray(band if band.dtype == np.uint8 else band.astype(np.uint16))
        buf = io.BytesIO()
        im.save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio],
                irreversible=True)
        nbytes += buf.getbuffer().nbytes
        bands.append(np.asarray(Image.open(io.BytesIO(buf.getvalue()))).astype(cube.dtype))
    return nbytes, np.stack(bands)


def sz3(cube: np.ndarray, bound: float, whole: bool) -> tuple[int, np.ndarray]:
    import pysz

    def one(a: np.ndarray) -> tuple[int, np.ndarray]:
        config = pysz.szConfig(a.shape)
        config.errorBoundMode = pysz.szErrorBoundMode.ABS
        config.absErrorBound = bound
        packed, _ = pysz.sz.compress(np.ascontiguousarray(a, dtype=np.float32), config)
        out, _ = pysz.sz.decompress(packed, np.float32, a.shape)
        lo, hi = np.iinfo(cube.dtype).min, np.iinfo(cube.dtype).max
        return packed.nbytes, np.clip(np.round(out), lo, hi).astype(cube.dtype)

    if whole:
        return one(cube)
    parts = [one(band) for band in cube]
    return sum(n for n, _ in parts), np.stack([b for _, b in parts])


def at_rate(ladder: list[tuple[float, float]], rate: float) -> float:
    """PSNR of a baseline ladder ``[(rate, psnr)]`` at ``rate`` (log-rate interpolation)."""
    pts = sorted(ladder)
    xs, ys = np.log([p[0] for p in pts]), [p[1] for p in pts]
    if not xs[0] <= math.log(rate) <= xs[-1]:
        return float("nan")
    return float(np.interp(math.log(rate), xs, ys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("codec")
    parser.add_argument("data", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    codec = load_codec(args.codec)
    rows = []
    for path in signal_files(args.data, "image"):
        cube = read_signal(path).data
        values = cube.size
        blob = codec.encode(cube)
        psnrs = band_psnr(cube, codec.decode(blob))
        rows.append({"item": path.name, "method": "walloc", "setting": codec.config.name,
                     "bits_per_value": 8 * len(blob) / values, "psnr": float(np.mean(psnrs)),
                     "band_psnr": psnrs})
        scale = 1.0 if cube.dtype == np.uint8 else max(peak(b) for b in cube) / 255
        ladders = {"JPEG 2000 per band": J2K_RATIOS, "SZ3 per band (2D)": SZ_BOUNDS,
                   "SZ3 cube (3D)": SZ_BOUNDS}
        for method, settings in ladders.items():
            for setting in settings:
                if method.startswith("JPEG"):
                    nbytes, decoded = jpeg2000(cube, setting)
                else:
                    nbytes, decoded = sz3(cube, setting * scale, whole="3D" in method)
                psnrs = band_psnr(cube, decoded)
                rows.append({"item": path.name, "method": method, "setting": setting,
                             "bits_per_value": 8 * nbytes / values, "psnr": float(np.mean(psnrs)),
                             "band_psnr": psnrs})
    write_report(rows, args.out, codec.config.name)


def write_report(rows: list[dict], out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "multispectral.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item", "method", "setting", "bits_per_value", "psnr_mean", "psnr_bands"])
        for r in rows:
            writer.writerow([r["item"], r["method"], r["setting"], f"{r['bits_per_value']:.4f}",
                             f"{r['psnr']:.3f}", " ".join(f"{p:.2f}" for p in r["band_psnr"])])
    lines = [f"# {name} on held-out multispectral cubes", "",
             "| item | method | bits/value | mean PSNR (dB) | per band (dB) | Δ WaLLoC at its rate |",
             "|---|---|---|---|---|---|"]
    for item in dict.fromkeys(r["item"] for r in rows):
        mine = next(r for r in rows if r["item"] == item and r["method"] == "walloc")
        lines.append(f"| {item} | WaLLoC {name} | {mine['bits_per_value']:.3f} | {mine['psnr']:.2f} | "
                     + " ".join(f"{p:.1f}" for p in mine["band_psnr"]) + " | |")
        for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "walloc"):
            ladder = [r for r in rows if r["item"] == item and r["method"] == method]
            psnr = at_rate([(r["bits_per_value"], r["psnr"]) for r in ladder], mine["bits_per_value"])
            near = min(ladder, key=lambda r: abs(math.log(r["bits_per_value"] / mine["bits_per_value"])))
            lines.append(f"| {item} | {method} (nearest rate) | {near['bits_per_value']:.3f} | "
                         f"{near['psnr']:.2f} | " + " ".join(f"{p:.1f}" for p in near["band_psnr"])
                         + f" | {mine['psnr'] - psnr:+.2f} dB |")
    (out / "multispectral.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(dict.fromkeys(r["item"] for r in rows))
    fig, axes = plt.subplots(1, len(items), figsize=(6 * len(items), 4.5), squeeze=False)
    for ax, item in zip(axes[0], items):
        for method in dict.fromkeys(r["method"] for r in rows):
            pts = sorted((r["bits_per_value"], r["psnr"]) for r in rows
                         if r["item"] == item and r["method"] == method)
            style = ({"marker": "*", "markersize": 14, "linestyle": ""} if method == "walloc"
                     else {"marker": "o"})
            ax.plot(*zip(*pts), label=f"WaLLoC {name}" if method == "walloc" else method, **style)
        ax.set(xscale="log", xlabel="bits per value", ylabel="mean band PSNR (dB)", title=item)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rd.png", dpi=110)


if __name__ == "__main__":
    main()
