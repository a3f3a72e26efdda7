"""A codec retrained into its own directory keeps every earlier model decodable by fingerprint."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import zarr

import walloc_io
from walloc_io.bitstream import read_header
from walloc_io.presets import VERSIONS, find_version, manifest_fingerprint, versions
from walloc_io.presets.directory import load_codec_dir, save_codec_dir


def retrain(directory, seed: int) -> str:
    """What a second ``walloc train`` to the same folder does: new weights, new fingerprint."""
    model, tables, _ = load_codec_dir(directory)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        for p in model.decoder.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
    save_codec_dir(model, tables, directory)
    return manifest_fingerprint(directory)


@pytest.fixture
def codec_dir(tmp_path, tiny_dir):
    target = tmp_path / "my-codec"
    shutil.copytree(tiny_dir, target)
    return target


def test_old_streams_and_stores_decode_after_two_retrainings(codec_dir, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 48), dtype=np.uint8)
    first = walloc_io.load_codec(str(codec_dir), device="cpu")
    blob, decoded = first.encode(x), first.decode(first.encode(x))
    store = zarr.create_array(tmp_path / "a.zarr", shape=(2, 3, 32, 48), chunks=(1, 3, 32, 48),
                              dtype="uint8", serializer={"name": "walloc", "configuration": {
                                  "path": str(codec_dir)}})
    store[:] = np.stack([x, x[:, ::-1]])
    stored = store[:]

    fp1 = first.fingerprint
    fp2 = retrain(codec_dir, 1)
    fp3 = retrain(codec_dir, 2)
    assert len({fp1, fp2, fp3}) == 3
    assert list(versions(codec_dir)) == [fp3, *sorted([fp1, fp2], key=lambda f: f[:8])]
    assert find_version(codec_dir, fp1) == codec_dir / VERSIONS / fp1[:8]

    current = walloc_io.load_codec(str(codec_dir), device="cpu")
    assert current.fingerprint == fp3
    with pytest.raises(walloc_io.ModelMismatchError, match=fp1[:12]):
        current.decode(blob)
    old = walloc_io.load_codec(str(codec_dir), device="cpu", fingerprint=read_header(blob).fingerprint)
    assert old.fingerprint == fp1
    np.testing.assert_array_equal(old.decode(blob), decoded)  # bit-exact, as before retraining
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "a.zarr", mode="r")[:], stored)
    with pytest.raises(walloc_io.ModelMismatchError, match="holds no model"):
        walloc_io.load_codec(str(codec_dir), device="cpu", fingerprint="0" * 32)


def test_cli_and_webdataset_decode_an_old_stream_with_the_codec_named(codec_dir, tmp_path):
    from walloc_io.pipelines.wds import wds_decoder

    x = np.random.default_rng(1).integers(0, 256, (3, 16, 16), dtype=np.uint8)
    first = walloc_io.load_codec(str(codec_dir), device="cpu")
    blob = first.encode(x)
    retrain(codec_dir, 3)
    np.testing.assert_array_equal(wds_decoder(str(codec_dir))("x.wlc", blob), first.decode(blob))
    (tmp_path / "x.wlc").write_bytes(blob)
    out = tmp_path / "x.png"
    run = subprocess.run([sys.executable, "-m", "walloc_io.cli", "decode", str(tmp_path / "x.wlc"),
                          str(out), "--codec", str(codec_dir), "--device", "cpu"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 0


def test_keep_versions_false_replaces_the_model(codec_dir):
    model, tables, _ = load_codec_dir(codec_dir)
    with torch.no_grad():
        next(model.decoder.parameters()).add_(1.0)
    save_codec_dir(model, tables, codec_dir, keep_versions=False)
    assert len(versions(codec_dir)) == 1 and not (codec_dir / VERSIONS).exists()


def reallocate(directory, gain: int) -> str:
    """What ``train_preset --allocate`` does: same weights, a new config (step gains; coarser
    steps only, so the old tables still cover every code)."""
    from walloc_io.quality import GAIN_KNOTS
    from walloc_io.training.allocation import allocated

    model, tables, _ = load_codec_dir(directory)
    channels = model.config.latent_channels
    gains = tuple(tuple([gain] + [0] * (channels - 1)) for _ in GAIN_KNOTS)
    save_codec_dir(allocated(model, gains), tables, directory)
    return manifest_fingerprint(directory)


def test_versions_with_the_same_weights_share_one_file_and_still_decode(codec_dir):
    """A kept model whose weights the new one shares stores a .ref, not a copy; after two
    such changes and a retraining every stream still decodes bit-exactly, with no chain of
    refs and each weights file stored once."""
    x = np.random.default_rng(1).integers(0, 256, (3, 32, 48), dtype=np.uint8)
    blobs, decoded = [], []
    for change in (lambda: None, lambda: reallocate(codec_dir, 8),
                   lambda: reallocate(codec_dir, 16), lambda: retrain(codec_dir, 3)):
        change()
        codec = walloc_io.load_codec(str(codec_dir), device="cpu")
        blobs.append(codec.encode(x))
        decoded.append(codec.decode(blobs[-1]))
    assert len({read_header(b).fingerprint for b in blobs}) == 4
    refs = sorted(codec_dir.glob(f"{VERSIONS}/*/weights-*.ref"))
    npzs = sorted(codec_dir.glob("**/weights-*.npz"))
    assert len(refs) == 2 and len(npzs) == 2  # fp1, fp2 -> fp3's file; fp3 and fp4 hold theirs
    fp3 = read_header(blobs[2]).fingerprint[:8]
    assert {r.read_text().strip() for r in refs} == {fp3}
    for blob, expect in zip(blobs, decoded):
        old = walloc_io.load_codec(str(codec_dir), device="cpu",
                                   fingerprint=read_header(blob).fingerprint)
        np.testing.assert_array_equal(old.decode(blob), expect)


def test_a_ref_to_weights_the_preset_lacks_is_a_preset_error(codec_dir):
    reallocate(codec_dir, 8)
    (ref,) = codec_dir.glob(f"{VERSIONS}/*/weights-*.ref")
    ref.write_text("deadbeef\n")
    with pytest.raises(walloc_io.PresetError, match="deadbeef"):
        load_codec_dir(ref.parent)
    ref.write_text("../../ab\n")  # names a fingerprint, never a path
    with pytest.raises(walloc_io.PresetError, match="does not hold"):
        load_codec_dir(ref.parent)
