"""``walloc eval``: rate–distortion of a codec on a folder, against classical codecs.

    walloc eval rgb-16x data/images/val --out benchmarks/results/eval-rgb-16x
    walloc eval my-audio/ recordings/ --out report/

Images: bpp, PSNR, MS-SSIM, encode/decode ms per megapixel; the same images through JPEG,
WebP and JPEG 2000 (Pillow) at a ladder of qualities, and bicubic down/up at the codec's
dimensionality reduction. Audio: kbps, SNR; FLAC (lossless), MP3 and Opus (libsndfile) and
ideal decimation at the codec's DR. MP3 runs constant-bitrate ladders at the native sample
rate and at 1/2 and 1/4 of it (resampled first, as LAME does for low bitrates: MPEG-2/2.5
reach 8 kbps), Opus at 48 kHz; each decoded signal is resampled back and aligned to the
original (codec delay found by cross-correlation) before SNR is measured. A lossy baseline's
quality "at the same rate" is read off its upper envelope over all of its settings. Writes ``eval.md``,
``eval.csv`` (every item and setting) and ``rd.png`` (matplotlib, if installed) to ``--out``.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .args import device

JPEG_QUALITIES = (10, 20, 35, 50, 75, 90)
WEBP_QUALITIES = (5, 15, 30, 50, 75, 90)
J2K_RATES = (400, 200, 100, 50, 25)  # compression ratios (Pillow ``quality_layers``)
AUDIO_LEVELS = (0.99, 0.9, 0.7, 0.5, 0.3)  # libsndfile compression_level, high = smaller
MP3_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
MAX_DELAY = 8192  # samples of codec delay searched when aligning a decoded baseline


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="rate-distortion report against JPEG/WebP/J2K or MP3/Opus",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("codec", help="preset name or codec directory")
    p.add_argument("data", type=Path, help="folder (or file) of held-out images or audio")
    p.add_argument("--out", type=Path, help="write eval.md, eval.csv and rd.png here")
    p.add_argument("--limit", type=int, help="evaluate at most this many items")
    p.add_argument("--no-baselines", action="store_true", help="only the codec itself")
    p.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for timing")
    p.set_defaults(run=run)


def run(args) -> None:
    import torch

    from ..codec import load_codec

    torch.set_num_threads(args.threads)
    codec = load_codec(args.codec, device=args.device)
    items = _items(args.data, codec.config.modality, codec.config.channels)[: args.limit]
    evaluate = _evaluate_image if codec.config.modality == "image" else _evaluate_audio
    rows = []
    for name, signal, rate in items:
        rows += [{"item": name, **r} for r in evaluate(codec, signal, rate, not args.no_baselines)]
        print(f"  {name}: done", file=sys.stderr)
    report = _report(codec, rows)
    print(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval.md").write_text(report + "\n")
        _write_csv(args.out / "eval.csv", rows)
        _plot(args.out / "rd.png", codec, rows)


def _items(source: Path, modality: str, channels: int):
    from ..media import read_signal, signal_files

    out = []
    for path in signal_files(source, modality):
        signal = read_signal(path)
        data = signal.data
        if modality == "image" and data.shape[0] != channels and channels in (1, 3) \
                and data.shape[0] in (1, 3, 4) and data.dtype == np.uint8:
            data = _convert_photo(data, channels)
        if data.shape[0] != channels:
            raise InputError(f"{path} has {data.shape[0]} channels, the codec {channels}")
        out.append((path.name, data, signal.sample_rate))
    return out


def _convert_photo(data: np.ndarray, channels: int) -> np.ndarray:
    """A grey/RGB/RGBA uint8 photo as the codec's grey or RGB, converted as Pillow does."""
    from PIL import Image

    im = Image.fromarray(data[0] if data.shape[0] == 1 else data.transpose(1, 2, 0))
    out = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1).copy()


def _timed(fn, repeat: int = 2):
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def _evaluate_image(codec, image, _rate, baselines: bool) -> list[dict]:
    from ..metrics import bicubic_round_trip, ms_ssim, psnr

    pixels = image.shape[1] * image.shape[2]
    peak = float(np.iinfo(image.dtype).max) if image.dtype.kind in "iu" else float(np.ptp(image))
    t_enc, blob = _timed(lambda: codec.encode(image))
    t_dec, decoded = _timed(lambda: codec.decode(blob))
    rows = [{"method": "WaLLoC", "setting": codec.config.name, "rate": 8 * len(blob) / pixels,
             "psnr": psnr(image, decoded), "ms_ssim": ms_ssim(image, decoded, peak),
             "encode_ms_per_mp": 1e3 * t_enc / (pixels / 1e6),
             "decode_ms_per_mp": 1e3 * t_dec / (pixels / 1e6)}]
    if not baselines:
        return rows
    if image.dtype == np.uint8:
        factor = max(1, round(math.sqrt(codec.dimensionality_reduction)))
        up = bicubic_round_trip(image, factor)
        rows.append({"method": f"bicubic /{factor}", "setting": f"x{factor}", "rate": math.nan,
                     "psnr": psnr(image, up), "ms_ssim": ms_ssim(image, up, peak)})
        for method, settings in (("JPEG", JPEG_QUALITIES), ("WebP", WEBP_QUALITIES),
                                 ("JPEG 2000", J2K_RATES)):
            for setting in settings:
                size, decoded = _pillow_round_trip(image, method, setting)
                rows.append({"method": method, "setting": setting, "rate": 8 * size / pixels,
                             "psnr": psnr(image, decoded), "ms_ssim": ms_ssim(image, decoded, peak)})
    return rows


