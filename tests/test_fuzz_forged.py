"""Fuzzing that forges: internally consistent streams (CRC recomputed) with edited header
fields, spliced payloads and huge shape claims. Each case must end in a ``ValueError``
subclass or a signal of the declared shape with finite values, within a time and memory
budget.

Profiles: the default is small (CI); ``WALLOC_FUZZ=large`` runs ~40x more cases, and
``WALLOC_FUZZ_REPORT=path.json`` writes the outcome counts there.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from walloc_io import WallocError, bitstream
from walloc_io.codecs import chunk

LARGE = os.environ.get("WALLOC_FUZZ") == "large"
CASES = settings(max_examples=8000 if LARGE else 200, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
# Per case. A forged header may claim as many latents as its payload can hold at the tables'
# cheapest symbol (a flat image really codes that small), so a few hundred bytes may still
# decode to ~1 MP: bounded by the payload, not by the claim.
SECONDS, PEAK_BYTES = 3.0, 256 << 20
OUTCOMES: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    path = os.environ.get("WALLOC_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"profile": "large" if LARGE else "small", **OUTCOMES}, f, indent=1)


@pytest.fixture(scope="module")
def streams(tiny):
    rng = np.random.default_rng(11)
    images = [rng.integers(0, 256, (3, 16, 24), dtype=np.uint8),
              np.full((3, 32, 16), 128, np.uint8),
              rng.random((3, 20, 20)).astype(np.float32)]
    return [tiny.encode(x) for x in images]


def check(tiny, blob: bytes, kind: str) -> None:
    """Decode under a time and memory budget; count what happened."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        y = tiny.decode(blob)
    except ValueError as exc:
        assert isinstance(exc, WallocError), repr(exc)
        outcome = f"{kind}: {type(exc).__name__}"
    else:
        header = bitstream.read_header(blob)
        assert y.shape == header.array_shape
        assert y.dtype.kind in "iu" or np.isfinite(y).all()
        outcome = f"{kind}: decoded"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    elapsed = time.perf_counter() - start
    assert elapsed < SECONDS, (kind, elapsed)
    assert peak < PEAK_BYTES, (kind, peak)
    OUTCOMES[outcome] += 1
    OUTCOMES["cases"] += 1


SIZES = st.one_of(st.integers(1, 64), st.integers(1, 1 << 20), st.sampled_from([0, 1, 2 ** 31]))


@CASES
@given(data=st.data())
def test_forged_header_fields(tiny, streams, data):
    blob = data.draw(st.sampled_from(streams))
    header, payload = bitstream.unpack(blob)
    edits = data.draw(st.fixed_dictionaries({}, optional={
        "shape": st.tuples(SIZES, SIZES), "padding": st.tuples(st.integers(0, 8), st.integers(0, 8)),
        "latent_shape": st.tuples(SIZES, SIZES), "sample_rate": st.integers(0, 2 ** 32 - 1),
        "dtype": st.sampled_from(bitstream.DTYPES), "version": st.sampled_from([1, 2]),
        "normalisation": st.lists(st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)),
                                  min_size=3, max_size=3).map(np.array)}))
    if "shape" in edits and data.draw(st.booleans()):  # keep the latents consistent: reach the coder
        edits["latent_shape"] = tuple(-(-n // 4) for n in edits["shape"])
        edits["padding"] = tuple(-n % 4 for n in edits["shape"])
    try:
        forged = bitstream.pack(dataclasses.replace(header, **edits), payload)
    except (ValueError, OverflowError, TypeError, __import__("struct").error):
        OUTCOMES["fields: not representable"] += 1
        return
    check(tiny, forged, "fields")


@CASES
@given(data=st.data())
def test_spliced_payloads(tiny, streams, data):
    first, second = data.draw(st.sampled_from(streams)), data.draw(st.sampled_from(streams))
    header, payload = bitstream.unpack(first)
    _, other = bitstream.unpack(second)
    cut = data.draw(st.integers(0, len(payload)))
    at = data.draw(st.integers(0, len(other)))
    spliced = payload[:cut] + other[at:at + data.draw(st.integers(0, len(other)))]
    spliced += data.draw(st.binary(max_size=16))
    check(tiny, bitstream.pack(header, spliced), "splice")


@CASES
@given(h=st.integers(1, 1 << 16), w=st.integers(1, 1 << 16), data=st.data())
def test_shape_claims(tiny, streams, h, w, data):
    header, payload = bitstream.unpack(data.draw(st.sampled_from(streams)))
    f = 4  # the tiny codec: J = 2
    forged = dataclasses.replace(header, shape=(h, w), padding=(-h % f, -w % f),
                                 latent_shape=(-(-h // f), -(-w // f)))
    check(tiny, bitstream.pack(forged, payload), "shape")


@CASES
@given(data=st.data())
def test_forged_chunk_records(tiny, streams, data):
    """Records with edited shapes, item counts and masks: WallocError or the declared shape."""
    shape = data.draw(st.tuples(st.integers(0, 4), st.just(3), st.integers(1, 4096),
                                st.integers(1, 4096)))
    items = data.draw(st.lists(st.sampled_from(streams), max_size=4))
    mask = None
    if data.draw(st.booleans()):
        mask = np.zeros(min(int(np.prod(shape)), 1 << 16), bool)
    record = chunk.ChunkRecord(shape, "uint8", False, items, None)
    blob = chunk.pack(record)
    if mask is not None:  # a mask section of the wrong size, possibly a bomb
        packed = __import__("zlib").compress(np.packbits(mask).tobytes() * 64)
        blob = chunk.pack(dataclasses.replace(record)) + len(packed).to_bytes(4, "little") + packed
        blob = blob[:4 + 1] + bytes([chunk._MASK]) + blob[6:]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        out = chunk.decode_chunk(tiny, blob)
        assert out.shape == shape
        OUTCOMES["record: decoded"] += 1
    except ValueError as exc:
        assert isinstance(exc, WallocError), repr(exc)
        OUTCOMES[f"record: {type(exc).__name__}"] += 1
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - start < SECONDS and peak < PEAK_BYTES
    OUTCOMES["cases"] += 1


@pytest.fixture(scope="module")
def bounded(tiny):
    """Error-bounded float streams whose residuals took each coding (bins, polyphase,
    interpolation, raw), to forge their extension bodies."""
    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[0:40, 0:48]
    smooth = np.stack([np.sin(xx / 7 + c) * np.cos(yy / 5) for c in range(3)]).astype(np.float32)
    noisy = rng.normal(size=(3, 40, 48)).astype(np.float32)
    return [tiny.encode(x, max_abs_error=eps) for x in (smooth, noisy)
            for eps in (0.5, 1e-2, 1e-4, 1e-9)]


@CASES
@given(data=st.data())
def test_forged_residual_bodies(tiny, bounded, data):
    blob = data.draw(st.sampled_from(bounded))
    header, payload = bitstream.unpack(blob)
    body = bytearray(header.residual)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        body = body[: data.draw(st.integers(0, len(body)))]
    body += data.draw(st.binary(max_size=8))
    forged = bitstream.pack(dataclasses.replace(header, residual=bytes(body)), payload)
    check(tiny, forged, "residual")
