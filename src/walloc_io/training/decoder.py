"""Decoder-only training: a deeper decoder for a shipped model whose encoder stays frozen.

The encoder, the companding and the rate allocation are left exactly as they are, so the
new model writes bit-identical latents: its entropy tables and quality ladder are the old
model's, and only the decoded signal changes (a new fingerprint, as the weights differ).
What the decoder is trained on is what it meets in a stream:

- latents *rounded* on the grid of a quality drawn per crop (the knob's 1..100, the design
  point and the floor rungs above 100; per channel under a rate allocation), not the
  uniform noise of joint training;
- audio crops as they are (no split; ``low_contrast`` and the image augmentations do not
  apply), validated by SNR instead of PSNR;
- for images, the periodic part of each crop (:mod:`walloc_io.boundary`): the codec codes
  ``u - s`` and adds ``s`` back after the network, so the loss is taken on ``clamp(p̂ + s)``;
  a share of the crops (``1 - split_share``) as they are, wrap edges included, as the codec
  codes images and chunks with an axis under 256 (a decoder trained on split crops alone
  loses 0.1-0.7 dB on 128x128 tiles).

:func:`deepened` adds residual blocks that start as the identity (their second convolution
zero), so training starts from the shipped model's quality and only moves from it.
:func:`linearised` replaces the decoder by a linear path alone, ``linear_kernel`` positions
wide, which :meth:`DecoderTrainer.fit_linear` solves in closed form on the same crops and
qualities (no gradient steps): what mono-16x version 5 is.
Checkpoints hold the decoder, the optimiser and the sampler state: a killed run resumes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .. import boundary, quality
from ..errors import InputError
from ..model import WallocModel
from .data import CropSampler, to_unit
from .schedule import warmup_cosine

LOSSES = ("mse", "snr")  # DecoderSettings.loss


@dataclass(frozen=True)
class DecoderSettings:
    steps: int = 6000
    batch: int = 8
    crop: int = 256
    lr: float = 2e-4
    warmup: int = 200
    checkpoint_every: int = 250
    validate_every: int = 500
    seed: int = 1
    design_share: float = 0.2  # crops at the design point (step 1)
    floor_share: float = 0.1  # crops at a floor rung above 100 (quality.FLOOR_RUNGS)
    augment: bool = True  # flips and turns (CropSampler)
    low_contrast: float = 0.25  # share of crops with contrast lowered (CropSampler)
    # share of crops coded with the periodic-plus-smooth split; the rest are coded as they
    # are, wrap edges included, as the codec codes images with an axis under 256 (chunks)
    split_share: float = 1.0
    # "mse": the batch's mean squared error (what joint training minimised); "snr": the
    # mean over crops of each crop's error power in dB, floored at ``snr_floor`` (unit
    # range), i.e. the mean SNR in dB that ``walloc eval`` reports for audio, which MSE
    # lets the loud crops dominate
    loss: str = "mse"
    snr_floor: float = 1e-7


def deepened(model: WallocModel, blocks: int) -> WallocModel:
    """``model`` with its decoder grown to ``blocks`` residual blocks computing the same
    function: the new blocks come after the old ones, each with its second convolution
    zero, so it adds nothing until trained. Every other weight is copied."""
    cfg = model.config
    old = cfg.decoder_blocks
    if old < 1 or blocks < old:
        raise InputError(f"a decoder of {old} residual blocks cannot be deepened to {blocks}")
    grown = WallocModel(replace(cfg, decoder_blocks=blocks))
    state = grown.state_dict()
    tail_old, tail_new = f"decoder.residual.{old + 3}.", f"decoder.residual.{blocks + 3}."
    for key, value in model.state_dict().items():
        state[tail_new + key[len(tail_old):] if key.startswith(tail_old) else key] = value
    for b in range(old, blocks):  # block b is residual.{b + 2}; body.2 its second conv
        for name in ("weight", "bias"):
            state[f"decoder.residual.{b + 2}.body.2.{name}"].zero_()
    grown.load_state_dict(state)
    return grown.eval()


def linearised(model: WallocModel, kernel: int) -> WallocModel:
    """``model`` with its decoder replaced by a linear path alone, ``kernel`` latent
    positions wide (zero until :meth:`DecoderTrainer.fit_linear` solves it); every weight
    outside the decoder is copied, so the latents stay bit-identical."""
    if model.config.signal_ndim != 1:
        raise InputError("a closed-form linear decoder is fitted for 1-D (audio) models only")
    new = WallocModel(replace(model.config, decoder_blocks=0, linear_kernel=kernel))
    state = new.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("decoder."):
            state[key] = value
    for value in (state["decoder.linear.weight"], state["decoder.linear.bias"]):
        value.zero_()
    new.load_state_dict(state)
    return new.eval()


def frame_context(z: torch.Tensor, kernel: int) -> torch.Tensor:
    """``(N, L, F)`` latents -> ``(N, L * kernel + 1, F)``: each frame's ``kernel`` frames
    centred on it (edges replicated, as a ``kernel``-tap decoder convolution pads them),
    tap by tap, and a constant row (its bias)."""
    frames, pad = z.shape[-1], kernel // 2
    padded = torch.nn.functional.pad(z, (pad, pad), mode="replicate")
    return torch.cat([padded[..., i:i + frames] for i in range(kernel)]
                     + [torch.ones_like(z[:, :1])], dim=1)


def quantise(model: WallocModel, x: torch.Tensor, steps: np.ndarray) -> torch.Tensor:
    """Dequantised latents of ``x`` rounded on each item's grid of global step ``steps[i]``
    (as :meth:`WallocModel.encode_latents` then ``* grid``), ready for ``synthesise``."""
    with torch.no_grad():
        z = model.encoder(model.transform(x))
        grid = model.grid(torch.from_numpy(steps), z.ndim, z)
        a = model.companding.amplitude
        return torch.round((a / grid) * torch.erf(z / math.sqrt(2))) * grid


def periodic(x: torch.Tensor, keep: np.ndarray | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(p, s)`` of a batch of unit-range images: the parts :mod:`walloc_io.boundary`
    splits them into (``s`` rebuilt from the side information exactly as the decoder
    does), or ``(x, 0)`` for images the codec codes without the split (and for the items
    where ``keep`` is true: trained as small images are coded)."""
    if x.ndim != 4 or not boundary.applies(tuple(x.shape[2:])):
        return x, torch.zeros_like(x)
    s = torch.from_numpy(np.stack([np.zeros(u.shape, np.float32)
                                   if keep is not None and keep[i]
                                   else boundary.split(u.numpy())[1]
                                   for i, u in enumerate(x)]))
    return x - s, s


