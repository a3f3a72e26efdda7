"""Rate–distortion evaluation of a codec against classical codecs (the library behind
``walloc eval``; benchmarks import it from here).

Images: bpp, PSNR, MS-SSIM, encode/decode ms per megapixel; the same images through JPEG,
WebP and JPEG 2000 (Pillow) at a ladder of qualities, and bicubic down/up at the codec's
dimensionality reduction. Audio: kbps, SNR; FLAC (lossless), MP3 and Opus (libsndfile) and
ideal decimation at the codec's DR, each decoded baseline resampled back and aligned to the
original before SNR is measured.
"""

from __future__ import annotations

import io
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import InputError

JPEG_QUALITIES = (10, 20, 35, 50, 75, 90)
WEBP_QUALITIES = (5, 15, 30, 50, 75, 90)
J2K_RATES = (400, 200, 100, 50, 25)  # compression ratios (Pillow ``quality_layers``)
AUDIO_LEVELS = (0.99, 0.9, 0.7, 0.5, 0.3)  # libsndfile compression_level, high = smaller
LADDER = (1, 10, 20, 35, 50, 65, 80, 100)  # the codec's qualities evaluated for its RD curve
CURVE = "WaLLoC curve"  # method name of the ladder rows ("WaLLoC": the design point)


def qualities(codec, ladder: bool) -> tuple[int, ...]:
    """The qualities of the codec's RD curve: :data:`LADDER` when it has a quality ladder."""
    return LADDER if ladder and codec.ladder else ()
MP3_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
MAX_DELAY = 8192  # samples of codec delay searched when aligning a decoded baseline


def items(source: Path, modality: str, channels: int):
    from ..media import read_signal, signal_files

    out = []
    for path in signal_files(source, modality):
        signal = read_signal(path)
        data = signal.data
        if modality == "image" and data.shape[0] != channels and channels in (1, 3) \
                and data.shape[0] in (1, 3, 4) and data.dtype == np.uint8:
            data = convert_photo(data, channels)
        if data.shape[0] != channels:
            raise InputError(f"{path} has {data.shape[0]} channels, the codec {channels}")
        out.append((path.name, data, signal.sample_rate))
    return out


def convert_photo(data: np.ndarray, channels: int) -> np.ndarray:
    """A grey/RGB/RGBA uint8 photo as the codec's grey or RGB, converted as Pillow does."""
    from PIL import Image

    im = Image.fromarray(data[0] if data.shape[0] == 1 else data.transpose(1, 2, 0))
    out = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1).copy()


def timed(fn, repeat: int = 2):
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def evaluate_image(codec, image, _rate, baselines: bool, ladder: tuple[int, ...] = (),
                   quality: int | None = None) -> list[dict]:
    """Rows of one image: the codec at ``quality`` (method ``WaLLoC``), at each quality of
    ``ladder`` (method :data:`CURVE`) and, with ``baselines``, bicubic/JPEG/WebP/JPEG 2000."""
    from ..metrics import bicubic_round_trip, ms_ssim
    from ..metrics import psnr as full_psnr

    pixels = image.shape[1] * image.shape[2]
    finite = np.isfinite(image) if image.dtype.kind == "f" else None
    if finite is not None and not finite.all():  # float fields with NaN (land): coded filled
        from ..signal import fill_nan

        values = image[finite]
        peak = float(np.ptp(values))
        image = fill_nan(image)

        def psnr(reference, test, peak_=None):  # over the finite values only
            return full_psnr(reference[finite], test[finite], peak if peak_ is None else peak_)
    else:
        peak = float(np.iinfo(image.dtype).max) if image.dtype.kind in "iu" else float(np.ptp(image))
        psnr = full_psnr
    t_enc, blob = timed(lambda: codec.encode(image, quality=quality))
    t_dec, decoded = timed(lambda: codec.decode(blob))
    rows = [{"method": "WaLLoC", "setting": codec.config.name, "rate": 8 * len(blob) / pixels,
             "psnr": psnr(image, decoded), "ms_ssim": ms_ssim(image, decoded, peak),
             "encode_ms_per_mp": 1e3 * t_enc / (pixels / 1e6),
             "decode_ms_per_mp": 1e3 * t_dec / (pixels / 1e6)}]
    for q in ladder:
        blob = codec.encode(image, quality=q)
        decoded = codec.decode(blob)
        rows.append({"method": CURVE, "setting": f"q{q}", "rate": 8 * len(blob) / pixels,
                     "psnr": psnr(image, decoded), "ms_ssim": ms_ssim(image, decoded, peak)})
    if not baselines:
        return rows
    if image.dtype == np.uint8 or image.dtype.kind == "f":
        factor = max(1, round(math.sqrt(codec.dimensionality_reduction)))
        up = bicubic_round_trip(image, factor)
        rows.append({"method": f"bicubic /{factor}", "setting": f"x{factor}", "rate": math.nan,
                     "psnr": psnr(image, up), "ms_ssim": ms_ssim(image, up, peak)})
    if image.dtype == np.uint8:
        for method, settings in (("JPEG", JPEG_QUALITIES), ("WebP", WEBP_QUALITIES),
                                 ("JPEG 2000", J2K_RATES)):
            for setting in settings:
                size, decoded = pillow_round_trip(image, method, setting)
                rows.append({"method": method, "setting": setting, "rate": 8 * size / pixels,
                             "psnr": psnr(image, decoded), "ms_ssim": ms_ssim(image, decoded, peak)})
    return rows


