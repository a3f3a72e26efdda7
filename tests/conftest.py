"""Shared fixtures: a tiny seeded codec built in seconds, and odd-shaped signals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from walloc_io.config import CodecConfig
from walloc_io.entropy import fit_model_tables
from walloc_io.model import WallocModel
from walloc_io.presets.directory import save_codec_dir
from walloc_io.training.export import training_latents
from walloc_io.training.pca import pca_initialise

TINY = CodecConfig(name="tiny", channels=3, levels=2, latent_channels=12, decoder_channels=8,
                   decoder_blocks=1)


def smooth_images(n: int, size: tuple[int, int] = (64, 64), seed: int = 0) -> list[np.ndarray]:
    """Random smooth colour fields (uint8 ``(3, H, W)``): photo-like spectra, cheap to make."""
    rng = np.random.default_rng(seed)
    h, w = size
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    falloff = 1 / np.maximum(np.hypot(fy, fx), 1 / max(h, w)) ** 1.5
    out = []
    for _ in range(n):
        spec = (rng.standard_normal((3, h, w)) + 1j * rng.standard_normal((3, h, w))) * falloff
        field = np.fft.ifft2(spec).real
        field = field[0] + 0.3 * field  # correlated colour channels
        field = (field - field.min()) / (np.ptp(field) + 1e-12)
        out.append(np.round(field * 255).astype(np.uint8))
    return out


def build_codec_dir(config: CodecConfig, images: list[np.ndarray], out) -> str:
    torch.manual_seed(0)
    model = WallocModel(config)
    batches = [torch.from_numpy(np.stack(images)).float() / 255 - 0.5]
    pca_initialise(model, batches)
    latents = training_latents(model.eval(), images)
    tables = fit_model_tables(latents, config.max_symbol, config.entropy_model)
    return str(save_codec_dir(model, tables, out))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> str:
    return build_codec_dir(TINY, smooth_images(16), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    import walloc_io

    return walloc_io.load_codec(tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def images() -> list[np.ndarray]:
    return smooth_images(4, (48, 80), seed=1)


@pytest.fixture(scope="session")
def import_script():
    """``import_script(NAME)``: the module ``scripts/NAME.py`` (the scripts folder is not a
    package), imported without leaving that folder on ``sys.path``."""
    import importlib
    import sys
    from pathlib import Path

    folder = str(Path(__file__).parent.parent / "scripts")

    def load(name: str):
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(folder)

    return load
