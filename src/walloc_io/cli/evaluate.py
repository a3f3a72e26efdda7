"""``walloc eval``: rate–distortion of a codec on a folder, against classical codecs.

    walloc eval rgb-16x data/images/val --out benchmarks/results/eval-rgb-16x
    walloc eval my-audio/ recordings/ --out report/

The codec is measured at its design point (or ``--quality``) and, when it has a quality
ladder, along its whole RD curve (qualities 1..100, see ``walloc_io.quality``): the report
gives BD-PSNR/BD-SNR of that curve against each baseline over the rates both cover, and the
worst item against the same-DR baseline (bicubic, ideal decimation).

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

import sys
from pathlib import Path

from .args import device, quality


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
    p.add_argument("--quality", type=quality, help="the single operating point (default: the "
                   "design point, 50)")
    p.add_argument("--no-curve", action="store_true",
                   help="skip the codec's RD curve over its quality ladder")
    p.set_defaults(run=run)


def run(args) -> None:
    import torch

    from ..codec import load_codec

    torch.set_num_threads(args.threads)
    codec = load_codec(args.codec, device=args.device)
    from ..evaluation import evaluate_audio, evaluate_image, items, plot, report, write_csv
    from ..evaluation.rd import qualities

    found = items(args.data, codec.config.modality, codec.config.channels)[: args.limit]
    evaluate = evaluate_image if codec.config.modality == "image" else evaluate_audio
    rows = []
    for name, signal, rate in found:
        rows += [{"item": name, **r} for r in evaluate(
            codec, signal, rate, not args.no_baselines, qualities(codec, not args.no_curve),
            codec.check_quality(args.quality))]
        print(f"  {name}: done", file=sys.stderr)
    text = report(codec, rows)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval.md").write_text(text + "\n")
        write_csv(args.out / "eval.csv", rows)
        plot(args.out / "rd.png", codec, rows)
