"""After training: fit the integer entropy tables on training latents and write the codec."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import torch

from ..entropy import fit_tables
from ..model import WallocModel
from ..presets.directory import save_codec_dir
from .data import to_unit

TILE = {1: 1 << 16, 2: 512}  # latents of large signals are computed tile by tile


@torch.no_grad()
def training_latents(model: WallocModel, signals: list[np.ndarray]) -> list[np.ndarray]:
    """Integer latents of every training signal (``(C, *axes)``, uint8 or unit float), in tiles."""
    f, out = model.transform.factor, []
    for signal in signals:
        x = to_unit(signal)
        sizes = [(n // f) * f for n in signal.shape[1:]]
        tile = TILE[len(sizes)]
        for starts in itertools.product(*(range(0, n, tile) for n in sizes)):
            index = tuple(slice(s, min(s + tile, n)) for s, n in zip(starts, sizes))
            out.append(model.encode_latents(x[(slice(None), *index)][None])[0].numpy())
    return out


def export_codec(
    model: WallocModel, train_images: list[np.ndarray], out: str | Path,
    train_log: Path | None = None,
) -> Path:
    model = model.eval()
    latents = training_latents(model, train_images)
    cfg = model.config
    tables = fit_tables(latents, cfg.max_symbol, predictive=cfg.entropy_model == "predictive")
    extra = {"training": _last_validation(train_log)} if train_log else {}
    return save_codec_dir(model, tables, out, extra)


def _last_validation(log: Path) -> dict:
    if not log.exists():
        return {}
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    val = [r for r in rows if "val_psnr" in r]
    return {"steps": rows[-1]["step"] if rows else 0, **(val[-1] if val else {})}
