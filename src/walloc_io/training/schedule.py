"""The learning-rate schedule every trainer here uses: linear warmup, then a cosine decay."""

from __future__ import annotations

import math


def warmup_cosine(step: int, lr: float, warmup: int, steps: int, start: int = 0) -> float:
    """The rate at ``step`` of a schedule that begins at ``start`` (0, or a trained model's
    last step for a run that continues it): ``warmup`` steps rising linearly to ``lr``, then
    a cosine decay to 2 % of it at ``steps``, held there after."""
    t = step - start
    if t < warmup:
        return lr * (max(t, 0) + 1) / warmup
    progress = (t - warmup) / max(1, steps - start - warmup)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
