"""After training: fit the integer entropy tables on training latents and write the codec."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import torch

from ..entropy import EntropyTables, fit_model_tables
from ..entropy.tables import CAUSAL_WEIGHT
from ..model import WallocModel
from ..presets.directory import save_codec_dir
from .data import to_unit

TILE = {1: 1 << 16, 2: 512}  # latents of large signals are computed tile by tile


@torch.no_grad()
def training_latents(model: WallocModel, signals: list[np.ndarray], step: float = 1.0
                     ) -> list[np.ndarray]:
    """Integer latents of every training signal (``(C, *axes)``, uint8 or unit float), in
    tiles; ``step``: the quantisation step (see :mod:`walloc_io.quality`)."""
    f, out = model.transform.factor, []
    for signal in signals:
        x = to_unit(signal)
        sizes = [(n // f) * f for n in signal.shape[1:]]
        tile = TILE[len(sizes)]
        for starts in itertools.product(*(range(0, n, tile) for n in sizes)):
            index = tuple(slice(s, min(s + tile, n)) for s, n in zip(starts, sizes))
            out.append(model.encode_latents(x[(slice(None), *index)][None], step)[0].numpy())
    return out


def fit_ladder(model: WallocModel, signals: list[np.ndarray], rungs: tuple[int, ...] | None = None,
               neighbour_weight: int = CAUSAL_WEIGHT) -> dict[int, EntropyTables]:
    """Tables of every quality rung but the design point's (those are ``tables.npz``),
    fitted on the training signals' latents at the rung's step: the knob's rungs and the
    floor rungs above 100 (``rungs``: only these; ``neighbour_weight``: the contextual
    model's)."""
    from .. import quality

    model = model.eval()
    cfg, ladder = model.config, {}
    for q in rungs or quality.RUNGS + quality.FLOOR_RUNGS:
        if q == quality.DESIGN:
            continue
        latents = training_latents(model, signals, quality.step(q))
        ladder[q] = fit_model_tables(latents, model.max_symbol(quality.step(q)),
                                     cfg.entropy_model, neighbour_weight)
    return ladder


def export_codec(
    model: WallocModel, train_images: list[np.ndarray], out: str | Path,
    train_log: Path | None = None, rate_floor: float = 0.0, extra: dict | None = None,
    neighbour_weight: int = CAUSAL_WEIGHT,
) -> Path:
    """Fit the tables and the quality ladder on ``train_images`` and write the codec
    directory (``rate_floor``: the default quality's floor, bits per latent; ``extra``:
    further manifest entries, e.g. the ``training`` record of the model it continues)."""
    model = model.eval()
    latents = training_latents(model, train_images)
    cfg = model.config
    tables = fit_model_tables(latents, model.max_symbol(), cfg.entropy_model, neighbour_weight)
    extra = {**(extra or {}), **({"training": _last_validation(train_log)} if train_log else {})}
    if rate_floor:
        extra["rate_floor"] = rate_floor
    return save_codec_dir(model, tables, out, extra,
                          ladder=fit_ladder(model, train_images, neighbour_weight=neighbour_weight))


def _last_validation(log: Path) -> dict:
    if not log.exists():
        return {}
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    val = [r for r in rows if "val_psnr" in r]
    return {"steps": rows[-1]["step"] if rows else 0, **(val[-1] if val else {})}
