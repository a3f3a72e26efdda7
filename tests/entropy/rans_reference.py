"""Format 2's latent coder written out plainly in Python: the specification the C kernel is
tested against (word for word). Slow; for small test inputs only."""

from __future__ import annotations

import numpy as np

from walloc_io.entropy import predict
from walloc_io.entropy.context import Contexts, bins, causal_sum
from walloc_io.entropy.native import pack
from walloc_io.entropy.tables import core_radius, split_escapes

L = 1 << 16


def _cum(freq: np.ndarray) -> list[int]:
    return [0, *np.cumsum(freq.astype(np.int64)).tolist()]


def operations(latents: np.ndarray, tables) -> list[tuple[int, int]]:
    """The ``(start, freq)`` of every coding operation, in decoding order."""
    packed = pack(tables)
    state = Contexts(latents.shape[1:])
    modes, ops = [], []
    for c in tables.order:
        energy = state.energy()
        costs, ks = [], []
        for m in range(tables.modes):
            r = predict.residual(latents[c], m)
            if tables.neighbour_weight:  # the contextual model: this mode's own neighbours
                energy_m = energy + tables.neighbour_weight * causal_sum(np.abs(r))
            else:
                energy_m = energy
            ks.append(bins(energy_m, tables.lookup(c)).ravel())
            r = r.ravel()
            radius = tables.radius(m)
            full = _full_costs(packed, c, m, radius)
            costs.append(int(full[ks[m], r + radius].sum()))
        m = int(np.argmin(costs))  # ties: the lower mode, as the kernel
        k = ks[m]
        modes.append(m)
        r = predict.residual(latents[c], m).ravel()
        radius = tables.radius(m)
        core, _ = split_escapes(r, radius)
        e = core_radius(radius)
        tail_cum = _cum(tables.tails[c][m]) if e < radius else []
        for i, (s, v) in enumerate(zip(core.tolist(), r.tolist())):
            f = tables.frequencies[c][m][k[i]]
            cum = _cum(f)
            ops.append((cum[s], cum[s + 1] - cum[s]))
            if e < radius and abs(v) > e:
                t = abs(v) - e - 1
                ops.append((tail_cum[t], tail_cum[t + 1] - tail_cum[t]))
        state.add(r.reshape(latents.shape[1:]))
    if tables.modes > 1:
        step = (1 << 16) // tables.modes
        ops = [(m * step, step) for m in modes] + ops
    return ops


def _full_costs(packed, c, m, radius):
    values = np.arange(-radius, radius + 1)
    core, _ = split_escapes(values, radius)
    cost = packed.cost[c, m][:, core]
    e = core_radius(radius)
    if e < radius:
        mag = np.abs(values)
        cost[:, mag > e] += packed.tail_cost[c, m][mag[mag > e] - e - 1]
    return cost


def encode(latents: np.ndarray, tables) -> bytes:
    ops = operations(latents, tables)
    x, words = [L, L], []
    for i in reversed(range(len(ops))):
        start, freq = ops[i]
        s = i & 1
        if x[s] >= freq << 16:
            words.append(x[s] & 0xFFFF)
            x[s] >>= 16
        x[s] = ((x[s] // freq) << 16) + x[s] % freq + start
    for s in (1, 0):
        words += [x[s] >> 16, x[s] & 0xFFFF]
    return np.array(words[::-1], dtype="<u2").tobytes()
