#!/usr/bin/env python
"""Would within-channel context pay? Ideal code length of held-out latents under two context
models fitted on training latents, before building either into the bitstream.

  base          the shipped predictive model: each residual's table is chosen by the local
                energy of the channels decoded before it (one vectorised pass per channel);
  checkerboard  two passes per channel: anchors (i + j even) as in base, then the others with
                a context from base's energy plus ``w`` x the summed magnitude of their four
                (already decoded) anchor neighbours in the same channel;
  causal        one pass in raster order (as the native coder decodes): base's energy plus
                ``w`` x the summed magnitude of the causal neighbours in the same channel
                (``t-1 .. t-8``; left, up-left, up, up-right);
  regression    (2D, walloc-io 0.12; ``--regression K [K ...]``) a bound on richer
                contexts: per channel, a least-squares fit of ``log(|r| + 1/2)`` on the
                log magnitudes of 17 features (base's energy, ten causal neighbours out to
                two samples, the 3x3 box of each of the six channels decoded last), fitted
                on the training items, cut into ``K`` equally populated contexts.

All but ``regression`` use 16 contexts, the shipped prediction modes (cheapest per item and channel) and
16-bit quantised tables fitted on ``--train`` items; figures are ideal bytes per held-out
item (no coder overhead, no header), so only the ratio between rows matters.

    python benchmarks/bench_context_ablation.py rgb-16x --train data/images/train \\
        --val data/images/val --weights 1 3 8 16 --out benchmarks/results/context-ablation.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from report import emit

from walloc_io import load_codec
from walloc_io.entropy import predict
from walloc_io.entropy.context import (
    Contexts,
    bins,
    causal_sum,
    fit_thresholds,
    local_energy,
    lookup_table,
)
from walloc_io.entropy.tables import PRECISION, quantise_counts
from walloc_io.evaluation import items as _items

CONTEXTS = 16


def latents(codec, folder: Path, limit: int | None) -> list[np.ndarray]:
    cfg, out = codec.config, []
    for i, (_, data, rate) in enumerate(_items(folder, cfg.modality, cfg.channels)):
        if limit and i >= limit:
            break
        out.append(codec.decode_latents(codec.encode(data, sample_rate=rate)).astype(np.int32))
    return out


def entropy(r: np.ndarray) -> float:
    counts = np.unique(r, return_counts=True)[1]
    return float(-(counts * np.log2(counts / counts.sum())).sum())


def cross_entropy(train: list, val: list, radius: int) -> float:
    """Bits of the ``val`` (context, residual) pairs under tables fitted on ``train``."""
    counts = np.zeros((CONTEXTS, 2 * radius + 1), np.int64)
    for k, r in train:
        np.add.at(counts, (k, r + radius), 1)
    lengths = np.stack([PRECISION - np.log2(quantise_counts(row)) for row in counts])
    return float(sum(lengths[k, r + radius].sum() for k, r in val))


def anchors(shape: tuple[int, ...]) -> np.ndarray:
    return np.indices(shape).sum(axis=0) % 2 == 0


def neighbours(a: np.ndarray) -> np.ndarray:
    """Sum over the 2 (1D) or 4 (2D) direct neighbours, zero outside."""
    p = np.pad(a, 1)
    if a.ndim == 1:
        return p[:-2] + p[2:]
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]


def alphabet(codec, modes, train: list, val: list) -> int:
    """The tables' residual radius: the design point's alphabet, or more (the default
    quality may be a floor rung, a finer step than the design point's tables)."""
    return max(predict.alphabet_radius(modes[-1], codec.tables.max_symbol),
               *(int(np.abs(predict.residual(x[c], m)).max()) for xs in (train, val)
                 for x in xs for c in range(x.shape[0]) for m in modes))


def ideal_bytes(codec, train: list, val: list, weight: float | None,
                rule: str = "checkerboard") -> float:
    tables, nd = codec.tables, train[0].ndim - 1
    modes = predict.modes_for(nd, True)
    radius = alphabet(codec, modes, train, val)
    split = {"train": train, "val": val}
    chosen = {s: [[int(np.argmin([entropy(predict.residual(x[c], m)) for m in modes]))
                   for c in range(x.shape[0])] for x in xs] for s, xs in split.items()}
    state = {s: [Contexts(x.shape[1:]) for x in xs] for s, xs in split.items()}
    bits = 0.0
    for c in tables.order:
        energy = {s: [st.energy() for st in state[s]] for s in split}
        res = {s: [predict.residual(x[c], chosen[s][i][c]) for i, x in enumerate(xs)]
               for s, xs in split.items()}
        lut = lookup_table(fit_thresholds(energy["train"], CONTEXTS))
        if weight is None:
            pairs = {s: [(bins(e, lut).ravel(), r.ravel()) for e, r in zip(energy[s], res[s])]
                     for s in split}
            bits += cross_entropy(pairs["train"], pairs["val"], radius)
        elif rule == "causal":
            mixed = {s: [(e + weight * causal_sum(np.abs(r))).astype(np.int64)
                         for e, r in zip(energy[s], res[s])] for s in split}
            lut2 = lookup_table(fit_thresholds(mixed["train"], CONTEXTS))
            pairs = {s: [(bins(m, lut2).ravel(), r.ravel()) for m, r in zip(mixed[s], res[s])]
                     for s in split}
            bits += cross_entropy(pairs["train"], pairs["val"], radius)
        else:
            mixed = {s: [e + weight * neighbours(np.abs(r) * anchors(r.shape))
                         for e, r in zip(energy[s], res[s])] for s in split}
            lut2 = lookup_table(fit_thresholds(
                [m[~anchors(m.shape)].astype(np.int64) for m in mixed["train"]], CONTEXTS))
            a_pairs = {s: [(bins(e[anchors(e.shape)], lut), r[anchors(r.shape)])
                           for e, r in zip(energy[s], res[s])] for s in split}
            b_pairs = {s: [(bins(m[~anchors(m.shape)].astype(np.int64), lut2), r[~anchors(r.shape)])
                           for m, r in zip(mixed[s], res[s])] for s in split}
            bits += cross_entropy(a_pairs["train"], a_pairs["val"], radius)
            bits += cross_entropy(b_pairs["train"], b_pairs["val"], radius)
        for s in split:
            for st, r in zip(state[s], res[s]):
                st.add(r)
    return bits / 8 / len(val)


def _shifted(a: np.ndarray) -> list[np.ndarray]:
    """The ten causal neighbours of every position out to two samples (zero outside)."""
    p, (h, w) = np.pad(a.astype(np.float64), 2), a.shape
    return [p[2 + dy:2 + dy + h, 2 + dx:2 + dx + w]
            for dy, dx in ((0, -1), (-1, -1), (-1, 0), (-1, 1), (0, -2), (-2, 0), (-1, -2),
                           (-1, 2), (-2, -1), (-2, 1))]


def regression_bytes(codec, train: list, val: list, contexts: int) -> float:
    """Ideal bytes per ``val`` item under the ``regression`` rule (module docstring)."""
    modes, split = predict.modes_for(2, True), {"train": train, "val": val}
    radius = alphabet(codec, modes, train, val)
    chosen = {s: [[int(np.argmin([entropy(predict.residual(x[c], m)) for m in modes]))
                   for c in range(x.shape[0])] for x in xs] for s, xs in split.items()}
    state = {s: [Contexts(x.shape[1:]) for x in xs] for s, xs in split.items()}
    boxes: dict[str, list[list[np.ndarray]]] = {s: [[] for _ in xs] for s, xs in split.items()}
    bits = 0.0
    for c in codec.tables.order:
        feats, res = {}, {}
        for s, xs in split.items():
            rows, rs = [], []
            for i, x in enumerate(xs):
                r = predict.residual(x[c], chosen[s][i][c])
                cols = [state[s][i].energy().astype(np.float64), *_shifted(np.abs(r))]
                cols += boxes[s][i][-6:]
                cols += [np.zeros(r.shape)] * (17 - len(cols))
                rows.append(np.log1p(np.stack([v.ravel() for v in cols], 1)))
                rs.append(r.ravel())
            x_ = np.concatenate(rows)
            feats[s], res[s] = np.concatenate([x_, np.ones((len(x_), 1))], 1), np.concatenate(rs)
        beta = np.linalg.lstsq(feats["train"], np.log(np.abs(res["train"]) + 0.5), rcond=None)[0]
        cuts = np.quantile(feats["train"] @ beta, np.linspace(0, 1, contexts + 1)[1:-1])
        pairs = {s: [(np.searchsorted(cuts, feats[s] @ beta), res[s])] for s in split}
        counts = np.zeros((contexts, 2 * radius + 1), np.int64)
        np.add.at(counts, (pairs["train"][0][0], pairs["train"][0][1] + radius), 1)
        lengths = np.stack([PRECISION - np.log2(quantise_counts(row)) for row in counts])
        k, r = pairs["val"][0]
        bits += float(lengths[k, r + radius].sum())
        for s, xs in split.items():
            for i, x in enumerate(xs):
                r = predict.residual(x[c], chosen[s][i][c])
                state[s][i].add(r)
                boxes[s][i].append(local_energy(np.abs(r)).astype(np.float64))
    return bits / 8 / len(val)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("codec")
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--val", type=Path, required=True)
    p.add_argument("--limit", type=int, default=40, help="training items to fit on")
    p.add_argument("--weights", type=float, nargs="+", default=[1, 3, 8, 16])
    p.add_argument("--rules", nargs="+", default=["checkerboard"],
                   choices=["checkerboard", "causal"])
    p.add_argument("--regression", type=int, nargs="*", default=[],
                   help="context counts of the regression rule's bound (2D presets)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    codec = load_codec(args.codec, device="cpu")
    train, val = latents(codec, args.train, args.limit), latents(codec, args.val, None)
    base = ideal_bytes(codec, train, val, None)
    rows = [("base (predictive, format 2)", base)]
    for rule in args.rules:
        for w in args.weights:
            rows.append((f"{rule}, w = {w:g}", ideal_bytes(codec, train, val, w, rule)))
            print(rows[-1], flush=True)
    if args.regression and train[0].ndim != 3:
        raise SystemExit(f"--regression is for 2-D (image) presets; {args.codec} is not one")
    for k in args.regression:
        rows.append((f"regression, {k} contexts", regression_bytes(codec, train, val, k)))
        print(rows[-1], flush=True)
    lines = [f"# Context ablation: `{args.codec}`, ideal bytes per held-out item", "",
             f"Command: `python benchmarks/bench_context_ablation.py {args.codec} --train "
             f"{args.train} --val {args.val} --limit {args.limit} --weights "
             f"{' '.join(f'{w:g}' for w in args.weights)} "
             f"--rules {' '.join(args.rules)}"
             + (f" --regression {' '.join(map(str, args.regression))}" if args.regression
                else "")
             + f"`; {len(train)} training items, "
             f"{len(val)} held-out items.", "",
             "| context model | ideal bytes per item | vs base |", "|---|---|---|"]
    lines += [f"| {name} | {b:.0f} | {b / base:.3f} |" for name, b in rows]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
