"""Reports of an evaluation: mean curves, values at a rate, Markdown, CSV and the RD plot."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np


def mean_curves(rows: list[dict], key: str) -> dict[str, list[tuple]]:
    """Per method and setting, the mean (rate, quality) over items."""
    curves: dict[str, dict] = {}
    for r in rows:
        curves.setdefault(r["method"], {}).setdefault(r["setting"], []).append(r)
    out = {}
    for method, settings in curves.items():
        points = [(float(np.mean([r["rate"] for r in rs])), float(np.mean([r[key] for r in rs])),
                   float(np.mean([r.get("ms_ssim", math.nan) for r in rs])), s)
                  for s, rs in settings.items()]
        out[method] = sorted(points, key=lambda p: (math.isnan(p[0]), p[0]))
    return out


def at_rate(points: list[tuple], rate: float) -> float:
    """Quality of a baseline's upper envelope (best quality at or below each rate; settings
    sorted by rate) interpolated at ``rate`` (NaN outside its range)."""
    envelope: list[tuple] = []
    for p in points:
        if not envelope or p[1] > envelope[-1][1]:
            envelope.append(p)
    points = envelope
    xs = [p[0] for p in points]
    if len(points) < 2 or not xs[0] <= rate <= xs[-1]:
        return math.nan
    return float(np.interp(rate, xs, [p[1] for p in points]))


def bd_quality(ours: list[tuple], theirs: list[tuple]) -> float:
    """Bjøntegaard delta quality (dB): the mean gap between two RD curves over the rates both
    cover, each fitted by a cubic in log-rate (NaN with fewer than 4 points or no overlap)."""
    ours = [p for p in ours if p[0] > 0 and not math.isnan(p[1])]
    theirs = [p for p in theirs if p[0] > 0 and not math.isnan(p[1])]
    if len(ours) < 4 or len(theirs) < 4:
        return math.nan
    a, b = ([math.log10(p[0]) for p in c] for c in (ours, theirs))
    lo, hi = max(min(a), min(b)), min(max(a), max(b))
    if hi <= lo:
        return math.nan
    fa = np.polyint(np.polyfit(a, [p[1] for p in ours], 3))
    fb = np.polyint(np.polyfit(b, [p[1] for p in theirs], 3))
    area = (np.polyval(fa, hi) - np.polyval(fa, lo)) - (np.polyval(fb, hi) - np.polyval(fb, lo))
    return float(area / (hi - lo))


def worst_vs(rows: list[dict], key: str, method: str) -> tuple[float, str]:
    """The smallest per-item gap ``WaLLoC - method`` (same item) and that item."""
    ours = {r["item"]: r[key] for r in rows if r["method"] == "WaLLoC"}
    theirs = {r["item"]: r[key] for r in rows if r["method"] == method}
    gaps = sorted((ours[i] - theirs[i], i) for i in ours if i in theirs)
    return gaps[0] if gaps else (math.nan, "")


def report(codec, rows: list[dict]) -> str:
    image = codec.config.modality == "image"
    key, unit, quality = ("psnr", "bpp", "PSNR dB") if image else ("snr", "kbps", "SNR dB")
    curves = mean_curves(rows, key)
    ours = curves.pop("WaLLoC")[0]
    ladder = curves.pop("WaLLoC curve", [])
    n_items = len({r["item"] for r in rows})
    lines = [f"walloc eval: codec {codec.config.name} ({codec.fingerprint[:12]}), "
             f"DR {codec.dimensionality_reduction:g}, {n_items} items", "",
             f"| method | setting | {unit} | {quality} |" + (" MS-SSIM |" if image else ""),
             "|---|---|---|---|" + ("---|" if image else "")]
    for method, points in {"WaLLoC": [ours], "WaLLoC curve": ladder, **curves}.items():
        for rate, q, ms, setting in points:
            lines.append(f"| {method} | {setting} | {rate:.3f} | {q:.2f} |"
                         + (f" {ms:.4f} |" if image else ""))
    walloc_rows = [r for r in rows if r["method"] == "WaLLoC"]
    lines += ["", f"WaLLoC mean: {ours[0]:.3f} {unit}, {ours[1]:.2f} dB"
              + (f", MS-SSIM {ours[2]:.4f}" if image else "")]
    for method, points in curves.items():
        if len(points) == 1 and math.isnan(points[0][0]):
            lines.append(f"  vs {method} (same DR): {ours[1] - points[0][1]:+.2f} dB")
            worst, item = worst_vs(rows, key, method)
            lines.append(f"  worst item vs {method}: {worst:+.2f} dB ({item})")
        else:
            at = at_rate(points, ours[0])
            if not math.isnan(at):
                lines.append(f"  vs {method} at the same rate: {ours[1] - at:+.2f} dB")
            bd = bd_quality(ladder, points)
            if not math.isnan(bd):
                lines.append(f"  BD-{'PSNR' if image else 'SNR'} of the quality curve "
                             f"({ladder[0][0]:.3g}-{ladder[-1][0]:.3g} {unit}) vs {method}: "
                             f"{bd:+.2f} dB")
    if image:
        enc = np.mean([r["encode_ms_per_mp"] for r in walloc_rows])
        dec = np.mean([r["decode_ms_per_mp"] for r in walloc_rows])
        lines.append(f"speed: encode {enc:.1f} ms/MP, decode {dec:.1f} ms/MP")
    else:
        enc = np.mean([r["encode_x_realtime"] for r in walloc_rows])
        dec = np.mean([r["decode_x_realtime"] for r in walloc_rows])
        lines.append(f"speed: encode {enc:.0f}x real time, decode {dec:.0f}x real time")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    fields = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("item", "method"), k))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def plot(path: Path, codec, rows: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no rd.png (pip install 'walloc-io[eval]')", file=sys.stderr)
        return
    image = codec.config.modality == "image"
    key = "psnr" if image else "snr"
    curves = mean_curves(rows, key)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for method, points in curves.items():
        if math.isnan(points[0][0]):
            ax.axhline(points[0][1], ls=":", color="gray", label=method)
            continue
        style: dict[str, Any] = dict(marker="*", ms=14, ls="none", color="crimson") \
            if method == "WaLLoC" else dict(marker="s", ms=4, lw=2, color="crimson") \
            if method == "WaLLoC curve" else dict(marker="o", ms=4)
        ax.plot([p[0] for p in points], [p[1] for p in points], label=method, **style)
    ax.set_xlabel("bits per pixel" if image else "kbit/s")
    ax.set_ylabel("PSNR (dB)" if image else "SNR (dB)")
    ax.set_title(f"{codec.config.name}: mean over {len({r['item'] for r in rows})} held-out items")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
