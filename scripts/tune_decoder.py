#!/usr/bin/env python
"""Train a deeper decoder for a shipped image or audio preset, its encoder frozen (a new version).

    python scripts/tune_decoder.py rgb-16x --blocks 6 --steps 12000 --workdir runs/rgb-16x-d6 \\
        --out runs/rgb-16x-d6-out
    python scripts/tune_decoder.py mono-16x --data data/audio-varied/mono --blocks 8 \\
        --steps 6000 --workdir runs/mono-16x-d8 --out runs/mono-16x-d8-out
    python scripts/tune_decoder.py mono-16x --data data/audio-varied/mono --blocks 0 \\
        --linear-kernel 9 --steps 1000 --workdir runs/mono-16x-l9 --out runs/mono-16x-l9-out

The preset's current model is loaded and its decoder deepened to ``--blocks`` residual
blocks that start as the identity (:func:`walloc_io.training.decoder.deepened`); only the
decoder then trains, on rounded latents at qualities drawn per crop and on the periodic
part of each image crop (audio crops as they are), as the codec codes them (resumable in
WORKDIR). The latents stay bit-identical, so the codec directory written to ``--out`` (by
default over the preset, the old model kept in ``versions/``) carries the old model's
tables and quality ladder unchanged: the same streams, a new fingerprint for the new
weights. ``--blocks 0`` (audio presets) replaces the decoder by a linear path alone,
``--linear-kernel`` latent steps wide, solved in closed form over ``--steps`` batches
(:meth:`~walloc_io.training.decoder.DecoderTrainer.fit_linear`) instead of trained; its
crops are weighted equally (``--loss mse``, the default there), which fits better than by
their power.
``--export-only`` writes the directory from WORKDIR's checkpoint without training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from walloc_io.entropy import load_ladder
from walloc_io.presets.directory import held_file, load_codec_dir, save_codec_dir
from walloc_io.training import load_images, load_signals
from walloc_io.training.decoder import (
    LOSSES,
    DecoderSettings,
    DecoderTrainer,
    deepened,
    linearised,
)

PRESET_DIR = Path(__file__).resolve().parents[1] / "src/walloc_io/presets"
AUDIO_CROP = 2**15  # samples: 128 latent steps at J = 8, as the audio presets trained
KEPT = ("training", "allocation", "entropy", "rate_floor")  # manifest entries carried over


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("--data", type=Path,
                        help="folder with train/ and val/ items (default: data/images; "
                        "required for audio presets)")
    parser.add_argument("--start", type=Path,
                        help="codec directory to grow (default: the preset's current model; "
                             "e.g. one of its versions/ for an ablation)")
    parser.add_argument("--blocks", type=int, required=True, help="residual blocks to grow to")
    parser.add_argument("--linear-kernel", type=int,
                        help="with --blocks 0: the linear decoder's taps (odd; default 9)")
    parser.add_argument("--steps", type=int, default=DecoderSettings.steps)
    parser.add_argument("--lr", type=float, default=DecoderSettings.lr)
    parser.add_argument("--crop", type=int, help="crop size (default: 256 pixels, "
                        "32768 samples for audio)")
    parser.add_argument("--batch", type=int, help="crops per step (default: 8, 16 for audio)")
    parser.add_argument("--loss", choices=LOSSES,
                        help="mse: the batch's MSE (default for images); snr: the mean of "
                        "each crop's error in dB, the mean SNR (default for audio)")
    parser.add_argument("--split-share", type=float, default=DecoderSettings.split_share,
                        help="share of crops coded with the boundary split (the rest as is)")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="codec directory to write (default: the preset)")
    parser.add_argument("--export-only", action="store_true")
    args = parser.parse_args()
    if args.start and not args.out:
        raise SystemExit("--start needs --out: the directory it starts from is not the preset's")
    if args.blocks and args.linear_kernel is not None:
        raise SystemExit("--linear-kernel goes with --blocks 0 (a linear decoder alone)")
    directory = args.start or PRESET_DIR / args.preset
    model, tables, fp = load_codec_dir(directory)
    audio = model.config.modality == "audio"
    if not audio and (model.config.modality != "image" or model.config.channels not in (1, 3)):
        raise SystemExit(f"{args.preset} is neither a gray/RGB image nor an audio preset")
    if args.blocks == 0 and not audio:
        raise SystemExit(f"--blocks 0 (a linear decoder solved in closed form) is for audio "
                         f"presets; {args.preset} is an image preset")
    if args.linear_kernel is None:
        args.linear_kernel = 9
    grown = deepened(model, args.blocks) if args.blocks else linearised(model, args.linear_kernel)
    settings = DecoderSettings(steps=args.steps, lr=args.lr, split_share=args.split_share,
                               crop=args.crop or (AUDIO_CROP if audio else 256),
                               batch=args.batch or (16 if audio else 8),
                               loss=args.loss or ("snr" if audio and args.blocks else "mse"))
    channels = model.config.channels
    if audio:
        if args.data is None:
            raise SystemExit(f"{args.preset} is an audio preset: name its music with --data "
                             "(e.g. data/audio-varied/mono)")
        train, val = (load_signals(args.data / part, "audio") for part in ("train", "val"))
        if {a.shape[0] for a in train + val} != {channels}:
            raise SystemExit(f"{args.preset} codes {channels}-channel audio; {args.data} holds "
                             f"{sorted({a.shape[0] for a in train + val})}-channel items")
    else:
        args.data = args.data or Path("data/images")
        train, val = (load_images(args.data / part, channels) for part in ("train", "val"))
    trainer = DecoderTrainer(grown, settings, train, val, args.workdir)
    if args.export_only:
        trainer.resume()
    elif args.blocks == 0:
        trainer.fit_linear(args.steps, report=lambda line: print(line, flush=True))
    else:
        trainer.run(report=lambda line: print(line, flush=True))
    recipe = (f"scripts/tune_decoder.py {args.preset} --data {args.data} --blocks "
              f"{args.blocks}"
              + (f" --linear-kernel {args.linear_kernel}" if args.blocks == 0 else "")
              + f" --steps {args.steps} --lr {args.lr} --crop {settings.crop} "
              f"--batch {settings.batch} --loss {settings.loss}"
              + ("" if audio else f" --split-share {args.split_share}")
              + (f" --start {args.start}" if args.start else ""))
    path = write_version(directory, grown, trainer.log, args.out or directory, recipe)
    print(f"wrote {path}: {args.blocks}-block decoder on {fp[:8]}", file=sys.stderr)


def write_version(directory: Path, grown, log: Path, out: Path, recipe: str) -> Path:
    """The codec directory of ``grown`` (a model of ``directory`` with its decoder trained)
    written to ``out``: ``directory``'s tables and ladder as they are (the latents are the
    same), its manifest's training record kept, the decoder run's last validation added."""
    model, tables, fp = load_codec_dir(directory)
    state = grown.state_dict()
    for k, v in model.state_dict().items():
        if not k.startswith("decoder.") and not torch.equal(v, state[k]):
            raise SystemExit(f"{k} differs from {fp[:8]}'s: the encoder must stay frozen")
    manifest = json.loads((directory / "manifest.json").read_text())
    extra = {k: v for k, v in manifest.items() if k in KEPT}
    rows = [json.loads(r) for r in log.read_text().splitlines() if r.strip()]
    last = [r for r in rows if any(k.startswith("val_") for k in r)][-1]
    extra["decoder"] = {"from": fp[:8], "blocks": grown.config.decoder_blocks,
                        "steps": last["step"],
                        "encoder": "frozen (latents, tables and ladder of the model it grows)",
                        **{k: v for k, v in last.items() if k.startswith("val_")},
                        "recipe": recipe}
    held = held_file(directory, "ladder.npz")  # a kept version's ladder.ref resolved too
    ladder = load_ladder(held) if held is not None else None
    return save_codec_dir(grown.cpu().eval(), tables, out, extra, ladder=ladder)

if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("WALLOC_TRAIN_THREADS", "2")))
    main()
