#!/usr/bin/env python
"""Measure an image model decoded with bfloat16 residual blocks; record it if harmless.

    python scripts/check_precision.py rgb-16x [--images data/images/val] [--dir DIR]

Every validation photo is coded at the default quality and at qualities 1 and 100, and its
stream decoded in float32 throughout and with the residual blocks in bfloat16. The model
passes when no decoded pixel moves by more than one level of 255 and no photo loses more
than ``--max-loss`` dB of PSNR. When all blocks in bfloat16 fail, the blocks are measured
one at a time and the most harmful kept in float32 until it passes (a block making large
increments, such as rgb-4x's block 3, loses most). A passing model gets a ``"bfloat16"``
entry in its manifest with the figures and the blocks kept (``precision="auto"`` then uses
bfloat16 on CPUs that compute it natively); a failing one loses the entry and the script
exits 1. A new decoder (``scripts/tune_decoder.py``) is written without it:
each model is measured afresh. Validation photos only: the held-out sources stay unseen.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import walloc_io
from walloc_io.codec import BFLOAT16_KEY
from walloc_io.metrics import psnr
from walloc_io.model.decoder import BlockPrecision
from walloc_io.presets import resolve

QUALITIES = (None, 1, 100)


class Check:
    """The validation streams of one model, decoded once in float32; ``measure(keep)``
    decodes them with the residual blocks in bfloat16 but those in ``keep``."""

    def __init__(self, directory: Path, images: list[Path]) -> None:
        self.exact = walloc_io.load_codec(directory, device="cpu", precision="float32")
        mode = {1: "L", 3: "RGB"}[self.exact.config.channels]
        self.items = []
        for path in images:
            x = np.asarray(Image.open(path).convert(mode))
            x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
            for q in QUALITIES:
                blob = self.exact.encode(x, quality=q)
                self.items.append((x, blob, self.exact.decode(blob)))
        self.label = f"{len(images)} photos x qualities default, 1, 100"

    @property
    def blocks(self) -> int:
        return self.exact.config.decoder_blocks

    def measure(self, keep: tuple[int, ...]) -> dict:
        reduced = copy.copy(self.exact)  # the same model and tables, another arithmetic
        reduced.reduced = BlockPrecision(torch.bfloat16, keep)
        worst_change, changed, total, losses = 0, 0, 0, []
        for x, blob, a in self.items:
            b = reduced.decode(blob)
            d = np.abs(a.astype(np.int16) - b.astype(np.int16))
            worst_change = max(worst_change, int(d.max()))
            changed, total = changed + int(np.count_nonzero(d)), total + d.size
            losses.append(psnr(x, a) - psnr(x, b))
        return {"checked_on": self.label, "float32_blocks": list(keep),
                "max_level_change": worst_change, "changed_share": round(changed / total, 4),
                "mean_psnr_loss_db": round(float(np.mean(losses)), 4),
                "worst_psnr_loss_db": round(float(np.max(losses)), 4)}


def calibrate(check: Check, max_loss: float, report=print) -> tuple[dict, bool]:
    """All blocks in bfloat16 if that passes; else each block alone in bfloat16 is
    measured, and blocks are kept in float32 from the most harmful down until it passes
    (or all are kept: the model fails)."""
    def passes(r: dict) -> bool:
        return r["max_level_change"] <= 1 and r["worst_psnr_loss_db"] <= max_loss

    record = check.measure(())
    report(f"all blocks in bfloat16: {json.dumps(record)}")
    if passes(record) or check.blocks == 0:
        return record, passes(record)
    every = tuple(range(check.blocks))
    alone = {}
    for b in every:
        r = check.measure(tuple(i for i in every if i != b))
        alone[b] = r["worst_psnr_loss_db"]
        report(f"block {b} alone in bfloat16: worst loss {alone[b]:.4f} dB, "
               f"max change {r['max_level_change']}")
    keep: list[int] = []
    for b in sorted(every, key=lambda i: -alone[i]):
        keep.append(b)
        if len(keep) == len(every):
            break
        record = check.measure(tuple(sorted(keep)))
        report(f"blocks {sorted(keep)} kept in float32: {json.dumps(record)}")
        if passes(record):
            return record, True
    return record, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", nargs="?", help="a shipped image preset")
    parser.add_argument("--dir", type=Path, help="a codec directory instead of a preset")
    parser.add_argument("--images", type=Path, default=Path("data/images/val"))
    parser.add_argument("--max-loss", type=float, default=0.02, help="dB per photo")
    args = parser.parse_args()
    if (args.preset is None) == (args.dir is None):
        raise SystemExit("give a preset or --dir")
    directory = Path(args.dir) if args.dir is not None else resolve(args.preset)
    images = sorted(args.images.glob("*.png"))
    if not images:
        raise SystemExit(f"no .png photos in {args.images}")
    record, passed = calibrate(Check(directory, images), args.max_loss)
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.pop(BFLOAT16_KEY, None)
    if passed:
        manifest[BFLOAT16_KEY] = record
    tmp = manifest_path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(manifest_path)
    print(f"{directory.name}: {'passes' if passed else 'fails'}: {json.dumps(record)}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("WALLOC_THREADS", "1")))
    main()
