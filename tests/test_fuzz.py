"""Property tests: thousands of mutated or truncated streams never crash, hang or lie."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import walloc_io
from walloc_io import WallocError

FUZZ = settings(max_examples=1500, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def stream(tiny):
    image = np.random.default_rng(7).integers(0, 256, (3, 16, 24), dtype=np.uint8)
    return tiny.encode(image)


def expect_clean(tiny, blob, reference_shape):
    """Either a WallocError, or a signal of the declared shape (only possible when the CRC
    was deliberately recomputed, i.e. a forged stream that is internally consistent)."""
    try:
        walloc_io.read_header(blob)
    except WallocError:
        pass
    try:
        y = tiny.decode(blob)
    except WallocError:
        return
    assert y.shape == reference_shape


@FUZZ
@given(data=st.data())
def test_mutations_are_rejected(tiny, stream, data):
    blob = bytearray(stream)
    positions = data.draw(st.lists(st.integers(0, len(blob) - 1), min_size=1, max_size=4,
                                   unique=True))
    for i in positions:  # distinct bytes, each changed: the stream really differs
        blob[i] = data.draw(st.integers(0, 255).filter(lambda v, i=i: v != stream[i]))
    with pytest.raises(WallocError):
        tiny.decode(bytes(blob))


@FUZZ
@given(cut=st.integers(0, 400), junk=st.binary(max_size=8))
def test_truncations_and_appendages_are_rejected(tiny, stream, cut, junk):
    blob = stream[: min(cut, len(stream) - 1)] + (junk if cut % 2 else b"")
    assume(blob != stream)  # re-appending the cut-off byte restores the stream
    with pytest.raises(WallocError):
        tiny.decode(blob)
    with pytest.raises(WallocError):
        walloc_io.read_header(blob)


@FUZZ
@given(data=st.data())
def test_forged_streams_with_valid_crc_never_crash(tiny, stream, data):
    body = bytearray(stream[:-4])
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    blob = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    expect_clean(tiny, blob, (3, 16, 24))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(blob):
    with pytest.raises(WallocError):
        walloc_io.read_header(blob)
