"""``walloc``: encode, decode and inspect WaLLoC streams from the shell.

    walloc encode photo.png photo.wlc --codec rgb-16x
    walloc decode photo.wlc photo.out.png
    walloc info photo.wlc
    walloc train photos/ my-codec/ --steps 4000
    walloc eval rgb-16x held-out-photos/ --out report/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import WallocError
from .args import Parser, device, quality


def _encode(args: argparse.Namespace) -> None:
    from ..codec import load_codec
    from ..media import read_signal, write_atomic

    signal = read_signal(args.input)
    codec = load_codec(args.codec, device=args.device)
    blob = codec.encode(signal.data, sample_rate=signal.sample_rate, quality=args.quality)
    write_atomic(args.output, blob)
    ratio = signal.data.nbytes / len(blob)
    print(f"{args.input} -> {args.output}: {signal.data.nbytes} -> {len(blob)} bytes "
          f"({ratio:.1f}x, {_rate(blob, signal.data.shape)})")


def _decode(args: argparse.Namespace) -> None:
    from ..bitstream import read_header
    from ..codec import load_codec
    from ..media import write_signal
    from ..presets import preset_for

    blob = Path(args.input).read_bytes()
    header = read_header(blob)
    if args.codec:  # the named codec, or the earlier version of it that made this stream
        codec = load_codec(args.codec, device=args.device, fingerprint=header.fingerprint)
    else:
        codec = load_codec(preset_for(header.fingerprint), device=args.device)
    write_signal(args.output, codec.decode(blob), header.sample_rate)
    print(f"{args.input} -> {args.output}: {header.dtype} {header.array_shape}")


def _info(args: argparse.Namespace) -> None:
    from ..bitstream import read_header

    blob = Path(args.input).read_bytes()
    h = read_header(blob)
    fields = {
        "file": str(args.input), "bytes": len(blob), "modality": h.modality,
        "shape": list(h.array_shape), "dtype": h.dtype, "padding": list(h.padding),
        "latent_shape": [h.latent_channels, *h.latent_shape], "entropy_model": h.entropy_model,
        "fingerprint": h.fingerprint, "rate": _rate(blob, h.array_shape),
        "normalisation": None if h.normalisation is None else h.normalisation.tolist(),
        "sample_rate": h.sample_rate or None, "format_version": h.version, "quality": h.quality,
        "max_abs_error": h.max_abs_error,
    }
    if args.json:
        print(json.dumps(fields))
    else:
        for key, value in fields.items():
            print(f"{key:>14}: {value}")


def _rate(blob: bytes, shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return f"{8 * len(blob) / (shape[1] * shape[2]):.3f} bpp"
    return f"{8 * len(blob) / (shape[0] * shape[1]):.3f} bits/sample"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="walloc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="compress an image (PNG/JPEG/TIFF/NPY) or audio (WAV/FLAC)")
    enc.add_argument("input")
    enc.add_argument("output", help="the .wlc stream to write")
    enc.add_argument("--codec", default="rgb-16x", help="preset name or codec directory")
    enc.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or auto")
    enc.add_argument("--quality", type=quality, help="1..100, higher = more bits (default: the "
                     "codec's design point, 50)")
    enc.set_defaults(run=_encode)
    dec = sub.add_parser("decode", help="decompress a .wlc stream to the format of OUTPUT")
    dec.add_argument("input")
    dec.add_argument("output", help=".png/.tif/.npy for images, .wav/.flac/.npy for audio")
    dec.add_argument("--codec", help="preset name or codec directory (default: the preset "
                     "whose fingerprint the stream carries)")
    dec.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or auto")
    dec.set_defaults(run=_decode)
    info = sub.add_parser("info", help="print a stream's header (no model needed)")
    info.add_argument("input")
    info.add_argument("--json", action="store_true", help="one JSON object")
    info.set_defaults(run=_info)
    from . import demo

    demo.add_parser(sub)
    from . import convert, evaluate, train

    train.add_parser(sub)
    train.add_spectral_parser(sub)
    evaluate.add_parser(sub)
    convert.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .convert import NothingConverted

    try:
        args.run(args)
    except (WallocError, OSError) as exc:
        print(f"walloc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except NothingConverted as exc:
        print(f"walloc {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0