class DecoderTrainer:
    """Owns the (deepened) model, the decoder's optimiser, the sampler and a checkpoint
    directory; ``run()`` resumes. Only ``model.decoder`` learns."""

    def __init__(self, model: WallocModel, settings: DecoderSettings,
                 train: list[np.ndarray], val: list[np.ndarray], workdir: str | Path) -> None:
        if settings.loss not in LOSSES:
            raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {settings.loss!r}")
        torch.manual_seed(settings.seed)
        self.model, self.settings = model, settings
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.decoder.parameters():
            p.requires_grad_(True)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        image = model.config.modality == "image"
        self.sampler = CropSampler(train, settings.crop, settings.seed,
                                   augment=settings.augment and image,
                                   low_contrast=settings.low_contrast if image else 0.0)
        f = model.transform.factor
        # every signal axis cut to a multiple of the transform's factor
        self.val = [to_unit(v[(slice(None), *(slice(0, n // f * f) for n in v.shape[1:]))])[None]
                    for v in val]
        self.optimiser = torch.optim.Adam(model.decoder.parameters(), lr=settings.lr)
        self.rng = np.random.default_rng(settings.seed + 1)
        self.step = 0
        self.log = self.workdir / "log.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / "checkpoint.pt"

    def resume(self) -> None:
        if not self.checkpoint_path.exists():
            return
        state = torch.load(self.checkpoint_path, weights_only=False)
        self.model.decoder.load_state_dict(state["decoder"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.step = state["step"]
        self.sampler.rng.bit_generator.state = state["sampler"]
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])

    def save_checkpoint(self) -> None:
        state = {"decoder": self.model.decoder.state_dict(),
                 "optimiser": self.optimiser.state_dict(), "step": self.step,
                 "sampler": self.sampler.rng.bit_generator.state,
                 "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                 "config": self.model.config.to_dict()}
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_path)  # atomic: a kill mid-save leaves the old one

    def learning_rate(self) -> float:
        s = self.settings
        return warmup_cosine(self.step, s.lr, s.warmup, s.steps)

    def draw_steps(self, n: int) -> np.ndarray:
        """Global quantisation steps of ``n`` crops: the design point, a floor rung or a
        quality drawn uniformly from the knob's 1..100."""
        s, out = self.settings, np.empty(n)
        for i in range(n):
            u = self.rng.random()
            if u < s.design_share:
                out[i] = 1.0
            elif u < s.design_share + s.floor_share:
                out[i] = quality.step(int(self.rng.choice(quality.FLOOR_RUNGS)))
            else:
                out[i] = quality.step(int(self.rng.integers(1, quality.TOP + 1)))
        return out

    def train_step(self) -> float:
        self.model.decoder.train()
        x = self.sampler.batch(self.settings.batch)
        p, smooth = periodic(x, self.rng.random(x.shape[0]) >= self.settings.split_share)
        y = quantise(self.model, p, self.draw_steps(x.shape[0]))
        for group in self.optimiser.param_groups:
            group["lr"] = self.learning_rate()
        out = (self.model.synthesise(y, clamp=False) + smooth).clamp(-0.5, 0.5)
        loss, mse = self.objective(out, x)
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.step += 1
        return mse

    def objective(self, out: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The loss of a batch of reconstructions (see ``DecoderSettings.loss``) and its
        plain MSE (what the log reports)."""
        each = torch.mean((out - x) ** 2, dim=tuple(range(1, x.ndim)))
        if self.settings.loss == "snr":
            return 10 * torch.log10(each + self.settings.snr_floor).mean(), each.mean().item()
        return each.mean(), each.mean().item()

    @torch.no_grad()
    def validate(self, qualities: tuple[int, ...] = (1, 50, 100)) -> dict[str, float]:
        """Mean PSNR of the validation images decoded at each of ``qualities`` (as the codec
        does: split, rounded latents, ``s`` added back, uint8 output); for audio the mean
        SNR (``val_snr_q*``: signal over error power, as ``walloc eval`` reports it, of the
        float output before its rounding to int16)."""
        self.model.eval()
        audio = self.model.config.modality == "audio"
        out = {}
        for q in qualities:
            scores = []
            for x in self.val:
                p, smooth = periodic(x)
                y = quantise(self.model, p, np.array([quality.step(q)]))
                r = (self.model.synthesise(y, clamp=False) + smooth).clamp(-0.5, 0.5)
                if audio:
                    scores.append(_snr(x, r))
                    continue
                r, t = torch.round((r + 0.5) * 255), torch.round((x + 0.5) * 255)
                scores.append(_psnr(torch.mean((r - t) ** 2).item() / 255 ** 2))
            out[f"val_{'snr' if audio else 'psnr'}_q{q}"] = float(np.mean(scores))
        return out

    def fit_linear(self, batches: int, report=print) -> None:
        """Solve a purely linear 1-D decoder (:func:`linearised`) in closed form: the
        weights and bias of its ``k``-tap path that minimise the squared error of the packet
        bands over ``batches`` batches of crops, each rounded at a quality drawn as
        :meth:`train_step` draws it, every crop weighted by the inverse of its power under
        the ``snr`` loss (so loud crops do not dominate, as the mean SNR in dB does not let
        them), by 1 under ``mse`` (which fit mono-16x better: 11.63 against 11.40 dB at q50
        on its val clips, as the quiet crops' error is mostly quantisation). The edges are
        padded as the convolution pads them (replicated), so the solution is exactly the
        least-squares one of the packet bands' error for the model as it decodes (not of
        the signal's: the CDF 9/7 synthesis is not orthogonal, and the output is clamped).
        Logged as step ``batches`` with its validation."""
        m, s = self.model, self.settings
        if m.decoder.residual is not None or m.config.signal_ndim != 1:
            raise InputError("fit_linear solves a linear 1-D decoder (see linearised)")
        if batches < 1:
            raise InputError(f"fit_linear needs at least one batch, got {batches}")
        started, k, latent = time.perf_counter(), m.config.linear_kernel, m.config.latent_channels
        width = latent * k + 1  # the taps of every latent channel, and the bias
        gram = torch.zeros(width, width, dtype=torch.float64)
        cross = torch.zeros(m.config.packet_channels, width, dtype=torch.float64)
        with torch.no_grad():
            for _ in range(batches):
                x = self.sampler.batch(s.batch)
                z = m.companding.inverse(quantise(m, x, self.draw_steps(x.shape[0]))).double()
                v = m.transform(x).double()
                ctx = frame_context(z, k)
                power = x.double().pow(2).flatten(1).mean(1)
                w = 1 / torch.clamp(power, min=s.snr_floor) if s.loss == "snr" \
                    else torch.ones_like(power)
                gram += torch.einsum("n,naf,nbf->ab", w, ctx, ctx)
                cross += torch.einsum("n,npf,nbf->pb", w, v, ctx)
        ridge = 1e-9 * torch.diagonal(gram).mean() * torch.eye(gram.shape[0], dtype=gram.dtype)
        solution = torch.linalg.solve(gram + ridge, cross.T).T  # (packet, latent * k + 1)
        weight = solution[:, :-1].reshape(-1, k, latent).permute(0, 2, 1)
        m.decoder.linear.load_state_dict({"weight": weight.float().contiguous(),
                                          "bias": solution[:, -1].float()})
        self.step = batches
        self.save_checkpoint()
        self._record({"step": batches, **self.validate(),
                      "seconds": round(time.perf_counter() - started, 1)}, report)

    def run(self, report=print) -> None:
        """Train to ``settings.steps``, resuming; a log line every 50 steps and at each
        validation (step 0's validation is the starting model's)."""
        self.resume()
        s, started, window = self.settings, time.perf_counter(), []
        if self.step == 0:
            self._record({"step": 0, **self.validate()}, report)
        while self.step < s.steps:
            window.append(self.train_step())
            record: dict[str, float] = {}
            if self.step % s.validate_every == 0 or self.step == s.steps:
                record.update(self.validate())
            if self.step % s.checkpoint_every == 0 or self.step == s.steps:
                self.save_checkpoint()
            if record or self.step % 50 == 0:
                record.update(step=self.step, train_psnr=_psnr(float(np.mean(window))),
                              lr=self.learning_rate(),
                              seconds=round(time.perf_counter() - started, 1))
                window = []
                self._record(record, report)

    def _record(self, record: dict, report) -> None:
        with self.log.open("a") as f:
            f.write(json.dumps(record) + "\n")
        report(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in record.items()))


def _psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


def _snr(x: torch.Tensor, r: torch.Tensor) -> float:
    """Signal over error power in dB, in float64."""
    x, r = x.double(), r.double()
    return 10 * math.log10(float(torch.mean(x ** 2)) / max(float(torch.mean((r - x) ** 2)),
                                                            1e-20))