def pillow_round_trip(image: np.ndarray, method: str, setting) -> tuple[int, np.ndarray]:
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


def evaluate_audio(codec, clip, rate, baselines: bool, ladder: tuple[int, ...] = (),
                   quality: int | None = None) -> list[dict]:
    """Rows of one clip, as :func:`evaluate_image` (decimation, FLAC, MP3, Opus)."""
    from ..metrics import decimate_round_trip, snr

    rate = rate or 44100
    seconds = clip.shape[1] / rate
    t_enc, blob = timed(lambda: codec.encode(clip, sample_rate=rate, quality=quality))
    t_dec, decoded = timed(lambda: codec.decode(blob))
    rows = [{"method": "WaLLoC", "setting": codec.config.name,
             "rate": 8 * len(blob) / seconds / 1e3, "snr": snr(clip, decoded),
             "encode_x_realtime": seconds / t_enc, "decode_x_realtime": seconds / t_dec}]
    for q in ladder:
        blob = codec.encode(clip, sample_rate=rate, quality=q)
        rows.append({"method": CURVE, "setting": f"q{q}", "rate": 8 * len(blob) / seconds / 1e3,
                     "snr": snr(clip, codec.decode(blob))})
    if not baselines:
        return rows
    factor = max(1, round(codec.dimensionality_reduction))
    rows.append({"method": f"decimation /{factor}", "setting": f"x{factor}", "rate": math.nan,
                 "snr": snr(clip, decimate_round_trip(clip, factor))})
    size, back = sndfile_round_trip(clip, rate, "FLAC")
    rows.append({"method": "FLAC", "setting": "lossless", "rate": 8 * size / seconds / 1e3,
                 "snr": snr(clip, back)})
    mp3_rates = [rate // f for f in (1, 2, 4) if rate % f == 0 and rate // f in MP3_RATES]
    ladders = [("MP3", "MP3", "MPEG_LAYER_III", r) for r in mp3_rates]
    ladders.append(("Opus", "OGG", "OPUS", 48000))
    for method, fmt, subtype, codec_rate in ladders:
        for level in AUDIO_LEVELS:
            try:
                size, back = sndfile_round_trip(clip, rate, fmt, subtype, level, codec_rate)
            except (RuntimeError, ValueError, TypeError) as exc:  # libsndfile without that codec
                print(f"  {method} unavailable: {exc}", file=sys.stderr)
                break
            rows.append({"method": method, "setting": f"{codec_rate / 1000:g}kHz/{level}",
                         "rate": 8 * size / seconds / 1e3, "snr": snr(clip, back)})
    return rows


def sndfile_round_trip(clip, rate, fmt, subtype=None, level=None, codec_rate=None):
    """Encode ``(C, T)`` audio with libsndfile (resampled to ``codec_rate`` first) and decode
    it back to ``clip``'s rate, length and dtype, aligned for the codec's delay."""
    from scipy.signal import resample_poly

    codec_rate = codec_rate or rate
    if level is None and codec_rate == rate:  # lossless: hand libsndfile the samples as they are
        data = clip.T if clip.dtype.kind != "f" else np.clip(clip.T, -1, 1)
        read_as = clip.dtype.name if clip.dtype.kind != "u" else "float32"
        size, back = sndfile_bytes(data, rate, fmt, subtype, {}, read_as)
        return size, back.T
    ref = to_float(clip).T
    data = ref if codec_rate == rate else resample_poly(ref, codec_rate, rate, axis=0).astype(np.float32)
    extra = {} if level is None else {"compression_level": level}
    if fmt == "MP3":
        extra["bitrate_mode"] = "CONSTANT"
    size, back = sndfile_bytes(np.clip(data, -1, 1), codec_rate, fmt, subtype, extra, "float32")
    if codec_rate != rate:
        back = resample_poly(back, rate, codec_rate, axis=0)
    back = align(ref, back)
    if clip.dtype.kind in "iu":
        info = np.iinfo(clip.dtype)
        back = np.clip(np.round(back * 32768.0 if clip.dtype == np.int16 else back), info.min, info.max)
    return size, back.T.astype(clip.dtype)


def sndfile_bytes(data, rate, fmt, subtype, extra, read_as) -> tuple[int, np.ndarray]:
    """Write ``(T, C)`` with libsndfile into memory and read it back: (bytes, ``(T', C)``).
    The size is the buffer's length: libsndfile seeks back to write some headers (FLAC)."""
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, data, rate, format=fmt, subtype=subtype, **extra)
    size = buf.getbuffer().nbytes
    buf.seek(0)
    back, _ = soundfile.read(buf, dtype=read_as, always_2d=True)
    return size, back


def to_float(clip: np.ndarray) -> np.ndarray:
    return clip / np.float32(32768.0) if clip.dtype == np.int16 else clip.astype(np.float32)


def align(ref: np.ndarray, back: np.ndarray) -> np.ndarray:
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
