"""``walloc train``: make a codec for your own data (any channel count, images or audio).

    walloc train photos/ my-codec/ --steps 4000
    walloc train scene.tif my-6band/ --latent-channels 24 --crop 64
    walloc train recordings/ my-audio/ --modality audio --levels 8 --latent-channels 26
    walloc train photos/ my-codec/ --steps 8000 --resume      # go on from the checkpoint

Training runs in ``--workdir`` (default ``OUT.work``): a resumable checkpoint every
``--checkpoint-every`` steps and a ``log.jsonl``. At the end the integer entropy tables are
fitted on the training latents and ``OUT`` is written as a codec directory that
``walloc_io.load_codec(OUT)`` and ``walloc encode --codec OUT`` open.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import InputError
from .args import device, share

DEFAULT_LEVELS = {"image": 3, "audio": 8}
DEFAULT_CROP = {"image": 256, "audio": 1 << 15}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a codec on your own images or audio",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("data", type=Path, help="folder or file of images/audio/.npy, or a Zarr array")
    p.add_argument("output", type=Path, help="codec directory to write")
    p.add_argument("--modality", choices=["image", "audio"],
                   help="default: audio if DATA holds audio files, else image")
    p.add_argument("--val", type=Path, help="held-out data (default: a split of DATA)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of DATA held out when --val is not given")
    p.add_argument("--name", help="codec name (default: the output directory's name)")
    p.add_argument("--levels", type=int, help="packet levels J (default 3 image, 8 audio)")
    p.add_argument("--latent-channels", type=int,
                   help="default: packet channels / 16 (dimensionality reduction 16)")
    p.add_argument("--latent-bits", type=int, default=8)
    p.add_argument("--decoder-channels", type=int, default=64)
    p.add_argument("--decoder-blocks", type=int, default=2)
    p.add_argument("--attention", action="store_true", help="squeeze-excitation in decoder blocks")
    p.add_argument("--entropy-model", choices=["contextual", "predictive", "histogram"],
                   default="contextual")
    p.add_argument("--crop", type=int, help="training crop per axis (default 256 image, 32768 audio)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--rate-weight", type=float, default=2e-3, help="lambda of MSE + lambda * rate")
    p.add_argument("--target-bpp", type=float,
                   help="steer lambda to this coded rate (bits per pixel/sample; the rate "
                   "proxy calibrated at each validation) instead")
    p.add_argument("--validate-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--workdir", type=Path, help="checkpoints and log (default: OUTPUT.work)")
    p.add_argument("--resume", action="store_true", help="continue from the workdir's checkpoint")
    p.add_argument("--device", type=device, default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variable-rate", type=share, default=0.0, metavar="P",
                   help="share of crops trained at a random quality's step (the quality knob)")
    p.add_argument("--augment", action="store_true",
                   help="image crops: vertical flips and 90-degree turns too")
    p.add_argument("--low-contrast", type=share, default=0.0, metavar="P",
                   help="share of crops with contrast lowered (smooth, dark content)")
    p.add_argument("--spectral-tilt", type=share, default=0.0, metavar="P",
                   help="audio: share of crops with their spectrum tilted -6..+3 dB/octave "
                   "(frequencies read as 44.1 kHz audio)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(run=run)


def _guess_modality(path: Path) -> str:
    from ..media import AUDIO_SUFFIXES

    files = [path] if path.is_file() else list(path.rglob("*")) if path.is_dir() else []
    return "audio" if any(f.suffix.lower() in AUDIO_SUFFIXES for f in files) else "image"


def run(args: argparse.Namespace) -> None:
    import torch

    from ..codec import pick_device
    from ..config import CodecConfig
    from ..training import Trainer, TrainSettings, load_signals, split_validation
    from ..training.export import export_codec

    if args.threads:
        torch.set_num_threads(args.threads)
    modality = args.modality or _guess_modality(args.data)
    items = load_signals(args.data, modality)
    if args.val:
        train, val = items, load_signals(args.val, modality)
    else:
        train, val = split_validation(items, args.val_fraction, args.seed)
    channels = train[0].shape[0]
    if val and val[0].shape[0] != channels:
        raise InputError(f"validation data has {val[0].shape[0]} channels, training data {channels}")
    levels = args.levels or DEFAULT_LEVELS[modality]
    ndim = 2 if modality == "image" else 1
    packet = channels * 2 ** (levels * ndim)
    config = CodecConfig(
        name=args.name or args.output.name, modality=modality, channels=channels, levels=levels,
        latent_channels=args.latent_channels or max(1, packet // 16), latent_bits=args.latent_bits,
        decoder_channels=args.decoder_channels, decoder_blocks=args.decoder_blocks,
        decoder_attention=args.attention, entropy_model=args.entropy_model)
    device = pick_device(args.device)
    settings = TrainSettings(
        steps=args.steps, batch=args.batch, crop=args.crop or DEFAULT_CROP[modality], lr=args.lr,
        rate_weight=args.rate_weight, target_bpp=args.target_bpp, seed=args.seed,
        validate_every=args.validate_every, checkpoint_every=args.checkpoint_every,
        device=str(device), calibrate_rate=True, variable_rate=args.variable_rate,
        augment=args.augment, low_contrast=args.low_contrast,
        spectral_tilt=args.spectral_tilt)
    if settings.crop % 2 ** levels:
        raise InputError(f"--crop {settings.crop} must be a multiple of 2**levels = {2 ** levels}")
    workdir = args.workdir or args.output.with_name(args.output.name + ".work")
    if (workdir / "checkpoint.pt").exists() and not args.resume:
        raise InputError(f"{workdir} already holds a checkpoint: pass --resume to continue it, "
                         "or choose another --workdir")
    trainer = Trainer(config, settings, train, val, workdir)
    print(f"training {config.name}: {modality}, {channels} channels, J={levels}, "
          f"{config.latent_channels} latent channels (DR {config.dimensionality_reduction:g}), "
          f"{len(train)} training / {len(val)} held-out items, device {device}", file=sys.stderr)
    bar = ProgressBar(settings.steps)
    trainer.run(report=bar.report, progress=bar.update)
    bar.close()
    path = export_codec(trainer.model.cpu().eval(), train, args.output,
                        train_log=workdir / "log.jsonl")
    print(f"wrote {path}")


class ProgressBar:
    """A one-line bar on a terminal (loss, PSNR, rate, speed); plain lines otherwise."""

    def __init__(self, total: int, stream=None) -> None:
        self.total, self.stream = total, stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started, self.first = time.perf_counter(), None

    def update(self, progress) -> None:
        if self.first is None:
            self.first = progress.step - 1
        if not self.tty:
            return
        done = progress.step / self.total
        rate = (progress.step - self.first) / max(1e-9, time.perf_counter() - self.started)
        bar = "#" * int(30 * done) + "." * (30 - int(30 * done))
        self.stream.write(f"\r[{bar}] {progress.step}/{self.total} loss {progress.loss:.4g} "
                          f"PSNR {progress.psnr:.2f} dB rate {progress.bpp:.3f} "
                          f"{rate:.1f} step/s ")
        self.stream.flush()

    def report(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def add_spectral_parser(sub) -> None:
    p = sub.add_parser("train-spectral", help="fit the spectral basis of a hyperspectral codec",
                       description="PCA of the spectra of training cubes (B, H, W) (.npy files "
                       "or a folder of them): the basis that walloc_io.spectral.SpectralCodec "
                       "codes cubes of any band count with, through a one-channel 2-D codec.")
    p.add_argument("data", type=Path, help=".npy cube (B, H, W) or a folder of them")
    p.add_argument("output", type=Path, help="basis directory to write")
    p.add_argument("--components", type=int, default=8, help="spectral components K")
    p.add_argument("--spatial", default="field-16x",
                   help="one-channel image codec for the component planes")
    p.set_defaults(run=run_spectral)


def run_spectral(args) -> None:
    import numpy as np

    from ..errors import InputError
    from ..spectral import SpectralCodec, fit_basis

    files = sorted(args.data.glob("*.npy")) if args.data.is_dir() else [args.data]
    cubes = [np.load(f) for f in files]
    if not cubes or any(c.ndim != 3 for c in cubes) or len({c.shape[0] for c in cubes}) != 1:
        raise InputError(f"{args.data}: expected .npy cubes (B, H, W) with one band count")
    if args.components < 1:
        raise InputError(f"--components must be >= 1, got {args.components}")
    basis = fit_basis(cubes, args.components, args.spatial)
    SpectralCodec(basis)  # the spatial codec exists and is a one-channel image codec
    basis.save(args.output)
    print(f"wrote {args.output}: {basis.bands} bands -> {basis.k} components "
          f"({basis.fingerprint[:12]}), spatial codec {args.spatial}")