def _pillow_round_trip(image: np.ndarray, method: str, setting) -> tuple[int, np.ndarray]:
    """Bytes and decoded image; RGB as one image, any other band count band by band."""
    from PIL import Image

    groups = [image] if image.shape[0] == 3 else [plane[None] for plane in image]
    size, planes = 0, []
    for group in groups:
        im = Image.fromarray(group.transpose(1, 2, 0).squeeze(-1) if group.shape[0] == 1
                             else group.transpose(1, 2, 0))
        buf = io.BytesIO()
        if method == "JPEG":
            im.save(buf, format="JPEG", quality=setting)
        elif method == "WebP":
            im.save(buf, format="WEBP", quality=setting, method=4)
        else:
            im.save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[setting],
                    irreversible=True)
        size += buf.getbuffer().nbytes
        back = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        planes.append(back[None] if back.ndim == 2 else back.transpose(2, 0, 1))
    return size, np.concatenate(planes)


def _evaluate_audio(codec, clip, rate, baselines: bool) -> list[dict]:
    from ..metrics import decimate_round_trip, snr

    rate = rate or 44100
    seconds = clip.shape[1] / rate
    t_enc, blob = _timed(lambda: codec.encode(clip, sample_rate=rate))
    t_dec, decoded = _timed(lambda: codec.decode(blob))
    rows = [{"method": "WaLLoC", "setting": codec.config.name,
             "rate": 8 * len(blob) / seconds / 1e3, "snr": snr(clip, decoded),
             "encode_x_realtime": seconds / t_enc, "decode_x_realtime": seconds / t_dec}]
    if not baselines:
        return rows
    factor = max(1, round(codec.dimensionality_reduction))
    rows.append({"method": f"decimation /{factor}", "setting": f"x{factor}", "rate": math.nan,
                 "snr": snr(clip, decimate_round_trip(clip, factor))})
    size, back = _sndfile_round_trip(clip, rate, "FLAC")
    rows.append({"method": "FLAC", "setting": "lossless", "rate": 8 * size / seconds / 1e3,
                 "snr": snr(clip, back)})
    mp3_rates = [rate // f for f in (1, 2, 4) if rate % f == 0 and rate // f in MP3_RATES]
    ladders = [("MP3", "MP3", "MPEG_LAYER_III", r) for r in mp3_rates]
    ladders.append(("Opus", "OGG", "OPUS", 48000))
    for method, fmt, subtype, codec_rate in ladders:
        for level in AUDIO_LEVELS:
            try:
                size, back = _sndfile_round_trip(clip, rate, fmt, subtype, level, codec_rate)
            except (RuntimeError, ValueError, TypeError) as exc:  # libsndfile without that codec
                print(f"  {method} unavailable: {exc}", file=sys.stderr)
                break
            rows.append({"method": method, "setting": f"{codec_rate / 1000:g}kHz/{level}",
                         "rate": 8 * size / seconds / 1e3, "snr": snr(clip, back)})
    return rows


def _sndfile_round_trip(clip, rate, fmt, subtype=None, level=None, codec_rate=None):
    """Encode ``(C, T)`` audio with libsndfile (resampled to ``codec_rate`` first) and decode
    it back to ``clip``'s rate, length and dtype, aligned for the codec's delay."""
    from scipy.signal import resample_poly

    codec_rate = codec_rate or rate
    if level is None and codec_rate == rate:  # lossless: hand libsndfile the samples as they are
        data = clip.T if clip.dtype.kind != "f" else np.clip(clip.T, -1, 1)
        read_as = clip.dtype.name if clip.dtype.kind != "u" else "float32"
        size, back = _sndfile_bytes(data, rate, fmt, subtype, {}, read_as)
        return size, back.T
    ref = _to_float(clip).T
    data = ref if codec_rate == rate else resample_poly(ref, codec_rate, rate, axis=0).astype(np.float32)
    extra = {} if level is None else {"compression_level": level}
    if fmt == "MP3":
        extra["bitrate_mode"] = "CONSTANT"
    size, back = _sndfile_bytes(np.clip(data, -1, 1), codec_rate, fmt, subtype, extra, "float32")
    if codec_rate != rate:
        back = resample_poly(back, rate, codec_rate, axis=0)
    back = _align(ref, back)
    if clip.dtype.kind in "iu":
        info = np.iinfo(clip.dtype)
        back = np.clip(np.round(back * 32768.0 if clip.dtype == np.int16 else back), info.min, info.max)
    return size, back.T.astype(clip.dtype)


def _sndfile_bytes(data, rate, fmt, subtype, extra, read_as) -> tuple[int, np.ndarray]:
    """Write ``(T, C)`` with libsndfile into memory and read it back: (bytes, ``(T', C)``).
    The size is the buffer's length: libsndfile seeks back to write some headers (FLAC)."""
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, data, rate, format=fmt, subtype=subtype, **extra)
    size = buf.getbuffer().nbytes
    buf.seek(0)
    back, _ = soundfile.read(buf, dtype=read_as, always_2d=True)
    return size, back


