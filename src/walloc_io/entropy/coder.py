"""ANS coding of integer latents with constriction, one frozen table per channel.

Channels are pushed in reverse so that decoding pops channel 0 first. The decoder checks
that every compressed word was consumed and that every latent is in range, so a damaged
payload is reported, not decoded into a plausible-looking wrong signal.
"""

from __future__ import annotations

import numpy as np

from ..errors import BitstreamError
from . import predict
from .tables import EntropyTables


def encode(latents: np.ndarray, tables: EntropyTables) -> bytes:
    """``(C, *signal)`` integer latents -> little-endian uint32 words as bytes."""
    import constriction

    coder = constriction.stream.stack.AnsCoder()
    for c in reversed(range(latents.shape[0])):
        r = predict.residual(latents[c], tables.modes[c])
        coder.encode_reverse((r.ravel() + tables.radius(c)).astype(np.int32), tables.model(c))
    return coder.get_compressed().astype("<u4").tobytes()


def decode(payload: bytes, shape: tuple[int, ...], tables: EntropyTables) -> np.ndarray:
    """Inverse of :func:`encode` for latents of ``shape`` = ``(C, *signal)``."""
    import constriction

    if len(payload) % 4:
        raise BitstreamError(f"payload of {len(payload)} bytes is not a whole number of words")
    if shape[0] != len(tables.modes):
        raise BitstreamError(f"stream has {shape[0]} latent channels, model has {len(tables.modes)}")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except ValueError as exc:
        raise BitstreamError(f"corrupt entropy-coded payload: {exc}") from None
    out = np.empty(shape, dtype=np.int32)
    count = int(np.prod(shape[1:]))
    for c in range(shape[0]):
        symbols = coder.decode(tables.model(c), count).astype(np.int32) - tables.radius(c)
        x = predict.reconstruct(symbols.reshape(shape[1:]), tables.modes[c])
        if np.abs(x).max(initial=0) > tables.max_symbol:
            raise BitstreamError(f"latent channel {c} decodes out of range: corrupt payload")
        out[c] = x
    if not coder.is_empty():
        raise BitstreamError("payload has undecoded words left: corrupt or wrong shape")
    return out
