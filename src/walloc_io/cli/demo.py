"""``walloc demo`` and ``walloc demo-store``: the per-sample codec table and the main job
(bundled samples -> WaLLoC Zarr on a LocalCluster, read back, streamed into training steps)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .args import device, positive_int


def add_parser(sub) -> None:
    demo = sub.add_parser("demo", help="compress the bundled samples (images or audio) and report")
    demo.add_argument("--codec", default="rgb-16x", help="preset name or codec directory")
    demo.add_argument("--device", type=device, default="cpu", help="cpu, cuda, cuda:N or auto")
    demo.set_defaults(run=_demo)
    store = sub.add_parser("demo-store", help="the main job: convert the bundled samples to a "
                           "WaLLoC Zarr store and read them back as signals and latents")
    store.add_argument("--codec", default="rgb-16x", help="preset name or codec directory")
    store.add_argument("--workers", type=positive_int, default=2, help="LocalCluster worker processes")
    store.add_argument("--store", help="keep the store here (default: a temporary directory)")
    store.add_argument("--steps", type=int, default=6, help="training steps on the streamed shards")
    store.set_defaults(run=_demo_store)


def _demo(args: argparse.Namespace) -> None:
    """The main job on built-in data: every bundled sample through a preset."""
    from importlib.resources import as_file, files

    from ..codec import load_codec
    from ..media import read_signal
    from ..metrics import bicubic_round_trip, psnr

    codec = load_codec(args.codec, device=args.device)
    dr = codec.dimensionality_reduction
    factor = round(dr ** 0.5) if codec.config.modality == "image" else 0
    if codec.config.modality == "audio":
        return _demo_audio(codec, files("walloc_io").joinpath("samples"))
    # key: a Traversable need not be orderable; one directory, so by name is the path order
    samples = sorted((p for p in files("walloc_io").joinpath("samples").iterdir()
                      if p.name.endswith(".png")), key=lambda p: p.name)
    print(f"codec {codec.config.name} (fingerprint {codec.fingerprint[:12]}, DR {dr:g})")
    print(f"{'image':<14}{'size':>10}{'bytes':>9}{'ratio':>8}{'bpp':>7}{'PSNR dB':>9}"
          f"{f'bicubic/{factor}':>12}")
    for path in samples:
        with as_file(path) as local:  # the resource itself where the package is on disk
            image = read_signal(local).data
        blob = codec.encode(image)
        decoded = codec.decode(blob)
        size = f"{image.shape[2]}x{image.shape[1]}"
        bpp = 8 * len(blob) / (image.shape[1] * image.shape[2])
        base = psnr(image, bicubic_round_trip(image, factor)) if factor else float("nan")
        print(f"{path.name:<14}{size:>10}{len(blob):>9}{image.nbytes / len(blob):>7.1f}x"
              f"{bpp:>7.3f}{psnr(image, decoded):>9.2f}{base:>12.2f}")


def _demo_store(args: argparse.Namespace) -> None:
    """The main job: bundled samples -> a WaLLoC Zarr store (dask.distributed), read back as
    signals (zarr) and as latents (a Dask latent view), and the conversion summary; then the
    same samples as WebDataset shards, streamed through a DataLoader into a few training steps."""
    import tempfile
    from importlib.resources import as_file, files
    from typing import Any, cast

    import numpy as np
    import zarr

    from ..codec import load_codec
    from ..pipelines.convert import convert
    from ..pipelines.zarr_dask import open_latents

    codec = load_codec(args.codec, device="cpu")
    with as_file(files("walloc_io").joinpath("samples")) as samples, \
            tempfile.TemporaryDirectory() as tmp:
        dst = Path(args.store) if args.store else Path(tmp) / "samples.zarr"
        src = Path(tmp) / "src"
        src.mkdir()
        suffix = ".png" if codec.config.modality == "image" else ".flac"
        for p in sorted(samples.iterdir()):
            if p.suffix == suffix:
                (src / p.name).write_bytes(p.read_bytes())
        print(f"converting {len(list(src.iterdir()))} bundled samples with {codec.config.name} "
              f"on a {args.workers}-worker dask.distributed LocalCluster -> {dst}")
        summary = convert(str(src), str(dst), args.codec, workers=args.workers)
        print("\n".join("  " + line for line in summary.lines(codec.config.modality)))
        group = zarr.open_group(dst, mode="r")
        print(f"{'item':<28}{'signal (zarr)':>22}{'latents (dask view)':>26}")
        # casts: zarr types attributes as any JSON value and members as Array | Group; convert
        # writes a dict of metadata and one array per item, read back as a numpy array
        meta = cast(dict[str, Any], group.attrs["walloc_convert"])
        for name in meta["items"]:
            arr = cast(zarr.Array, group[f"items/{name}"])
            signal = cast(np.ndarray, arr[...])
            latents = open_latents(arr).compute(scheduler="threads")
            print(f"{name:<28}{str(signal.shape) + ' ' + signal.dtype.name:>22}"
                  f"{str(latents.shape) + ' ' + latents.dtype.name:>26}")
        shards = Path(tmp) / "shards"
        convert(str(src), str(shards), args.codec, fmt="webdataset", workers=args.workers,
                items_per_task=2)
        _demo_training(codec, sorted(str(p) for p in shards.glob("*.tar")), args.steps)


def _demo_training(codec, urls: list[str], steps: int) -> None:
    """Stream WaLLoC shards into a training loop: workers entropy-decode, the decoder network
    runs once per batch on the device; a linear probe learns the 2**J-downsampled signal from
    the latents."""
    import torch
    import webdataset as wds
    from torch.utils.data import DataLoader

    from ..pipelines.batch import BatchDecoder, collate
    from ..pipelines.wds import wds_decoder

    cfg = codec.config
    print(f"streaming {len(urls)} WebDataset shards (.wlc members) through a DataLoader into "
          f"{steps} training steps")
    dataset = (wds.WebDataset(urls, shardshuffle=False).decode(wds_decoder(to="deferred"))
               .to_tuple("__key__", "wlc").repeat(steps))
    decoder = BatchDecoder(codec.source, device="auto", output="unit")
    conv = torch.nn.Conv1d if cfg.signal_ndim == 1 else torch.nn.Conv2d
    pool = torch.nn.functional.avg_pool1d if cfg.signal_ndim == 1 else torch.nn.functional.avg_pool2d
    probe = conv(cfg.latent_channels, cfg.channels, 1).to(decoder.device)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05)
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=3, num_workers=1, collate_fn=collate)
    for step, (keys, batch) in enumerate(loader):
        if step == steps:
            break
        target = pool(decoder(batch), 2 ** cfg.levels)  # signals decoded in one batched call
        latents = batch.codes.to(decoder.device).float() / cfg.max_symbol
        loss = torch.nn.functional.mse_loss(probe(latents), target - 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"  step {step + 1}: batch {tuple(batch.codes.shape)} latents -> "
              f"{tuple(target.shape)} targets ({', '.join(keys)}), probe loss {loss.item():.5f}")


def _demo_audio(codec, root) -> None:
    from ..media import read_signal
    from ..metrics import decimate_round_trip, snr

    factor = max(1, round(codec.dimensionality_reduction))
    print(f"codec {codec.config.name} (fingerprint {codec.fingerprint[:12]}, "
          f"DR {codec.dimensionality_reduction:g})")
    print(f"{'clip':<22}{'channels':>9}{'seconds':>9}{'bytes':>8}{'kbps':>8}{'SNR dB':>8}"
          f"{f'decim/{factor}':>10}")
    for path in sorted(p for p in root.iterdir() if p.name.endswith(".flac")):
        clip = read_signal(path)
        if clip.data.shape[0] != codec.config.channels:
            continue
        blob = codec.encode(clip.data, sample_rate=clip.sample_rate)
        seconds = clip.data.shape[1] / clip.sample_rate
        print(f"{path.name:<22}{clip.data.shape[0]:>9}{seconds:>9.1f}{len(blob):>8}"
              f"{8 * len(blob) / seconds / 1e3:>8.1f}{snr(clip.data, codec.decode(blob)):>8.2f}"
              f"{snr(clip.data, decimate_round_trip(clip.data, factor)):>10.2f}")