def _to_float(clip: np.ndarray) -> np.ndarray:
    return clip / np.float32(32768.0) if clip.dtype == np.int16 else clip.astype(np.float32)


def _align(ref: np.ndarray, back: np.ndarray) -> np.ndarray:
    """``back`` ``(T', C)`` shifted by the delay (0..MAX_DELAY) that best matches ``ref``
    ``(T, C)``, then cut or zero-padded to ``ref``'s length."""
    from scipy.signal import correlate

    n = min(len(ref), 1 << 18)
    a, b = ref[:n].sum(axis=1), back[: n + MAX_DELAY].sum(axis=1)
    if len(b) > n and np.any(a):
        lags = correlate(b, a, mode="valid", method="fft")
        back = back[int(np.argmax(lags)):]
    out = np.zeros_like(ref, dtype=np.float64)
    m = min(len(ref), len(back))
    out[:m] = back[:m]
    return out


def _mean_curves(rows: list[dict], key: str) -> dict[str, list[tuple]]:
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


def _at_rate(points: list[tuple], rate: float) -> float:
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


def _report(codec, rows: list[dict]) -> str:
    image = codec.config.modality == "image"
    key, unit, quality = ("psnr", "bpp", "PSNR dB") if image else ("snr", "kbps", "SNR dB")
    curves = _mean_curves(rows, key)
    ours = curves.pop("WaLLoC")[0]
    n_items = len({r["item"] for r in rows})
    lines = [f"walloc eval: codec {codec.config.name} ({codec.fingerprint[:12]}), "
             f"DR {codec.dimensionality_reduction:g}, {n_items} items", "",
             f"| method | setting | {unit} | {quality} |" + (" MS-SSIM |" if image else ""),
             "|---|---|---|---|" + ("---|" if image else "")]
    for method, points in {"WaLLoC": [ours], **curves}.items():
        for rate, q, ms, setting in points:
            lines.append(f"| {method} | {setting} | {rate:.3f} | {q:.2f} |"
                         + (f" {ms:.4f} |" if image else ""))
    walloc_rows = [r for r in rows if r["method"] == "WaLLoC"]
    lines += ["", f"WaLLoC mean: {ours[0]:.3f} {unit}, {ours[1]:.2f} dB"
              + (f", MS-SSIM {ours[2]:.4f}" if image else "")]
    for method, points in curves.items():
        if len(points) == 1 and math.isnan(points[0][0]):
            lines.append(f"  vs {method} (same DR): {ours[1] - points[0][1]:+.2f} dB")
        else:
            at = _at_rate(points, ours[0])
            if not math.isnan(at):
                lines.append(f"  vs {method} at the same rate: {ours[1] - at:+.2f} dB")
    if image:
        enc = np.mean([r["encode_ms_per_mp"] for r in walloc_rows])
        dec = np.mean([r["decode_ms_per_mp"] for r in walloc_rows])
        lines.append(f"speed: encode {enc:.1f} ms/MP, decode {dec:.1f} ms/MP")
    else:
        enc = np.mean([r["encode_x_realtime"] for r in walloc_rows])
        dec = np.mean([r["decode_x_realtime"] for r in walloc_rows])
        lines.append(f"speed: encode {enc:.0f}x real time, decode {dec:.0f}x real time")
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("item", "method"), k))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _plot(path: Path, codec, rows: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no rd.png (pip install 'walloc-io[eval]')", file=sys.stderr)
        return
    image = codec.config.modality == "image"
    key = "psnr" if image else "snr"
    curves = _mean_curves(rows, key)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for method, points in curves.items():
        if math.isnan(points[0][0]):
            ax.axhline(points[0][1], ls=":", color="gray", label=method)
            continue
        style: dict[str, Any] = dict(marker="*", ms=14, ls="none", color="crimson") \
            if method == "WaLLoC" else dict(marker="o", ms=4)
        ax.plot([p[0] for p in points], [p[1] for p in points], label=method, **style)
    ax.set_xlabel("bits per pixel" if image else "kbit/s")
    ax.set_ylabel("PSNR (dB)" if image else "SNR (dB)")
    ax.set_title(f"{codec.config.name}: mean over {len({r['item'] for r in rows})} held-out items")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
