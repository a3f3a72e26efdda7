"""Rate allocation: fit each latent channel's quantisation step (``config.step_gains``).

One step for every channel is not what minimises distortion for the bits: a channel whose
errors cost much in the signal (the block means) should be quantised finer than one whose
errors cost little, until every channel buys distortion at the same price per bit. For each
quality knot (:data:`walloc_io.quality.GAIN_KNOTS`) this measures, on training signals, the
slope ``dD / dR`` of every channel (its step nudged up by a quarter, the rest held) and moves
the channels' steps towards equal slopes; a common shift then brings the rate back to that of
the single step, so a quality keeps roughly its rate and only the fidelity rises. A knot keeps
the best allocation its iterations found at that rate, or the single step where none beats it
(near saturation the slopes are noise).

Rates here are first-order entropies of the best prediction mode's residuals per channel (the
tables that code them later are context-adaptive and a little cheaper); distortion is the
decoder's mean squared error. Workflow: train, fit the gains (:func:`fit_step_gains`), then
freeze tables and the ladder under the new config (it has a new fingerprint).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from .. import quality
from ..entropy import predict
from ..model import WallocModel
from .data import to_unit

RATE_SLACK = 0.005  # an allocation may spend this much more than the single step's rate
NUDGE = 0.25  # octaves a channel's step is raised by to measure its slope (a factor 1.19)


def _bits(codes: np.ndarray) -> float:
    """First-order entropy (bits) of one channel's codes under its cheapest prediction mode."""
    best = math.inf
    for mode in predict.modes_for(codes.ndim, True):
        counts = np.unique(predict.residual(codes, mode), return_counts=True)[1]
        best = min(best, float(-(counts * np.log2(counts / counts.sum())).sum()))
    return best


class _Probe:
    """Rate and distortion of a model on fixed signals at chosen per-channel steps."""

    def __init__(self, model: WallocModel, signals: Sequence[torch.Tensor]) -> None:
        self.model, self.signals = model.eval(), signals
        with torch.inference_mode():
            self.latents = [model.encoder(model.transform(x)) for x in signals]
        self.values = sum(x.numel() for x in signals)

    def __call__(self, steps: np.ndarray) -> tuple[np.ndarray, float]:
        """Bits per signal value of every channel (``(L,)``) and the mean squared error."""
        m, amplitude = self.model, self.model.companding.amplitude
        bits, sq = np.zeros(len(steps)), 0.0
        with torch.inference_mode():
            for x, z in zip(self.signals, self.latents):
                grid = torch.tensor(steps, dtype=z.dtype).reshape(1, -1, *(1,) * (z.ndim - 2))
                k = torch.round(amplitude / grid * torch.erf(z / math.sqrt(2)))
                codes = k.to(torch.int32).numpy()
                bits += [_bits(codes[0, c]) for c in range(len(steps))]
                sq += float(((m.synthesise(k * grid) - x) ** 2).sum())
        return bits / self.values, sq / self.values


def fit_step_gains(
    model: WallocModel, signals: Sequence[np.ndarray | torch.Tensor], iterations: int = 4,
    rate: float = 0.35, report: Callable[[str], None] | None = None,
) -> tuple[tuple[int, ...], ...]:
    """Equal-slope step gains of ``model`` at every quality knot, fitted on ``signals``
    (``(C, *axes)`` in ``[-1/2, 1/2]``; crops of training signals), as a config's
    ``step_gains``. ``rate``: the damping of each step's move towards equal slopes."""
    cfg = model.config
    probe = _Probe(model, [torch.as_tensor(np.asarray(s, dtype=np.float32))[None]
                           for s in signals])
    channels = cfg.latent_channels
    rows, gains = [], np.zeros(channels)
    for q in quality.GAIN_KNOTS:
        base = quality.step(q)
        target, flat_d = probe(np.full(channels, base))
        best = (flat_d, np.zeros(channels))  # one step for all is a candidate too
        for _ in range(iterations):
            bits, d0 = probe(base * np.exp2(gains))
            slopes = np.empty(channels)
            for c in range(channels):
                trial = gains.copy()
                trial[c] += NUDGE
                b1, d1 = probe(base * np.exp2(trial))
                slopes[c] = max(d1 - d0, 1e-12) / max(bits.sum() - b1.sum(), 1e-9)
            gains = gains + rate * np.log2(np.exp(np.log(slopes).mean()) / slopes)
            gains = _match_rate(probe, base, gains, target.sum())
            bits, d = probe(base * np.exp2(gains))
            if bits.sum() <= target.sum() * (1 + RATE_SLACK) and d < best[0]:
                best = (d, gains.copy())
        gains = best[1]  # where no move pays (a saturated decoder), the single step stays
        if report:
            report(f"q{q}: {target.sum():.4f} bits/value, PSNR {_psnr(best[0]):.2f} dB "
                   f"(one step: {_psnr(flat_d):.2f}), gains {np.round(gains, 2).tolist()}")
        rows.append(gains.copy())
    return _monotone(np.array(rows))


def _match_rate(probe: _Probe, base: float, gains: np.ndarray, target: float) -> np.ndarray:
    """``gains`` shifted by a common amount so the rate is ``target`` (bisection, 8 steps)."""
    lo, hi = -1.5, 1.5
    for _ in range(8):
        mid = (lo + hi) / 2
        bits, _ = probe(base * np.exp2(gains + mid))
        lo, hi = (mid, hi) if bits.sum() > target else (lo, mid)
    return np.clip(gains + (lo + hi) / 2, -quality.GAIN_LIMIT / quality.GAIN_UNIT,
                   quality.GAIN_LIMIT / quality.GAIN_UNIT)


def _monotone(rows: np.ndarray) -> tuple[tuple[int, ...], ...]:
    """Gains in integer sixteenths, lowered where needed so no channel's step grows with q."""
    g = np.clip(np.round(rows * quality.GAIN_UNIT), -quality.GAIN_LIMIT, quality.GAIN_LIMIT)
    knots = quality.GAIN_KNOTS
    for k in range(1, len(knots)):
        rise = (knots[k] - knots[k - 1]) * quality.GAIN_UNIT // 25
        g[k] = np.minimum(g[k], g[k - 1] + rise)
    return tuple(tuple(int(v) for v in row) for row in g)


def _psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


def crops(signals: Sequence[np.ndarray], size: int, count: int, seed: int = 0
          ) -> list[np.ndarray]:
    """``count`` random crops of ``size`` along every signal axis (unit float32), drawn
    evenly over ``signals`` (each at least ``size`` long)."""
    rng, out = np.random.default_rng(seed), []
    usable = [s for s in signals if min(s.shape[1:]) >= size]
    for i in range(count):
        s = usable[i % len(usable)]
        starts = [int(rng.integers(0, n - size + 1)) for n in s.shape[1:]]
        index = tuple(slice(a, a + size) for a in starts)
        out.append(to_unit(s[(slice(None), *index)]).numpy())
    return out


def allocated(model: WallocModel, gains: tuple[tuple[int, ...], ...]) -> WallocModel:
    """A copy of ``model`` whose config carries ``gains`` (same weights, new fingerprint)."""
    out = WallocModel(replace(model.config, step_gains=gains))
    out.load_state_dict(model.state_dict())
    return out.eval()
