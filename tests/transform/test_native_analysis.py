"""The C analysis (lifting packet transform + linear encoder + companding) against PyWavelets
and the torch model, and its determinism across processes and thread counts."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest
import torch

import walloc_io
from walloc_io.model import _analysis
from walloc_io.model.analysis import NativeAnalysis
from walloc_io.signal import prepare
from walloc_io.transform.packet import _interleave_order

from .test_packet import reference

pytest.importorskip("pywt")


def native_packet(x: np.ndarray, levels: int) -> np.ndarray:
    """The kernel's transform, in PacketTransform's (pywt's recursive) channel order."""
    c, *spatial = x.shape
    h, w = (1, spatial[0]) if len(spatial) == 1 else spatial
    out = np.empty(x.size, dtype=np.float32)
    _analysis.packet(np.ascontiguousarray(x, np.float32), c, h, w, levels, len(spatial), out)
    f = 2 ** levels
    bands = c * f ** len(spatial)
    y = out.reshape(bands, *(n // f for n in spatial))
    return y[_interleave_order(c, levels).numpy()] if len(spatial) == 2 else y


@pytest.mark.parametrize("levels,shape", [(1, (8, 8)), (2, (16, 24)), (3, (32, 64)),
                                          (3, (8, 16)), (4, (48, 32)), (3, (24, 600))])
def test_2d_lifting_matches_pywt(levels, shape):
    x = np.random.default_rng(levels).uniform(-0.5, 0.5, (3, *shape))
    np.testing.assert_allclose(native_packet(x, levels), reference(x, levels), rtol=0, atol=2e-5)


@pytest.mark.parametrize("levels,length", [(1, 8), (3, 64), (5, 96), (8, 512), (8, 4096)])
def test_1d_lifting_matches_pywt(levels, length):
    x = np.random.default_rng(levels).uniform(-0.5, 0.5, (2, length))
    np.testing.assert_allclose(native_packet(x, levels), reference(x, levels), rtol=0, atol=2e-5)


def photo() -> np.ndarray:
    from walloc_io.media import read_signal

    return read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data


@pytest.mark.parametrize("preset", walloc_io.list_presets())
def test_latents_equal_the_torch_model(preset):
    codec = walloc_io.load_codec(preset, device="cpu")
    cfg = codec.config
    if cfg.signal_ndim == 2:
        image = photo()
        x = image[:, :128, :192] if cfg.channels == 3 else image[:1, :128, :192]
    else:
        rng = np.random.default_rng(0)
        x = np.cumsum(rng.integers(-300, 301, (cfg.channels, 2 ** 14)), axis=1).astype(np.int16)
    p = prepare(x, cfg.channels, cfg.signal_ndim, 2 ** cfg.levels)
    ours = NativeAnalysis(codec.model).latents(p.data[None])
    with torch.inference_mode():
        theirs = codec.model.encode_latents(torch.from_numpy(p.data[None])).numpy()
    assert ours.shape == theirs.shape and ours.dtype == np.int32
    assert np.abs(ours - theirs).max() <= 1 and np.mean(ours != theirs) < 1e-3


def test_uint8_is_normalised_inside_the_kernel_exactly_as_prepare_does():
    codec = walloc_io.load_codec("rgb-16x", device="cpu")
    x = np.ascontiguousarray(photo()[:, :64, :96])
    fused = codec.analysis.latents(x[None])
    np.testing.assert_array_equal(fused, codec.analysis.latents(prepare(x, 3, 2, 8).data[None]))


ENCODE = """
import hashlib, sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
import walloc_io
from walloc_io.media import read_signal
from importlib.resources import files
codec = walloc_io.load_codec("rgb-16x", device="cpu")
x = read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data
blobs = codec.encode_batch([x, x[:, 3:200, 5:301], x.astype(np.float32) / 7])
print(hashlib.sha256(b"".join(blobs)).hexdigest())
"""


def test_encode_is_byte_identical_across_processes_and_thread_counts():
    digests = {subprocess.run([sys.executable, "-c", ENCODE, str(threads)], check=True,
                              capture_output=True, text=True).stdout.strip()
               for threads in (1, 2, 1)}
    assert len(digests) == 1 and len(digests.pop()) == 64
