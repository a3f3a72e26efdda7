"""Format 1 (walloc-io 0.1): ANS coding of latents with constriction, kept to decode old streams.

Streams of format version 1 decode through this module forever; new streams use the native
coder of format 2 (:mod:`walloc_io.entropy.native`). The words of format 1 depend on
constriction's own quantiser (``Categorical(probs, perfect=False)`` rescales the tables'
``freq / 2**16``), so the dependency is pinned to the series the golden streams pass on.

Per stream, the encoder picks each channel's prediction mode (the cheapest under the frozen
tables) and sends the choices first, as uniform symbols. Channels follow in the tables'
order and, within a channel, symbols are grouped by context (row-major inside a group), so
each group is one vectorised constriction call. ANS is a stack: everything is pushed in
reverse so decoding pops in order. The decoder checks that every word was consumed and every
latent is in range, so a damaged payload is reported, not decoded into a wrong signal.
"""

from __future__ import annotations

import numpy as np

from ..errors import BitstreamError
from . import predict
from .context import Contexts, bins
from .tables import EntropyTables, count_escapes, join_escapes, split_escapes


def _contexts(tables: EntropyTables, c: int, state: Contexts):
    """Channel ``c``'s symbols grouped by context: ``(k, order, counts)`` with ``k`` each
    symbol's context, ``order`` the raster indices sorted by context (stable: raster order
    within a group) and ``counts`` the group sizes. The stream carries the groups in turn."""
    k = bins(state.energy(), tables.lookup(c)).ravel()
    order = np.argsort(k, kind="stable")  # radix sort on uint8
    return k, order, np.bincount(k, minlength=len(tables.thresholds[c]) + 1).tolist()


def _mode_model(tables: EntropyTables):
    import constriction

    return constriction.stream.model.Categorical(np.full(tables.modes, 1.0 / tables.modes),
                                                 perfect=False)


def _format1_tables(tables: EntropyTables) -> None:
    if tables.neighbour_weight:  # format 1 predates the contextual model (0.8)
        raise BitstreamError("format 1 streams have no contextual entropy model")


def encode(latents: np.ndarray, tables: EntropyTables) -> bytes:
    """``(C, *signal)`` integer latents -> little-endian uint32 words as bytes."""
    _format1_tables(tables)
    import constriction

    state, pushes, modes = Contexts(latents.shape[1:]), [], []
    for c in tables.order:
        k, order, counts = _contexts(tables, c, state)
        best = None
        for m in range(tables.modes):
            r = predict.residual(latents[c], m)
            bits = tables.bits(c, m, k, r.ravel() + tables.radius(m))
            if best is None or bits < best[0]:
                best = (bits, m, r)
        assert best is not None  # tables offer at least one mode
        _, m, r = best
        modes.append(m)
        core, tail = split_escapes(r.ravel(), tables.radius(m))
        groups = np.split(core[order].astype(np.int32), np.cumsum(counts)[:-1])
        pushes += [(g, model) for g, model in zip(groups, tables.models(c, m)) if g.size]
        if tail.size:
            pushes.append((tail.astype(np.int32), tables.tail_model(c, m)))
        state.add(r)
    coder = constriction.stream.stack.AnsCoder()
    for symbols, model in reversed(pushes):
        coder.encode_reverse(symbols, model)
    if tables.modes > 1:
        coder.encode_reverse(np.array(modes, dtype=np.int32), _mode_model(tables))
    return coder.get_compressed().astype("<u4").tobytes()


def decode(payload: bytes, shape: tuple[int, ...], tables: EntropyTables) -> np.ndarray:
    """Inverse of :func:`encode` for latents of ``shape`` = ``(C, *signal)``."""
    import constriction

    _format1_tables(tables)
    if len(payload) % 4:
        raise BitstreamError(f"payload of {len(payload)} bytes is not a whole number of words")
    if shape[0] != tables.channels:
        raise BitstreamError(f"stream has {shape[0]} latent channels, model has {tables.channels}")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except ValueError as exc:
        raise BitstreamError(f"corrupt entropy-coded payload: {exc}") from None
    modes = [0] * tables.channels
    if tables.modes > 1:
        modes = coder.decode(_mode_model(tables), tables.channels).tolist()
    out = np.empty(shape, dtype=np.int32)
    state, size = Contexts(shape[1:]), int(np.prod(shape[1:]))
    for c, m in zip(tables.order, modes):
        # The groups in turn, then back to raster order with one scatter.
        _, order, counts = _contexts(tables, c, state)
        core = np.empty(size, dtype=np.int32)
        core[order] = np.concatenate([coder.decode(model, n)
                                      for model, n in zip(tables.models(c, m), counts) if n])
        radius = tables.radius(m)
        escapes = count_escapes(core, radius)
        tail = coder.decode(tables.tail_model(c, m), escapes) if escapes else core[:0]
        r = join_escapes(core, tail, radius).reshape(shape[1:])
        x = predict.reconstruct(r, m)
        if x.max(initial=0) > tables.max_symbol or x.min(initial=0) < -tables.max_symbol:
            raise BitstreamError(f"latent channel {c} decodes out of range: corrupt payload")
        out[c] = x
        state.add(r)
    if not coder.is_empty():
        raise BitstreamError("payload has undecoded words left: corrupt or wrong shape")
    return out
