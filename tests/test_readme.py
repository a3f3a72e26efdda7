"""The README's Python blocks run, as written, on small stand-ins for the user's data."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from .conftest import smooth_images

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def user_data(tmp_path: Path) -> dict:
    """What the blocks assume the user has: a photo, images, a stack, shards, a sample."""
    import PIL.Image
    import webdataset as wds

    import walloc_io

    images = smooth_images(3, (64, 96), seed=3)
    PIL.Image.fromarray(images[0].transpose(1, 2, 0)).save(tmp_path / "photo.png")
    yy, xx = np.mgrid[0:48, 0:80]
    np.save(tmp_path / "sst.npy", (np.sin(xx / 9) * np.cos(yy / 7) * 3 + 15)[None].astype(np.float32))
    photos = np.concatenate([np.stack(images)] * 34)[:100]
    photos = np.pad(photos, ((0, 0), (0, 0), (0, 512 - 64), (0, 768 - 96)), mode="reflect")
    with wds.ShardWriter(str(tmp_path / "in-%06d.tar"), maxcount=2, verbose=0,
                         encoder=walloc_io.wds_encoder("rgb-16x")) as sink:  # a shard per worker
        for i, im in enumerate(images * 3):
            sink.write({"__key__": f"s{i:03d}", "wlc": im, "cls": i % 2})
    urls = str(tmp_path / "in-{000000..000004}.tar")
    return {"images": images, "photos": photos, "urls": urls, "key": "k000",
            "image_chw_uint8": images[0], "label": 1}


def test_readme_has_the_blocks_this_test_knows():
    assert len(BLOCKS) == 3 and "load_codec" in BLOCKS[0] and "zarr" in BLOCKS[1]


@pytest.mark.filterwarnings("ignore:CUDA requested but not available:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 4 workers, 2 cores
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    import walloc_io

    monkeypatch.chdir(tmp_path)
    namespace = user_data(tmp_path)
    for i, block in enumerate(BLOCKS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # webdataset leaves shards to the GC
            exec(compile(block, f"README block {i + 1}", "exec"), namespace)
    assert namespace["restored"].shape == namespace["image"].shape
    bounded = walloc_io.load_codec("field-16x", device="cpu").decode(namespace["exact"])
    assert np.abs(bounded - namespace["field"]).max() <= 0.01
    assert walloc_io.read_header(namespace["small"]).quality == 20
    assert namespace["lat"].shape == (100, 12, 64, 96)
    assert tuple(namespace["x"].shape[1:]) == (3, 64, 96)  # the last batch of the loader
    assert len(namespace["ds"]) == 100
