"""The GPU benchmark runs (and skips its CUDA columns cleanly) on a machine without CUDA."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

BENCH = Path(__file__).parent.parent / "benchmarks"


def test_bench_gpu_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.md"
    run = subprocess.run([sys.executable, str(BENCH / "bench_gpu.py"), "--size", "64", "--batch",
                          "2", "--repeat", "1", "--out", str(out)], capture_output=True, text=True,
                         cwd=BENCH, check=True)
    text = out.read_text()
    assert text in run.stdout + "\n"
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert {"encode", "decode to signal", "decode to latents"} <= set(rows)
    if not torch.cuda.is_available():
        assert "no CUDA device" in text and rows["encode"].rstrip().endswith("- | - |")


def test_audio_bands_splits_the_error_of_codec_and_decimation_by_band():
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        from audio_bands import EDGES, band_energy, packet_lowpass
    finally:
        sys.path.remove(str(BENCH))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4096))
    parts = band_energy(x, 1 / 16)
    assert len(parts) == len(EDGES) - 1
    total = (np.abs(np.fft.rfft(x, axis=-1)) ** 2).sum()
    assert abs(parts.sum() - total) < 1e-9 * total and parts.min() > 0  # a partition
    # the packet low-pass: all packets kept is the identity; 1 of 16 keeps the lowest
    # sixteenth of the band (white noise: ~1/16 of its energy, little above the cut-off)
    np.testing.assert_allclose(packet_lowpass(x, 4, 16), x, atol=1e-9)
    low = packet_lowpass(x, 4, 1)
    assert 0.04 < (low**2).sum() / (x**2).sum() < 0.09
    bands = band_energy(low, 1 / 16)
    assert bands[EDGES.index(2) :].sum() < 0.01 * bands.sum()
    samples = Path(__file__).parent.parent / "src" / "walloc_io" / "samples"
    run = subprocess.run([sys.executable, str(BENCH / "audio_bands.py"), "stereo-20x",
                          str(samples), "--seconds", "5"], capture_output=True, text=True,
                         check=True)
    assert "heroes_rite.flac" in run.stdout and "speech" not in run.stdout  # mono skipped
    assert "packet low-pass" in run.stdout and "(1 clips)" in run.stdout
    rows = [line.split("|")[1:5] for line in run.stdout.splitlines() if line.startswith("| 0")
            or line.startswith("| 1") or line.startswith("| 2") or line.startswith("| 4")]
    assert len(rows) == len(EDGES) - 1
    low = [float(r[0].split("-")[0].split()[0]) for r in rows]
    assert rows[-1][0].strip() == "4 and up"
    below = [r for r, lo in zip(rows, low) if lo < 0.9]  # bands that end by 0.9 fc
    above = [r for r, lo in zip(rows, low) if lo >= 1.0]
    # decimation loses nothing below its cut-off and everything above it; the codec some
    assert all(float(r[3]) == -120.0 for r in below)
    assert all(float(r[3]) == float(r[1]) for r in above)
    assert all(-120.0 < float(r[2]) < float(r[1]) for r in below)


def test_ceiling_reports_a_preset_and_a_training_checkpoint_alike(tmp_path):
    from walloc_io.presets.directory import load_codec_dir

    samples = Path(__file__).parent.parent / "src" / "walloc_io" / "samples"
    model, _, _ = load_codec_dir(Path(__file__).parent.parent / "src/walloc_io/presets/stereo-20x")
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "config": model.config.to_dict()}, checkpoint)
    lines = []
    for source in ("stereo-20x", str(checkpoint)):
        run = subprocess.run([sys.executable, str(BENCH / "ceiling.py"), source,
                              str(samples), "--seconds", "5"], capture_output=True, text=True,
                             check=True)
        lines.append(run.stdout.split(": ", 1)[1])
    assert lines[0] == lines[1] and lines[0].startswith("1 items")  # the stereo clip only
    figures = [float(v) for v in re.findall(r"(-?\d+\.\d+) dB", lines[0])]
    assert len(figures) == 4 and figures[0] < figures[1] <= figures[2] + 0.05  # finer: better


def test_ceiling_of_an_image_preset_against_bicubic():
    samples = Path(__file__).parent.parent / "src" / "walloc_io" / "samples"
    run = subprocess.run([sys.executable, str(BENCH / "ceiling.py"), "gray-16x", str(samples)],
                         capture_output=True, text=True, check=True)
    assert "3 items, mean PSNR" in run.stdout and "bicubic /4" in run.stdout
    figures = [float(v) for v in re.findall(r"(-?\d+\.\d+) dB", run.stdout)]
    assert figures[0] < figures[1] <= figures[2] + 0.05 and figures[2] > figures[3]


def test_ceiling_crossings_of_a_walloc_eval_table(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        from ceiling import crossings
    finally:
        sys.path.remove(str(BENCH))
    table = tmp_path / "eval.csv"
    rows = ["item,method,psnr,rate,setting"]
    for item, shift in (("a", -0.5), ("b", 0.5)):  # means: the curves below
        rows += [f"{item},WaLLoC curve,{30 + shift},0.1,q1", f"{item},WaLLoC curve,{31 + shift},0.4,q100",
                 f"{item},WebP,{29 + shift},0.1,5", f"{item},WebP,{33 + shift},0.4,50",
                 f"{item},bicubic /4,{28 + shift},nan,x4", f"{item},JPEG,{20 + shift},0.2,10",
                 f"{item},JPEG,{25 + shift},0.4,50"]
    table.write_text("\n".join(rows) + "\n")
    audio = tmp_path / "audio.csv"  # walloc eval's audio tables: snr, kbps in "rate"
    audio.write_text(table.read_text().replace("item,method,psnr,rate", "item,method,snr,rate"))
    assert crossings(audio, 31.0, "snr") == crossings(table, 31.0)
    lines = crossings(table, 31.0)
    assert len(lines) == 2  # bicubic has no rate
    # WebP: 29 dB at 0.1, 33 at 0.4 -> 31 dB halfway in log rate, at 0.2; half the span above
    assert lines[1].startswith("WebP reaches the ceiling at 0.200; 50 % of")
    assert lines[1].endswith("WebP minus WaLLoC: +2.00 dB")
    assert lines[0] == "JPEG stays below the ceiling at every rate measured (to 0.400)"


def test_audio_subspace_projections_and_principal_components():
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        from audio_subspace import _Bands, band_vectors, principal_subspace, projected
    finally:
        sys.path.remove(str(BENCH))
    tree = _Bands(1, 3)  # 8 packet bands per frame of 8 samples
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((1, 2 ** 17))).astype(np.float32)
    whole = projected(tree, x, np.eye(8))  # every band kept: the transform inverts exactly
    np.testing.assert_allclose(whole, x, atol=1e-5)
    # clips whose band vectors lie in a 2-d span: two principal components find it exactly,
    # and a clip outside it loses what lies outside
    basis = np.linalg.qr(rng.standard_normal((8, 2)))[0]
    frames = 2 ** 16 // 8  # one crop's worth: the crops then start at 0, frame-aligned
    coded = basis @ rng.standard_normal((2, frames))
    with torch.no_grad():
        clip = tree.transform.inverse(torch.from_numpy(coded[None]).float())[0].numpy()
    np.testing.assert_allclose(band_vectors(tree, clip), coded, atol=1e-5)
    longer = np.concatenate([clip, np.zeros((1, 1), np.float32)], axis=1)
    found = principal_subspace(tree, [longer], 2, crops=2, seed=0)
    np.testing.assert_allclose(found @ found.T, basis @ basis.T, atol=1e-4)
    np.testing.assert_allclose(projected(tree, clip, found), clip, atol=1e-5)
    assert np.abs(projected(tree, x, found) - x).mean() > 0.01


def test_image_subspace_projections_and_principal_components():
    import numpy as np

    from walloc_io.transform import PacketTransform

    sys.path.insert(0, str(BENCH))
    try:
        from image_subspace import principal_subspace, projected
    finally:
        sys.path.remove(str(BENCH))
    model = SimpleNamespace(transform=PacketTransform(2, 1))  # 4 bands per 2x2 block, grey
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (1, 256, 320), dtype=np.uint8)
    np.testing.assert_array_equal(projected(model, photo, np.eye(4)), photo)  # all kept
    # a photo whose band vectors lie in a 2-d span (up to uint8 rounding; one crop's
    # worth, so the transform sees it whole): two principal components find the span,
    # keep the photo, and lose much of one outside it
    basis = np.linalg.qr(rng.standard_normal((4, 2)))[0]
    coded = (basis @ (0.08 * rng.standard_normal((2, 128 * 128)))).reshape(1, 4, 128, 128)
    with torch.no_grad():
        u = model.transform.inverse(torch.from_numpy(coded).float())[0].numpy()
    assert np.abs(u).max() < 0.5
    inside = np.round((u + 0.5) * 255).astype(np.uint8)
    found = principal_subspace(model, [inside], 2, crops=2, seed=0)
    np.testing.assert_allclose(found @ found.T, basis @ basis.T, atol=1e-3)
    assert np.abs(projected(model, inside, found).astype(int) - inside).max() <= 1
    assert np.abs(projected(model, photo, found).astype(int) - photo).mean() > 20


def test_linear_decoder_of_an_encoder_recovers_its_span():
    """The best linear decoder of ``W v``: exact on band vectors in the span the moments
    come from whenever ``W`` sees all of it, whatever ``W``'s rows (not orthonormal here);
    for orthonormal principal rows, their projection."""
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        from audio_subspace import linear_decoder, second_moments, top_components
    finally:
        sys.path.remove(str(BENCH))
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.standard_normal((8, 3)))[0]
    v = basis @ rng.standard_normal((3, 500))
    moments = second_moments([v[:, :250], v[:, 250:]])
    np.testing.assert_allclose(moments, v @ v.T)
    w = rng.standard_normal((3, 8)) * [[1.0], [10.0], [0.1]]  # skewed rows, same rank
    np.testing.assert_allclose(linear_decoder(moments, w) @ v, v, atol=1e-8)
    pca = top_components(moments + 1e-3 * np.eye(8), 3)
    np.testing.assert_allclose(linear_decoder(moments + 1e-3 * np.eye(8), pca.T),
                               pca @ pca.T, atol=1e-8)
    assert second_moments([]) is None


def test_context_decoder_of_an_encoder_widens_the_per_frame_one():
    """Seeing no neighbouring frame, the least-squares context decoder is the per-frame
    :func:`linear_decoder` plus a constant, so it fits its training clip as well or a
    little better; seeing two frames either side, clearly better."""
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        from audio_subspace import (
            _Bands,
            context_decoder,
            context_reconstructed,
            linear_decoder,
            moments_of,
            reconstructed,
        )
    finally:
        sys.path.remove(str(BENCH))
    tree = _Bands(1, 3)
    tree.encoder = torch.nn.Conv1d(8, 2, 1)
    with torch.no_grad():
        tree.encoder.bias.zero_()
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.standard_normal(2 ** 14)) / 200  # correlated across frames
    clip = (walk - walk.mean()).astype(np.float32)[None]
    weight = tree.encoder.weight.detach().double().numpy()[:, :, 0]
    per_frame = reconstructed(tree, clip, linear_decoder(moments_of(tree, [clip], ""), weight))
    flat = context_reconstructed(tree, clip, context_decoder(tree, [clip], 0), 0)
    np.testing.assert_allclose(flat, per_frame, atol=1e-3)
    wide = context_reconstructed(tree, clip, context_decoder(tree, [clip], 2), 2)
    mse = [float(np.mean((r - clip) ** 2)) for r in (per_frame, flat, wide)]
    assert 0.99 * mse[0] <= mse[1] <= mse[0] * (1 + 1e-6) and mse[2] < 0.95 * mse[1]


def test_regression_context_bound_learns_a_predictable_spread():
    """Symbols whose spread follows an envelope every channel shares: one context gives the
    zero-order cross entropy of the tables fitted on the training items; 16 contexts cut
    from the fitted scale code them in clearly fewer bytes."""
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        from bench_context_ablation import regression_bytes
    finally:
        sys.path.remove(str(BENCH))
    from walloc_io.entropy.tables import PRECISION, quantise_counts

    codec = SimpleNamespace(tables=SimpleNamespace(order=[0, 1, 2], max_symbol=8))
    rng = np.random.default_rng(3)

    def item() -> np.ndarray:
        envelope = np.repeat(np.repeat(rng.uniform(0.1, 3, (4, 4)), 16, 0), 16, 1)
        return np.round(rng.laplace(0, envelope, (3, 64, 64))).clip(-8, 8).astype(np.int32)

    train, val = [item() for _ in range(20)], [item() for _ in range(3)]
    one = regression_bytes(codec, train, val, 1)
    sixteen = regression_bytes(codec, train, val, 16)
    assert sixteen < 0.95 * one
    # RAW mode for such noise: the zero-order code of each channel's symbols
    radius, bits = 32, 0.0  # PLANAR's alphabet of max_symbol 8
    for c in range(3):
        counts = np.bincount(np.concatenate([x[c].ravel() for x in train]) + radius,
                             minlength=2 * radius + 1)
        lengths = PRECISION - np.log2(quantise_counts(counts))
        bits += sum(lengths[x[c].ravel() + radius].sum() for x in val)
    assert abs(one - bits / 8 / 3) < 0.02 * one


def test_regression_context_features_are_causal():
    """Each of the ten own-channel features at a position reads only positions decoded
    before it in raster order: a symbol changes only the features of later positions."""
    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        from bench_context_ablation import _shifted
    finally:
        sys.path.remove(str(BENCH))
    impulse = np.zeros((7, 7))
    impulse[3, 3] = 1
    features = _shifted(impulse)
    assert len(features) == 10
    for feature in features:
        (rows, cols) = np.nonzero(feature)
        assert len(rows) == 1 and (rows[0], cols[0]) > (3, 3)
