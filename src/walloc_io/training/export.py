"""After training: fit the integer entropy tables on training latents and write the codec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..entropy import fit_tables
from ..model import WallocModel
from ..presets.directory import save_codec_dir

TILE = 512  # latents of large images are computed tile by tile to bound memory


@torch.no_grad()
def training_latents(model: WallocModel, images: list[np.ndarray]) -> list[np.ndarray]:
    """Integer latents of every training image (uint8 ``(C, H, W)``), cut to whole tiles."""
    f, out = model.transform.factor, []
    for im in images:
        x = torch.from_numpy(im).float() / 255 - 0.5
        h, w = (im.shape[1] // f) * f, (im.shape[2] // f) * f
        for top in range(0, h, TILE):
            for left in range(0, w, TILE):
                tile = x[:, top : min(top + TILE, h), left : min(left + TILE, w)]
                out.append(model.encode_latents(tile[None])[0].numpy())
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
