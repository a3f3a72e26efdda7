"""The .wlc container: round trip, corruption, and independence from torch."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from walloc_io import BitstreamError, read_header
from walloc_io.bitstream import Header, pack, unpack

HEADER = Header("image", "predictive", "float32", "0123456789abcdef" * 2, 3, (45, 77), (3, 3),
                12, (6, 10), np.array([[-1.5, 2.0], [0.0, 1.0], [3.0, 0.5]]), 0)


def test_round_trip():
    blob = pack(HEADER, b"\x01\x02\x03\x04" * 5)
    header, payload = unpack(blob)
    assert header == HEADER and payload == b"\x01\x02\x03\x04" * 5
    assert read_header(blob) == HEADER


def test_audio_header_round_trip():
    h = Header("audio", "histogram", "int16", "ff" * 16, 2, (44100,), (60,), 27, (174,), None,
               48000)
    assert read_header(pack(h, b"")) == h


def test_layout_is_little_endian_and_ends_in_crc():
    blob = pack(HEADER, b"abcd")
    assert blob[:4] == b"WLOC" and blob[4] == 2  # format 2: native rANS payload
    assert struct.unpack("<I", blob[-4:])[0] == zlib.crc32(blob[:-4])
    assert struct.unpack_from("<H", blob, 24)[0] == 3  # channels after the 16-byte fingerprint


def test_every_truncation_is_an_error():
    blob = pack(HEADER, b"\x00" * 16)
    for n in range(len(blob)):
        with pytest.raises(BitstreamError):
            unpack(blob[:n])


def test_every_single_bit_flip_is_an_error():
    blob = bytearray(pack(HEADER, b"\x10\x20\x30\x40" * 4))
    for i in range(len(blob)):
        for bit in (0, 3, 7):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises(BitstreamError):
                unpack(bytes(bad))


def test_trailing_bytes_and_wrong_types():
    blob = pack(HEADER, b"")
    with pytest.raises(BitstreamError, match="trailing"):
        unpack(blob + b"\x00")
    with pytest.raises(BitstreamError, match="expected bytes"):
        read_header("WLOC")  # type: ignore[arg-type]
    assert read_header(bytearray(blob)) == HEADER


def test_forged_fields_with_valid_crc_are_rejected():
    def forge(mutate):
        body = bytearray(pack(HEADER, b"")[:-4])
        mutate(body)
        return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))

    cases = {
        "version": lambda b: b.__setitem__(4, 9),
        "modality": lambda b: b.__setitem__(5, 7),
        "dtype": lambda b: b.__setitem__(7, 200),
        "empty": lambda b: b.__setitem__(slice(30, 34), b"\x00\x00\x00\x00"),
        "large": lambda b: b.__setitem__(slice(30, 38), b"\xff" * 8),
    }
    for name, mutate in cases.items():
        with pytest.raises(BitstreamError):
            unpack(forge(mutate))
            pytest.fail(f"forged {name} accepted")


def test_read_header_does_not_import_torch(tmp_path):
    blob = tmp_path / "x.wlc"
    blob.write_bytes(pack(HEADER, b""))
    code = ("import sys; sys.modules['torch'] = None\n"
            "import walloc_io\n"
            f"h = walloc_io.read_header(open({str(blob)!r}, 'rb').read())\n"
            "assert h.shape == (45, 77), h\n"
            "assert 'constriction' not in sys.modules\n"
            "print(walloc_io.list_presets())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "rgb-16x" in out.stdout
