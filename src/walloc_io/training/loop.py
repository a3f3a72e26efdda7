"""Training loop: noisy bottleneck, MSE + lambda * rate, resumable checkpoints.

The rate weight ``lambda`` is either fixed or steered towards a target bits-per-pixel
(dual ascent on the rate constraint: ``lambda *= exp(gain * (bpp - target))``), so one
run lands on a chosen operating point without a sweep.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import CodecConfig
from ..model import WallocModel
from .data import CropSampler, to_unit
from .decoder import periodic
from .pca import pca_initialise
from .schedule import warmup_cosine


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 8000
    batch: int = 8
    crop: int = 256
    lr: float = 5e-4
    warmup: int = 200
    rate_weight: float = 2e-3
    target_bpp: float | None = None
    rate_gain: float = 0.005
    reset_rate_weight: bool = False  # on resume, use rate_weight instead of the checkpoint's
    # the step the learning-rate schedule (warmup, then cosine to ``steps``) starts from:
    # 0, or a trained model's last step for a continuation that warms up afresh
    schedule_from: int = 0
    checkpoint_every: int = 250
    validate_every: int = 500
    seed: int = 0
    device: str = "cpu"
    # variable rate: each crop's quantisation step is that of a quality drawn uniformly
    # from 1..100 with this probability (else the design point), so one model serves the
    # whole quality ladder (walloc_io.quality)
    variable_rate: float = 0.0
    # augmentation of image crops: vertical flips and 90-degree turns (besides left-right
    # flips), and this share of crops with contrast lowered (0.1-0.6x) around a random level
    augment: bool = False
    low_contrast: float = 0.0
    # share of audio crops with a random spectral tilt (-6..+3 dB/octave, CropSampler)
    spectral_tilt: float = 0.0
    # steer lambda on the coded rate (proxy x the coded/proxy ratio measured at validation)
    # instead of the rate proxy, which overstates the context coder's rate ~2x; False keeps
    # the shipped recipes (steered on the proxy) reproducible
    calibrate_rate: bool = False
    # share of image crops coded with the boundary split (walloc_io.boundary): the model
    # codes their periodic part and the loss is taken on clamp(its unclamped output plus
    # the smooth part), as the codec decodes images; 0 trains on every crop as it is (the
    # recipes before 0.11). Validation still scores whole val photos as they are.
    split_share: float = 0.0


@dataclass
class Progress:
    step: int
    loss: float
    psnr: float
    bpp: float
    rate_weight: float


class Trainer:
    """Owns model, optimiser, sampler and checkpoint directory; ``run()`` resumes."""

    def __init__(
        self, config: CodecConfig, settings: TrainSettings, train_images: list[np.ndarray],
        val_images: list[np.ndarray], workdir: str | Path,
    ) -> None:
        torch.manual_seed(settings.seed)
        self.config, self.settings = config, settings
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(settings.device)
        self.model = WallocModel(config).to(self.device)
        self.sampler = CropSampler(train_images, settings.crop, settings.seed,
                                   augment=settings.augment, low_contrast=settings.low_contrast,
                                   spectral_tilt=settings.spectral_tilt)
        self.val = _validation_items(val_images, self.model.transform.factor)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=settings.lr)
        self.step, self.rate_weight = 0, settings.rate_weight
        self.proxy_scale = 1.0  # coded bpp / proxy bpp, measured at each validation
        self.log = self.workdir / "log.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / "checkpoint.pt"

    def initialise_or_resume(self) -> None:
        if self.checkpoint_path.exists():
            state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)
            self.model.load_state_dict(state["model"])
            self.optimiser.load_state_dict(state["optimiser"])
            self.step, self.rate_weight = state["step"], state["rate_weight"]
            if self.settings.reset_rate_weight:
                self.rate_weight = self.settings.rate_weight
            self.sampler.rng.bit_generator.state = state["sampler"]
            torch.set_rng_state(state["torch_rng"])
            return
        batches = [self.sampler.batch(16) for _ in range(16)]
        pca_initialise(self.model.cpu(), batches)
        self.model.to(self.device)

    def save_checkpoint(self) -> None:
        state = {
            "model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
            "step": self.step, "rate_weight": self.rate_weight,
            "sampler": self.sampler.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
            "config": self.config.to_dict(),
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_path)  # atomic: a kill mid-save leaves the old one

    def learning_rate(self) -> float:
        s = self.settings
        return warmup_cosine(self.step, s.lr, s.warmup, s.steps, s.schedule_from)

    def train_step(self) -> Progress:
        self.model.train()
        x = self.sampler.batch(self.settings.batch).to(self.device)
        for group in self.optimiser.param_groups:
            group["lr"] = self.learning_rate()
        p, smooth = x, None
        if self.settings.split_share > 0:
            keep = (torch.rand(x.shape[0]) >= self.settings.split_share).numpy()
            p, smooth = (t.to(self.device) for t in periodic(x.cpu(), keep))
        out = self.model(p, self._steps(x.shape[0]), clamp=smooth is None)
        decoded = (out.reconstruction if smooth is None
                   else (out.reconstruction + smooth).clamp(-0.5, 0.5))
        mse = torch.mean((decoded - x) ** 2)
        bpp = out.bits / (x.shape[0] * math.prod(x.shape[2:]))
        loss = mse + self.rate_weight * bpp
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        if self.settings.target_bpp is not None:
            scale = self.proxy_scale if self.settings.calibrate_rate else 1.0
            error = bpp.item() * scale - self.settings.target_bpp
            self.rate_weight *= math.exp(self.settings.rate_gain * error / self.settings.target_bpp)
        self.step += 1
        return Progress(self.step, loss.item(), _psnr(mse.item()), bpp.item(), self.rate_weight)

    def _steps(self, n: int) -> torch.Tensor | float:
        """Quantisation steps of a batch (variable-rate training) or 1.0."""
        if self.settings.variable_rate <= 0:
            return 1.0
        from ..quality import step

        draws = torch.rand(n) < self.settings.variable_rate
        qualities = torch.randint(1, 101, (n,))
        return torch.tensor([step(int(q)) if d else 1.0 for q, d in zip(qualities, draws)],
                            device=self.device)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Rounded latents on the held-out images: PSNR, rate-proxy bpp, and the bpp the
        entropy coder really spends on them (``val_coded_bpp``: tables fitted on these
        latents, so slightly optimistic, but the context coder's rate, not the proxy's).
        Their ratio calibrates the proxy that steers lambda towards ``target_bpp``."""
        from ..entropy import LatentCoder, fit_model_tables

        self.model.eval()
        mses, bpps, latents = [], [], []
        for x in self.val:
            x = x.to(self.device)
            out = self.model(x)
            mses.append(torch.mean((out.reconstruction - x) ** 2).item())
            bpps.append(out.bits.item() / math.prod(x.shape[2:]))
            latents.append(self.model.encode_latents(x)[0].cpu().numpy())
        cfg = self.config
        coder = LatentCoder(fit_model_tables(latents, self.model.max_symbol(),
                                             cfg.entropy_model))
        coded = float(np.mean([8 * len(coder.encode(z)) / math.prod(x.shape[2:])
                               for z, x in zip(latents, self.val)]))
        proxy = float(np.mean(bpps))
        self.proxy_scale = coded / proxy if proxy > 0 else 1.0
        return {"val_psnr": float(np.mean([_psnr(m) for m in mses])), "val_bpp": proxy,
                "val_coded_bpp": coded}

    def run(self, report=print, progress=None) -> None:
        """Train to ``settings.steps``, resuming; ``report(line)`` gets log lines (every 50
        steps and at validations), ``progress(Progress)`` every step."""
        self.initialise_or_resume()
        s, started, window = self.settings, time.perf_counter(), []
        while self.step < s.steps:
            window.append(self.train_step())
            if progress is not None:
                progress(window[-1])
            record: dict[str, float] = {}
            if self.step % s.validate_every == 0 or self.step == s.steps:
                record.update(self.validate())
            if self.step % s.checkpoint_every == 0 or self.step == s.steps:
                self.save_checkpoint()
            if record or self.step % 50 == 0:
                record.update(_summarise(window), step=self.step,
                              seconds=round(time.perf_counter() - started, 1))
                window = []
                with self.log.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                report(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in record.items()))


VALIDATION_SIZE = {1: 1 << 18, 2: 1024}  # samples per axis of each held-out item that are scored


def _validation_items(items: list[np.ndarray], factor: int) -> list[torch.Tensor]:
    """Held-out items cropped to whole multiples of ``factor`` (and at most VALIDATION_SIZE)."""
    out = []
    for v in items:
        cap = VALIDATION_SIZE[v.ndim - 1]
        keep = tuple(min(cap, n) // factor * factor for n in v.shape[1:])
        if all(keep):
            out.append(to_unit(v[(slice(None), *(slice(0, k) for k in keep))])[None])
    return out


def _summarise(window: list[Progress]) -> dict[str, float]:
    if not window:
        return {}
    return {
        "loss": float(np.mean([p.loss for p in window])),
        "train_psnr": float(np.mean([p.psnr for p in window])),
        "train_bpp": float(np.mean([p.bpp for p in window])),
        "rate_weight": window[-1].rate_weight,
    }


def _psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))
