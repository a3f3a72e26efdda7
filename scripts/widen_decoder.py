#!/usr/bin/env python
"""Continue a kept preset model with its decoder's convolutions widened (an experiment).

    python scripts/widen_decoder.py mono-16x a52b3e24 --data data/audio-wide/mono \\
        --start 22000 --steps 26000 --kernel 5 --workdir runs/mono-16x-k5 --out runs/mono-16x-k5-out

The model ``FP`` of the preset (a kept version, by fingerprint prefix) is loaded, and every
decoder convolution of ``decoder_kernel`` taps is zero-padded to ``--kernel`` taps, centred:
with replicate padding the widened decoder computes the same function, so training starts
from the kept model's quality. It then trains the preset's last phase stretched to
``--steps`` from ``--start`` (resumable in WORKDIR) and writes a codec directory to
``--out`` (tables and ladder fitted, the preset's rate floor). Nothing is written into the
preset: a result is shipped, if at all, by its own recipe.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_preset import PRESETS, RATE_FLOORS, kept_model  # noqa: E402

from walloc_io.presets.directory import load_codec_dir  # noqa: E402
from walloc_io.training import Trainer, load_signals  # noqa: E402
from walloc_io.training.export import export_codec  # noqa: E402

PRESET_DIR = Path(__file__).resolve().parents[1] / "src/walloc_io/presets"


def widened(state: dict, target: dict) -> dict:
    """``state`` with each conv weight of fewer taps than ``target``'s zero-padded, centred
    on every spatial axis."""
    out = {}
    for key, value in state.items():
        want = target[key]
        if value.shape != want.shape:  # (out, in, *taps): grow every spatial axis
            pads = [w - v for v, w in zip(value.shape[2:], want.shape[2:])]
            if (value.shape[:2] != want.shape[:2] or value.ndim != want.ndim
                    or any(p <= 0 or p % 2 for p in pads)):
                raise SystemExit(f"{key}: {tuple(value.shape)} cannot widen to {tuple(want.shape)}")
            grown = torch.zeros_like(want)
            grown[(..., *(slice(p // 2, p // 2 + n) for p, n in zip(pads, value.shape[2:])))] = value
            value = grown
        out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("version", metavar="FP", help="fingerprint prefix of a kept model")
    parser.add_argument("--data", type=Path, required=True, help="folder with train/ and val/")
    parser.add_argument("--start", type=int, required=True, help="the step the model ended at")
    parser.add_argument("--steps", type=int, required=True, help="train until this step")
    parser.add_argument("--kernel", type=int, default=5)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model, _, fp = load_codec_dir(kept_model(PRESET_DIR / args.preset, args.version))
    config = replace(model.config, decoder_kernel=args.kernel)
    phase = replace(PRESETS[args.preset][1][-1], steps=args.steps)
    train = load_signals(args.data / "train", config.modality)
    val = load_signals(args.data / "val", config.modality)
    trainer = Trainer(config, phase, train, val, args.workdir)
    if not trainer.checkpoint_path.exists():
        trainer.model.load_state_dict(widened(model.state_dict(), trainer.model.state_dict()))
        trainer.step, trainer.rate_weight = args.start, phase.rate_weight
        trainer.save_checkpoint()
        print(f"seeded {args.workdir} from {fp[:12]}, kernel {args.kernel}", file=sys.stderr)
    trainer.run(report=lambda line: print(line, flush=True))
    path = export_codec(trainer.model.cpu().eval(), train, args.out,
                        train_log=args.workdir / "log.jsonl",
                        rate_floor=RATE_FLOORS.get(args.preset, 0.0))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("WALLOC_TRAIN_THREADS", "2")))
    main()
