"""Random crops from a folder of images, held in memory as uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def load_images(folder: str | Path, channels: int = 3) -> list[np.ndarray]:
    """Every image in ``folder`` as a ``(C, H, W)`` uint8 array, sorted by file name."""
    from PIL import Image

    mode = {1: "L", 3: "RGB"}[channels]
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    arrays = [np.asarray(Image.open(p).convert(mode)) for p in files]
    return [a[None] if a.ndim == 2 else a.transpose(2, 0, 1).copy() for a in arrays]


class CropSampler:
    """Draw batches of random ``crop x crop`` patches with random flips.

    Images are picked with probability proportional to their area, so every training
    pixel is equally likely; the generator is seeded, so runs are reproducible.
    """

    def __init__(self, images: list[np.ndarray], crop: int, seed: int = 0) -> None:
        self.images = [im for im in images if min(im.shape[1:]) >= crop]
        if not self.images:
            raise ValueError(f"no image is at least {crop} px on its short side")
        area = np.array([im.shape[1] * im.shape[2] for im in self.images], dtype=np.float64)
        self.weights = area / area.sum()
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        """``(size, C, crop, crop)`` float32 in ``[-1/2, 1/2]``."""
        picks = self.rng.choice(len(self.images), size=size, p=self.weights)
        out = np.empty((size, self.images[0].shape[0], self.crop, self.crop), dtype=np.uint8)
        for i, k in enumerate(picks):
            im = self.images[k]
            top = self.rng.integers(0, im.shape[1] - self.crop + 1)
            left = self.rng.integers(0, im.shape[2] - self.crop + 1)
            patch = im[:, top : top + self.crop, left : left + self.crop]
            if self.rng.random() < 0.5:
                patch = patch[:, :, ::-1]
            out[i] = patch
        return torch.from_numpy(out).float() / 255 - 0.5
